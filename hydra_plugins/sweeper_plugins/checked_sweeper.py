"""Hydra's grid sweeper, made for long sweeps that break.

Before anything is written it checks every job's config, refuses a sweep directory that holds
another sweep, and writes the sweep's job list (`jobs.json`, sweeper/sweep/manifest.py); it skips
the jobs already done there (same configuration, finished record). It prints `[k/N]` progress, a
summary at the end, and exits non-zero when a job failed. Selected in conf/grid_sweeper.yaml with
`override hydra/sweeper: checked`; takes the settings of Hydra's basic sweeper
(`hydra.sweeper.params`, `max_batch_size`), and `fuse` / `max_fused`: in process, the jobs of a
batch that differ only in optimizer hyperparameters train as one computation (sweeper/job/fused_groups.py).
"""
import copy
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from hydra._internal.core_plugins.basic_launcher import BasicLauncher
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.config_store import ConfigStore
from hydra.core.utils import JobReturn
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext
from omegaconf import OmegaConf


@dataclass
class CheckedSweeperConf:
    _target_: str = "hydra_plugins.sweeper_plugins.checked_sweeper.CheckedSweeper"
    max_batch_size: Optional[int] = None      # None: one batch with every job
    params: Optional[Dict[str, str]] = None   # the grid, as in Hydra's basic sweeper
    fuse: bool = True                         # in process: fuse the jobs that differ only in optimizer hyperparameters
    max_fused: Optional[int] = 64             # at most this many jobs a fused group (memory); None: no cap


ConfigStore.instance().store(group="hydra/sweeper", name="checked", node=CheckedSweeperConf, provider="hpc-sweeper")


class _SkipDone(Launcher):
    """Hands the launcher only the jobs still to run, keeping each job's index (its directory)."""

    def __init__(self, launcher: Launcher, done: Dict[int, Path]):
        self.launcher = launcher
        self.done = done

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        results: List[JobReturn] = []
        start = None
        for offset in range(len(job_overrides) + 1):
            idx = initial_job_idx + offset
            pending = offset < len(job_overrides) and idx not in self.done
            if pending and start is None:
                start = offset
            elif not pending and start is not None:
                results += self.launcher.launch(job_overrides[start:offset], initial_job_idx + start)
                start = None
        return results

    def setup(self, **kwargs: Any) -> None:
        self.launcher.setup(**kwargs)


class _ComposingLoader:
    """Hydra's config loader for the in-process launcher, answering each job's composition with the
    config the sweeper composed when it checked the job (sweeper/launching/compose.py: one full
    composition per combination of group options, about 2 ms a job against 40 ms), so that no job
    is composed twice; anything else goes to Hydra's loader."""

    def __init__(self, loader: Any, configs: Dict[Tuple[str, ...], Any]):
        self._loader = loader
        self._configs = configs

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)

    def load_sweep_config(self, master_config: Any, sweep_overrides: List[str]) -> Any:
        cfg = self._configs.pop(tuple(sweep_overrides), None)
        if cfg is not None:
            return cfg
        return self._loader.load_sweep_config(master_config=master_config, sweep_overrides=sweep_overrides)


