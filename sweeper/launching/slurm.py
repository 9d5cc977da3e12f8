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
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus
from hydra.errors import CompactHydraException

from sweeper.errors import refuse
from sweeper.job.context import RunContext
from sweeper.job.planned import PlannedJob
from sweeper.job import manifest
from sweeper.job.manifest import ListedJob
from sweeper.job.record import RECORD_NAME, read_record
from sweeper.job.standing import standing
from sweeper.status import ACTIVE, Status
from sweeper.launching import accounting, right_size
from sweeper.launching.capacity import impossible
from sweeper.launching.collect import SubmittedTask, announce, collect_some, job_args, sweep_dir_of
from sweeper.launching.packed import PackedTask
from sweeper.launching.resources import by_resources, executor, resources_of, safe_for_sbatch, setting
from sweeper.launching.backend import SLURM
from sweeper.launching.slurm_queries import max_array_size, node_offers
from sweeper.words import command, counted, sweeper_command

_ACCOUNTING_WAIT_S = 10.0  # how long a sweep's end waits for Slurm's accounting of its last jobs

if TYPE_CHECKING:
    from hydra_plugins.hydra_submitit_launcher.submitit_launcher import BaseSubmititLauncher
    from submitit import AutoExecutor, Job



def launch(launcher: BaseSubmititLauncher, jobs: list[PlannedJob], context: RunContext) -> list[JobReturn]:
    """Submit the jobs, one array per group of equal resources, in chunks Slurm accepts, each array
    task running one job or `jobs_per_task` of them; then wait for their results (or, with
    `wait=false`, print the Slurm job ids and return). Jobs Slurm still has pending or running
    from an earlier submission are not submitted again: their tasks are waited for. With
    `right_size`, a group's later jobs ask for what its finished ones used (sweeper/launching/right_size.py)."""
    sweep_dir = sweep_dir_of(launcher)
    alive = _alive_tasks(jobs, sweep_dir)
    taken = {i for task in alive for i in task.positions}
    groups = by_resources(jobs, [i for i in range(len(jobs)) if i not in taken])
    _refuse_impossible(jobs, groups, launcher.params)
    submission = _Submission(launcher, jobs, sweep_dir, _right_size(launcher.params))
    later = [held_back for positions in groups.values() if (held_back := submission.submit_group(positions))]
    if alive:
        ids = sorted({task.job.job_id for task in alive})
        print(f"{counted(len(taken), 'job')} {'is' if len(taken) == 1 else 'are'} still pending or running in Slurm "
              f"({', '.join(ids[:8])}"
              f"{', ...' if len(ids) > 8 else ''}): not submitted again", flush=True)
    if not launcher.params.get("wait", True):
        return _report_submitted(jobs, submission.tasks, submission.arrays, sweep_dir)
    returns: dict[int, JobReturn] = {}
    try:
        if later:  # the first jobs of a group, to right-size the others from
            returns.update(submission.wait(submission.probes, context)[0])
            for positions in later:
                submission.submit_sized(positions)
        probed = {task.job.job_id for task in submission.probes}
        done, held = submission.wait([task for task in submission.tasks if task.job.job_id not in probed] + alive,
                                     context)
        returns.update(done)
        returns.update(submission.resubmit(held, context))
    except KeyboardInterrupt:
        _still_running([task.job for task in submission.tasks + alive], sweep_dir)
        raise SystemExit(130) from None
    return [returns[i] for i in range(len(jobs))]


def _right_size(settings: dict[str, Any]) -> bool:
    """Whether this launch right-sizes requests: `right_size` on, for jobs that are waited for (a
    right-sized job that runs short is submitted again by the launch that waits for it) and not
    packed (a packed task's time is its jobs' together); one line says when it cannot."""
    if not settings.get("right_size"):
        return False
    if not settings.get("wait", True) or setting(settings, "jobs_per_task") > 1:
        why = "wait=false" if not settings.get("wait", True) else f"jobs_per_task={settings['jobs_per_task']}"
        print(f"right_size: not with {why}; every job asks for the request as set", flush=True)
        return False
    return True


