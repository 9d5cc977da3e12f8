"""A job's record as `execute` writes it: made from its planned job and the task's outcome, and the
record of a job that Ctrl-C or a signal stopped. Shared by `execute` and the fused groups, whose
members other than the caller are stopped while another job's `execute` trains them."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from sweeper import allocation
from sweeper.hparams import recorded_hparams
from sweeper.job import environment
from sweeper.job.context import RunContext
from sweeper.job.display import job_line
from sweeper.job_log import echo
from sweeper.outcome import Outcome
from sweeper.job.planned import PlannedJob
from sweeper.files import write_atomic
from sweeper.job.record import Record, write_record
from sweeper.status import Status
from sweeper.training import checkpoint


def count_attempt(job_dir: Path) -> int:
    """Count this start in the job directory: a requeued or resumed job starts there again."""
    path = job_dir / ".attempts"
    try:
        attempts = int(path.read_text()) + 1
    except (OSError, ValueError):
        attempts = 1
    # Atomic (a killed job leaves the old count or the new), not fsynced: after a crash of the
    # machine a count one short only understates how often the job started (0.7 ms a job).
    write_atomic(path, f"{attempts}\n", durable=False)
    return attempts


def record_of(job: PlannedJob, status: Status, outcome: Outcome | None, error: str | None, started: str,
              attempts: int, usage: dict[str, Any] | None = None) -> Record:
    """The job's record; `usage`: what it used, measured by its `execute` (a fused job's outcome
    holds its share of its group's, which is used instead)."""
    cfg = job.cfg
    return Record(
        status=status, task=cfg.task.name, optimizer=cfg.optimizer.name, hparams=job.hparams if job.hparams is not None else recorded_hparams(cfg),
        metrics=outcome.metrics if outcome else {}, history=outcome.history if outcome else {},
        train_time_s=outcome.train_time_s if outcome else None, started=(outcome and outcome.started) or started,
        finished=environment.now(),
        overrides=job.overrides, versions=environment.versions(), git_commit=environment.git_commit(),
        host=environment.host(), error=error, objective=cfg.task.objective, fingerprint=job.fingerprint,
        attempts=attempts, environment=allocation.recorded(), direction=cfg.task.direction,
        preset=job.preset, fused=outcome.fused if outcome else None,
        usage=(outcome.usage if outcome and outcome.usage else usage) or {})


def saved_so_far(job_dir: Path) -> Outcome | None:
    """An interrupted job's epochs done so far, from its saved training state (tasks that save one)."""
    history, train_time_s = checkpoint.saved_history(job_dir)
    if not history:
        return None
    return Outcome(status=Status.INTERRUPTED, metrics={}, history=history, train_time_s=train_time_s)


def stopped_error(stop: BaseException) -> str:
    """The error of a job stopped by Ctrl-C, or by a signal: submitit exits so after requeueing the
    job (time limit, preemption). Its status is `interrupted`."""
    if isinstance(stop, KeyboardInterrupt):
        return "KeyboardInterrupt: stopped by Ctrl-C"
    return "SystemExit: stopped by a signal; a requeued job continues from its state"


def record_stopped(job: PlannedJob, stop: BaseException, started: str, context: RunContext) -> Record:
    """Write the record of a job that Ctrl-C or a signal stopped while another job's `execute`
    trained it (a fused group's other members): what its own `execute` would have written, its
    history up to its saved state. The caller holds its directory; `started`: when its training began."""
    record = record_of(job, Status.INTERRUPTED, saved_so_far(job.directory), stopped_error(stop), started,
                       count_attempt(job.directory))
    write_record(job.directory, record)
    echo(context.line(job_line(record, every_metric=context.single_run), job.num))
    return record
