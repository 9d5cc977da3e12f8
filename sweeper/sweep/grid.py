"""The grid sweep (`hydra/sweeper=checked`): Hydra's basic sweeper, made for long sweeps that break.

Before anything is written it checks every job's config, refuses a sweep directory that holds
another sweep, and writes the sweep's job list (`jobs.json`, sweeper/job/manifest.py); it skips
the jobs already done there (same configuration, finished record). It prints `[k/N]` progress, a
summary at the end, and exits non-zero when a job failed. In process, the jobs of a batch that
differ only in optimizer hyperparameters train as one computation (sweeper/job/fused_groups.py).
"""
from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobReturn
from omegaconf import OmegaConf

from sweeper.errors import refuse
from sweeper.hydra_private import BasicSweeper, in_this_process
from sweeper.job.context import JobCounter, RunContext
from sweeper.job.display import label
from sweeper.job.fused_groups import FusedPlan
from sweeper.job.planned import PlannedJob
from sweeper.refusals import check_grid_not_empty, check_grid_values, check_sweep_dir
from sweeper.job import manifest
from sweeper.sweep import progress, repeats
from sweeper.launching.collect import raise_outside_task
from sweeper.launching.compose import Planner
from sweeper.words import counted, sweeper_command
from sweeper.sweep.planning import configs, launch, plan_sweep, planner_for


IN_PROCESS_BATCH = 256  # jobs given their config at once in process: fused groups (max_fused) form within them


class GridSweep(BasicSweeper):
    def __init__(self, max_batch_size: Optional[int] = None, params: Optional[Dict[str, str]] = None,
                 fuse: bool = True, max_fused: Optional[int] = 64) -> None:
        super().__init__(max_batch_size=max_batch_size, params=params)
        if max_fused is not None and max_fused < 1:
            refuse(f"hydra.sweeper.max_fused={max_fused}: give a number of jobs >= 1 (or null: no cap)")
        self.fuse = fuse
        self.max_fused = max_fused

    def sweep(self, arguments: List[str]) -> Any:
        """Hydra's BasicSweeper.sweep, with every job checked and the sweep's job list claimed
        before anything is written (multirun.yaml included), and a summary at the end."""
        assert self.hydra_context is not None and self.config is not None and self.launcher is not None
        check_sweep_dir(str(self.config.hydra.sweep.dir))
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        params = [f"{key}={value}" for key, value in self.params.items()] + list(arguments)  # as Hydra's
        parsed = parser.parse_overrides(params)
        check_grid_values(parsed)
        check_grid_not_empty(parsed)
        parsed = parser.parse_overrides(repeats.with_seed_axis(params, parsed, self.config))
        overrides = [list(job) for batch in self.split_arguments(parsed, None) for job in batch]
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        in_process = in_this_process(self.launcher)
        planner = planner_for(self.hydra_context, self.config, self.launcher)
        try:
            return self._run(overrides, sweep_dir, planner, in_process)
        except KeyboardInterrupt:  # at any moment, from planning on
            progress.stopped(sweep_dir, self.config)

    def _run(self, overrides: List[List[str]], sweep_dir: Path, planner: Planner, in_process: bool) -> Any:
        """Plan and claim the jobs, write multirun.yaml, run the jobs to run in batches."""
        assert self.config is not None and self.hydra_context is not None and self.launcher is not None
        to_run, done = plan_sweep(self.hydra_context, self.config, self.launcher, overrides, sweep_dir,
                                  sweeper=manifest.GRID, planner=planner, keep_config=False)
        self._keep_the_larger_sweep(sweep_dir, len(overrides))
        counter = progress.start(len(overrides))
        for num, job_dir in done.items():
            print(counter.next_line(f"{label(overrides[num])} -> skipped: done ({job_dir})"), flush=True)
        start = time.perf_counter()
        returns: List[Sequence[JobReturn]] = []
        # Hydra's batches (max_batch_size) by job number; in process, at most IN_PROCESS_BATCH jobs
        # hold their config at once, so that memory does not grow with the sweep.
        size = self.max_batch_size or (IN_PROCESS_BATCH if in_process else max(len(overrides), 1))
        for _, batch in itertools.groupby(to_run, key=lambda job: job.num // size):
            jobs = list(batch)
            if in_process:
                configs(planner, jobs)
            results = launch(self.launcher, jobs, self._context(jobs, counter, planner))
            for result in results:
                raise_outside_task(result)
                result.cfg = result.hydra_cfg = None  # 100 kB a job: memory would grow with the jobs run
            for job in jobs:
                job.config = None
            returns.append(results)
        if OmegaConf.select(self.config, "hydra.launcher.wait", default=True):
            progress.end(sweep_dir, time.perf_counter() - start, done, len(overrides))
        return returns  # without waiting, `python -m sweeper status` follows the jobs

    def _keep_the_larger_sweep(self, sweep_dir: Path, jobs: int) -> None:
        """Write multirun.yaml, what `resume` runs again, unless the folder holds a sweep of more jobs
        whose first ones this command repeats (a different one is refused while planning): `resume`
        then finishes that sweep, all of its jobs, not only this command's."""
        listed = manifest.read_manifest(sweep_dir)
        if listed is not None and listed.total > jobs and (sweep_dir / "multirun.yaml").exists():
            print(f"note: {sweep_dir} holds a sweep of {counted(listed.total, 'job')}, of which this command runs the "
                  f"first {jobs}; the others run with: {sweeper_command('resume', sweep_dir)}", flush=True)
            return
        assert self.config is not None
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")

    def _context(self, jobs: List[PlannedJob], counter: JobCounter, planner: Planner) -> RunContext:
        """The batch's run context: the counter; in process, the planned jobs and their fused groups."""
        if not in_this_process(self.launcher):
            return RunContext(progress=counter)
        fused = FusedPlan(jobs, self.max_fused, planner.resolved) if self.fuse else None
        return RunContext(progress=counter, fused=fused, planned={job.num: job for job in jobs})
