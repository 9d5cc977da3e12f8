"""The work of the `slurm` and `local` launchers (hydra_plugins/launcher_plugins): per-job
resources, one Slurm array per group of jobs with equal resources, honest collection of results.

Jobs run through submitit and the stock hydra-submitit-launcher: the launcher object itself is the
function each job runs (its `__call__` composes the job's config and runs it, its `checkpoint`
requeues it), exactly as in the stock plugin; only how jobs are grouped, submitted and collected
differs here.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import shlex
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus
from hydra.errors import CompactHydraException
from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf, LocalQueueConf, SlurmQueueConf
from hydra_plugins.launcher_plugins.submitit_launchers import LocalConf, SlurmConf
from omegaconf import DictConfig, OmegaConf

from sweeper.launching.compose import job_configs
from sweeper.sweep import manifest

log = logging.getLogger(__name__)


def _fields(conf: type) -> set[str]:
    return {field.name for field in dataclasses.fields(conf)}


# Derived as the stock plugin derives them: generic submitit parameter names are the fields of its
# BaseQueueConf, the others get the executor's prefix (`slurm_partition`); settings this project's
# launchers add to the stock ones (wait, max_array_size, ...) are not submitit parameters at all.
_GENERIC = _fields(BaseQueueConf) - {"_target_", "submitit_folder"}
# cpus_per_gpu is the stock plugin's too, but here it is folded into cpus_per_task (job_resources).
_LAUNCHER_ONLY = ({"_target_", "cpus_per_gpu"} | (_fields(SlurmConf) - _fields(SlurmQueueConf))
                  | (_fields(LocalConf) - _fields(LocalQueueConf)))
# Settings of the submitit executor itself rather than of its jobs (as in the stock plugin).
_EXECUTOR_INIT = ("submitit_folder", "max_num_timeout")
# Sbatch directive values; a line break in one would start a new `#SBATCH` line of its own.
_DIRECTIVES = ("name", "partition", "account", "qos", "constraint", "comment", "exclude", "gres",
               "mem_per_gpu", "mem_per_cpu")
_POLL_S = 0.5          # how often a waiting launcher looks for results
_STATE_EVERY_S = 2.0   # how often it asks Slurm for states
_RESULT_GRACE_S = 3.0  # an ended job's result may appear this much later
_LOST_AFTER_S = 30.0   # a job Slurm no longer knows, without a result, is given up after this


class JobEndedWithoutResult(CompactHydraException):
    """A job that Slurm ended (cancelled, time limit, node failure) before it wrote a result."""


def job_resources(cfg: DictConfig) -> dict[str, Any]:
    """The submitit parameters of one job, from that job's own config: the one place that decides.

    The launcher settings (`hydra.launcher`) are resolved in the job's config, so they may depend on
    it. GPUs per node: `hydra.launcher.gpus_per_node` when set, else the job's `gpus`. CPUs:
    `cpus_per_task`, or `cpus_per_gpu` for each GPU when that is more. The timeout signal: at
    most half the time limit before its end.
    """
    params = OmegaConf.to_container(cfg.hydra.launcher, resolve=True)
    gpus = params.get("gpus_per_node")
    if gpus is None:
        gpus = int(cfg.get("gpus") or 0)
    params["gpus_per_node"] = gpus or None  # None: no GPU option at all, for clusters without GPUs
    cpus = params.get("cpus_per_task") or 1
    params["cpus_per_task"] = max(cpus, gpus * (params.get("cpus_per_gpu") or 0))
    # Slurm signals a job signal_delay_s (120) before its time limit, so that it can requeue; with
    # a short limit that would be at its start, before submitit handles the signal: the job dies.
    if params.get("signal_delay_s") and params.get("timeout_min"):
        params["signal_delay_s"] = min(params["signal_delay_s"], int(params["timeout_min"] * 60) // 2)
    for key in _LAUNCHER_ONLY:
        params.pop(key, None)
    return params


@dataclasses.dataclass
class Submission:
    """One job of the sweep, before it is submitted."""

    num: int                   # hydra.job.num
    overrides: list[str]
    dir: str                   # its directory, relative to the sweep directory
    params: dict[str, Any]     # job_resources


def submissions(launcher: Any, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> list[Submission]:
    loader = launcher.hydra_context.config_loader
    configs = job_configs(loader, launcher.config, job_overrides, initial_job_idx)
    return [Submission(cfg.hydra.job.num, list(overrides), manifest.subdir_of(cfg), job_resources(cfg))
            for overrides, cfg in zip(job_overrides, configs)]


def _one_line(value: Any) -> Any:
    """A directive value without line breaks or other control characters (they become spaces)."""
    return re.sub(r"[\x00-\x1f\x7f]+", " ", value) if isinstance(value, str) else value


def _safe_for_sbatch(params: dict[str, Any]) -> dict[str, Any]:
    """Parameters that cannot break the sbatch script or add directives to it.

    submitit quotes each value, and sbatch understands the quotes; what it cannot survive is a
    line break, which would make the rest of the value a line of its own (`#SBATCH --qos=...`).
    The setup lines are shell lines by design; a first command before them ends sbatch's
    reading of directives, so that none of them can be read as one.
    """
    folder = str(params["submitit_folder"])
    if _one_line(folder) != folder:
        raise CompactHydraException(
            f"the sweep directory {folder!r} contains a line break or control character: "
            "Slurm log paths cannot; choose another hydra.sweep.dir")
    safe = {key: _one_line(value) if key in _DIRECTIVES else value for key, value in params.items()}
    extra = safe.get("additional_parameters") or {}
    safe["additional_parameters"] = {_one_line(k): _one_line(v) for k, v in extra.items()}
    if safe.get("setup"):
        safe["setup"] = [": end of the '#SBATCH' directives", *safe["setup"]]
    return safe


def _python() -> str:
    """The command that runs a job: the submitting Python (sys.executable, as submitit does), with
    the app's directory first on its path as the submitting Python has it (sys.path[0]), so that
    `run.py`'s own modules import wherever the job runs. It runs in the submitting directory."""
    app_dir = os.path.abspath(sys.path[0] or os.getcwd())
    path = os.pathsep.join([app_dir, *filter(None, [os.environ.get("PYTHONPATH")])])
    return f"env PYTHONPATH={shlex.quote(path)} {shlex.quote(sys.executable)}"


