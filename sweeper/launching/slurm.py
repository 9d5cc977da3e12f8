"""The `slurm` launcher's work: one Slurm array per group of jobs with equal resources, in chunks
Slurm accepts, each array task running one job or a packed task of several; jobs an earlier
submission still has pending or running are waited for, not submitted again.

Jobs run through submitit and the stock hydra-submitit-launcher: the launcher object itself is the
function each job runs (its `__call__` composes the job's config and runs it, its `checkpoint`
requeues it), exactly as in the stock plugin; only how jobs are grouped, submitted and collected
differs here.
"""
from __future__ import annotations

import contextlib
import io
import re
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus
from hydra.errors import CompactHydraException

from sweeper.job.context import RunContext
from sweeper.job.planned import PlannedJob
from sweeper.job.status import ACTIVE
from sweeper.launching.capacity import impossible
from sweeper.launching.collect import SubmittedTask, collect, job_args, sweep_dir_of
from sweeper.launching.packed import PackedTask
from sweeper.launching.resources import by_resources, executor, resources_of, safe_for_sbatch, setting
from sweeper.launching.scheduler import job_states, max_array_size, node_offers
from sweeper.sweep import manifest
from sweeper.sweep.jobs import read_job
from sweeper.words import command, counted, sweeper_command

if TYPE_CHECKING:
    from hydra_plugins.hydra_submitit_launcher.submitit_launcher import BaseSubmititLauncher
    from submitit import AutoExecutor, Job



def launch(launcher: BaseSubmititLauncher, jobs: list[PlannedJob], context: RunContext) -> list[JobReturn]:
    """Submit the jobs, one array per group of equal resources, in chunks Slurm accepts, each array
    task running one job or `jobs_per_task` of them; then wait for their results (or, with
    `wait=false`, print the Slurm job ids and return). Jobs Slurm still has pending or running
    from an earlier submission are not submitted again: their tasks are waited for."""
    sweep_dir = sweep_dir_of(launcher)
    per_task, parallel = setting(launcher.params, "jobs_per_task"), setting(launcher.params, "jobs_in_parallel")
    alive = _alive_tasks(jobs, sweep_dir)
    taken = {i for task in alive for i in task.positions}
    groups = by_resources(jobs, [i for i in range(len(jobs)) if i not in taken])
    _refuse_impossible(jobs, groups, launcher.params)
    chunk = _array_size(launcher.params.get("max_array_size"))
    singletons = Singleton.get_state()
    tasks: list[SubmittedTask] = []
    arrays = []
    for positions in groups.values():
        params = safe_for_sbatch(resources_of(jobs[positions[0]]))
        made = executor("slurm", params)
        packs = [positions[start:start + per_task] for start in range(0, len(positions), per_task)]
        for start in range(0, len(packs), chunk):
            submitted = _submit(made, launcher, jobs, packs[start:start + chunk], singletons, sweep_dir,
                                per_task > 1, parallel, tasks)
            tasks += submitted
            manifest.record_submitted(sweep_dir, {jobs[i].num: (task.job.job_id, task.packed)
                                                  for task in submitted for i in task.positions})
            arrays.append(_describe(jobs, submitted, params))
    if alive:
        ids = sorted({task.job.job_id for task in alive})
        print(f"{counted(len(taken), 'job')} {'is' if len(taken) == 1 else 'are'} still pending or running in Slurm "
              f"({', '.join(ids[:8])}"
              f"{', ...' if len(ids) > 8 else ''}): not submitted again", flush=True)
    if not launcher.params.get("wait", True):
        return _report_submitted(jobs, tasks, arrays, sweep_dir)
    n_tasks = len(tasks) + len(alive)
    what = (counted(len(jobs), "Slurm job") if n_tasks == len(jobs)
            else f"{counted(len(jobs), 'job')} in {counted(n_tasks, 'Slurm task')}")
    print(f"Waiting for {what}; Slurm job ids: {', '.join(arrays) or 'submitted before'}", flush=True)
    try:
        return collect(jobs, tasks + alive, context)
    except KeyboardInterrupt:
        _still_running([task.job for task in tasks + alive], sweep_dir)
        raise SystemExit(130) from None


