"""What `run.py` calls for each job Hydra runs: the two layers, one after the other."""
from __future__ import annotations

from omegaconf import DictConfig

from sweeper.job.execute import execute, objective
from sweeper.job.spec import spec_from_hydra
from sweeper.job.status import Status


def run_job(cfg: DictConfig) -> float:
    """Run the job `cfg` describes in Hydra's job directory; return its objective (NaN if none)."""
    spec = spec_from_hydra(cfg)
    record = execute(spec)
    if record is not None and record.status == Status.FAILED and spec.single_run:
        raise SystemExit(1)
    return objective(record)
