"""The second layer of running a job: run a JobSpec and write its record, with no Hydra state.

It takes the job's directory (sweeper/job/owner.py), skips a job done before, counts the
attempt, calls the task (built with `hydra.utils.instantiate` from the task's `run` node), writes
the record, the TensorBoard logs, and deletes the training state. Code that runs many jobs in one
process (a sweep, a packed task, a fused group) calls `execute` once per job.
"""
from __future__ import annotations

import math
import traceback
from pathlib import Path
from typing import Any, Sequence

import hydra.utils
from omegaconf import OmegaConf

from sweeper.hparams import applicable_hparams
from sweeper.job import environment, owner, trial
from sweeper.job.fingerprint import MismatchError, finished_record
from sweeper.job.outcome import Outcome
from sweeper.job.record import Record, write_atomic, write_record
from sweeper.job.job_log import echo
from sweeper.job.spec import PRESET_GROUPS, JobSpec
from sweeper.job.status import FINISHED, Status
from sweeper.sweep import progress
from sweeper.training import checkpoint


def _format(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def label(overrides: Sequence[str]) -> str:
    """A job's overrides as its line shows them: less the preset's (`experiment=ex1_adam`), which
    every job of the sweep shares."""
    return " ".join(o for o in overrides if o.split("=", 1)[0].lstrip("+~") not in PRESET_GROUPS)


def job_line(record: Record, every_metric: bool) -> str:
    """`<overrides> -> <status> <metric> (<seconds>)`: one line per job."""
    if record.status in (Status.FAILED, Status.INTERRUPTED):
        detail = record.error or ""
    elif every_metric:
        detail = " ".join(f"{k}={_format(v)}" for k, v in record.metrics.items())
    else:
        detail = f"{record.objective}={_format(record.metrics.get(record.objective))}"
    seconds = ""
    if record.train_time_s is not None and record.attempts > 1:  # more than this command's time
        seconds = f" (training {record.train_time_s:.2f} s over {record.attempts} attempts)"
    elif record.train_time_s is not None:
        seconds = f" ({record.train_time_s:.2f} s)"
    setting = label(record.overrides) or f"task={record.task} optimizer={record.optimizer}"
    return f"{progress.prefix()}{setting} -> {record.status} {detail}{seconds}"


def objective(record: Record | None) -> float:
    """What the job returns to its sweeper: the objective, NaN when there is none."""
    value = record.metrics.get(record.objective) if record else None
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
    from sweeper.training.tensorboard import write_summary

    try:
        write_summary(job_dir, record)
    except Exception as e:  # the record is written: logs that fail to follow do not fail the job
        echo(f"warning: no TensorBoard logs in {job_dir} ({type(e).__name__}: {e})", warning=True)


def call_task(spec: JobSpec, job_dir: Path | None) -> Outcome:
    """Build the task's function from its `run` node and call it with the optimizer's settings; a job
    planned into a fused group gets its outcome from the group's one training (sweeper/job/fused_groups.py)."""
    from sweeper.job import fused_groups

    if job_dir is not None:
        outcome = fused_groups.outcome_of(job_dir, spec.fingerprint)
        if outcome is not None:
            return outcome
    cfg = spec.config
    run = hydra.utils.instantiate(cfg.task.run, _partial_=True, _convert_="all")
    return run(optimizer=OmegaConf.to_container(cfg.optimizer, resolve=True), job_dir=job_dir)


def _skip_done(spec: JobSpec) -> Record | None:
    """A finished record of this configuration is kept, not redone; another configuration's is an error."""
    try:
        record = finished_record(spec.directory, spec.fingerprint, spec.overrides)
    except MismatchError as e:
        echo(f"error: {e}", warning=True)
        raise SystemExit(2) from None
    if record:
        echo(f"{progress.prefix()}{label(record.overrides)} -> skipped: done ({spec.directory})")
    return record


def _record(spec: JobSpec, status: str, outcome: Outcome | None, error: str | None, started: str,
            attempts: int) -> Record:
    cfg = spec.config
    return Record(
        status=status, task=cfg.task.name, optimizer=cfg.optimizer.name, hparams=applicable_hparams(cfg),
        metrics=outcome.metrics if outcome else {}, history=outcome.history if outcome else {},
        train_time_s=outcome.train_time_s if outcome else None, started=(outcome and outcome.started) or started,
        finished=environment.now(),
        overrides=spec.overrides, versions=environment.versions(), git_commit=environment.git_commit(),
        host=environment.host(), error=error, objective=cfg.task.objective, fingerprint=spec.fingerprint,
        attempts=attempts, environment=environment.cluster_variables(), direction=cfg.task.direction,
        preset=spec.preset, fused=outcome.fused if outcome else None)


def _saved_so_far(job_dir: Path) -> Outcome | None:
    """An interrupted job's epochs done so far, from its saved training state (tasks that save one)."""
    history, train_time_s = checkpoint.saved_history(job_dir)
    if not history:
        return None
    return Outcome(status=Status.INTERRUPTED.value, metrics={}, history=history, train_time_s=train_time_s)


def _stopped(stop: BaseException) -> tuple[str, str]:
    """The status and error of a job stopped by Ctrl-C, or by a signal: submitit exits so after
    requeueing the job (time limit, preemption)."""
    if isinstance(stop, KeyboardInterrupt):
        return Status.INTERRUPTED.value, "KeyboardInterrupt: stopped by Ctrl-C"
    return Status.INTERRUPTED.value, "SystemExit: stopped by a signal; a requeued job continues from its state"


def record_stopped(spec: JobSpec, stop: BaseException, started: str) -> Record:
    """Write the record of a job that Ctrl-C or a signal stopped while another job's `execute`
    trained it (a fused group's other members, sweeper/job/fused_groups.py): what its own `execute` would
    have written, its history up to its saved state. The caller holds its directory; `started`:
    when its training began."""
    status, error = _stopped(stop)
    record = _record(spec, status, _saved_so_far(spec.directory), error, started, _count_attempt(spec.directory))
    write_record(spec.directory, record)
    echo(job_line(record, every_metric=spec.single_run))
    return record


def _run_and_record(spec: JobSpec) -> Record:
    job_dir = spec.directory
    attempts = _count_attempt(job_dir)
    started = environment.now()
    outcome: Outcome | None = None
    status, error = Status.FAILED.value, None
    try:
        with trial.reporting(spec.trial):  # a search's trial: the task reports to it (pruning)
            outcome = call_task(spec, job_dir)
        status = outcome.status
    except (KeyboardInterrupt, SystemExit) as stop:
        status, error = _stopped(stop)
        outcome = _saved_so_far(job_dir)
        raise
    except Exception as e:  # a failing job is a result; the sweep goes on
        lines = [line.strip() for line in str(e).splitlines() if line.strip()]
        error = f"{type(e).__name__}: {lines[-1] if lines else ''}"  # TF puts the cause last
        (job_dir / "error.txt").write_text(traceback.format_exc())
    finally:
        record = _record(spec, status, outcome, error, started, attempts)
        write_record(job_dir, record)
        logging = spec.config.get("logging") or {}
        if Status(record.status) in FINISHED:
            if logging.get("tensorboard", False):
                _tensorboard(job_dir, record)
            if not logging.get("keep_state", False):
                checkpoint.discard(job_dir)  # the record has it all now
        echo(job_line(record, every_metric=spec.single_run))
    return record


def execute(spec: JobSpec) -> Record | None:
    """Run the job and write its record in its directory; return the record (a finished one found
    there is returned as it is). None when another live run owns the directory: it is left alone.

    A worker of rank > 0 of a multi-worker job trains but writes nothing in the directory.
    """
    if spec.rank != 0:
        outcome = call_task(spec, None)
        return _record(spec, outcome.status, outcome, None, environment.now(), 1)
    running = owner.take(spec.directory)
    if running is not None:
        echo(f"{progress.prefix()}{label(spec.overrides)} -> skipped: running ({running})")
        return None
    try:
        return _skip_done(spec) or _run_and_record(spec)
    finally:
        owner.give_back(spec.directory)
