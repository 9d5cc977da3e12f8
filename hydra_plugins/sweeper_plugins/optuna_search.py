"""`hydra/sweeper=optuna_search`: a search with Optuna (>= 4) that prunes hopeless trials and
survives a crash. Its work is in sweeper/sweep/search.py, its settings in sweeper/sweep/settings.py
(see the README's "Search and early stopping")."""
from typing import Any, List, Optional

from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

from sweeper.sweep.search import Search


class OptunaSweeper(Sweeper):
    def __init__(self, sampler: Any, pruner: Any, direction: Any, storage: Optional[str], study_name: Optional[str],
                 n_trials: int, n_jobs: int, max_failure_rate: float, params: Optional[DictConfig]) -> None:
        self.sweeper = Search(sampler, pruner, direction, storage, study_name, n_trials, n_jobs, max_failure_rate,
                              params)

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.sweeper.setup(hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: List[str]) -> None:
        self.sweeper.sweep(arguments)