def _executor(cluster: str, params: dict[str, Any]) -> Any:
    """A submitit executor for jobs with these parameters (as the stock plugin builds one)."""
    import submitit

    init = {f"{cluster}_{key}": params[key] for key in _EXECUTOR_INIT if key in params and key != "submitit_folder"}
    executor = submitit.AutoExecutor(cluster=cluster, folder=params["submitit_folder"], **init,
                                     **{f"{cluster}_python": _python()})
    executor.update_parameters(**{key if key in _GENERIC else f"{cluster}_{key}": value
                                  for key, value in params.items() if key not in _EXECUTOR_INIT})
    return executor


def _job_args(job: Submission, singletons: dict) -> tuple:
    """The arguments of the stock launcher's `__call__`, which runs one job; `singletons` is
    Hydra's `Singleton.get_state()`, a deep copy of its global state, taken once per sweep."""
    return list(job.overrides), "hydra.sweep.dir", job.num, f"job_id_for_{job.num}", singletons


def _sweep_dir(launcher: Any) -> Path:
    sweep_dir = Path(str(launcher.config.hydra.sweep.dir))
    sweep_dir.mkdir(parents=True, exist_ok=True)
    if "mode" in launcher.config.hydra.sweep:
        os.chmod(sweep_dir, mode=int(str(launcher.config.hydra.sweep.mode), 8))
    return sweep_dir


def _groups(todo: list[Submission], positions: list[int]) -> dict[str, list[int]]:
    """Of these positions, those of jobs with equal parameters, by their parameters, in the sweep's order."""
    groups: dict[str, list[int]] = {}
    for position in positions:
        groups.setdefault(json.dumps(todo[position].params, sort_keys=True, default=str), []).append(position)
    return groups


@dataclasses.dataclass
class Task:
    """One Slurm task (an array task, or a job): one job of the sweep, or a packed task's jobs."""

    positions: list[int]     # its jobs' positions in the launch
    job: Any                 # the submitit job
    packed: bool             # it runs a PackedTask: its result is {job number: JobReturn}
    submitted: float = 0.0   # time.time() at submission: a record older than that is an earlier run's


def _setting(launcher: Any, key: str) -> int:
    value = launcher.params.get(key, 1)
    if not isinstance(value, int) or value < 1:
        raise CompactHydraException(f"hydra.launcher.{key}={value} is invalid: it must be a whole number >= 1")
    return value


