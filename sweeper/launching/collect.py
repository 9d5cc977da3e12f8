"""What the `slurm` and `local` launchers submitted, and its results coming back: the submitted
tasks, each job's `[k/N]` line as its result appears, and the waiting for Slurm's tasks by polling.
"""
from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hydra.core.utils import JobReturn, JobStatus
from hydra.errors import CompactHydraException

from sweeper.errors import refuse
from sweeper.hydra_private import returned_value
from sweeper.job.context import RunContext
from sweeper.job.display import job_line, label
from sweeper.job.planned import PlannedJob
from sweeper.job.record import RECORD_NAME, read_record
from sweeper.status import Status
from sweeper.launching.capacity import NEVER
from sweeper.launching.slurm_queries import ENDED, job_states, pending_reasons

if TYPE_CHECKING:
    from hydra_plugins.hydra_submitit_launcher.submitit_launcher import BaseSubmititLauncher
    from submitit import Job

_POLL_S = 0.5          # how often a waiting launcher looks for results
_STATE_EVERY_S = 2.0   # how often it asks Slurm for states
_RESULT_GRACE_S = 3.0  # an ended job's result may appear this much later
_LOST_AFTER_S = 30.0   # a job Slurm no longer knows, without a result, is given up after this


class JobEndedWithoutResult(CompactHydraException):
    """A job that Slurm ended (cancelled, time limit, node failure) before it wrote a result."""


@dataclasses.dataclass
class SubmittedTask:
    """One submitted task (a Slurm array task or job, or a local process): one job of the sweep, or
    a packed task's jobs."""

    positions: list[int]     # its jobs' positions in the launch
    job: Job[Any]            # the submitit job: its result a JobReturn, or {job number: JobReturn} where packed
    packed: bool             # it runs a PackedTask: its result is {job number: JobReturn}
    submitted: float = 0.0   # time.time() at submission: a record older than that is an earlier run's


def sweep_dir_of(launcher: BaseSubmititLauncher) -> Path:
    """The sweep directory, made (with hydra.sweep.mode where set) before anything is submitted."""
    assert launcher.config is not None
    sweep_dir = Path(str(launcher.config.hydra.sweep.dir))
    sweep_dir.mkdir(parents=True, exist_ok=True)
    if "mode" in launcher.config.hydra.sweep:
        os.chmod(sweep_dir, mode=int(str(launcher.config.hydra.sweep.mode), 8))
    return sweep_dir


def job_args(job: PlannedJob, singletons: dict[Any, Any]) -> tuple[list[str], str, int, str, dict[Any, Any], PlannedJob]:
    """The arguments of our launchers' `__call__`, which runs one job: the stock launcher's, and the
    planned job without its config (its fingerprint is not computed again there); `singletons` is
    Hydra's `Singleton.get_state()`, a deep copy of its global state, taken once per sweep."""
    return list(job.overrides), "hydra.sweep.dir", job.num, f"job_id_for_{job.num}", singletons, job.sent()


def failed_return(error: BaseException, overrides: list[str] | None = None) -> JobReturn:
    """A failed job's JobReturn holding `error` (through JobReturn's public setter)."""
    returned = JobReturn(overrides=overrides, status=JobStatus.FAILED)
    returned.return_value = error
    return returned


def announce(job: PlannedJob, returned: JobReturn, context: RunContext) -> None:
    """The finished job's `[k/N]` line, from its record, as an in-process sweep prints it; a job
    without one (Slurm ended it, or it failed outside its task) says why instead."""
    record = None
    if returned.status == JobStatus.COMPLETED:
        try:
            record = read_record(job.directory / RECORD_NAME)
        except ValueError:
            pass  # no record (another run owned the directory): the line below says what is known
    if record is not None:
        print(context.line(job_line(record, every_metric=False), job.num), flush=True)
    else:
        reason = returned_value(returned) if returned.status == JobStatus.FAILED else "no record"
        print(context.line(f"{label(job.overrides)} -> {reason}", job.num), flush=True)


def raise_outside_task(returned: JobReturn) -> None:
    """Raise what a job raised outside its task (the sweep stops: something is wrong with the
    sweep itself), but not a job that Slurm ended: its line and its status say so, and the sweep's
    summary ends with the resume line."""
    if not (returned.status == JobStatus.FAILED and isinstance(returned_value(returned), JobEndedWithoutResult)):
        _ = returned.return_value


def ended_without_result(job: Job[Any], state: str) -> JobReturn:
    message = f"Slurm job {job.job_id} ended {state} without a result (its log: {job.paths.stderr})"
    return failed_return(JobEndedWithoutResult(message))


def _result(job: Job[Any]) -> JobReturn:
    """The job's own JobReturn, or a failed one holding the error, without raising. A job over
    several workers has a result per Slurm task: the chief's (task 0) is the job's, and a lost
    worker's missing one is no matter."""
    try:
        returned: JobReturn = job.task(0).results()[0]
        return returned
    except Exception as e:  # submitit raises for a job that failed outside the task
        return failed_return(e)


