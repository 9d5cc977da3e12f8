"""The first layer of running a job: Hydra's job context turned into a planned job and its run
context.

Only here does job code read Hydra's global state (`HydraConfig`) and the run context that the
code running jobs in this process set (sweeper/job/context.py); the second layer
(sweeper/job/execute.py) runs a planned job with none, so that one process can run many.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from sweeper.hparams import check_or_exit
from sweeper.job import context as run_context
from sweeper.job.context import RunContext
from sweeper.job.fingerprint import identity
from sweeper.job.planned import PlannedJob, plan_job, preset_of
from sweeper.training.workers import DEFAULT_TIMEOUT_S, from_allocation


def job_from_hydra(cfg: DictConfig) -> tuple[PlannedJob, RunContext]:
    """The job Hydra is running now and its run context: the job as the sweep planned it where the
    code running it has it (a sweep in process; a packed task or a submitted job, sent without its
    config), with its fingerprint from planning; else (`python run.py`, a job of a launcher given
    only overrides) planned here from Hydra's config, its fingerprint computed by plan_job.
    A bad value exits 2 with one line."""
    hydra_cfg = HydraConfig.get()
    directory = Path(hydra_cfg.runtime.output_dir)
    if hydra_cfg.mode == RunMode.RUN:  # `python run.py` without -m
        check_or_exit(cfg)
        now, former = identity(cfg)
        job = PlannedJob(num=0, directory=directory, dir=".", overrides=list(hydra_cfg.overrides.task),
                         fingerprint=now, config=cfg, preset=preset_of(hydra_cfg.runtime.choices), former=former)
        return job, RunContext(single_run=True)
    context = run_context.current()
    planned = context.planned_job(int(hydra_cfg.job.num), list(hydra_cfg.overrides.task))
    if planned is not None and planned.config is not None:  # composed and checked by the code running it
        return planned.composed(cfg, directory), context
    check_or_exit(cfg)  # composed by Hydra for this job alone: its values checked here
    if "worker_timeout_s" in hydra_cfg.launcher:  # a launcher whose tasks may be a job's workers: this one's place
        timeout = hydra_cfg.launcher.worker_timeout_s or DEFAULT_TIMEOUT_S
        context = dataclasses.replace(context, workers=from_allocation(timeout_s=int(timeout)))
    if planned is not None:  # sent without its config (collect.job_args): its fingerprint is the planned one
        return planned.composed(cfg, directory), context
    return plan_job(cfg, hydra_cfg, directory), context
