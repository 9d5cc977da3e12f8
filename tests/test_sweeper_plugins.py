"""The two sweepers of hydra_plugins/ (`checked`, the grid; `optuna_search`, the search) as Hydra
finds them: its plugin discovery, and the config groups that name them."""
from __future__ import annotations

import pytest
from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from hydra.utils import get_class

from hydra_plugins.sweeper_plugins.checked_sweeper import CheckedSweeper
from hydra_plugins.sweeper_plugins.optuna_search import OptunaSweeper


@pytest.mark.parametrize("cls", [CheckedSweeper, OptunaSweeper])
def test_discovery(cls):
    assert cls.__name__ in [x.__name__ for x in Plugins.instance().discover(Sweeper)]


@pytest.mark.parametrize("overrides, cls", [
    ([], CheckedSweeper),                                   # the default: every grid is checked first
    (["hydra/sweeper=checked"], CheckedSweeper),
    (["hydra/sweeper=optuna_search"], OptunaSweeper),
    (["hparams_search=ex1_optuna"], OptunaSweeper),
])
def test_the_config_names_the_sweeper_hydra_instantiates(compose_cfg, overrides, cls):
    found = get_class(compose_cfg(*overrides).hydra.sweeper._target_)
    # By name: Hydra's plugin discovery may import hydra_plugins' modules a second time.
    assert (found.__module__, found.__qualname__) == (cls.__module__, cls.__qualname__)