def _array_size(setting_: int | None) -> int:
    if setting_ is not None:
        if setting_ < 1:
            raise CompactHydraException(f"hydra.launcher.max_array_size={setting_} is invalid: it must be >= 1")
        return setting_
    return max_array_size() or 1000


def _alive_tasks(jobs: list[PlannedJob], sweep_dir: Path) -> list[SubmittedTask]:
    """The Slurm tasks of an earlier submission that still hold some of these jobs: a job whose
    status (sweeper/job/status.py, from Slurm's state of its recorded id) is pending, waiting or running."""
    from submitit.slurm.slurm import SlurmJob

    try:
        listed = manifest.read_manifest(sweep_dir)
    except manifest.DamagedManifest:
        return []
    rows = {row.num: row for row in (listed.jobs if listed else []) if row.slurm_job_id}
    wanted = {i: rows[job.num] for i, job in enumerate(jobs) if job.num in rows}
    if not wanted:
        return []
    states = job_states(row.slurm_job_id for row in wanted.values() if row.slurm_job_id) or {}
    by_id: dict[str, SubmittedTask] = {}
    for i, row in wanted.items():
        slurm_id = row.slurm_job_id or ""
        job = read_job(sweep_dir, sweep_dir / row.dir, row, states.get(slurm_id), slurm_states=states)
        if job.status in ACTIVE:
            folder = resources_of(jobs[i])["submitit_folder"]
            task = by_id.setdefault(slurm_id, SubmittedTask([], SlurmJob(folder, slurm_id), row.packed_task is not None))
            task.positions.append(i)
    return list(by_id.values())


def _refuse_impossible(jobs: list[PlannedJob], groups: dict[str, list[int]], settings: dict[str, Any]) -> None:
    """One line and exit 2, before anything is submitted, for jobs no node of their partition can run."""
    offers: dict[Any, Any] = {}
    for positions in groups.values():
        job = jobs[positions[0]]
        params = resources_of(job)
        partition = params.get("partition")
        if partition not in offers:
            offers[partition] = node_offers(partition)
        why = offers[partition] and impossible(params, offers[partition], settings)
        if why:
            nums = f"{job.num}" if len(positions) == 1 else f"{job.num} and {len(positions) - 1} more"
            print(f"error: job {nums} ({' '.join(job.overrides) or 'defaults'}) {why}; nothing was submitted",
                  file=sys.stderr, flush=True)
            raise SystemExit(2)


def _submit(made: AutoExecutor, launcher: BaseSubmititLauncher, jobs: list[PlannedJob], packs: list[list[int]],
            singletons: dict[Any, Any], sweep_dir: Path, packed: bool, parallel: int,
            before: list[SubmittedTask]) -> list[SubmittedTask]:
    """Submit these tasks as one array (or one job); sbatch's refusal becomes one line and exit 2
    (`before`: the tasks this launch has submitted already, which the line names)."""
    from submitit.core.utils import FailedJobError

    submitted: list[Job[Any]]  # a packed task's result is {job number: JobReturn}, a job's its JobReturn
    try:
        # submitit prints sbatch's error output before raising it: the refusal says it once, below.
        with contextlib.redirect_stderr(io.StringIO()):
            if packed:
                sent = [[jobs[i].sent() for i in pack] for pack in packs]
                submitted = made.map_array(PackedTask(launcher, parallel), sent, [singletons] * len(sent))
            else:
                args = [job_args(jobs[pack[0]], singletons) for pack in packs]
                submitted = made.map_array(launcher, *zip(*args))
    except (FailedJobError, OSError) as e:
        _refuse_submission(e, jobs, packs, before, sweep_dir)
    now = time.time()
    return [SubmittedTask(pack, job, packed, now) for pack, job in zip(packs, submitted)]


