"""The second layer of running a job: run a planned job and write its record, with no Hydra state.

It takes the job's directory (sweeper/job/owner.py), skips a job done before, counts the
attempt, calls the task (built from the task's `run` node: sweeper/job/task.py), writes
the record, the TensorBoard logs, and deletes the training state. Code that runs many jobs in one
process (a sweep, a packed task, a fused group) calls `execute` once per job, with its run context.
"""
from __future__ import annotations

import time
import traceback
from pathlib import Path

from sweeper.errors import refuse
from sweeper.hparams import optimizer_arguments
from sweeper import trial
from sweeper.job import environment, owner, task
from sweeper.job.context import RunContext
from sweeper.job.display import job_line, label
from sweeper.job.fingerprint import MismatchError, finished_record
from sweeper.job_log import echo
from sweeper.outcome import Outcome, offered, outcome_of
from sweeper.job.planned import PlannedJob
from sweeper.job.record import Record, write_record
from sweeper.job.recording import count_attempt, record_of, saved_so_far, stopped_error
from sweeper.status import FINISHED, Status
from sweeper.job.usage import Meter
from sweeper.training import checkpoint
from sweeper.job.tensorboard_summary import write_summary


def _tensorboard(job_dir: Path, record: Record) -> None:
    try:
        write_summary(job_dir, record)
    except Exception as e:  # the record is written: logs that fail to follow do not fail the job
        echo(f"warning: no TensorBoard logs in {job_dir} ({type(e).__name__}: {e})", warning=True)


def call_task(job: PlannedJob, job_dir: Path | None, context: RunContext,
              reporter: trial.Reporter | None = None) -> Outcome:
    """Build the task's function from its `run` node and call it with the optimizer's settings; what
    it returns made an outcome (a dict of metrics: outcome_of). A job planned into a fused group
    gets its outcome from the group's one training (sweeper/job/fused_groups.py)."""
    if job_dir is not None and context.fused is not None:
        outcome = context.fused.outcome_of(job, context)
        if outcome is not None:
            return outcome
    cfg = job.cfg
    run = task.build(cfg)
    name = label(job.overrides) if context.rank == 0 else None  # the other workers train quietly
    start = time.perf_counter()  # after the data are loaded: a dict's outcome is timed from here
    returned = run(**offered(run, optimizer=optimizer_arguments(cfg), job_dir=job_dir, trial=reporter, progress=name,
                             workers=context.workers))
    return outcome_of(returned, time.perf_counter() - start)


def _skip_done(job: PlannedJob, context: RunContext) -> Record | None:
    """A finished record of this configuration is kept, not redone; another configuration's is an error."""
    try:
        record = finished_record(job.directory, job.fingerprint, job.overrides, job.former, job.config)
    except MismatchError as e:
        refuse(str(e))
    if record:
        echo(context.line(f"{label(record.overrides)} -> skipped: done ({job.directory})", job.num))
    return record


def _run_and_record(job: PlannedJob, context: RunContext) -> Record:
    job_dir = job.directory
    attempts = count_attempt(job_dir)
    started = environment.now()
    meter = Meter.start()
    outcome: Outcome | None = None
    status, error = Status.FAILED, None
    try:
        reporter = trial.Reporter(job.trial) if job.trial is not None else None  # a search's trial: pruning
        outcome = call_task(job, job_dir, context, reporter)
        status = outcome.status
    except (KeyboardInterrupt, SystemExit) as stop:
        status, error = Status.INTERRUPTED, stopped_error(stop)
        outcome = saved_so_far(job_dir)
        raise
    except Exception as e:  # a failing job is a result; the sweep goes on
        lines = [line.strip() for line in str(e).splitlines() if line.strip()]
        error = f"{type(e).__name__}: {lines[-1] if lines else ''}"  # TF puts the cause last
        (job_dir / "error.txt").write_text(traceback.format_exc())
    finally:
        record = record_of(job, status, outcome, error, started, attempts, meter.stop())
        write_record(job_dir, record)
        logging = job.cfg.get("logging") or {}
        if record.status in FINISHED:
            if logging.get("tensorboard", False):
                _tensorboard(job_dir, record)
            if not logging.get("keep_state", False):
                checkpoint.discard(job_dir)  # the record has it all now
        echo(context.line(job_line(record, every_metric=context.single_run), job.num))
    return record


def execute(job: PlannedJob, context: RunContext) -> Record | None:
    """Run the job and write its record in its directory; return the record (a finished one found
    there is returned as it is). None when another live run owns the directory: it is left alone.

    A worker of rank > 0 of a job over several workers trains (from the state the chief saved in
    the directory, if any) but writes nothing there.
    """
    if context.rank != 0:
        outcome = call_task(job, job.directory, context)
        return record_of(job, outcome.status, outcome, None, environment.now(), 1)
    running = owner.take(job.directory)
    if running is not None:
        echo(context.line(f"{label(job.overrides)} -> skipped: running ({running})", job.num))
        return None
    try:
        return _skip_done(job, context) or _run_and_record(job, context)
    finally:
        owner.give_back(job.directory)
