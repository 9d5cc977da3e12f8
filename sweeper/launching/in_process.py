"""Hydra's basic launcher, given planned jobs: each job run in this process with the config the
sweeper composed when it planned it, so that no job is composed twice.

It does what `BasicLauncher.launch` does for each job (Hydra's `run_job`: the job's directory, its
`.hydra/` files, `run.log`, the job callbacks), with the run context active around the jobs so that
their entry point finds it (sweeper/job/context.py). Not Hydra's lines: `Launching N jobs locally`
and `#k : <overrides>`; the sweep prints its own (`[k/N]`, sweeper/sweep/progress.py).

`run_job` is Hydra's `hydra.core.utils.run_job` (1.3) without its copies: Hydra sets its global
config twice and copies the job's config whole twice more (for the task and for Hydra's node),
which was most of Hydra's 30 ms a job; here the job's config is already its own (the sweeper
composed it for this job), so the task's config and HydraConfig's hold its nodes
(sweeper/hydra_private.py's `holding`, which says why that takes OmegaConf's private names);
the `.hydra/` files are dumped by libyaml's emitter, and Hydra's logging is set back once after
the last job rather than after each. The files written, the callbacks called and the JobReturn
are Hydra's (tests/test_big_sweep.py compares them); benchmarks/per_job.py measures the rest.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import yaml  # type: ignore[import-untyped]  # (no stubs installed; OmegaConf's own dumper is one)

from hydra import version
from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, JobRuntime, JobStatus, configure_log, env_override, setup_globals
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from sweeper.hydra_private import holding, str_representer
from sweeper.job import context as run_context
from sweeper.job.context import RunContext
from sweeper.job.planned import PlannedJob

if TYPE_CHECKING:
    from sweeper.hydra_private import BasicLauncher


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
            runs.append(run_job(launcher.hydra_context, launcher.task_function, cfg, job.directory))
    # Hydra sets its own logging back after each job; nothing logs between two jobs here, and the
    # next job's run_job sets up its own, so once after the last is enough (2 ms a job less).
    configure_log(launcher.config.hydra.hydra_logging, launcher.config.hydra.verbose)
    return runs


# OmegaConf.to_yaml's dumper on libyaml's emitter: the same text (tests/test_big_sweep.py compares
# it with Hydra's files), written 5x faster; the hydra.yaml of each job was 10 ms of pure-Python YAML.
_DUMPER: Any = type("Dumper", (yaml.CDumper,), {}) if yaml.__with_libyaml__ else None
if _DUMPER is not None:
    _DUMPER.add_representer(str, str_representer())


def _yaml(cfg: Any) -> str:
    if _DUMPER is None:
        return OmegaConf.to_yaml(cfg)
    container = OmegaConf.to_container(cfg, resolve=False, enum_to_str=True)
    return str(yaml.dump(container, default_flow_style=False, allow_unicode=True, sort_keys=False, Dumper=_DUMPER))


def _save(cfg: Any, name: str, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text(_yaml(cfg), encoding="utf-8")


def _set_hydra_config(config: DictConfig) -> None:
    """HydraConfig.instance().set_config(config), with Hydra's node held, not copied (holding)."""
    OmegaConf.set_readonly(config.hydra, True)
    HydraConfig.instance().cfg = holding(config, ["hydra"])  # type: ignore[assignment]  # as set_config sets it


def _flush_loggers() -> None:
    """What Hydra flushes after a job: the handlers its job logging set up (the root logger's: run.log)."""
    for handler in logging.getLogger().handlers:
        handler.flush()


def run_job(hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig,
            output_dir: Path) -> JobReturn:
    """Hydra's run_job for a job whose config (`config`, changed here as Hydra changes it) is its
    own, in `output_dir` (the planned job's directory: hydra.sweep.dir / hydra.sweep.subdir)."""
    callbacks = hydra_context.callbacks
    old_cwd = os.getcwd()
    orig_hydra_cfg = HydraConfig.instance().cfg
    with read_write(config.hydra.runtime), open_dict(config.hydra.runtime):
        config.hydra.runtime.output_dir = os.path.abspath(output_dir)
    _set_hydra_config(config)
    chdir = None
    try:
        ret = JobReturn()
        task_cfg = holding(config, [str(key) for key in config if key != "hydra"])
        ret.cfg = task_cfg
        # replaced (not changed) by the next job's; Hydra's own type says HydraConf, it holds a DictConfig
        hydra_cfg = cast(DictConfig, HydraConfig.instance().cfg)
        ret.hydra_cfg = hydra_cfg
        overrides = OmegaConf.to_container(config.hydra.overrides.task)
        assert isinstance(overrides, list)
        ret.overrides = overrides
        Path(output_dir).mkdir(parents=True, exist_ok=True)
        chdir = hydra_cfg.hydra.job.chdir
        if chdir is None:
            chdir = not version.base_at_least("1.2")
        if chdir:
            os.chdir(output_dir)
            ret.working_dir = str(output_dir)
        else:
            ret.working_dir = os.getcwd()
        configure_log(config.hydra.job_logging, config.hydra.verbose)
        if config.hydra.output_subdir is not None:
            hydra_output = Path(config.hydra.runtime.output_dir) / Path(config.hydra.output_subdir)
            _save(task_cfg, "config.yaml", hydra_output)
            _save(hydra_cfg, "hydra.yaml", hydra_output)
            _save(config.hydra.overrides.task, "overrides.yaml", hydra_output)
        with env_override(hydra_cfg.hydra.job.env_set):
            callbacks.on_job_start(config=config, task_function=task_function)
            try:
                ret.return_value = task_function(task_cfg)
                ret.status = JobStatus.COMPLETED
            except Exception as e:
                ret.return_value = e
                ret.status = JobStatus.FAILED
        ret.task_name = JobRuntime.instance().get("name")
        _flush_loggers()
        callbacks.on_job_end(config=config, job_return=ret)
        return ret
    finally:
        HydraConfig.instance().cfg = orig_hydra_cfg
        if chdir:
            os.chdir(old_cwd)