def sbatch_reason(error: BaseException) -> str:
    """sbatch's refusal in one line: its most specific line (`invalid partition specified: nope`
    rather than the `Batch job submission failed: ...` that follows it), without `sbatch: error: `."""
    lines = [re.sub(r"^sbatch: error: ", "", line.strip()) for line in str(error).splitlines() if line.strip()]
    specific = [line for line in lines if not line.startswith("Batch job submission failed")]
    if specific:
        return specific[0]
    if lines:
        return lines[-1].removeprefix("Batch job submission failed: ")
    return type(error).__name__


def _refuse_submission(error: BaseException, jobs: list[PlannedJob], packs: list[list[int]],
                       before: list[SubmittedTask], sweep_dir: Path) -> NoReturn:
    """One line and exit 2 for jobs sbatch refused; the tasks submitted before them are named only
    when there are some (they run on, and `resume` waits for them rather than submitting them again)."""
    first, last = jobs[packs[0][0]], jobs[packs[-1][-1]]
    nums = f"{first.num}-{last.num}" if first is not last else f"{first.num}"
    what = f"jobs {nums}" if first is not last else f"job {nums}"
    line = (f"error: Slurm refused {what} ({' '.join(first.overrides) or 'defaults'}"
            f"{', ...' if first is not last else ''}): {sbatch_reason(error)}")
    if before:
        ids = sorted({task.job.job_id.split("_")[0] for task in before}, key=int)
        earlier = sum(len(task.positions) for task in before)
        line += (f"; submitted before them and going on: {counted(earlier, 'job')} (Slurm job ids: {', '.join(ids)}), "
                 f"follow them with: {sweeper_command('status', sweep_dir.resolve())}")
    else:
        line += "; nothing was submitted"
    print(line, file=sys.stderr, flush=True)
    raise SystemExit(2)


def _tasks(number: int) -> str:
    return counted(number, "Slurm task")


def _describe(jobs: list[PlannedJob], tasks: list[SubmittedTask], params: dict[str, Any]) -> str:
    slurm_id = tasks[0].job.job_id.split("_")[0]
    first, last = jobs[tasks[0].positions[0]], jobs[tasks[-1].positions[-1]]
    nums = f"{first.num}-{last.num}" if first is not last else f"{first.num}"
    jobs_count = sum(len(task.positions) for task in tasks)
    packing = f" in {_tasks(len(tasks))}" if tasks[0].packed else ""
    gpus = params.get("gpus_per_node") or 0
    return (f"{slurm_id} ({'jobs' if first is not last else 'job'} {nums}: {jobs_count} x {gpus} GPU, "
            f"{params['cpus_per_task']} CPU, "
            f"{params.get('mem_gb')} GB{packing})")


def _report_submitted(jobs: list[PlannedJob], tasks: list[SubmittedTask], arrays: list[str],
                      sweep_dir: Path) -> list[JobReturn]:
    """Non-blocking: say what was submitted and where it will land; the jobs write their records."""
    where = sweep_dir.resolve()
    submitted = sum(len(task.positions) for task in tasks)
    print(f"Submitted {counted(submitted, 'job')} to Slurm, without waiting; Slurm job ids: {', '.join(arrays) or 'none'}",
          flush=True)
    print(f"Sweep directory: {where}", flush=True)
    print(f"Follow it with: {sweeper_command('status', where)}", flush=True)
    # The sweeper reads every job's return value: there is none yet.
    return [JobReturn(overrides=job.overrides, working_dir=str(where / job.dir), status=JobStatus.COMPLETED)
            for job in jobs]


def _still_running(submitted: list[Job[Any]], sweep_dir: Path) -> None:
    """Ctrl-C stops the waiting, not the jobs: say so, and how to stop or follow them."""
    arrays = sorted({job.job_id.split("_")[0] for job in submitted}, key=int)
    print(f"\ninterrupted: the Slurm jobs keep running; stop them with: {command('scancel', *arrays)}", flush=True)
    print(f"follow them with: {sweeper_command('status', sweep_dir.resolve())}", flush=True)
