"""Registers this project's sweepers' settings (sweeper/sweep/settings.py) with Hydra as
`hydra/sweeper=checked` (the grid, selected by conf/grid_sweeper.yaml) and `hydra/sweeper=optuna_search`."""
from hydra.core.config_store import ConfigStore

from sweeper.sweep.settings import CheckedSweeperConf, OptunaSearchConf

ConfigStore.instance().store(group="hydra/sweeper", name="checked", node=CheckedSweeperConf, provider="hpc-sweeper")
ConfigStore.instance().store(group="hydra/sweeper", name="optuna_search", node=OptunaSearchConf,
                             provider="hpc-sweeper")
