"""The settings of this project's sweepers: the grid (`hydra/sweeper=checked`, selected by
conf/grid_sweeper.yaml) and the search (`hydra/sweeper=optuna_search`). Here, below the plugin: the
framework (the refusals) reads them, and the plugin (hydra_plugins/sweeper_plugins/config.py)
registers them with Hydra."""
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from omegaconf import MISSING


@dataclass
class CheckedSweeperConf:
    _target_: str = "hydra_plugins.sweeper_plugins.checked_sweeper.CheckedSweeper"
    max_batch_size: Optional[int] = None      # None: one batch (in process: 256 jobs at a time)
    params: Optional[Dict[str, str]] = None   # the grid, as in Hydra's basic sweeper
    fuse: bool = True                         # in process: fuse the jobs that differ only in optimizer hyperparameters
    max_fused: Optional[int] = 64             # at most this many jobs a fused group (memory); None: no cap


@dataclass
class OptunaSearchConf:
    _target_: str = "hydra_plugins.sweeper_plugins.optuna_search.OptunaSweeper"
    _recursive_: bool = False              # the sweeper makes its sampler and pruner: bad settings in one line
    defaults: List[Any] = field(default_factory=lambda: [{"sampler": "tpe"}, {"pruner": "none"}])
    sampler: Any = MISSING                 # conf/hydra/sweeper/sampler/: tpe, random, grid, cmaes
    pruner: Any = MISSING                  # conf/hydra/sweeper/pruner/: none, median, percentile, ...
    direction: str = "minimize"            # minimize | maximize: the presets take the task's
    storage: Optional[str] = None          # None: <sweep dir>/optuna.journal; or a database URL
    study_name: Optional[str] = None       # None: "search"
    n_trials: int = 20                     # the search's total, over every resume
    n_jobs: int = 2                        # trials asked per batch: with a Slurm launcher, run at once
    max_failure_rate: float = 0.0          # a batch with more failed trials than this stops the search
    params: Optional[Dict[str, str]] = None  # the search space
