"""`hydra/sweeper=listed_optuna`: the stock Optuna sweeper (hydra-optuna-sweeper), whose trials are
added to the sweep's job list (`jobs.json`, sweeper/sweep/manifest.py) as it asks for them, so that
collate, status and report know every trial and how many are still to come; each trial's line has
`[k/N]` in front and the search ends with the grid's summary line (sweeper/sweep/progress.py). Its
settings are the stock plugin's (`hydra.sweeper.n_trials`, `sampler`, `params`, ...).
"""
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, List, Sequence

from hydra.core.config_store import ConfigStore
from hydra.core.utils import JobReturn
from hydra.plugins.launcher import Launcher

try:  # the `optuna` extra: without it this sweeper is not offered
    from hydra_plugins.hydra_optuna_sweeper.config import OptunaSweeperConf
    from hydra_plugins.hydra_optuna_sweeper.optuna_sweeper import OptunaSweeper
except ImportError:
    OptunaSweeper = None


class _Listing(Launcher):
    """Adds each batch of trials to the job list, then hands it to the launcher."""

    def __init__(self, launcher: Launcher, search: Any):
        self.launcher = launcher
        self.search = search  # the stock OptunaSweeperImpl: its n_trials may change as it starts

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from sweeper.launching.compose import job_configs
        from sweeper.sweep import manifest, progress

        config, loader = self.search.config, self.search.hydra_context.config_loader
        entries = []
        for cfg, overrides in zip(job_configs(loader, config, job_overrides, initial_job_idx), job_overrides):
            entry = manifest.entry_of(cfg, list(overrides))
            entry.trial = entry.num
            entries.append(entry)
        manifest.append(Path(str(config.hydra.sweep.dir)), "OptunaSweeper", self.search.n_trials, entries)
        if progress.current is not None:
            progress.current.total = self.search.n_trials
        return self.launcher.launch(job_overrides, initial_job_idx)

    def setup(self, **kwargs: Any) -> None:
        self.launcher.setup(**kwargs)


if OptunaSweeper is not None:

    @dataclass
    class ListedOptunaConf(OptunaSweeperConf):
        _target_: str = "hydra_plugins.sweeper_plugins.listed_optuna.ListedOptunaSweeper"

    ConfigStore.instance().store(group="hydra/sweeper", name="listed_optuna", node=ListedOptunaConf,
                                 provider="hpc-sweeper")

    class ListedOptunaSweeper(OptunaSweeper):
        def setup(self, **kwargs: Any) -> None:
            super().setup(**kwargs)
            self.sweeper.launcher = _Listing(self.sweeper.launcher, self.sweeper)

        def sweep(self, arguments: List[str]) -> None:
            """The stock search, with `[k/N]` progress and the summary line at the end."""
            from omegaconf import OmegaConf

            from sweeper.sweep import progress

            progress.start(self.sweeper.n_trials)
            start = time.perf_counter()
            super().sweep(arguments)
            config = self.sweeper.config
            if OmegaConf.select(config, "hydra.launcher.wait", default=True):
                progress.end(Path(str(config.hydra.sweep.dir)), time.perf_counter() - start)
