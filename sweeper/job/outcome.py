"""What a task function returns to the framework, and which of the framework's optional arguments
it takes (`trial`: a search's trial reporter; `progress`: the name its progress line shows;
`workers`: its place among the Slurm tasks of a job over several, sweeper/training/workers.py)."""
from __future__ import annotations

import dataclasses
import inspect
from typing import Any, Callable

from sweeper.job.status import Status


@dataclasses.dataclass
class Outcome:
    status: Status                    # ok | diverged | pruned (interrupted: the framework's, for a stopped job)
    metrics: dict[str, Any]           # final figures (final_loss, test_accuracy, ...)
    history: dict[str, list[Any]]     # curves (loss per step, per-epoch metrics, ...)
    train_time_s: float | None        # training alone, excluding imports and set-up (None: an interrupted
                                      # job whose saved state has no time)
    fused: int | None = None          # trained in a fused group of this many jobs: train_time_s is its share
    started: str | None = None        # a fused job: when its group started training (the record's `started`)

    def __post_init__(self) -> None:
        # A task may return the value ("ok"): kept as the Status, an unknown one refused here.
        self.status = Status(self.status)


# What the framework passes a task, never the config: a `+task.run.<one of these>` is refused.
FRAMEWORK_ARGUMENTS = ("optimizer", "job_dir", "trial", "progress", "workers")


def offered(function: Callable[..., Any], **optional: Any) -> dict[str, Any]:
    """Of the framework's optional arguments, those `function` (a task's `run` or `run_fused`) takes
    and that have a value: a task written without them is called as before."""
    parameters = inspect.signature(function).parameters
    return {name: value for name, value in optional.items() if value is not None and name in parameters}
