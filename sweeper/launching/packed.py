"""A packed task: several jobs of a sweep run by one Slurm task (or one local process), one after
the other, or up to `jobs_in_parallel` at once in worker processes inside the task's allocation.

Each job is set up exactly as the launcher sets up an unpacked one: its config composed, Hydra's
`run_job` making its directory, `.hydra/` files and `run.log`, and the task function (`run.py`'s
main, which calls `execute`) running it. One process pays the TensorFlow import, the MNIST
load and the traces once for all its jobs. A job that raises is `failed` in its record (execute
writes it) and the task goes on; a requeued task (time limit, preemption) runs its jobs again, and
execute skips those with a finished record.
"""
from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from hydra.core.utils import JobReturn, JobStatus
from omegaconf import DictConfig, OmegaConf, open_dict

from sweeper.hydra_private import returned_value
from sweeper.job import context as run_context
from sweeper.job.context import RunContext
from sweeper.job.fused_groups import FusedPlan
from sweeper.job.planned import PlannedJob
from sweeper.launching.collect import failed_return

if TYPE_CHECKING:
    from hydra_plugins.hydra_submitit_launcher.submitit_launcher import BaseSubmititLauncher


class PackedTask:
    """The function a packed task runs: `task(jobs, singletons)` -> {job number: JobReturn}, its jobs
    planned in the sweeper's process and sent without their configs.

    It holds the launcher (which holds the sweep's config and Hydra's context), as the stock
    launcher is itself the function of an unpacked job; submitit pickles it for the task.
    """

    def __init__(self, launcher: BaseSubmititLauncher, jobs_in_parallel: int = 1):
        self.launcher = launcher
        self.jobs_in_parallel = jobs_in_parallel

    def __call__(self, jobs: Sequence[PlannedJob], singletons: dict[Any, Any]) -> dict[int, JobReturn]:
        if self.jobs_in_parallel > 1 and len(jobs) > 1:
            return _in_workers(self.launcher, list(jobs), singletons, self.jobs_in_parallel)
        _set_up(singletons)
        context = plan_here(self.launcher, jobs)
        with run_context.active(context):
            return {job.num: run_one(self.launcher, job, context) for job in jobs}

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        """Requeue the task with the same jobs: those finished before are skipped (execute)."""
        import submitit

        return submitit.helpers.DelayedSubmission(self, *args, **kwargs)


def _set_up(singletons: dict[Any, Any]) -> None:
    """Hydra's global state in this process, as the stock launcher sets it for each job."""
    from hydra.core.singleton import Singleton
    from hydra.core.utils import setup_globals

    Singleton.set_state(singletons)
    setup_globals()


def _task_id() -> str:
    try:
        import submitit

        return str(submitit.JobEnvironment().job_id)
    except RuntimeError:  # not in a submitit job (a worker started with another environment)
        return os.environ.get("SLURM_JOB_ID", "local")


def _job_config(launcher: BaseSubmititLauncher, job: PlannedJob) -> DictConfig:
    """The job's config as the stock launcher composes it: hydra.job.num is its directory."""
    assert launcher.hydra_context is not None and launcher.config is not None
    cfg = launcher.hydra_context.config_loader.load_sweep_config(launcher.config, list(job.overrides))
    with open_dict(cfg.hydra.job):
        cfg.hydra.job.id = _task_id()
        cfg.hydra.job.num = job.num
    return cfg


def plan_here(launcher: BaseSubmititLauncher, jobs: Sequence[PlannedJob]) -> RunContext:
    """The task's run context: each job composed once here (a full composition costs tens of ms a
    job), keeping what the sweep planned (its fingerprint: not computed again), and its jobs that
    differ only in optimizer hyperparameters fused into one computation as in the in-process
    sweep (sweeper/job/fused_groups.py), unless `hydra.sweeper.fuse=false`.
    Jobs run in worker processes (`jobs_in_parallel` > 1) are not fused. A job whose config does
    not compose fails alone when it runs (run_one)."""
    context = RunContext()
    for job in jobs:
        try:
            cfg = _job_config(launcher, job)
            context.planned[job.num] = job.composed(cfg, Path(str(cfg.hydra.sweep.dir)) / job.dir)
        except Exception:
            continue
    assert launcher.config is not None
    if len(context.planned) > 1 and OmegaConf.select(launcher.config, "hydra.sweeper.fuse", default=False):
        context.fused = FusedPlan(context.planned.values(),
                                  OmegaConf.select(launcher.config, "hydra.sweeper.max_fused", default=None))
    return context