def _array_size(setting: int | None) -> int:
    if setting is not None:
        if setting < 1:
            raise CompactHydraException(f"hydra.launcher.max_array_size={setting} is invalid: it must be >= 1")
        return setting
    from sweeper.launching.scheduler import max_array_size

    return max_array_size() or 1000


def _announce(job: Submission, sweep_dir: Path, returned: JobReturn) -> None:
    """The finished job's `[k/N]` line, from its record, as an in-process sweep prints it; a job
    without one (Slurm ended it, or it failed outside its task) says why instead."""
    from sweeper.job.execute import job_line, label
    from sweeper.job.record import RECORD_NAME, read_record
    from sweeper.sweep import progress

    record = None
    if returned.status == JobStatus.COMPLETED:
        try:
            record = read_record(sweep_dir / job.dir / RECORD_NAME)
        except ValueError:
            pass  # no record (another run owned the directory): the line below says what is known
    if record is not None:
        print(job_line(record, every_metric=False), flush=True)
    else:
        reason = returned._return_value if returned.status == JobStatus.FAILED else "no record"
        print(f"{progress.prefix()}{label(job.overrides)} -> {reason}", flush=True)


def launch_slurm(launcher: Any, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> list[JobReturn]:
    """Submit the jobs, one array per group of equal resources, in chunks Slurm accepts, each array
    task running one job or `jobs_per_task` of them; then wait for their results (or, with
    `wait=false`, print the Slurm job ids and return). Jobs Slurm still has pending or running
    from an earlier submission are not submitted again: their tasks are waited for."""
    todo = submissions(launcher, job_overrides, initial_job_idx)
    sweep_dir = _sweep_dir(launcher)
    log.info(f"Slurm sweep output dir : {sweep_dir}")
    per_task, parallel = _setting(launcher, "jobs_per_task"), _setting(launcher, "jobs_in_parallel")
    alive = _alive_tasks(todo, sweep_dir)
    taken = {i for task in alive for i in task.positions}
    fresh = [i for i in range(len(todo)) if i not in taken]
    groups = _groups(todo, fresh)
    _refuse_impossible(todo, groups, launcher.params)
    chunk = _array_size(launcher.params.get("max_array_size"))
    singletons = Singleton.get_state()
    tasks: list[Task] = []
    arrays = []
    for positions in groups.values():
        params = _safe_for_sbatch(todo[positions[0]].params)
        executor = _executor("slurm", params)
        packs = [positions[start:start + per_task] for start in range(0, len(positions), per_task)]
        for start in range(0, len(packs), chunk):
            part = packs[start:start + chunk]
            submitted = _submit(executor, launcher, todo, part, singletons, sweep_dir, per_task > 1, parallel)
            tasks += submitted
            manifest.record_submitted(sweep_dir, {todo[i].num: (task.job.job_id, task.packed)
                                                  for task in submitted for i in task.positions})
            arrays.append(_describe(todo, submitted, params))
    if alive:
        ids = sorted({task.job.job_id for task in alive})
        print(f"{len(taken)} jobs are still pending or running in Slurm ({', '.join(ids[:8])}"
              f"{', ...' if len(ids) > 8 else ''}): not submitted again", flush=True)
    if not launcher.params.get("wait", True):
        return _report_submitted(todo, tasks, arrays, sweep_dir)
    count = len(tasks) + len(alive)
    what = f"{len(todo)} Slurm jobs" if count == len(todo) else f"{len(todo)} jobs in {_tasks(count)}"
    print(f"Waiting for {what}; Slurm job ids: {', '.join(arrays) or 'submitted before'}", flush=True)
    try:
        return collect(todo, tasks + alive, sweep_dir)
    except KeyboardInterrupt:
        _still_running([task.job for task in tasks + alive], sweep_dir)
        raise SystemExit(130) from None


def _alive_tasks(todo: list[Submission], sweep_dir: Path) -> list[Task]:
    """The Slurm tasks of an earlier submission that still hold some of these jobs: a job whose
    status (sweeper/job/status.py, from Slurm's state of its recorded id) is pending, waiting or running."""
    from submitit.slurm.slurm import SlurmJob

    from sweeper.job.status import ACTIVE
    from sweeper.sweep.jobs import read_job

    try:
        listed = manifest.read_manifest(sweep_dir)
    except manifest.DamagedManifest:
        return []
    entries = {entry.num: entry for entry in (listed.jobs if listed else []) if entry.slurm_job_id}
    wanted = {i: entries[job.num] for i, job in enumerate(todo) if job.num in entries}
    if not wanted:
        return []
    from sweeper.launching.scheduler import job_states

    states = job_states(entry.slurm_job_id for entry in wanted.values()) or {}
    by_id: dict[str, Task] = {}
    for i, entry in wanted.items():
        job = read_job(sweep_dir, sweep_dir / entry.dir, entry, states.get(entry.slurm_job_id))
        if job.status in ACTIVE:
            task = by_id.setdefault(entry.slurm_job_id, Task(
                [], SlurmJob(todo[i].params["submitit_folder"], entry.slurm_job_id), entry.packed_task is not None))
            task.positions.append(i)
    return list(by_id.values())


def _refuse_impossible(todo: list[Submission], groups: dict[str, list[int]], settings: dict[str, Any]) -> None:
    """One line and exit 2, before anything is submitted, for jobs no node of their partition can run."""
    from sweeper.launching.capacity import impossible
    from sweeper.launching.scheduler import node_offers

    offers: dict[Any, Any] = {}
    for positions in groups.values():
        job = todo[positions[0]]
        partition = job.params.get("partition")
        if partition not in offers:
            offers[partition] = node_offers(partition)
        why = offers[partition] and impossible(job.params, offers[partition], settings)
        if why:
            nums = f"{job.num}" if len(positions) == 1 else f"{job.num} and {len(positions) - 1} more"
            print(f"error: job {nums} ({' '.join(job.overrides) or 'defaults'}) {why}; nothing was submitted",
                  file=sys.stderr, flush=True)
            raise SystemExit(2)


def _submit(executor: Any, launcher: Any, todo: list[Submission], packs: list[list[int]], singletons: dict,
            sweep_dir: Path, packed: bool, parallel: int) -> list[Task]:
    """Submit these tasks as one array (or one job); sbatch's refusal becomes one clear line."""
    from submitit.core.utils import FailedJobError

    from sweeper.launching.packed import PackedTask

    try:
        if packed:
            jobs = [[(list(todo[i].overrides), todo[i].num) for i in pack] for pack in packs]
            submitted = executor.map_array(PackedTask(launcher, parallel), jobs, [singletons] * len(jobs))
        else:
            args = [_job_args(todo[pack[0]], singletons) for pack in packs]
            submitted = executor.map_array(launcher, *zip(*args))
    except (FailedJobError, OSError) as e:
        reason = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
        first, last = todo[packs[0][0]], todo[packs[-1][-1]]
        nums = f"{first.num}-{last.num}" if first is not last else f"{first.num}"
        raise CompactHydraException(
            f"Slurm refused jobs {nums} ({' '.join(first.overrides)}{', ...' if first is not last else ''}): {reason}; "
            f"the Slurm job ids of the jobs submitted before them are in {manifest.path_of(sweep_dir)}") from None
    now = time.time()
    return [Task(pack, job, packed, now) for pack, job in zip(packs, submitted)]


def _tasks(count: int) -> str:
    return f"{count} Slurm task{'s' if count != 1 else ''}"


def _describe(todo: list[Submission], tasks: list[Task], params: dict[str, Any]) -> str:
    slurm_id = tasks[0].job.job_id.split("_")[0]
    first, last = todo[tasks[0].positions[0]], todo[tasks[-1].positions[-1]]
    nums = f"{first.num}-{last.num}" if first is not last else f"{first.num}"
    count = sum(len(task.positions) for task in tasks)
    packing = f" in {_tasks(len(tasks))}" if tasks[0].packed else ""
    gpus = params.get("gpus_per_node") or 0
    return (f"{slurm_id} (jobs {nums}: {count} x {gpus} GPU, {params['cpus_per_task']} CPU, "
            f"{params.get('mem_gb')} GB{packing})")


def _report_submitted(todo: list[Submission], tasks: list[Task], arrays: list[str], sweep_dir: Path) -> list[JobReturn]:
    """Non-blocking: say what was submitted and where it will land; the jobs write their records."""
    where = sweep_dir.resolve()
    count = sum(len(task.positions) for task in tasks)
    print(f"Submitted {count} jobs to Slurm, without waiting; Slurm job ids: {', '.join(arrays) or 'none'}",
          flush=True)
    print(f"Sweep directory: {where}", flush=True)
    print(f"Follow it with: python -m sweeper status {where}", flush=True)
    # The sweeper reads every job's return value: there is none yet.
    return [JobReturn(overrides=job.overrides, working_dir=str(where / job.dir), status=JobStatus.COMPLETED)
            for job in todo]


def _ended_without_result(job: Any, state: str) -> JobReturn:
    stderr = job.paths.stderr
    message = f"Slurm job {job.job_id} ended {state} without a result (its log: {stderr})"
    return JobReturn(status=JobStatus.FAILED, _return_value=JobEndedWithoutResult(message))


def _result(job: Any) -> JobReturn:
    """The job's own JobReturn, or a failed one holding the error, without raising."""
    try:
        return job.results()[0]
    except Exception as e:  # submitit raises for a job that failed outside the task
        return JobReturn(status=JobStatus.FAILED, _return_value=e)


def _task_results(task: Task, todo: list[Submission]) -> dict[int, JobReturn]:
    """Each of the task's jobs' JobReturn, by position; a packed task's by job number."""
    if not task.packed:
        return {task.positions[0]: _result(task.job)}
    try:
        by_num = task.job.results()[0]
    except Exception as e:  # the task failed outside its jobs
        by_num = {}
        failed = JobReturn(status=JobStatus.FAILED, _return_value=e)
        return {i: failed for i in task.positions}
    missing = JobReturn(status=JobStatus.FAILED, _return_value=JobEndedWithoutResult("its task returned no result for it"))
    return {i: by_num.get(todo[i].num, missing) for i in task.positions}


def _still_running(jobs: list[Any], sweep_dir: Path) -> None:
    """Ctrl-C stops the waiting, not the jobs: say so, and how to stop or follow them."""
    arrays = sorted({job.job_id.split("_")[0] for job in jobs}, key=int)
    print(f"\ninterrupted: the Slurm jobs keep running; stop them with: scancel {' '.join(arrays)}", flush=True)
    print(f"follow them with: python -m sweeper status {sweep_dir.resolve()}", flush=True)


def _finished_in(task: Task, job: Submission, sweep_dir: Path) -> bool:
    """Whether a packed task's job has written its final record since the task was submitted."""
    from sweeper.job.record import RECORD_NAME, read_record
    from sweeper.job.status import Status

    path = sweep_dir / job.dir / RECORD_NAME
    try:
        return path.stat().st_mtime >= task.submitted and read_record(path).status != Status.INTERRUPTED
    except (OSError, ValueError):
        return False


def _never_starts(tasks: list[Task], states: dict[str, str], todo: list[Submission]) -> None:
    """Stop waiting, with one line, for a task Slurm keeps pending for a reason that will not pass."""
    from sweeper.launching.capacity import NEVER
    from sweeper.launching.scheduler import pending_reasons

    pending = [task.job.job_id for task in tasks if states.get(task.job.job_id) == "PENDING"]
    reasons = pending_reasons(pending) if pending else {}
    for task in tasks:
        reason = reasons.get(task.job.job_id)
        if reason in NEVER:
            job = todo[task.positions[0]]
            print(f"error: Slurm keeps job {job.num} ({' '.join(job.overrides) or 'defaults'}, Slurm job "
                  f"{task.job.job_id}) pending for reason {reason}: the partition can never run it as asked; "
                  f"cancel it (scancel {task.job.job_id.split('_')[0]}) and lower hydra.launcher.cpus_per_task, "
                  "cpus_per_gpu, mem_gb or gpus", file=sys.stderr, flush=True)
            raise SystemExit(2)


def collect(todo: list[Submission], tasks: list[Task], sweep_dir: Path) -> list[JobReturn]:
    """Every job's result in the sweep's order, waiting until each task has one or Slurm ended it.

    submitit's own waiting raises at the first job that failed and, on a cluster without
    accounting, never sees a cancelled job end; here a task is finished when its result file exists,
    when Slurm reports a final state, or when Slurm has not known it for a while. A packed task's
    jobs are announced as their records appear.
    """
    from sweeper.launching.scheduler import ENDED, job_states

    returns: list[JobReturn | None] = [None] * len(todo)
    announced: set[int] = set()
    pending = set(range(len(tasks)))
    since: dict[int, float] = {}   # when a task was first seen ended, or unknown to Slurm
    last_query = 0.0
    while pending:
        states = None
        if time.monotonic() - last_query >= _STATE_EVERY_S:
            states = job_states(tasks[t].job.job_id for t in pending)
            last_query = time.monotonic()
            if states:
                _never_starts([tasks[t] for t in pending], states, todo)
        for t in sorted(pending):
            task = tasks[t]
            done: dict[int, JobReturn] = {}
            if task.job.paths.result_pickle.exists():
                done = _task_results(task, todo)
            elif states is not None:
                state = states.get(task.job.job_id)
                if state is not None and state not in ENDED:
                    since.pop(t, None)
                else:
                    # An ended task's result may still be on its way through a network file system.
                    waited = time.monotonic() - since.setdefault(t, time.monotonic())
                    if waited > (_RESULT_GRACE_S if state else _LOST_AFTER_S):
                        ended = _ended_without_result(task.job, state or "(Slurm no longer knows it)")
                        done = {i: ended for i in task.positions}
                if task.packed:
                    for i in task.positions:
                        if i not in announced and i not in done and _finished_in(task, todo[i], sweep_dir):
                            announced.add(i)
                            _announce(todo[i], sweep_dir, JobReturn(status=JobStatus.COMPLETED))
            if done:
                pending.discard(t)
                for i, returned in done.items():
                    returns[i] = returned
                    if i not in announced:
                        announced.add(i)
                        _announce(todo[i], sweep_dir, returned)
        if pending:
            time.sleep(_POLL_S)
    return returns  # type: ignore[return-value]


def _cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def launch_local(launcher: Any, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> list[JobReturn]:
    """Run the jobs as local processes through submitit, at most `max_parallel` at once (submitit's
    local executor alone starts them all at once: 64 TensorFlow processes would not fit in memory);
    with `jobs_per_task` > 1, each process runs that many jobs of equal resources (a PackedTask)."""
    todo = submissions(launcher, job_overrides, initial_job_idx)
    sweep_dir = _sweep_dir(launcher)
    log.info(f"Local sweep output dir : {sweep_dir}")
    limit = launcher.params.get("max_parallel")
    limit = _cpu_count() if limit is None else limit
    if limit < 1:
        raise CompactHydraException(f"hydra.launcher.max_parallel={limit} is invalid: it must be >= 1")
    per_task, parallel = _setting(launcher, "jobs_per_task"), _setting(launcher, "jobs_in_parallel")
    packs = sorted(pack for positions in _groups(todo, list(range(len(todo)))).values()
                   for pack in (positions[start:start + per_task] for start in range(0, len(positions), per_task)))
    executors: dict[str, Any] = {}
    singletons = Singleton.get_state()
    tasks: list[Task] = []
    returns: dict[int, JobReturn] = {}
    for pack in packs:
        while sum(not task.job.done() for task in tasks) >= limit:
            _collect_done(todo, tasks, returns, sweep_dir)
        params = todo[pack[0]].params
        key = json.dumps(params, sort_keys=True, default=str)
        if key not in executors:
            executors[key] = _executor("local", params)
        tasks.append(_submit_local(executors[key], launcher, todo, pack, singletons, per_task > 1, parallel))
    while len(returns) < len(todo):
        _collect_done(todo, tasks, returns, sweep_dir)
    return [returns[i] for i in range(len(todo))]


def _submit_local(executor: Any, launcher: Any, todo: list[Submission], pack: list[int], singletons: dict,
                  packed: bool, parallel: int) -> Task:
    from sweeper.launching.packed import PackedTask

    if packed:
        jobs = [(list(todo[i].overrides), todo[i].num) for i in pack]
        return Task(pack, executor.submit(PackedTask(launcher, parallel), jobs, singletons), True, time.time())
    return Task(pack, executor.submit(launcher, *_job_args(todo[pack[0]], singletons)), False, time.time())


def _collect_done(todo: list[Submission], tasks: list[Task], returns: dict[int, JobReturn], sweep_dir: Path) -> None:
    """Take the results of each local task that has finished since, saying so; wait a moment if none."""
    finished = [task for task in tasks if task.positions[0] not in returns and task.job.done()]
    for task in finished:
        for i, returned in _task_results(task, todo).items():
            returns[i] = returned
            _announce(todo[i], sweep_dir, returned)
    if not finished:
        time.sleep(0.1)
