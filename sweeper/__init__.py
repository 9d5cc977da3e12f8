"""hpc-sweeper: Hydra sweeps of deep-learning tasks, on one machine or a Slurm cluster.

A task's contract (docs/records.md#the-task-contract): what the framework gives a task
(`FrameworkArguments`), what it returns (`TaskResult`: an `Outcome`, or a dict of metrics), the
training helper (`train`, on `Data`), and a sweep's table in a notebook (`results`).
"""
from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sweeper.job.entry import run_job
    from sweeper.outcome import FrameworkArguments, Outcome, TaskResult
    from sweeper.job.record import Record, read_record, write_record
    from sweeper.status import Status
    from sweeper.trial import Reporter
    from sweeper.sweep.collate import results
    from sweeper.training.fit import Data, train

# Imported when first asked: `python run.py` reaches its Ctrl-C handler (sweeper/run.py) before
# anything heavy is imported.
_MODULES = {"run_job": "sweeper.job.entry", "FrameworkArguments": "sweeper.outcome",
            "Outcome": "sweeper.outcome", "TaskResult": "sweeper.outcome", "Record": "sweeper.job.record",
            "read_record": "sweeper.job.record", "write_record": "sweeper.job.record", "Status": "sweeper.status",
            "Reporter": "sweeper.trial", "results": "sweeper.sweep.collate", "Data": "sweeper.training.fit",
            "train": "sweeper.training.fit"}


def __getattr__(name: str) -> Any:
    if name not in _MODULES:
        raise AttributeError(f"module 'sweeper' has no attribute {name!r}")
    value = getattr(import_module(_MODULES[name]), name)
    globals()[name] = value
    return value


__all__ = ["Data", "FrameworkArguments", "Outcome", "Record", "Reporter", "Status", "TaskResult", "read_record",
           "results", "run_job", "train", "write_record"]