def run_one(launcher: BaseSubmititLauncher, job: PlannedJob, context: RunContext) -> JobReturn:
    """Run one job of the task as the stock launcher's `__call__` runs an unpacked one (with the
    config `plan_here` composed, where it did); an error outside the job's own code (its execute
    writes `failed` for errors inside) is its result."""
    from hydra.core.utils import run_job

    try:
        planned = context.planned.get(job.num)
        cfg = planned.cfg if planned is not None else _job_config(launcher, job)
        assert launcher.hydra_context is not None and launcher.task_function is not None
        return run_job(hydra_context=launcher.hydra_context, task_function=launcher.task_function, config=cfg,
                       job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir")
    except Exception as e:  # the task goes on with its next job
        return failed_return(e, list(job.overrides))


def cpu_shares(cpus: Sequence[int], workers: int) -> list[list[int]]:
    """The task's CPUs split between its workers, as evenly as they go; with fewer CPUs than
    workers, workers share."""
    cpus = sorted(cpus)
    if len(cpus) < workers:
        return [[cpus[i % len(cpus)]] for i in range(workers)]
    return [cpus[i::workers] for i in range(workers)]


_worker: dict[str, Any] = {}


def _start_worker(pickled: bytes, shares: Any) -> None:
    """A worker process: its share of the task's CPUs, TensorFlow's memory growth on (the workers
    share the task's GPUs), Hydra's state set once."""
    import cloudpickle

    launcher, singletons = cloudpickle.loads(pickled)
    # Slurm's warning before the time limit (or preemption) is the task's to handle: it requeues
    # the task, whose jobs then continue (the one running here from its last epoch).
    signal.signal(signal.SIGUSR2, signal.SIG_IGN)
    share = shares.get()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, share)
    os.environ["TF_FORCE_GPU_ALLOW_GROWTH"] = "true"
    _worker["launcher"] = launcher
    _set_up(singletons)


def _run_in_worker(job: PlannedJob) -> JobReturn:
    """The job's JobReturn without its configs (they hold classes the worker loaded by value,
    which do not pickle back): the launcher reads its status and value only."""
    context = plan_here(_worker["launcher"], [job])  # one job: nothing to fuse
    with run_context.active(context):
        returned = run_one(_worker["launcher"], job, context)
    value = returned_value(returned)
    if returned.status == JobStatus.FAILED and not _picklable(value):
        value = RuntimeError(f"{type(value).__name__}: {value}")
    result = JobReturn(overrides=returned.overrides, status=returned.status, working_dir=returned.working_dir,
                       task_name=returned.task_name)
    result.return_value = value
    return result


def _picklable(value: Any) -> bool:
    import pickle

    try:
        pickle.dumps(value)
        return True
    except Exception:
        return False


def _in_workers(launcher: BaseSubmititLauncher, jobs: list[PlannedJob], singletons: dict[Any, Any],
                workers: int) -> dict[int, JobReturn]:
    """Run the jobs in `workers` processes (spawned: none inherits a started TensorFlow), each job
    as soon as a worker is free, in the task's order."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    import cloudpickle  # as submitit pickles the launcher: its task function is run.py's `main`

    workers = min(workers, len(jobs))
    context = multiprocessing.get_context("spawn")
    shares = context.Queue()
    cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else range(os.cpu_count() or 1)
    for share in cpu_shares(list(cpus), workers):
        shares.put(share)
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker,
                             initargs=(cloudpickle.dumps((launcher, singletons)), shares)) as pool:
        futures = {job.num: pool.submit(_run_in_worker, job) for job in jobs}
        returns = {}
        for job, future in zip(jobs, futures.values()):
            try:
                returns[job.num] = future.result()
            except Exception as e:  # a worker that died (out of memory, a crash in TensorFlow)
                returns[job.num] = failed_return(e, list(job.overrides))
    return returns
