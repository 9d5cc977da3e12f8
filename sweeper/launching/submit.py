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


def _groups(todo: list[Submission]) -> dict[str, list[int]]:
    """Positions of the jobs with equal parameters, by their parameters, in the sweep's order."""
    groups: dict[str, list[int]] = {}
    for position, job in enumerate(todo):
        groups.setdefault(json.dumps(job.params, sort_keys=True, default=str), []).append(position)
    return groups


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
    """Submit the jobs, one array per group of equal resources, in chunks Slurm accepts; then wait
    for their results (or, with `wait=false`, print the Slurm job ids and return)."""
    todo = submissions(launcher, job_overrides, initial_job_idx)
    sweep_dir = _sweep_dir(launcher)
    log.info(f"Slurm sweep output dir : {sweep_dir}")
    chunk = _array_size(launcher.params.get("max_array_size"))
    singletons = Singleton.get_state()
    jobs: list[Any] = [None] * len(todo)
    arrays = []
    for positions in _groups(todo).values():
        params = _safe_for_sbatch(todo[positions[0]].params)
        executor = _executor("slurm", params)
        for start in range(0, len(positions), chunk):
            part = positions[start:start + chunk]
            submitted = _submit(executor, launcher, [todo[i] for i in part], singletons, sweep_dir)
            for i, job in zip(part, submitted):
                jobs[i] = job
            manifest.update(sweep_dir, {todo[i].num: {"slurm_job_id": jobs[i].job_id} for i in part})
            arrays.append(_describe(todo, jobs, part, params))
    if not launcher.params.get("wait", True):
        return _report_submitted(todo, jobs, arrays, sweep_dir)
    print(f"Waiting for {len(jobs)} Slurm jobs; Slurm job ids: {', '.join(arrays)}", flush=True)
    try:
        return collect(todo, jobs, sweep_dir)
    except KeyboardInterrupt:
        _still_running(jobs, sweep_dir)
        raise SystemExit(130) from None


def _submit(executor: Any, launcher: Any, part: list[Submission], singletons: dict, sweep_dir: Path) -> list[Any]:
    """Submit these jobs as one array (or one job); sbatch's refusal becomes one clear line."""
    from submitit.core.utils import FailedJobError

    try:
        return executor.map_array(launcher, *zip(*(_job_args(job, singletons) for job in part)))
    except (FailedJobError, OSError) as e:
        reason = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
        nums = f"{part[0].num}-{part[-1].num}" if len(part) > 1 else f"{part[0].num}"
        raise CompactHydraException(
            f"Slurm refused jobs {nums} ({' '.join(part[0].overrides)}{', ...' if len(part) > 1 else ''}): {reason}; "
            f"the Slurm job ids of the jobs submitted before them are in {manifest.path_of(sweep_dir)}") from None


def _describe(todo: list[Submission], jobs: list[Any], part: list[int], params: dict[str, Any]) -> str:
    slurm_id = jobs[part[0]].job_id.split("_")[0]
    nums = f"{todo[part[0]].num}-{todo[part[-1]].num}" if len(part) > 1 else f"{todo[part[0]].num}"
    gpus = params.get("gpus_per_node") or 0
    return f"{slurm_id} (jobs {nums}: {len(part)} x {gpus} GPU, {params['cpus_per_task']} CPU, {params.get('mem_gb')} GB)"


def _report_submitted(todo: list[Submission], jobs: list[Any], arrays: list[str], sweep_dir: Path) -> list[JobReturn]:
    """Non-blocking: say what was submitted and where it will land; the jobs write their records."""
    where = sweep_dir.resolve()
    print(f"Submitted {len(jobs)} jobs to Slurm, without waiting; Slurm job ids: {', '.join(arrays)}", flush=True)
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


def _still_running(jobs: list[Any], sweep_dir: Path) -> None:
    """Ctrl-C stops the waiting, not the jobs: say so, and how to stop or follow them."""
    arrays = sorted({job.job_id.split("_")[0] for job in jobs}, key=int)
    print(f"\ninterrupted: the Slurm jobs keep running; stop them with: scancel {' '.join(arrays)}", flush=True)
    print(f"follow them with: python -m sweeper status {sweep_dir.resolve()}", flush=True)


def collect(todo: list[Submission], jobs: list[Any], sweep_dir: Path) -> list[JobReturn]:
    """Every job's result in the sweep's order, waiting until each has one or Slurm ended it.

    submitit's own waiting raises at the first job that failed and, on a cluster without
    accounting, never sees a cancelled job end; here a job is finished when its result file exists,
    when Slurm reports a final state, or when Slurm has not known it for a while.
    """
    from sweeper.launching.scheduler import ENDED, job_states

    returns: list[JobReturn | None] = [None] * len(jobs)
    pending = set(range(len(jobs)))
    since: dict[int, float] = {}   # when a job was first seen ended, or unknown to Slurm
    last_query = 0.0
    while pending:
        states = None
        if time.monotonic() - last_query >= _STATE_EVERY_S:
            states = job_states(jobs[i].job_id for i in pending)
            last_query = time.monotonic()
        for i in sorted(pending):
            job = jobs[i]
            if job.paths.result_pickle.exists():
                returns[i] = _result(job)
            elif states is not None:
                state = states.get(job.job_id)
                if state is not None and state not in ENDED:
                    since.pop(i, None)
                else:
                    # An ended job's result may still be on its way through a network file system.
                    waited = time.monotonic() - since.setdefault(i, time.monotonic())
                    if waited > (_RESULT_GRACE_S if state else _LOST_AFTER_S):
                        returns[i] = _ended_without_result(job, state or "(Slurm no longer knows it)")
            if returns[i] is not None:
                pending.discard(i)
                _announce(todo[i], sweep_dir, returns[i])
        if pending:
            time.sleep(_POLL_S)
    return returns  # type: ignore[return-value]


def _cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def launch_local(launcher: Any, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> list[JobReturn]:
    """Run the jobs as local processes through submitit, at most `max_parallel` at once (submitit's
    local executor alone starts them all at once: 64 TensorFlow processes would not fit in memory)."""
    todo = submissions(launcher, job_overrides, initial_job_idx)
    sweep_dir = _sweep_dir(launcher)
    log.info(f"Local sweep output dir : {sweep_dir}")
    limit = launcher.params.get("max_parallel")
    limit = _cpu_count() if limit is None else limit
    if limit < 1:
        raise CompactHydraException(f"hydra.launcher.max_parallel={limit} is invalid: it must be >= 1")
    executors: dict[str, Any] = {}
    singletons = Singleton.get_state()
    jobs: list[Any] = []
    returns: dict[int, JobReturn] = {}
    for job in todo:
        while len(jobs) - len(returns) >= limit:
            _collect_done(todo, jobs, returns, sweep_dir)
        key = json.dumps(job.params, sort_keys=True, default=str)
        if key not in executors:
            executors[key] = _executor("local", job.params)
        jobs.append(executors[key].submit(launcher, *_job_args(job, singletons)))
    while len(returns) < len(jobs):
        _collect_done(todo, jobs, returns, sweep_dir)
    return [returns[i] for i in range(len(jobs))]


def _collect_done(todo: list[Submission], jobs: list[Any], returns: dict[int, JobReturn], sweep_dir: Path) -> None:
    """Take the result of each local job that has finished since, saying so; wait a moment if none."""
    finished = [i for i, job in enumerate(jobs) if i not in returns and job.done()]
    for i in finished:
        returns[i] = _result(jobs[i])
        _announce(todo[i], sweep_dir, returns[i])
    if not finished:
        time.sleep(0.1)
