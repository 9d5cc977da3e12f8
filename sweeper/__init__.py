"""hpc-sweeper: Hydra sweeps of deep-learning tasks, on one machine or a Slurm cluster.

A task's contract (docs/records.md#the-task-contract): what the framework gives a task
(`FrameworkArguments`), what it returns (`TaskResult`: an `Outcome`, or a dict of metrics), the
training helper (`train`, on `Data`), and a sweep's table in a notebook (`results`).
"""
from sweeper.job.entry import run_job
from sweeper.job.outcome import FrameworkArguments, Outcome, TaskResult
from sweeper.job.record import Record, read_record, write_record
from sweeper.job.status import Status
from sweeper.job.trial import Reporter
from sweeper.sweep.collate import results
from sweeper.training.fit import Data, train

__all__ = ["Data", "FrameworkArguments", "Outcome", "Record", "Reporter", "Status", "TaskResult", "read_record",
           "results", "run_job", "train", "write_record"]
