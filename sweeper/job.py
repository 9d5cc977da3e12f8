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
import sys
import traceback
from importlib import metadata
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from sweeper import checkpoint, progress
from sweeper.config import applicable_hparams, check_or_exit
from sweeper.outcome import Outcome
from sweeper.record import Record, write_atomic, write_record
from sweeper.resume import MismatchError, finished_record, fingerprint

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


def _format(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _summary(record: Record, every_metric: bool) -> str:
    """`<overrides> -> <status> <metric> (<seconds>)`: one line per job."""
    if record.status == "failed" or record.status == "interrupted":
        detail = record.error or ""
    elif every_metric:
        detail = " ".join(f"{k}={_format(v)}" for k, v in record.metrics.items())
    else:
        detail = f"{record.objective}={_format(record.metrics.get(record.objective))}"
    seconds = f" ({record.train_time_s:.2f} s)" if record.train_time_s is not None else ""
    prefix = progress.current.prefix() if progress.current else ""
    setting = " ".join(record.overrides) or f"task={record.task} optimizer={record.optimizer}"
    return f"{prefix}{setting} -> {record.status} {detail}{seconds}"


def _skip_if_done(job_dir: Path, expected: str, overrides: list[str]) -> Record | None:
    """A finished record of this configuration is kept, not redone; another configuration's is an error."""
    try:
        record = finished_record(job_dir, expected, overrides)
    except MismatchError as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None
    if record:
        prefix = progress.current.prefix() if progress.current else ""
        print(f"{prefix}{' '.join(record.overrides)} -> skipped: done ({job_dir})", flush=True)
    return record


def _objective(record: Record) -> float:
    value = record.metrics.get(record.objective)
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else math.nan


def _count_attempt(job_dir: Path) -> int:
    """Count this start in the job directory: a requeued or resumed job starts there again."""
    path = job_dir / ".attempts"
    try:
        attempts = int(path.read_text()) + 1
    except (OSError, ValueError):
        attempts = 1
    write_atomic(path, f"{attempts}\n")
    return attempts


def _tensorboard(job_dir: Path, record: Record) -> None:
    from sweeper.tensorboard import write_summary

    try:
        write_summary(job_dir, record)
    except Exception as e:  # the record is written: logs that fail to follow do not fail the job
        print(f"warning: no TensorBoard logs in {job_dir} ({type(e).__name__}: {e})", file=sys.stderr)


def run_job(cfg: DictConfig) -> float:
    """Run the job `cfg` describes in Hydra's job directory; return its objective (NaN if failed)."""
    check_or_exit(cfg)
    hydra_cfg = HydraConfig.get()
    single_run = hydra_cfg.mode == RunMode.RUN
    job_dir = Path(hydra_cfg.runtime.output_dir)
    config_hash = fingerprint(cfg)
    done = _skip_if_done(job_dir, config_hash, list(hydra_cfg.overrides.task))
    if done:
        return _objective(done)
    attempts = _count_attempt(job_dir)
    started = _now()
    outcome: Outcome | None = None
    status, error = "failed", None
    try:
        outcome = _call_task(cfg, job_dir)
        status = outcome.status
    except KeyboardInterrupt:
        status, error = "interrupted", "KeyboardInterrupt: stopped by Ctrl-C"
        raise
    except SystemExit:  # submitit exits so after requeueing the job (time limit, preemption)
        status, error = "interrupted", "SystemExit: stopped by a signal; a requeued job continues from its state"
        raise
    except Exception as e:  # a failing job is a result; the sweep goes on
        lines = [line.strip() for line in str(e).splitlines() if line.strip()]
        error = f"{type(e).__name__}: {lines[-1] if lines else ''}"  # TF puts the cause last
        (job_dir / "error.txt").write_text(traceback.format_exc())
    finally:
        record = Record(
            status=status,
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
            fingerprint=config_hash,
            attempts=attempts,
            environment={key: os.environ[key] for key in ENVIRONMENT if key in os.environ},
        )
        write_record(job_dir, record)
        if status in ("ok", "diverged"):
            if OmegaConf.select(cfg, "logging.tensorboard", default=False):
                _tensorboard(job_dir, record)
            if not OmegaConf.select(cfg, "logging.keep_state", default=False):
                checkpoint.discard(job_dir)  # the record has it all now
        print(_summary(record, every_metric=single_run), flush=True)
    if record.status == "failed" and single_run:
        raise SystemExit(1)
    return _objective(record)
