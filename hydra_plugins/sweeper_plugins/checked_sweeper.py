"""`hydra/sweeper=checked`: Hydra's grid sweeper, made for long sweeps that break (the default,
selected in conf/grid_sweeper.yaml with `override hydra/sweeper: checked`).

Its work is in sweeper/sweep/grid.py, its settings in sweeper/sweep/settings.py: Hydra's basic
sweeper's (`hydra.sweeper.params`, `max_batch_size`), and `fuse` / `max_fused` (in process, the
jobs of a batch that differ only in optimizer hyperparameters train as one computation).
"""
from typing import Any, Dict, List, Optional

from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

from sweeper.sweep.grid import GridSweep


class CheckedSweeper(Sweeper):
    def __init__(self, max_batch_size: Optional[int] = None, params: Optional[Dict[str, str]] = None,
                 fuse: bool = True, max_fused: Optional[int] = 64) -> None:
        self.sweeper = GridSweep(max_batch_size=max_batch_size, params=params, fuse=fuse, max_fused=max_fused)

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.sweeper.setup(hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: List[str]) -> Any:
        return self.sweeper.sweep(arguments)
