"""Live progress of an in-process sweep, and the summary at its end."""
from __future__ import annotations

import collections
from pathlib import Path
from typing import Iterable


class Progress:
    """Counts finished jobs: `[k/N]` in front of each job's line."""

    def __init__(self, total: int):
        self.total = total
        self.count = 0

    def prefix(self) -> str:
        self.count += 1
        return f"[{self.count}/{self.total}] "


# Set by the sweeper in its own process; jobs run in other processes (Slurm) print no counter.
current: Progress | None = None


def job_statuses(sweep_dir: Path, job_dirs: Iterable[Path]) -> dict[Path, str]:
    """Each job's status as collation sees it: its record's, else missing or corrupt."""
    from sweeper.collate import read_job  # pandas: not for every job's start

    return {job_dir: read_job(sweep_dir, job_dir).status for job_dir in job_dirs}


def summary_line(statuses: dict[Path, str], skipped: int, seconds: float, sweep_dir: Path) -> str:
    counts = collections.Counter(statuses.values())
    parts = [f"{n} {status}" for status, n in sorted(counts.items())]
    if skipped:
        parts.append(f"{skipped} skipped (done before)")
    return (f"sweep: {len(statuses) + skipped} jobs: {', '.join(parts)} in {seconds:.1f} s; "
            f"collate: python -m sweeper collate {sweep_dir}")
