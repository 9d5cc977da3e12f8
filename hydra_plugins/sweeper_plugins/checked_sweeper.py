"""Hydra's grid sweeper, checking every job's config before the first job runs.

Selected in conf/config.yaml with `override hydra/sweeper: checked`; takes the same settings as
Hydra's basic sweeper (`hydra.sweeper.params`, `max_batch_size`).
"""
from dataclasses import dataclass
from typing import Any, Dict, Optional, Sequence

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import OverrideType


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
        """Compose each job's config (as Hydra's own check does) and validate it.

        A grid mostly varies top-level hyperparameters (lr=0.1,0.01): those are set on a config
        composed once per combination of the other overrides, since a full composition per job
        (about 40 ms) would cost more than training a job of exercise 1.
        """
        from sweeper.config import CHECKED_KEYS, HPARAMS, check_or_exit

        loader = self.hydra_context.config_loader
        parser = OverridesParser.create(config_loader=loader)
        composed: Dict[tuple, Dict[str, Any]] = {}
        for job_batch in self.overrides:
            for overrides in job_batch:
                parsed = parser.parse_overrides(list(overrides))
                values = {o.key_or_group: o.value() for o in parsed
                          if o.type == OverrideType.CHANGE and o.package is None and o.key_or_group in HPARAMS}
                rest = tuple(o.input_line for o in parsed if o.key_or_group not in values)
                if rest not in composed:
                    cfg = loader.load_sweep_config(master_config=self.config, sweep_overrides=list(rest))
                    composed[rest] = {key: cfg.get(key) for key in CHECKED_KEYS}
                check_or_exit({**composed[rest], **values})
