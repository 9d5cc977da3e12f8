"""Live progress of an in-process sweep: `[k/N]` in front of each job's line."""
from __future__ import annotations


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
