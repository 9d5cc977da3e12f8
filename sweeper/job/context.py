"""The run context: what the code that runs jobs in a process (a sweep in process, a packed task)
tells each job besides its config, handed explicitly to `execute`.

Hydra's launcher API passes only overrides to a job, and a job reaches our code through Hydra's
`run_job` and `run.py`'s main; so the one side channel is here: the code running jobs makes its
context `active` around them, and the job's entry point (sweeper/job/spec.py) picks it up and
passes it on. Nothing else reads it.
"""
from __future__ import annotations

import contextlib
import dataclasses
from typing import Iterator, Protocol

from sweeper.outcome import Outcome
from sweeper.job.planned import PlannedJob
from sweeper.training.workers import Workers


class JobCounter:
    """The sweep's count of jobs with a line so far, for `[k/N]` in front of each job's line."""

    def __init__(self, total: int, count: int = 0):
        self.total = total
        self.count = count
        self.lines: dict[int, int] = {}  # job number -> k of its `[k/N]` line (a search's best trial names it)

    def prefix(self) -> str:
        """`[k/N] ` of the last job counted."""
        return f"[{self.count}/{self.total}] "

    def next_line(self, line: str, num: int | None = None) -> str:
        """Count one more job (number `num`) and give its line with `[k/N] ` in front."""
        self.count += 1
        if num is not None:
            self.lines[num] = self.count
        return f"{self.prefix()}{line}"


class FusedOutcomes(Protocol):
    """The fused groups planned for a process's jobs (sweeper/job/fused_groups.py's FusedPlan)."""

    def outcome_of(self, job: PlannedJob, context: RunContext) -> Outcome | None:
        """The job's outcome from its group's one training; None: it runs alone."""


@dataclasses.dataclass
class RunContext:
    progress: JobCounter | None = None        # an in-process sweep's counter; None: no `[k/N]`
    fused: FusedOutcomes | None = None        # the fused groups planned for this process's jobs
    planned: dict[int, PlannedJob] = dataclasses.field(default_factory=dict)  # composed here, by number
    single_run: bool = False                  # `python run.py` without -m: every metric, exit 1 on failure
    workers: Workers | None = None            # a job over several Slurm tasks: this one's place; only rank 0 writes

    @property
    def rank(self) -> int:
        return self.workers.rank if self.workers is not None else 0

    def line(self, text: str, num: int | None = None) -> str:
        """Job `num`'s line as the sweep prints it: counted, with `[k/N] ` in a sweep."""
        return self.progress.next_line(text, num) if self.progress is not None else text

    def planned_job(self, num: int, overrides: list[str]) -> PlannedJob | None:
        """The job this process planned as number `num` with these overrides, if it did."""
        job = self.planned.get(num)
        return job if job is not None and job.overrides == overrides else None


def sent(job: PlannedJob | None) -> RunContext:
    """The run context of a job sent to a process of its own (an unpacked local or Slurm job): the
    job as the sweep planned it, without its config; none where it came without one."""
    return RunContext(planned={job.num: job} if job is not None else {})


_active: RunContext | None = None


@contextlib.contextmanager
def active(context: RunContext) -> Iterator[RunContext]:
    """While the jobs run, their entry point finds `context`."""
    global _active
    before, _active = _active, context
    try:
        yield context
    finally:
        _active = before


def current() -> RunContext:
    """The context the code running jobs in this process set; a fresh one where none did."""
    return _active if _active is not None else RunContext()