class _Submission:
    """What one launch submits, and how: its arrays, each Slurm id's request (for its accounting
    entry), and the positions of the jobs it right-sized."""

    def __init__(self, launcher: BaseSubmititLauncher, jobs: list[PlannedJob], sweep_dir: Path, sizing: bool):
        self.launcher, self.jobs, self.sweep_dir, self.sizing = launcher, jobs, sweep_dir, sizing
        self.per_task = setting(launcher.params, "jobs_per_task")
        self.parallel = setting(launcher.params, "jobs_in_parallel")
        self.chunk = _array_size(launcher.params.get("max_array_size"))
        self.singletons = Singleton.get_state()
        self.tasks: list[SubmittedTask] = []
        self.arrays: list[str] = []
        self.probes: list[SubmittedTask] = []           # a group's first jobs, waited for first
        self.notes: dict[str, dict[str, Any]] = {}      # Slurm id -> its accounting entry's request
        self.right_sized: set[int] = set()
        self.tasks_of: dict[int, str] = {}              # job number -> its task name, for the lines

    def submit(self, positions: list[int], params: dict[str, Any], sizing: str = right_size.AS_ASKED) -> None:
        """Submit these jobs of one group with these parameters, in arrays of at most `chunk` tasks."""
        asked = resources_of(self.jobs[positions[0]])
        safe = safe_for_sbatch(params)
        made = executor("slurm", safe)
        packs = [positions[start:start + self.per_task] for start in range(0, len(positions), self.per_task)]
        for start in range(0, len(packs), self.chunk):
            submitted = _submit(made, self.launcher, self.jobs, packs[start:start + self.chunk], self.singletons,
                                self.sweep_dir, self.per_task > 1, self.parallel, self.tasks)
            self.tasks += submitted
            manifest.record_submitted(self.sweep_dir, SLURM.name, {self.jobs[i].num: (task.job.job_id, task.packed)
                                                       for task in submitted for i in task.positions})
            self.arrays.append(_describe(self.jobs, submitted, safe))
            for task in submitted:
                self.notes[task.job.job_id] = right_size.note(asked, params, sizing)

    def submit_group(self, positions: list[int]) -> list[int]:
        """Submit a group's jobs: right-sized where enough of its jobs finished before; else, with
        right-sizing on, its first few as asked and the others held back (returned) until those finished."""
        asked = resources_of(self.jobs[positions[0]])
        if not self.sizing:
            self.submit(positions, asked)
            return []
        need = right_size.PROBE_JOBS - right_size.measure(self.sweep_dir, asked).jobs
        if need <= 0 or len(positions) <= need:
            self.submit_sized(positions)
            return []
        print(right_size.probe_line(self._nums(positions[:need]), self._group(positions), asked,
                                    len(positions) - need), flush=True)
        before = len(self.tasks)
        self.submit(positions[:need], asked)
        self.probes += self.tasks[before:]
        return positions[need:]

    def submit_sized(self, positions: list[int]) -> None:
        """Submit a group's jobs with what its finished jobs used, or as asked while too few finished."""
        asked = resources_of(self.jobs[positions[0]])
        measured = right_size.measure(self.sweep_dir, asked)
        params = right_size.sized(asked, measured)
        if params is None:
            self.submit(positions, asked)
            return
        print(right_size.sized_line(self._nums(positions), self._group(positions), asked, params, measured), flush=True)
        self.submit(positions, params, right_size.RIGHT_SIZED)
        self.right_sized.update(positions)

    def wait(self, tasks: list[SubmittedTask],
             context: RunContext) -> tuple[dict[int, JobReturn], dict[int, JobReturn]]:
        """Wait for these tasks and save their accounting; their results, and apart those of failed
        right-sized jobs (not announced: they may run again)."""
        jobs = sum(len(task.positions) for task in tasks)
        what = (counted(jobs, "Slurm job") if len(tasks) == jobs
                else f"{counted(jobs, 'job')} in {counted(len(tasks), 'Slurm task')}")
        ids = {task.job.job_id.split("_")[0] for task in tasks}
        arrays = [array for array in self.arrays if array.split(" ")[0] in ids]
        print(f"Waiting for {what}; Slurm job ids: {', '.join(arrays) or 'submitted before'}", flush=True)
        returns, held = collect_some(self.jobs, tasks, context, frozenset(self.right_sized))
        save_accounting(self.jobs, tasks, self.notes)
        return returns, held

    def resubmit(self, held: dict[int, JobReturn], context: RunContext) -> dict[int, JobReturn]:
        """The right-sized jobs that ran out of memory or time submitted again as asked, once, and
        waited for; the others' failures announced as they are. Returns the new results."""
        again = []
        for i, returned in sorted(held.items()):
            job = self.jobs[i]
            slurm_id = next(task.job.job_id for task in reversed(self.tasks) if i in task.positions)
            entry = accounting.read_file(job.directory).get(slurm_id, {})
            if right_size.resubmit(entry):
                print(right_size.resubmit_line(job.num, job.overrides, slurm_id, resources_of(job), entry), flush=True)
                again.append(i)
            else:
                announce(job, returned, context)
        self.right_sized.difference_update(held)
        if not again:
            return {}
        before = len(self.tasks)
        for positions in by_resources(self.jobs, again).values():
            self.submit(positions, resources_of(self.jobs[positions[0]]), right_size.RESUBMITTED)
        return self.wait(self.tasks[before:], context)[0]

    def _nums(self, positions: list[int]) -> str:
        first, last = self.jobs[positions[0]].num, self.jobs[positions[-1]].num
        return f"jobs {first}-{last}" if len(positions) > 1 else f"job {first}"

    def _group(self, positions: list[int]) -> str:
        if not self.tasks_of:
            listed = manifest.read_manifest(self.sweep_dir)
            self.tasks_of = {row.num: row.task or "?" for row in listed.jobs} if listed else {}
        task = self.tasks_of.get(self.jobs[positions[0]].num)
        return right_size.group_words(task, resources_of(self.jobs[positions[0]]))


