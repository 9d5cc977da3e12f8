"""A job's task function, built from its config's `task.run` node with `hydra.utils.instantiate`.

The node's `data: ${data}` is the data group's node (conf/data/<name>.yaml): its `_target_` is the
loader, which instantiate calls, so the task gets the loaded data; its `_check_` is the check the
sweep runs once before any job (sweeper/refusals.py DataCheck), not an argument of the loader.
The task's module and the loader's are imported with TensorFlow's start-up lines dropped.
"""
from __future__ import annotations

import functools
from typing import Any, Iterator

import hydra.utils
from hydra.errors import InstantiationException
from omegaconf import DictConfig, OmegaConf

from sweeper.training.tf import locate_quietly

CHECK = "_check_"   # a data group's check: a function called once before a sweep (optional)


def _without_checks(node: Any) -> Any:
    """A resolved node less every data node's `_check_` (instantiate would pass it to the loader)."""
    if isinstance(node, dict):
        return {key: _without_checks(value) for key, value in node.items() if key != CHECK}
    if isinstance(node, list):
        return [_without_checks(value) for value in node]
    return node


def _targets(node: Any) -> Iterator[str]:
    """Every `_target_` of a resolved node, the outer first."""
    if isinstance(node, dict):
        if isinstance(node.get("_target_"), str):
            yield node["_target_"]
        for value in node.values():
            yield from _targets(value)
    elif isinstance(node, list):
        for value in node:
            yield from _targets(value)


def _cause(error: InstantiationException) -> BaseException:
    """What the task's or the loader's own code raised (a DataError: the record names it), not
    Hydra's wrapping of it."""
    cause: BaseException = error
    while isinstance(cause, InstantiationException) and cause.__cause__ is not None:
        cause = cause.__cause__
    return cause


def build(cfg: DictConfig) -> functools.partial[Any]:
    """The task's function with its `run` node's arguments bound, its data loaded; the framework's
    arguments (sweeper.FrameworkArguments) are given when it is called."""
    node = _without_checks(OmegaConf.to_container(cfg.task.run, resolve=True))
    for target in _targets(node):
        locate_quietly(target)  # then instantiate finds the modules imported
    try:
        run: functools.partial[Any] = hydra.utils.instantiate(node, _partial_=True, _convert_="all")
    except InstantiationException as e:
        raise _cause(e) from None
    return run


def data_checks(cfg: DictConfig) -> list[tuple[str, dict[str, Any]]]:
    """(its `_check_`, the loader's arguments) of each data node the job's task reads (its `run`
    node's `data: ${data}`, by whatever name); none where it reads none, or its data group
    declares no check."""
    return list(_checks(OmegaConf.to_container(cfg.task.run, resolve=True)))


def _checks(node: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        if isinstance(node.get(CHECK), str):
            yield node[CHECK], {str(k): v for k, v in node.items() if not str(k).startswith("_")}
        for value in node.values():
            yield from _checks(value)