def task_results(task: SubmittedTask, jobs: list[PlannedJob]) -> dict[int, JobReturn]:
    """Each of the task's jobs' JobReturn, by position; a packed task's by job number."""
    if not task.packed:
        return {task.positions[0]: _result(task.job)}
    try:
        by_num = task.job.results()[0]
    except Exception as e:  # the task failed outside its jobs
        failed = failed_return(e)
        return {i: failed for i in task.positions}
    missing = failed_return(JobEndedWithoutResult("its task returned no result for it"))
    return {i: by_num.get(jobs[i].num, missing) for i in task.positions}


def _finished_in(task: SubmittedTask, job: PlannedJob) -> bool:
    """Whether a packed task's job has written its final record since the task was submitted (an
    `interrupted` one is not final: the requeued task continues the job)."""
    path = job.directory / RECORD_NAME
    try:
        return path.stat().st_mtime >= task.submitted and read_record(path).status != Status.INTERRUPTED
    except (OSError, ValueError):
        return False


def _never_starts(tasks: list[SubmittedTask], states: dict[str, str], jobs: list[PlannedJob]) -> None:
    """Stop waiting, with one line, for a task Slurm keeps pending for a reason that will not pass."""
    pending = [task.job.job_id for task in tasks if states.get(task.job.job_id) == "PENDING"]
    reasons = pending_reasons(pending) if pending else {}
    for task in tasks:
        reason = reasons.get(task.job.job_id)
        if reason in NEVER:
            job = jobs[task.positions[0]]
            refuse(f"Slurm keeps job {job.num} ({' '.join(job.overrides) or 'defaults'}, Slurm job "
                   f"{task.job.job_id}) pending for reason {reason}: the partition can never run it as asked; "
                   f"cancel it (scancel {task.job.job_id.split('_')[0]}) and lower hydra.launcher.cpus_per_task, "
                   "cpus_per_gpu, mem_gb or gpus")


def collect(jobs: list[PlannedJob], tasks: list[SubmittedTask], context: RunContext) -> list[JobReturn]:
    """Every job's result in the sweep's order, waiting until each task has one or Slurm ended it.

    submitit's own waiting raises at the first job that failed and, on a cluster without
    accounting, never sees a cancelled job end; here a task is finished when its result file exists,
    when Slurm reports a final state, or when Slurm has not known it for a while. A packed task's
    jobs are announced as their records appear.
    """
    returns, _ = collect_some(jobs, tasks, context)
    assert len(returns) == len(jobs), "every job is in a task"
    return [returns[i] for i in range(len(jobs))]


def collect_some(jobs: list[PlannedJob], tasks: list[SubmittedTask], context: RunContext,
                 hold: frozenset[int] = frozenset()) -> tuple[dict[int, JobReturn], dict[int, JobReturn]]:
    """The results of these tasks' jobs (some of the launch's), by position, as `collect` waits for
    them; the failed results of the positions in `hold` are not announced but given back apart
    (a right-sized job that may run again: sweeper/launching/right_size.py)."""
    returns: dict[int, JobReturn] = {}
    held: dict[int, JobReturn] = {}
    announced: set[int] = set()
    pending = set(range(len(tasks)))
    since: dict[int, float] = {}   # when a task was first seen ended, or unknown to Slurm
    last_query = -_STATE_EVERY_S
    while pending:
        states = None
        if time.monotonic() - last_query >= _STATE_EVERY_S:
            states = job_states(tasks[t].job.job_id for t in pending)
            last_query = time.monotonic()
            if states:
                _never_starts([tasks[t] for t in pending], states, jobs)
        for t in sorted(pending):
            task = tasks[t]
            if task.job.paths.result_pickle.exists():
                done = task_results(task, jobs)
            elif states is not None:
                done = _ended(task, t, states, since)
                _announce_packed(task, jobs, done, announced, context)
            else:
                done = {}
            if done:
                pending.discard(t)
                for i, returned in done.items():
                    returns[i] = returned
                    if i in hold and returned.status == JobStatus.FAILED:
                        held[i] = returned
                    elif i not in announced:
                        announced.add(i)
                        announce(jobs[i], returned, context)
        if pending:
            time.sleep(_POLL_S)
    return returns, held


def _ended(task: SubmittedTask, t: int, states: dict[str, str], since: dict[int, float]) -> dict[int, JobReturn]:
    """A task without a result: failed results for its jobs where Slurm ended it (or stopped
    knowing it) long enough ago for a result to have come; else none yet."""
    state = states.get(task.job.job_id)
    if state is not None and state not in ENDED:
        since.pop(t, None)
        return {}
    # An ended task's result may still be on its way through a network file system.
    waited = time.monotonic() - since.setdefault(t, time.monotonic())
    if waited > (_RESULT_GRACE_S if state else _LOST_AFTER_S):
        ended = ended_without_result(task.job, state or "(Slurm no longer knows it)")
        return {i: ended for i in task.positions}
    return {}


def _announce_packed(task: SubmittedTask, jobs: list[PlannedJob], done: dict[int, JobReturn], announced: set[int],
                     context: RunContext) -> None:
    """A packed task's jobs, each announced as soon as its final record is there."""
    if not task.packed:
        return
    for i in task.positions:
        if i not in announced and i not in done and _finished_in(task, jobs[i]):
            announced.add(i)
            announce(jobs[i], JobReturn(status=JobStatus.COMPLETED), context)
