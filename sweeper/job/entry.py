"""What `run.py` calls for each job Hydra runs: the two layers, one after the other."""
from __future__ import annotations

from omegaconf import DictConfig

from sweeper.errors import said
from sweeper.job.display import objective
from sweeper.job.execute import execute
from sweeper.job.spec import job_from_hydra
from sweeper.status import Status


def run_job(cfg: DictConfig) -> float:
    """Run the job `cfg` describes in Hydra's job directory; return its objective (NaN if none)."""
    with said():  # a job started by submitit in another process says its own refusal
        job, context = job_from_hydra(cfg)
        record = execute(job, context)
    if context.single_run:  # a sweep's last line names its folder; a single run's, this one
        print(f"run directory: {job.directory}", flush=True)
        if record is not None and record.status == Status.FAILED:
            raise SystemExit(1)
    return objective(record)
