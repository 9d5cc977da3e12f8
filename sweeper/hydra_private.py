"""Every use of Hydra's and OmegaConf's private names (`hydra._internal`, `omegaconf._utils`, a
name with a leading underscore), in this one module: a new Hydra or OmegaConf that changes them
breaks here, and tests/test_imports.py keeps the rest of the project on the public API.

Each use says why the public API cannot do it. Checked against hydra-core 1.3.2 and 1.3.8 and
omegaconf 2.3.0 and 2.3.1 (pyproject: hydra-core>=1.3.2,<1.4, omegaconf>=2.3,<2.5): the files
these names live in (hydra/_internal/core_plugins/basic_sweeper.py and basic_launcher.py,
hydra/_internal/utils.py and config_loader_impl.py; omegaconf/_utils.py, base.py,
basecontainer.py, omegaconf.py) are identical between the two releases of each, and JobReturn
(hydra/core/utils.py) too. Both hydra-core releases ask omegaconf<2.4, so 2.4 is not installed
beside them; its wheel still has these names. tests/test_big_sweep.py compares an in-process
grid's files and JobReturns with Hydra's own `run_job`, which is what these uses stand in for.
"""
from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any, Sequence, TypeGuard

from hydra.core.override_parser.types import Override
from hydra.core.utils import JobReturn
from hydra.plugins.launcher import Launcher
from omegaconf import DictConfig, Node, flag_override

# Hydra's own grid sweeper and in-process launcher (`hydra/sweeper=basic`, `hydra/launcher=basic`).
# Hydra exposes them only through their configs' `_target_`; no public module names the classes.
# The grid sweep extends the sweeper (its expansion of `a=1,2 b=3,4` into jobs and its batches),
# the course and the grid-size check expand a grid with its `split_arguments`, so that a grid is
# expanded the one way Hydra does; the launcher's class tells that the jobs run in this process.
# Hydra's plugin discovery runs these modules again (Plugins._scan_all_plugins: exec_module on the
# loaded module), which makes new classes: `BasicSweeper` (`super(BasicSweeper, self)`) and the
# launcher Hydra instantiates are the new ones. So the classes are read from their modules when
# they are asked for (`__getattr__` below, `in_this_process`), never kept from this module's import.
from hydra._internal.core_plugins import basic_launcher, basic_sweeper

# `hydra.job.override_dirname` as Hydra's config loader sets it. The public route is a full
# composition of each job (`load_sweep_config`, ~50 ms a job), which sweeper/launching/compose.py
# exists to avoid; copying the function would be a second way to say the same.
from hydra._internal.config_loader_impl import get_overrides_dirname

# Hydra's command-line parser (`--config-dir`, `-cn`, the overrides, ...). `hydra.main` builds it
# inside its decorator and exposes nothing; sweeper/refusals.py reads a command line before
# Hydra does, and a parser of our own would drift from Hydra's flags.
from hydra._internal.utils import get_args_parser

# OmegaConf's YAML representer of strings (it quotes `"true"`, `"1"`, `"1e-3"` so that they read
# back as strings). Public only inside OmegaConf.to_yaml, which emits with PyYAML's pure-Python
# dumper: 5x slower, 10 ms a job for `.hydra/hydra.yaml` (sweeper/launching/in_process.py).
from omegaconf._utils import get_omega_conf_dumper

__all__ = ["BasicLauncher", "BasicSweeper", "grid_of", "holding", "in_this_process", "overrides_dirname",
           "parse_args", "returned_value", "str_representer"]


if TYPE_CHECKING:
    from hydra._internal.core_plugins.basic_launcher import BasicLauncher
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
else:
    def __getattr__(name: str) -> Any:
        """`BasicLauncher`, `BasicSweeper`: the classes as their modules hold them now (see above)."""
        if name in ("BasicLauncher", "BasicSweeper"):
            return getattr(basic_launcher if name == "BasicLauncher" else basic_sweeper, name)
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def in_this_process(launcher: Launcher | None) -> TypeGuard[BasicLauncher]:
    """Whether the sweep's launcher is Hydra's basic one, which runs the jobs in this process."""
    return isinstance(launcher, basic_launcher.BasicLauncher)


def grid_of(parsed: Sequence[Override], max_batch_size: int | None = None) -> list[list[list[str]]]:
    """The jobs of a grid's parsed overrides, in batches, as Hydra's basic sweeper expands them."""
    return basic_sweeper.BasicSweeper.split_arguments(list(parsed), max_batch_size)


def overrides_dirname(parsed: Sequence[Override], config: DictConfig) -> str:
    """`hydra.job.override_dirname` of a job's parsed overrides, under `config`'s settings for it."""
    settings = config.hydra.job.config.override_dirname
    return get_overrides_dirname(overrides=list(parsed), kv_sep=settings.kv_sep, item_sep=settings.item_sep,
                                 exclude_keys=settings.exclude_keys)


def str_representer() -> Any:
    """OmegaConf's representer of `str` for a yaml Dumper (see get_omega_conf_dumper above)."""
    return get_omega_conf_dumper().str_representer


def parse_args(argv: Sequence[str]) -> tuple[argparse.Namespace, list[str]]:
    """Hydra's reading of a command line (see get_args_parser above): its flags, and what it left."""
    return get_args_parser().parse_known_args(list(argv))


def holding(config: DictConfig, keys: list[str]) -> DictConfig:
    """A config of `config`'s nodes `keys` themselves, not copies, each still a child of `config`
    (its interpolations resolve there), as Hydra's run_job gives the task and HydraConfig theirs.

    OmegaConf's public routes copy: `masked_copy` and assigning a node deep-copy it (7 ms a job for
    Hydra's node). The flag `no_deepcopy_set_nodes` (public through flag_override) makes assigning
    keep the node, but only the private `_get_node` gives a node itself (`config[key]` resolves
    a value, `items_ex(resolve=False)` gives a value node's content), and the node then has the
    holder as its parent: the private `_set_parent` gives it back to `config`, as Hydra's own
    `HydraConfig.set_config` does for its node."""
    holder = DictConfig({})
    with flag_override(holder, "no_deepcopy_set_nodes", True):
        for key in keys:
            node = config._get_node(key)
            assert isinstance(node, Node)  # a key of the config: a node
            holder[key] = node
            node._set_parent(config)  # the holder took it as its child
    return holder


def returned_value(returned: JobReturn) -> Any:
    """A job's return value, or for a failed job the exception it raised, without raising it.
    Hydra's public `JobReturn.return_value` raises a failed job's exception and writes `Error
    executing job ...` to stderr first: the sweeper reads failures to say them in its own line.
    (Setting it has a public route: the `return_value` setter.)"""
    return returned._return_value
