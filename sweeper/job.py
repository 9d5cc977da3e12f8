"""Running one job: check its config, call the task, write its record."""
from __future__ import annotations

import datetime
import functools
import importlib
import math
import os
import platform
import socket
import subprocess
import traceback
from importlib import metadata
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from sweeper.config import applicable_hparams, check_or_exit
from sweeper.outcome import Outcome
from sweeper.record import Record, write_record

# Keys of the task node that describe the task rather than being its arguments.
_TASK_META = ("name", "objective", "direction")

# Where the job ran on a cluster: recorded when set (Slurm sets them, and CUDA_VISIBLE_DEVICES).
ENVIRONMENT = ("SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID", "SLURM_CPUS_PER_TASK",
               "SLURM_GPUS_ON_NODE", "CUDA_VISIBLE_DEVICES")


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")


@functools.cache
def _versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for package in ("tensorflow", "keras"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    return found


@functools.cache
def _git_commit() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def _call_task(cfg: DictConfig, job_dir: Path) -> Outcome:
    module = importlib.import_module(f"tasks.{cfg.task.name}")
    task_args = {k: v for k, v in OmegaConf.to_container(cfg.task, resolve=True).items() if k not in _TASK_META}
    optimizer = OmegaConf.to_container(cfg.optimizer, resolve=True)
    return module.run(optimizer=optimizer, job_dir=job_dir, **task_args)


def _summary(record: Record) -> str:
    hparams = " ".join(f"{k}={v}" for k, v in record.hparams.items())
    metrics = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in record.metrics.items())
    detail = record.error if record.status == "failed" else metrics
    seconds = f" ({record.train_time_s:.2f} s)" if record.train_time_s is not None else ""
    return f"{record.task} {record.optimizer} {hparams} -> {record.status} {detail}{seconds}"


def run_job(cfg: DictConfig) -> float:
    """Run the job `cfg` describes in Hydra's job directory; return its objective (NaN if failed)."""
    check_or_exit(cfg)
    hydra_cfg = HydraConfig.get()
    job_dir = Path(hydra_cfg.runtime.output_dir)
    started = _now()
    outcome: Outcome | None = None
    error = None
    try:
        outcome = _call_task(cfg, job_dir)
    except Exception as e:  # a failing job is a result; the sweep goes on
        lines = [line.strip() for line in str(e).splitlines() if line.strip()]
        error = f"{type(e).__name__}: {lines[-1] if lines else ''}"  # TF puts the cause last
        (job_dir / "error.txt").write_text(traceback.format_exc())
    record = Record(
        status=outcome.status if outcome else "failed",
        task=cfg.task.name,
        optimizer=cfg.optimizer.name,
        hparams=applicable_hparams(cfg),
        metrics=outcome.metrics if outcome else {},
        history=outcome.history if outcome else {},
        train_time_s=outcome.train_time_s if outcome else None,
        started=started,
        finished=_now(),
        overrides=list(hydra_cfg.overrides.task),
        versions=_versions(),
        git_commit=_git_commit(),
        host=socket.gethostname(),
        error=error,
        objective=cfg.task.objective,
        environment={key: os.environ[key] for key in ENVIRONMENT if key in os.environ},
    )
    write_record(job_dir, record)
    print(_summary(record), flush=True)
    if record.status == "failed" and hydra_cfg.mode == RunMode.RUN:
        raise SystemExit(1)
    value = record.metrics.get(cfg.task.objective)
    return float(value) if value is not None and math.isfinite(value) else math.nan
