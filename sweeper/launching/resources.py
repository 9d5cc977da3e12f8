"""Each job's Slurm (or local) resources, from its own config, and the submitit executor that
submits jobs with them: the one place where a job's resources are decided."""
from __future__ import annotations

import dataclasses
import json
import re
import shlex
import sys
from typing import TYPE_CHECKING, Any, cast

from hydra.errors import CompactHydraException
from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf, LocalQueueConf, SlurmQueueConf
from omegaconf import DictConfig, OmegaConf

from sweeper.launching.settings import LocalConf, SlurmConf
from sweeper.job.planned import PlannedJob
from sweeper.paths import job_pythonpath

if TYPE_CHECKING:
    from submitit import AutoExecutor


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


def job_resources(cfg: DictConfig) -> dict[str, Any]:
    """The submitit parameters of one job, from that job's own config: the one place that decides.

    The launcher settings (`hydra.launcher`) are resolved in the job's config, so they may depend on
    it. Nodes: the job's `nodes`, `hydra.launcher.tasks_per_node` workers on each. GPUs per worker:
    `hydra.launcher.gpus_per_node` when set, else the job's `gpus` (per node: that times the
    workers on it). CPUs per worker: `cpus_per_task`, or `cpus_per_gpu` for each GPU when that is more. The timeout signal: at
    most half the time limit before its end.
    """
    params = cast("dict[str, Any]", OmegaConf.to_container(cfg.hydra.launcher, resolve=True))  # a DictConfig's: a dict
    tasks = params.get("tasks_per_node") or 1
    params["nodes"] = int(cfg.get("nodes") or 1)  # the job's key decides, as `gpus` does
    gpus = params.get("gpus_per_node")
    if gpus is None:
        gpus = int(cfg.get("gpus") or 0)
    params["gpus_per_node"] = gpus * tasks or None  # None: no GPU option at all, for clusters without GPUs
    cpus = params.get("cpus_per_task") or 1
    params["cpus_per_task"] = max(cpus, gpus * (params.get("cpus_per_gpu") or 0))
    if params["nodes"] * tasks > 1:
        # A worker that ends makes the others' collectives fail within worker_timeout_s; the chief
        # then writes the `failed` record. Slurm ends the step a minute later whatever hangs
        # (--wait), not at once (--kill-on-bad-exit: the chief would die before writing it).
        wait = int(params.get("worker_timeout_s") or 120) + 60
        params["srun_args"] = [*(params.get("srun_args") or []), f"--wait={wait}"]
    with_signal_delay(params)
    for key in _LAUNCHER_ONLY:
        params.pop(key, None)
    return params


def with_signal_delay(params: dict[str, Any]) -> dict[str, Any]:
    """The parameters with the timeout signal at most half the time limit before its end (changed
    in place): Slurm signals a job signal_delay_s (120) before its time limit, so that it can
    requeue; with a short limit that would be at its start, before submitit handles the signal."""
    if params.get("signal_delay_s") and params.get("timeout_min"):
        params["signal_delay_s"] = min(params["signal_delay_s"], int(params["timeout_min"] * 60) // 2)
    return params


def resources_of(job: PlannedJob) -> dict[str, Any]:
    if job.resources is None:
        raise ValueError(f"job {job.num} was planned without its resources")
    return job.resources


def by_resources(jobs: list[PlannedJob], positions: list[int]) -> dict[str, list[int]]:
    """Of these positions, those of jobs with equal resources, by their resources, in the sweep's order."""
    groups: dict[str, list[int]] = {}
    for position in positions:
        groups.setdefault(json.dumps(resources_of(jobs[position]), sort_keys=True, default=str), []).append(position)
    return groups


def setting(params: dict[str, Any], key: str) -> int:
    """A launcher setting that counts jobs (`jobs_per_task`, `jobs_in_parallel`): a whole number >= 1."""
    value = params.get(key, 1)
    if not isinstance(value, int) or value < 1:
        raise CompactHydraException(f"hydra.launcher.{key}={value} is invalid: it must be a whole number >= 1")
    return value


def _one_line(value: Any) -> Any:
    """A directive value without line breaks or other control characters (they become spaces)."""
    return re.sub(r"[\x00-\x1f\x7f]+", " ", value) if isinstance(value, str) else value


def safe_for_sbatch(params: dict[str, Any]) -> dict[str, Any]:
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
    the PYTHONPATH that imports the same framework and the user's task modules wherever the job
    runs (sweeper/paths.py). It runs in the submitting directory."""
    return f"env PYTHONPATH={shlex.quote(job_pythonpath())} {shlex.quote(sys.executable)}"


def executor(cluster: str, params: dict[str, Any]) -> AutoExecutor:
    """A submitit executor for jobs with these parameters (as the stock plugin builds one)."""
    import submitit

    init = {f"{cluster}_{key}": params[key] for key in _EXECUTOR_INIT if key in params and key != "submitit_folder"}
    made = submitit.AutoExecutor(cluster=cluster, folder=params["submitit_folder"], **init,
                                 **{f"{cluster}_python": _python()})
    made.update_parameters(**{key if key in _GENERIC else f"{cluster}_{key}": value
                              for key, value in params.items() if key not in _EXECUTOR_INIT})
    return made