def save_accounting(jobs: list[PlannedJob], tasks: list[SubmittedTask],
                    notes: dict[str, dict[str, Any]] | None = None) -> None:
    """Each job's Slurm accounting beside its record (sweeper/launching/accounting.py), once its
    task ended, with the request it was submitted with (`notes`): what `cost` adds up and
    right-sizing reads."""
    wanted: dict[Path, list[tuple[str, int]]] = {}
    for task in tasks:
        for i in task.positions:
            wanted.setdefault(jobs[i].directory, []).append((task.job.job_id, len(task.positions)))
    accounting.save(wanted, wait_s=_ACCOUNTING_WAIT_S, notes=notes)


def _array_size(setting_: int | None) -> int:
    if setting_ is not None:
        if setting_ < 1:
            raise CompactHydraException(f"hydra.launcher.max_array_size={setting_} is invalid: it must be >= 1")
        return setting_
    return max_array_size() or 1000


def _alive_tasks(jobs: list[PlannedJob], sweep_dir: Path) -> list[SubmittedTask]:
    """The Slurm tasks of an earlier submission that still hold some of these jobs: a job whose
    status (sweeper/status.py, from Slurm's state of its recorded id) is pending, waiting or running."""
    from submitit.slurm.slurm import SlurmJob

    try:
        listed = manifest.read_manifest(sweep_dir)
    except manifest.DamagedManifest:
        return []
    rows = {row.num: row for row in (listed.jobs if listed else [])
            if row.scheduler == SLURM.name and row.scheduler_job_id}
    wanted = {i: rows[job.num] for i, job in enumerate(jobs) if job.num in rows}
    if not wanted:
        return []
    states = SLURM.states(row.scheduler_job_id for row in wanted.values() if row.scheduler_job_id) or {}
    by_id: dict[str, SubmittedTask] = {}
    for i, row in wanted.items():
        slurm_id = row.scheduler_job_id or ""
        if _status(sweep_dir / row.dir, row, SLURM.status_of(states.get(slurm_id, ""))) in ACTIVE:
            folder = resources_of(jobs[i])["submitit_folder"]
            task = by_id.setdefault(slurm_id, SubmittedTask([], SlurmJob(folder, slurm_id), row.packed_task is not None))
            task.positions.append(i)
    return list(by_id.values())


def _status(path: Path, row: ListedJob, scheduled: Status | None) -> Status:
    """A job's status as the sweep's reader decides it, from its record file alone."""
    try:
        recorded = read_record(path / RECORD_NAME).status if (path / RECORD_NAME).exists() else None
    except ValueError:
        return Status.CORRUPT
    return standing(path, row, recorded, scheduled)


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
            refuse(f"job {nums} ({' '.join(job.overrides) or 'defaults'}) {why}; nothing was submitted")


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
    line = (f"Slurm refused {what} ({' '.join(first.overrides) or 'defaults'}"
            f"{', ...' if first is not last else ''}): {sbatch_reason(error)}")
    if before:
        ids = sorted({task.job.job_id.split("_")[0] for task in before}, key=int)
        earlier = sum(len(task.positions) for task in before)
        line += (f"; submitted before them and going on: {counted(earlier, 'job')} (Slurm job ids: {', '.join(ids)}), "
                 f"follow them with: {sweeper_command('status', sweep_dir.resolve())}")
    else:
        line += "; nothing was submitted"
    refuse(line)


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
