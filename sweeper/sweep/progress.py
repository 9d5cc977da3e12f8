"""Live progress of a sweep: `[k/N]` in front of each job's line, Hydra's own per-job line left
out beside it, and the summary line at the end. Shared by the grid and the Optuna sweepers and by
the launchers that run jobs in other processes."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Collection

# Hydra's basic launcher logs `#k : <overrides>` before each job; the sweep prints its own line.
_HYDRA_JOB_LINE = "\t#"


class Progress:
    """Counts finished jobs."""

    def __init__(self, total: int):
        self.total = total
        self.count = 0

    def prefix(self) -> str:
        self.count += 1
        return f"[{self.count}/{self.total}] "


# Set by the sweeper in its own process; jobs run in other processes (Slurm) print no counter.
current: Progress | None = None


def prefix() -> str:
    """The next job's `[k/N] `, or nothing outside an in-process sweep."""
    return current.prefix() if current else ""


def _not_a_job_line(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith(_HYDRA_JOB_LINE)


def start(total: int) -> None:
    """A sweep of `total` jobs starts: count from here, and leave Hydra's per-job line out."""
    global current
    current = Progress(total)
    launcher_log = logging.getLogger("hydra._internal.core_plugins.basic_launcher")
    if _not_a_job_line not in launcher_log.filters:
        launcher_log.addFilter(_not_a_job_line)


def end(sweep_dir: Path, seconds: float, done: Collection[int] = ()) -> None:
    """`sweep: 4 jobs: 3 ok, 1 failed in 3.1 s wall time; collate: ...` (this command's time: a job's
    line gives its training time, over every attempt); exit 1 naming the jobs that did not finish. `done`: the numbers of the jobs found done before the sweep started (not run again)."""
    from sweeper.job.status import FINISHED, summary
    from sweeper.sweep.jobs import read_sweep

    ran = [job for job in read_sweep(sweep_dir).jobs
           if job.sweep == sweep_dir and job.entry is not None and job.entry.num not in done]
    print(f"sweep: {summary([job.status for job in ran], skipped=len(done))} in {seconds:.1f} s wall time; "
          f"collate: python -m sweeper collate {sweep_dir}", flush=True)
    failed = [str(job.path) for job in ran if job.status not in FINISHED]
    if failed:
        print(f"error: {len(failed)} job(s) did not finish: {' '.join(failed)}", flush=True)
        raise SystemExit(1)
