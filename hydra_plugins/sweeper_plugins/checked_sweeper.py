"""Hydra's grid sweeper, made for long sweeps that break.

Before the first job runs it checks every job's config and skips the jobs already done in the
sweep directory (same configuration, finished record). It prints `[k/N]` progress, a summary at the
end, and exits non-zero when a job failed. Selected in conf/config.yaml with
`override hydra/sweeper: checked`; takes the settings of Hydra's basic sweeper
(`hydra.sweeper.params`, `max_batch_size`).
"""
import copy
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

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


def _restore(path: Path, content: Optional[bytes]) -> None:
    if content is not None:
        path.write_bytes(content)
        return
    path.unlink(missing_ok=True)
    try:
        path.parent.rmdir()  # only if the refused sweep left it empty
    except OSError:
        pass


class _ComposingLoader:
    """Hydra's config loader for the in-process launcher, answering each job's composition from
    sweeper/compose.py (one full composition per combination of group options; about 2 ms a job
    against 40 ms) in the sweep's order; anything else goes to Hydra's loader."""

    def __init__(self, loader: Any, master: Any, jobs: List[List[str]]):
        from sweeper.compose import job_configs

        self._loader = loader
        self._jobs = iter(jobs)
        self._configs = job_configs(loader, master, jobs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)

    def load_sweep_config(self, master_config: Any, sweep_overrides: List[str]) -> Any:
        for overrides, cfg in zip(self._jobs, self._configs):  # past the jobs done before
            if list(overrides) == list(sweep_overrides):
                return copy.deepcopy(cfg)  # job_configs reuses its object for the next job
        return self._loader.load_sweep_config(master_config=master_config, sweep_overrides=sweep_overrides)


class CheckedSweeper(BasicSweeper):
    def sweep(self, arguments: List[str]) -> Any:
        from sweeper import progress

        self.done: Dict[int, Path] = {}       # jobs finished before, by index
        self.job_dirs: Dict[int, Path] = {}   # every job's directory, by index
        self.launcher = _SkipDone(self.launcher, self.done)
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        stored = sweep_dir / "multirun.yaml"
        previous = stored.read_bytes() if stored.exists() else None
        start = time.perf_counter()
        try:
            returns = super().sweep(arguments)
        except SystemExit as e:
            if e.code == 2:  # refused before any job ran: leave the directory as it was
                _restore(stored, previous)
            raise
        except KeyboardInterrupt:
            print(f"\ninterrupted; finish the sweep with: python -m sweeper resume {sweep_dir}", flush=True)
            raise SystemExit(130) from None
        if not OmegaConf.select(self.config, "hydra.launcher.wait", default=True):
            return returns  # submitted only: `python -m sweeper status` follows the jobs
        ran = [job_dir for idx, job_dir in self.job_dirs.items() if idx not in self.done]
        statuses = progress.job_statuses(sweep_dir, ran)
        print(progress.summary_line(statuses, len(self.done), time.perf_counter() - start, sweep_dir), flush=True)
        failed = [str(d) for d, status in statuses.items() if status not in ("ok", "diverged")]
        if failed:
            print(f"error: {len(failed)} job(s) did not finish: {' '.join(failed)}", flush=True)
            raise SystemExit(1)
        return returns

    def validate_batch_is_legal(self, batch: Sequence[Sequence[str]]) -> None:
        # Called before each batch runs; the first call checks the jobs of every batch.
        if self.batch_index != 1:
            return
        from sweeper import progress

        jobs = [list(overrides) for job_batch in self.overrides for overrides in job_batch]
        self._check_every_job(jobs)
        if isinstance(self.launcher.launcher, BasicLauncher):  # in process: compose jobs the quick way
            context = self.launcher.launcher.hydra_context
            loader = _ComposingLoader(context.config_loader, self.config, jobs)
            self.launcher.launcher.hydra_context = HydraContext(config_loader=loader, callbacks=context.callbacks)
        progress.current = progress.Progress(len(jobs))
        for idx, job_dir in self.done.items():
            print(f"{progress.current.prefix()}{' '.join(jobs[idx])} -> skipped: done ({job_dir})", flush=True)

    def _check_every_job(self, jobs: List[List[str]]) -> None:
        """Compose each job's config (as Hydra's own check does, but composing once per
        combination of group options: sweeper/compose.py) and validate it; when the sweep
        directory has records already, note the jobs done there (same configuration, finished)."""
        from sweeper.compose import job_configs
        from sweeper.config import check_or_exit
        from sweeper.resume import MismatchError, finished_record, fingerprint, job_dir_of

        resuming = any(Path(str(self.config.hydra.sweep.dir)).glob("**/result.json"))
        for idx, cfg in enumerate(job_configs(self.hydra_context.config_loader, self.config, jobs)):
            check_or_exit(cfg)
            job_dir = self.job_dirs[idx] = job_dir_of(cfg)
            if not resuming:
                continue
            try:
                if finished_record(job_dir, fingerprint(cfg), jobs[idx]):
                    self.done[idx] = job_dir
            except MismatchError as e:
                print(f"error: {e}", file=sys.stderr, flush=True)
                raise SystemExit(2) from None
