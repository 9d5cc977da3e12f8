"""A sweep's jobs, planned and claimed before anything runs, and handed to the launcher: shared by
the grid sweeper (sweeper/sweep/grid.py) and the search (sweeper/sweep/search.py).

Planning composes each combination of config groups once and each job's config by a dictionary
merge (sweeper/launching/compose.py), validates it, refuses a sweep directory that holds other
work, and writes the sweep's job list as a stream; launching hands the planned jobs to the
launcher with the sweep's run context. No config is held for every job of a big grid: the grid
asks for the configs of a batch at a time (`configs`).
"""
from __future__ import annotations

import os
import pickle
import time
from pathlib import Path
from typing import Any, Sequence

import msgspec
from hydra.core.utils import JobReturn
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext
from omegaconf import DictConfig

from sweeper.hydra_private import in_this_process
from sweeper.hparams import applicable_hparams, check_or_exit, hparams_of, recorded_keys
from sweeper.schema import top_level_types
from sweeper.job.context import RunContext
from sweeper.job.fingerprint import MismatchError, every_mismatch, finished_record
from sweeper.job.planned import PlannedJob
from sweeper.job.record import RECORD_NAME
from sweeper.launching import in_process
from sweeper.launching.compose import Planner, SweepPoint
from sweeper.refusals import Applicability, DataCheck, check_additions, check_bypass, check_workers, takes, value_keys
from sweeper.errors import refuse
from sweeper.job import manifest
from sweeper.job.index import read_index


# A grid larger than this says its size before it checks its jobs, and how far it got every
# BIG_GRID jobs or PLANNING_LINE_S seconds (a 1,000,000-job grid checks for minutes).
BIG_GRID = int(os.environ.get("SWEEPER_BIG_GRID", "100000"))
PLANNING_LINE_S = 10.0


class _Checking:
    """The lines of a big grid's planning: its size at once, then how many jobs are checked."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.shown = total > BIG_GRID
        self.last = time.monotonic()
        if self.shown:
            print(f"checking {total:,} jobs before the first starts ...", flush=True)

    def checked(self, count: int) -> None:
        if self.shown and (count % BIG_GRID == 0 or time.monotonic() - self.last >= PLANNING_LINE_S):
            self.last = time.monotonic()
            print(f"checked {count:,} of {self.total:,} jobs", flush=True)


class _Checks:
    """What is checked of a sweep's jobs before anything is written: each combination's config once
    (its settings, the keys it bypasses or adds, its data), each job's values."""

    def __init__(self) -> None:
        self.applicability = Applicability()
        self.data = DataCheck()
        self.seen: dict[int, tuple[tuple[str, ...], str, frozenset[str]]] = {}  # by combination: hyperparameters it
        # takes, who takes them, its keys that hold one value
        self.recorded: dict[int, tuple[tuple[str, str | None], ...]] = {}  # by combination: its records' hparams keys
        self.types: dict[int, dict[str, Any]] = {}  # by combination: its top-level keys' types (resolved configs have none)
        self.reading: set[int] = set()  # the combinations with a job to run: their data is checked
        self.configs: dict[int, DictConfig] = {}  # by combination: its launcher, sweeper and task, for check_workers

    def add(self, job: SweepPoint, cfg: DictConfig | None, resolved: dict[Any, Any]) -> dict[str, Any]:
        """Check the job (`cfg`: its config, given for a combination's first job); return what its
        record's `hparams` will hold."""
        combination = id(job.combination)
        if cfg is not None and combination not in self.seen:
            check_bypass(cfg, job.overrides)  # only the overrides that are not hyperparameters matter:
            check_additions(cfg, job.overrides)  # the same for the combination's every job
            self.seen[combination] = tuple(applicable_hparams(cfg)), takes(cfg), value_keys(cfg)
            self.recorded[combination] = recorded_keys(cfg)
            self.types[combination] = top_level_types(cfg)
            self.configs[combination] = cfg
        check_or_exit(resolved, self.types[combination])
        check_workers(self.configs[combination], int(resolved.get("nodes") or 1))  # nodes: the job's own
        used, who, values = self.seen[combination]
        self.applicability.add_job(used, who, job.overrides, values)
        return hparams_of(self.recorded[combination], resolved)

    def to_run(self, job: SweepPoint, planner: Planner) -> None:
        """The job runs (it was not done before): the data its combination reads is checked."""
        if id(job.combination) not in self.reading:
            self.reading.add(id(job.combination))
            self.data.add(planner.config(job))

    def check(self) -> None:
        self.applicability.check()
        self.data.check()  # the data every job reads, once, before the first job (and before jobs.json)


