"""hpc-sweeper: Hydra sweeps of deep-learning tasks, on one machine or a Slurm cluster."""
from sweeper.job.entry import run_job
from sweeper.job.outcome import Outcome
from sweeper.job.record import Record, read_record, write_record

__all__ = ["Outcome", "Record", "read_record", "run_job", "write_record"]
