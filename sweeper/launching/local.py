"""The `local` launcher's work: the jobs as local processes through submitit, at most
`max_parallel` at once, packed `jobs_per_task` to a process where asked."""
from __future__ import annotations

import json
import os
import time
from typing import TYPE_CHECKING, Any

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn
from hydra.errors import CompactHydraException

from sweeper.job.context import RunContext
from sweeper.job.planned import PlannedJob
from sweeper.launching.collect import SubmittedTask, announce, job_args, sweep_dir_of, task_results
from sweeper.launching.packed import PackedTask
from sweeper.launching.resources import by_resources, executor, resources_of, setting

if TYPE_CHECKING:
    from hydra_plugins.hydra_submitit_launcher.submitit_launcher import BaseSubmititLauncher
    from submitit import AutoExecutor



def _cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def launch(launcher: BaseSubmititLauncher, jobs: list[PlannedJob], context: RunContext) -> list[JobReturn]:
    """Run the jobs as local processes through submitit, at most `max_parallel` at once (submitit's
    local executor alone starts them all at once: 64 TensorFlow processes would not fit in memory);
    with `jobs_per_task` > 1, each process runs that many jobs of equal resources (a PackedTask)."""
    sweep_dir = sweep_dir_of(launcher)
    limit = launcher.params.get("max_parallel")
    limit = _cpu_count() if limit is None else limit
    if limit < 1:
        raise CompactHydraException(f"hydra.launcher.max_parallel={limit} is invalid: it must be >= 1")
    per_task, parallel = setting(launcher.params, "jobs_per_task"), setting(launcher.params, "jobs_in_parallel")
    packs = sorted(pack for positions in by_resources(jobs, list(range(len(jobs)))).values()
                   for pack in (positions[start:start + per_task] for start in range(0, len(positions), per_task)))
    executors: dict[str, AutoExecutor] = {}
    singletons = Singleton.get_state()
    tasks: list[SubmittedTask] = []
    returns: dict[int, JobReturn] = {}
    for pack in packs:
        while sum(not task.job.done() for task in tasks) >= limit:
            _collect_done(jobs, tasks, returns, context)
        params = resources_of(jobs[pack[0]])
        key = json.dumps(params, sort_keys=True, default=str)
        if key not in executors:
            executors[key] = executor("local", params)
        tasks.append(_submit(executors[key], launcher, jobs, pack, singletons, per_task > 1, parallel))
    while len(returns) < len(jobs):
        _collect_done(jobs, tasks, returns, context)
    return [returns[i] for i in range(len(jobs))]


def _submit(made: AutoExecutor, launcher: BaseSubmititLauncher, jobs: list[PlannedJob], pack: list[int],
            singletons: dict[Any, Any], packed: bool, parallel: int) -> SubmittedTask:
    if packed:
        sent = [jobs[i].sent() for i in pack]
        return SubmittedTask(pack, made.submit(PackedTask(launcher, parallel), sent, singletons), True, time.time())
    return SubmittedTask(pack, made.submit(launcher, *job_args(jobs[pack[0]], singletons)), False, time.time())


def _collect_done(jobs: list[PlannedJob], tasks: list[SubmittedTask], returns: dict[int, JobReturn],
                  context: RunContext) -> None:
    """Take the results of each local task that has finished since, saying so; wait a moment if none."""
    finished = [task for task in tasks if task.positions[0] not in returns and task.job.done()]
    for task in finished:
        for i, returned in task_results(task, jobs).items():
            returns[i] = returned
            announce(jobs[i], returned, context)
    if not finished:
        time.sleep(0.1)
