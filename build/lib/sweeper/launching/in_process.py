"""Hydra's basic launcher, given planned jobs: each job run in this process with the config the
sweeper composed when it planned it, so that no job is composed twice.

It does what `BasicLauncher.launch` does for each job (Hydra's `run_job`: the job's directory, its
`.hydra/` files, `run.log`, the job callbacks), with the run context active around the jobs so that
their entry point finds it (sweeper/job/context.py). Not Hydra's lines: `Launching N jobs locally`
and `#k : <overrides>`; the sweep prints its own (`[k/N]`, sweeper/sweep/progress.py).
"""
from __future__ import annotations

from pathlib import Path

from hydra._internal.core_plugins.basic_launcher import BasicLauncher
from hydra.core.utils import JobReturn, configure_log, run_job, setup_globals
from omegaconf import open_dict

from sweeper.job import context as run_context
from sweeper.job.context import RunContext
from sweeper.job.planned import PlannedJob


def launch(launcher: BasicLauncher, jobs: list[PlannedJob], context: RunContext) -> list[JobReturn]:
    setup_globals()
    assert launcher.hydra_context is not None and launcher.config is not None and launcher.task_function is not None
    configure_log(launcher.config.hydra.hydra_logging, launcher.config.hydra.verbose)
    Path(str(launcher.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
    runs = []
    with run_context.active(context):
        for job in jobs:
            cfg = job.cfg
            with open_dict(cfg):
                cfg.hydra.job.id = job.num
                cfg.hydra.job.num = job.num
            runs.append(run_job(hydra_context=launcher.hydra_context, task_function=launcher.task_function,
                                config=cfg, job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir"))
            configure_log(launcher.config.hydra.hydra_logging, launcher.config.hydra.verbose)
    return runs
