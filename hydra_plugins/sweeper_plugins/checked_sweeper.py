"""Hydra's grid sweeper, checking every job's config before the first job runs.

Selected in conf/config.yaml with `override hydra/sweeper: checked`; takes the same settings as
Hydra's basic sweeper (`hydra.sweeper.params`, `max_batch_size`).
"""
from dataclasses import dataclass
from typing import Dict, Optional, Sequence

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.config_store import ConfigStore


@dataclass
class CheckedSweeperConf:
    _target_: str = "hydra_plugins.sweeper_plugins.checked_sweeper.CheckedSweeper"
    max_batch_size: Optional[int] = None      # None: one batch with every job
    params: Optional[Dict[str, str]] = None   # the grid, as in Hydra's basic sweeper


ConfigStore.instance().store(group="hydra/sweeper", name="checked", node=CheckedSweeperConf, provider="hpc-sweeper")


class CheckedSweeper(BasicSweeper):
    def validate_batch_is_legal(self, batch: Sequence[Sequence[str]]) -> None:
        # Called before each batch runs; the first call checks the jobs of every batch.
        if self.batch_index == 1:
            self._check_every_job()

    def _check_every_job(self) -> None:
        """Compose each job's config (as Hydra's own check does, but composing once per
        combination of group options: sweeper/compose.py) and validate it."""
        from sweeper.compose import job_configs
        from sweeper.config import check_or_exit

        every_job = [overrides for job_batch in self.overrides for overrides in job_batch]
        for cfg in job_configs(self.hydra_context.config_loader, self.config, every_job):
            check_or_exit(cfg)