class CheckedSweeper(BasicSweeper):
    def __init__(self, max_batch_size: Optional[int] = None, params: Optional[Dict[str, str]] = None,
                 fuse: bool = True, max_fused: Optional[int] = 64) -> None:
        super().__init__(max_batch_size=max_batch_size, params=params)
        if max_fused is not None and max_fused < 1:
            print(f"error: hydra.sweeper.max_fused={max_fused}: give a number of jobs >= 1 (or null: no cap)",
                  file=sys.stderr, flush=True)
            raise SystemExit(2)
        self.fuse = fuse
        self.max_fused = max_fused

    def setup(self, **kwargs: Any) -> None:
        super().setup(**kwargs)
        self.composed: Dict[Tuple[str, ...], Any] = {}  # in process: each job's config, composed once
        self.entries: Dict[Tuple[str, ...], Tuple[Path, str]] = {}  # in process: directory, fingerprint

    def sweep(self, arguments: List[str]) -> Any:
        """Hydra's BasicSweeper.sweep, with every job checked and the sweep's job list claimed
        before anything is written (multirun.yaml included), and a summary at the end."""
        from hydra.core.override_parser.overrides_parser import OverridesParser

        from sweeper.refusals import check_grid_values

        params = self._parse_config() + list(arguments)
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        parsed = parser.parse_overrides(params)
        check_grid_values(parsed)
        self.overrides = self.split_arguments(parsed, self.max_batch_size)
        jobs = [list(overrides) for batch in self.overrides for overrides in batch]
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        self.done = self._check_and_claim(jobs, sweep_dir)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        self._prepare_launcher(jobs)
        start = time.perf_counter()
        returns: List[Sequence[JobReturn]] = []
        initial_job_idx = 0
        try:
            while not self.is_done():
                batch = self.get_job_batch()
                self._plan_fused(batch, initial_job_idx)
                results = self.launcher.launch(batch, initial_job_idx=initial_job_idx)
                for result in results:
                    _ = result.return_value  # raises what a job raised outside its task
                initial_job_idx += len(batch)
                returns.append(results)
        except KeyboardInterrupt:
            print(f"\ninterrupted; finish the sweep with: python -m sweeper resume {sweep_dir}", flush=True)
            raise SystemExit(130) from None
        finally:
            from sweeper.job import fused_groups

            fused_groups.forget()
        if OmegaConf.select(self.config, "hydra.launcher.wait", default=True):
            from sweeper.sweep import progress

            progress.end(sweep_dir, time.perf_counter() - start, self.done)
        return returns  # without waiting, `python -m sweeper status` follows the jobs

    def _check_and_claim(self, jobs: List[List[str]], sweep_dir: Path, first: int = 0,
                         total: Optional[int] = None) -> Dict[int, Path]:
        """Compose each job's config (once per combination of group options: sweeper/launching/
        compose.py) and validate it; refuse a directory that holds other work; write the sweep's
        job list. Returns the jobs done before (same configuration, finished record), by number.
        A search calls it for each batch of trials: jobs `first`... of a search of `total`."""
        from sweeper.hparams import check_or_exit
        from sweeper.job.fingerprint import MismatchError, finished_record
        from sweeper.launching.compose import job_configs
        from sweeper.refusals import Applicability, check_bypass
        from sweeper.sweep import manifest

        done: Dict[int, Path] = {}
        entries = []
        keep = isinstance(self.launcher, BasicLauncher)  # in process: the launcher takes these configs
        applicability = Applicability()
        loader = self.hydra_context.config_loader
        try:
            for cfg, overrides in zip(job_configs(loader, self.config, jobs, first), jobs):
                check_or_exit(cfg)
                check_bypass(cfg, overrides)
                applicability.add(cfg, overrides)
                entry = manifest.entry_of(cfg, overrides)
                entry.trial = entry.num if total is not None else None  # a search: trial N is job N
                entries.append(entry)
                if finished_record(sweep_dir / entry.dir, entry.fingerprint, overrides):
                    done[entry.num] = sweep_dir / entry.dir
                elif keep:
                    self.composed[tuple(overrides)] = copy.deepcopy(cfg)  # job_configs reuses cfg
                    self.entries[tuple(overrides)] = (sweep_dir / entry.dir, entry.fingerprint)
            applicability.check()
            listed = manifest.Manifest(sweeper=type(self).__name__, search=total is not None,
                                       total=len(jobs) if total is None else total, jobs=entries)
            manifest.claim(sweep_dir, listed)
        except (MismatchError, manifest.DamagedManifest) as e:
            print(f"error: {e}", file=sys.stderr, flush=True)
            raise SystemExit(2) from None
        return done

    def _plan_fused(self, batch: Sequence[Sequence[str]], initial_job_idx: int) -> None:
        """In process, group the batch's jobs still to run that differ only in optimizer
        hyperparameters; each group trains as one computation when its first job runs."""
        from sweeper.job import fused_groups

        if not self.fuse or not isinstance(self.launcher.launcher, BasicLauncher):
            return
        members = []
        for idx, overrides in enumerate(batch, start=initial_job_idx):
            known = self.entries.get(tuple(overrides))
            cfg = self.composed.get(tuple(overrides))
            if idx not in self.done and known is not None and cfg is not None:
                members.append(fused_groups.Member(known[0], cfg, known[1], list(overrides)))
        fused_groups.plan(members, self.max_fused)

    def _compose_in_process(self, launcher: Launcher) -> None:
        """In process, the launcher takes the configs composed when the jobs were checked."""
        if isinstance(launcher, BasicLauncher):
            context = launcher.hydra_context
            loader = _ComposingLoader(context.config_loader, self.composed)
            launcher.hydra_context = HydraContext(config_loader=loader, callbacks=context.callbacks)

    def _prepare_launcher(self, jobs: List[List[str]]) -> None:
        """Skip the jobs done before; in process, compose jobs the quick way; count progress."""
        from sweeper.job.execute import label
        from sweeper.sweep import progress

        self.launcher = _SkipDone(self.launcher, self.done)
        self._compose_in_process(self.launcher.launcher)
        progress.start(len(jobs))
        for idx, job_dir in self.done.items():
            print(f"{progress.prefix()}{label(jobs[idx])} -> skipped: done ({job_dir})", flush=True)
