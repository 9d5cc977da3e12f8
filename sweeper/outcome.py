"""The task contract: what the framework passes a task function, and what the task returns to it.

A task is a function named by its config's `task.run._target_`, called with keyword arguments only:
the `run` node's keys (its hyperparameters by interpolation, `data: ${data}`: what the data group's
loader returned) and, of the framework's arguments (`FrameworkArguments`), each one its signature
names. It returns an `Outcome`, or a plain mapping of metric
names to values (`TaskResult`), which the framework makes the record's outcome (`outcome_of`).
"""
from __future__ import annotations

import dataclasses
import inspect
import math
import numbers
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, TypedDict, Union

from sweeper.status import Status

if TYPE_CHECKING:
    from sweeper.trial import Reporter
    from sweeper.training.workers import Workers


@dataclasses.dataclass
class Outcome:
    """A task's result with its status and curves, as the record keeps it."""

    status: Status                    # ok | diverged | pruned (interrupted: the framework's, for a stopped job)
    metrics: dict[str, Any]           # final figures (final_loss, test_accuracy, ...)
    history: dict[str, list[Any]]     # curves (loss per step, per-epoch metrics, ...)
    train_time_s: float | None        # training alone, excluding imports and set-up (None: an interrupted
                                      # job whose saved state has no time)
    fused: int | None = None          # trained in a fused group of this many jobs: train_time_s is its share
    started: str | None = None        # a fused job: when its group started training (the record's `started`)
    usage: dict[str, Any] | None = None  # a fused job: its share of what its group used (sweeper/job/usage.py)

    def __post_init__(self) -> None:
        # A task may return the value ("ok"): kept as the Status, an unknown one refused here.
        self.status = Status(self.status)


class FrameworkArguments(TypedDict, total=False):
    """The keyword arguments the framework gives a task, never its config (`+task.run.<one>` is
    refused): each to a function whose signature names it (a task without `job_dir` saves nothing).
    """

    optimizer: dict[str, Any]         # the job's Keras optimizer config (`_target_`, learning_rate, ...):
                                      # hydra.utils.instantiate(optimizer), or give it to sweeper.train
    job_dir: Path | None              # the job's directory (None: a worker that writes nothing): state, logs
    trial: Reporter                   # a search's trial that may prune: report the objective each epoch
    progress: str                     # the name the job's progress line shows (none: train quietly)
    workers: Workers                  # a job over several Slurm tasks: this process's place among them


# A task's return value: an Outcome, or its metrics alone ({"test_mae": 0.3}).
TaskResult = Union[Outcome, Mapping[str, Any]]

FRAMEWORK_ARGUMENTS = tuple(FrameworkArguments.__annotations__)


def offered(function: Callable[..., Any], **optional: Any) -> dict[str, Any]:
    """Of the framework's arguments, those `function` (a task's `run` or `run_fused`) takes and
    that have a value: a task written without them is called without them."""
    parameters = inspect.signature(function).parameters
    return {name: value for name, value in optional.items() if value is not None and name in parameters}


def _plain(value: Any) -> Any:
    """A NumPy or TensorFlow scalar as the Python number it holds (the record is JSON)."""
    item = getattr(value, "item", None)
    return item() if callable(item) and getattr(value, "ndim", None) == 0 else value


def outcome_of(returned: Any, elapsed: float) -> Outcome:
    """The record's outcome of what a task returned: an Outcome as it is; a mapping of metrics as
    an outcome of status `diverged` when one of its numbers is not finite, else `ok`, without curves,
    `elapsed` (the task call's time) as its training time. Anything else is a TypeError."""
    if isinstance(returned, Outcome):
        return returned
    if not isinstance(returned, Mapping):
        raise TypeError(f"the task returned {type(returned).__name__}: a task returns a dict of metrics "
                        "or a sweeper.Outcome")
    metrics = {str(name): _plain(value) for name, value in returned.items()}
    values = [v for v in metrics.values() if isinstance(v, numbers.Real)]  # a bool is finite too
    status = Status.OK if all(math.isfinite(v) for v in values) else Status.DIVERGED
    return Outcome(status=status, metrics=metrics, history={}, train_time_s=elapsed)
