"""A sweep's jobs, planned and claimed before anything runs, and handed to the launcher: shared by
the grid sweeper (sweeper/sweep/grid.py) and the search (sweeper/sweep/search.py).

Planning composes each job's config once (sweeper/launching/compose.py), validates it, refuses a
sweep directory that holds other work, and writes the sweep's job list; launching hands the
planned jobs to the launcher with the sweep's run context.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Sequence

from hydra._internal.core_plugins.basic_launcher import BasicLauncher
from hydra.core.utils import JobReturn
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext
from omegaconf import DictConfig

from sweeper.hparams import check_or_exit
from sweeper.job.context import RunContext
from sweeper.job.fingerprint import MismatchError, finished_record
from sweeper.job.planned import PlannedJob
from sweeper.launching import in_process
from sweeper.launching.compose import planned_jobs
from sweeper.refusals import Applicability, DataCheck, check_additions, check_bypass
from sweeper.sweep import manifest
from sweeper.sweep.index import read_index


def _fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr, flush=True)
    raise SystemExit(2)


def plan_sweep(hydra_context: HydraContext, config: DictConfig, launcher: Launcher | None,
               overrides: Sequence[Sequence[str]], sweep_dir: Path, *, sweeper: str, first: int = 0,
               total: int | None = None) -> tuple[list[PlannedJob], dict[int, Path]]:
    """Plan the jobs (numbers `first`...), check each, claim the sweep directory with their job
    list. Returns the jobs still to run, and those done before (same configuration, finished
    record) by number. `total`: a search's number of trials (its job list grows as it asks them)."""
    done: dict[int, Path] = {}
    to_run: list[PlannedJob] = []
    rows = []
    applicability = Applicability()
    data = DataCheck()
    identities: dict[int, tuple[tuple[str, ...], DictConfig | None]] = {}
    indexed = read_index(sweep_dir)  # a resume's finished jobs: from the index, not their record files
    in_this_process = isinstance(launcher, BasicLauncher)
    submits = hasattr(launcher, "launch_planned") and not in_this_process
    try:
        for job, cfg in planned_jobs(hydra_context.config_loader, config, overrides, first,
                                     keep_config=in_this_process, resources=submits):
            check_or_exit(cfg)
            check_bypass(cfg, job.overrides)
            check_additions(cfg, job.overrides)
            applicability.add(cfg, job.overrides)
            identities[job.num] = job.former, job.config
            rows.append(manifest.listed_job(job, cfg, trial=job.num if total is not None else None))
            if finished_record(sweep_dir / job.dir, job.fingerprint, job.overrides, job.former, cfg,
                               indexed.get(job.dir)):
                done[job.num] = sweep_dir / job.dir
                job.config = None
            else:
                data.add(cfg)
                to_run.append(job)
        applicability.check()
        data.check()  # the data every job reads, once, before the first job (and before jobs.json)
        listed = manifest.Manifest(sweeper=sweeper, search=total is not None,
                                   total=len(overrides) if total is None else total, jobs=rows)
        manifest.claim(sweep_dir, listed, identities)
    except (MismatchError, manifest.DamagedManifest) as e:
        _fail(str(e))
    return to_run, done


def launch(launcher: Launcher, jobs: list[PlannedJob], context: RunContext) -> list[JobReturn]:
    """Run the planned jobs with the sweep's launcher: in this process with the configs planned
    (Hydra's basic launcher), through our launchers' `launch_planned`, or, for any other launcher,
    through Hydra's launcher API (overrides), one call per run of consecutive job numbers."""
    if not jobs:
        return []
    if isinstance(launcher, BasicLauncher):
        return in_process.launch(launcher, jobs, context)
    launch_planned: Any = getattr(launcher, "launch_planned", None)
    if launch_planned is not None:
        returned: list[JobReturn] = launch_planned(jobs, context)
        return returned
    results: list[JobReturn] = []
    start = 0
    for end in range(1, len(jobs) + 1):
        if end == len(jobs) or jobs[end].num != jobs[end - 1].num + 1:
            results += launcher.launch([job.overrides for job in jobs[start:end]], initial_job_idx=jobs[start].num)
            start = end
    return results
