"""hpc-sweeper: Hydra sweeps of deep-learning tasks, on one machine or a Slurm cluster."""
from sweeper.job import run_job
from sweeper.outcome import Outcome
from sweeper.record import Record, read_record, write_record

__all__ = ["Outcome", "Record", "read_record", "run_job", "write_record"]