def planner_for(hydra_context: HydraContext, config: DictConfig, launcher: Launcher | None) -> Planner:
    """The sweep's planner: with each job's resources where one of our launchers submits the jobs."""
    submits = hasattr(launcher, "launch_planned") and not in_this_process(launcher)
    return Planner(hydra_context.config_loader, config, resources=submits)


def plan_sweep(hydra_context: HydraContext, config: DictConfig, launcher: Launcher | None,
               overrides: Sequence[Sequence[str]], sweep_dir: Path, *, sweeper: str, first: int = 0,
               total: int | None = None, planner: Planner | None = None,
               keep_config: bool = True) -> tuple[list[PlannedJob], dict[int, Path]]:
    """Plan the jobs (numbers `first`...), check each, claim the sweep directory with their job
    list. Returns the jobs still to run, and those done before (same configuration, finished
    record) by number. `total`: a search's number of trials (its job list grows as it asks them).
    The jobs that run in this process get their config unless `keep_config` is False (then ask
    `configs` for a batch at a time, with the same `planner`)."""
    done: dict[int, Path] = {}
    to_run: list[PlannedJob] = []
    indexed = read_index(sweep_dir)  # a resume's finished jobs: from the index, not their record files
    planner = planner or planner_for(hydra_context, config, launcher)
    checks = _Checks()
    written = manifest.Writer(sweeper, total is not None, len(overrides) if total is None else total)
    rows: dict[int, manifest.ListedJob] = {}  # by combination: its first job's row, which the others copy
    mismatched: list[MismatchError] = []  # job directories holding another configuration's record
    checking = _Checking(len(overrides) if total is None else 0)  # a search plans a trial at a time
    try:
        for count, (num, job_overrides) in enumerate(enumerate(overrides, start=first), start=1):
            job = planner.job(num, job_overrides)
            planned, resolved = planner.plan(job)
            new = id(job.combination) not in rows
            cfg = planner.config(job) if new else None
            hparams = checks.add(job, cfg, resolved)
            planned.hparams = hparams
            if new:
                rows[id(job.combination)] = manifest.listed_job(planned, planner.config(job))
            row = msgspec.structs.replace(rows[id(job.combination)], num=planned.num, dir=planned.dir,
                                          overrides=planned.overrides, fingerprint=planned.fingerprint,
                                          hparams=hparams,
                                          trial=planned.num if total is not None else None)
            written.add(row)
            try:
                before = (sweep_dir / planned.dir / RECORD_NAME).exists() and finished_record(
                    sweep_dir / planned.dir, planned.fingerprint, planned.overrides, planned.former,
                    planner.config(job), indexed.get(planned.dir))
            except MismatchError as e:  # every such directory is named at once, below
                mismatched.append(e)
                continue
            if before:
                done[planned.num] = sweep_dir / planned.dir
            else:
                checks.to_run(job, planner)
                to_run.append(planned)
            checking.checked(count)
        if mismatched:
            raise every_mismatch(mismatched, sweep_dir)
        checks.check()
        manifest.claim(sweep_dir, written, lambda num: _identity(planner, num, overrides[num - first]))
    except (MismatchError, manifest.DamagedManifest) as e:
        refuse(str(e))
    finally:
        written.close()
    if in_this_process(launcher) and keep_config:
        configs(planner, to_run)
    return to_run, done


def _identity(planner: Planner, num: int, overrides: Sequence[str]) -> tuple[tuple[str, ...], DictConfig]:
    job = planner.job(num, overrides)
    return planner.former(job), planner.config(job)


def configs(planner: Planner, jobs: list[PlannedJob]) -> None:
    """Give each job (planned by `planner`) a copy of its composed config, to run in this process.
    A copy through pickle (which OmegaConf supports) takes half a deepcopy's time: ~5 ms a job."""
    for job in jobs:
        job.config = pickle.loads(pickle.dumps(planner.config(planner.job(job.num, job.overrides))))


def launch(launcher: Launcher, jobs: list[PlannedJob], context: RunContext) -> list[JobReturn]:
    """Run the planned jobs with the sweep's launcher: in this process with the configs planned
    (Hydra's basic launcher), through our launchers' `launch_planned`, or, for any other launcher,
    through Hydra's launcher API (overrides), one call per run of consecutive job numbers."""
    if not jobs:
        return []
    if in_this_process(launcher):
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
