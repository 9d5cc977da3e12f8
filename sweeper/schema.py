"""The config's types: a dataclass per node of conf/config.yaml and its groups (Hydra's structured
configs), and a task's `run` node typed by its function's annotations (hydra-zen's way).

The YAML files stay what the user reads. A composed job's config is checked against these types
(sweeper.hparams.validate), for the keys they name only: a task's own keys and a new task's file
work untyped. Not Hydra's schema in the defaults list: it would convert the job's values (`lr=5`
recorded as 5.0, a new fingerprint for a valid config) and accept `seed='3'` or `tensorboard=yes`
by converting them, and its wrong type is five lines, not one.
"""
from __future__ import annotations

import ast
import dataclasses
import enum
import functools
import importlib.util
import math
import re
import types
import typing
from pathlib import Path
from typing import Any, Iterator, Optional, Union

from omegaconf import MISSING, DictConfig, ListConfig, OmegaConf


class Devices(enum.Enum):
    gpu = "gpu"   # gpus=N counts GPUs
    cpu = "cpu"   # gpus=N counts logical CPU devices (the multi-GPU path, tested anywhere)


class Direction(enum.Enum):
    minimize = "minimize"
    maximize = "maximize"


@dataclasses.dataclass
class DataConf:
    """A data group's node (conf/data/<name>.yaml): its loader, its check, and the loader's
    arguments; those typed here are MNIST's (conf/data/mnist.yaml, tasks.mnist.load's), another
    group's keys work untyped."""
    _target_: str = MISSING                # the loader: the task gets what it returns
    _check_: Optional[str] = None          # called once before a sweep (sweeper/refusals.py DataCheck)
    dir: Optional[str] = None              # the four IDX files; null: Keras downloads them once
    train_samples: Optional[int] = None    # null: all; N: the first N
    test_samples: Optional[int] = None


@dataclasses.dataclass
class LoggingConf:
    tensorboard: bool = True               # TensorBoard logs in each job's directory
    keep_state: bool = False               # keep a Keras job's training state after it finished


@dataclasses.dataclass
class TaskConf:
    """conf/task/<name>.yaml's `task` node."""
    name: str = MISSING
    objective: str = MISSING               # what the job returns to a sweeper
    direction: Direction = MISSING
    run: dict[str, Any] = dataclasses.field(default_factory=dict)  # typed by the function (run_types)


@dataclasses.dataclass
class OptimizerConf:
    """conf/optimizer/<name>.yaml's `optimizer` node: a Keras optimizer and its arguments (each
    optimizer takes some of them, by interpolation of the top-level keys)."""
    _target_: str = MISSING
    name: str = MISSING
    learning_rate: float = MISSING
    momentum: float = MISSING
    beta_1: float = MISSING
    beta_2: float = MISSING
    epsilon: float = MISSING


@dataclasses.dataclass
class Config:
    """conf/config.yaml's nodes and the framework's own keys (their ranges: sweeper.hparams.REGISTRY).
    A task's or an optimizer's hyperparameters are typed where they are read: by the task function's
    annotations and the optimizer node's fields (a top-level key takes the type of what reads it,
    `typed_keys`), or by their declaration's `type`."""
    gpus: int = MISSING
    nodes: int = MISSING
    seed: int = MISSING
    repeats: int = MISSING
    devices: Devices = MISSING
    data: DataConf = dataclasses.field(default_factory=DataConf)
    logging: LoggingConf = dataclasses.field(default_factory=LoggingConf)
    task: TaskConf = dataclasses.field(default_factory=TaskConf)
    optimizer: OptimizerConf = dataclasses.field(default_factory=OptimizerConf)


# -- types in words ----------------------------------------------------------------------------------

_WORDS = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}


def _optional(tp: Any) -> tuple[Any, bool]:
    """(X, True) for Optional[X] or X | None; (tp, False) otherwise."""
    if typing.get_origin(tp) in (Union, types.UnionType):
        rest = [arg for arg in typing.get_args(tp) if arg is not type(None)]
        if len(rest) == 1:
            return rest[0], True
    return tp, False


def describe(tp: Any) -> str:
    """A type in the words of an error line and the docs' tables: `an integer or null`."""
    inner, nullable = _optional(tp)
    if isinstance(inner, type) and issubclass(inner, enum.Enum):
        words = " or ".join(member.name for member in inner)
    else:
        words = _WORDS.get(inner, "a mapping")
    return f"{words} or null" if nullable else words


def is_of(value: Any, tp: Any) -> bool:
    """Whether a config value is of a schema type, strictly: `'3'` is no integer, `true` no number
    (OmegaConf would convert them; here the job gets the value as it is), an integer is a number."""
    inner, nullable = _optional(tp)
    if value is None:
        return nullable
    if isinstance(inner, type) and issubclass(inner, enum.Enum):
        return isinstance(value, str) and value in inner.__members__
    if inner is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if inner is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if inner in (bool, str):
        return isinstance(value, inner)
    return True  # a mapping, or a type this check does not know


def leaves(schema: type = Config, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Each typed key of a schema, dotted (`data.train_samples`), and its type, in field order."""
    hints = typing.get_type_hints(schema)
    for field in dataclasses.fields(schema):
        tp = hints[field.name]
        if dataclasses.is_dataclass(tp):
            yield from leaves(tp, f"{prefix}{field.name}.")  # type: ignore[arg-type]  # a dataclass type here
        else:
            yield f"{prefix}{field.name}", tp


@functools.cache
def _typed_keys() -> tuple[tuple[str, Any], ...]:
    return tuple(leaves())


# -- a task's arguments ----------------------------------------------------------------------------

@functools.cache
def arguments(target: str) -> dict[str, ast.expr | None] | None:
    """The keyword arguments of the function `module.name` and their annotations, read from its
    source without importing it (a task's module may import TensorFlow); None when unknown or when
    it takes **kwargs."""
    module, _, name = target.rpartition(".")
    try:
        spec = importlib.util.find_spec(module)
        tree = ast.parse(Path(spec.origin).read_text())  # type: ignore[union-attr, arg-type]
    except Exception:
        return None
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            if node.args.kwarg is not None:
                return None
            return {a.arg: a.annotation for a in [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]}
    return None


_NAMES = {"int": int, "float": float, "bool": bool, "str": str}


def _annotation_type(node: ast.expr | None) -> Any:
    """int, float, bool, str or Optional of one, from an annotation's syntax; None for any other."""
    if isinstance(node, ast.Name):
        return _NAMES.get(node.id)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):  # X | None
        sides = [node.left, node.right]
        if any(isinstance(side, ast.Constant) and side.value is None for side in sides):
            inner = _annotation_type(next(s for s in sides if not isinstance(s, ast.Constant)))
            return Optional[inner] if inner else None
    if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id == "Optional":
        inner = _annotation_type(node.slice)
        return Optional[inner] if inner else None
    return None


def run_types(target: str) -> dict[str, Any]:
    """The types of a task function's arguments that a config value can be checked against."""
    found = {name: _annotation_type(node) for name, node in (arguments(target) or {}).items()}
    return {name: tp for name, tp in found.items() if tp is not None}


# -- the check ---------------------------------------------------------------------------------------

_REFERENCE = re.compile(r"^\$\{([\w.]+)\}$")


def lookup(node: Any, dotted: str) -> tuple[bool, Any]:
    """(present, value) of a dotted key (`data.dir`) in a config or a plain dictionary."""
    for key in dotted.split("."):
        if not isinstance(node, (dict, DictConfig)) or key not in node:
            return False, None
        node = node[key]
    return True, node


def _value(cfg: DictConfig | dict[Any, Any], dotted: str) -> tuple[bool, Any]:
    """(present, resolved value) of a dotted key; a node as a plain container."""
    if not isinstance(cfg, DictConfig):  # resolved already
        return lookup(cfg, dotted)
    node = OmegaConf.select(cfg, dotted, default=dataclasses.MISSING)
    if node is dataclasses.MISSING:
        return False, None
    if isinstance(node, (DictConfig, ListConfig)):
        return True, OmegaConf.to_container(node, resolve=True)
    return True, node


def _raw_and_target(cfg: DictConfig | dict[Any, Any]) -> tuple[dict[Any, Any], Any]:
    if isinstance(cfg, DictConfig):
        raw = {key: OmegaConf.to_container(value, resolve=False) if isinstance(value, DictConfig) else value
               for key, value in cfg.items_ex(resolve=False) if key != "hydra"}
        return raw, OmegaConf.select(cfg, "task.run._target_")
    return cfg, lookup(cfg, "task.run._target_")[1]


@functools.cache
def _known_types(target: str | None) -> tuple[tuple[str, Any], ...]:
    """The schema's typed keys and the task function's (`target`), less the nodes typed key by key."""
    typed = dict(_typed_keys())
    if target is not None:
        typed |= {f"task.run.{name}": tp for name, tp in run_types(target).items()}
    return tuple((key, tp) for key, tp in typed.items() if typing.get_origin(tp) is not dict)


def typed_keys(raw: dict[Any, Any], target: Any, references: bool = True) -> dict[str, Any]:
    """Each typed key of a config (unresolved: `raw`) and its type: the schema's, the task's `run`
    arguments' by its function (`target`), and a top-level key that a typed key reads by plain
    interpolation (`hidden: ${hidden}` in a run node whose function says `hidden: int`) its type
    (`references`: False for a resolved config, which has none)."""
    typed = dict(_known_types(target if isinstance(target, str) else None))
    if references:
        for key, tp in list(typed.items()):
            reference = _REFERENCE.match(str(lookup(raw, key)[1]))
            if reference and "." not in reference.group(1):
                typed.setdefault(reference.group(1), tp)
    return typed


def top_level_types(cfg: DictConfig | dict[Any, Any]) -> dict[str, Any]:
    """The types of the config's top-level keys (typed_keys), a task's hyperparameters among them."""
    return {key: tp for key, tp in typed_keys(*_raw_and_target(cfg)).items() if "." not in key}


def type_error(cfg: DictConfig | dict[Any, Any], types: dict[str, Any] | None = None) -> str | None:
    """`data.dir=3 is invalid: data.dir must be a string or null` for the first value of the
    wrong type, top-level keys first, the task's `run` node checked against its function; None if
    all are typed right. `cfg`: a job's config, or its resolved config as a dictionary (the
    planner's, a merge per job: then `types`, its combination's top_level_types, types its top-level keys)."""
    raw, target = _raw_and_target(cfg)
    unresolved = isinstance(cfg, DictConfig)
    typed = typed_keys(raw, target, references=unresolved)
    typed = {**(types or {}), **{k: tp for k, tp in typed.items() if "." not in k}, **typed}
    for key, tp in typed.items():
        if unresolved and (reference := _REFERENCE.match(str(lookup(raw, key)[1]))) and typed.get(reference.group(1)) == tp:
            continue  # `${lr}`: checked where it is set (resolving every one is most of the time)
        present, value = _value(cfg, key)
        if present and not is_of(value, tp):
            return f"{key}={value!r} is invalid: {key} must be {describe(tp)}"
        if present and (beyond := _beyond_reach(value)):
            return f"{key}={value!r} is invalid: {key} must be {beyond}"
    return None


def _beyond_reach(value: Any) -> str | None:
    """What a number no task can take must be instead (`lr=inf`, `lr=1e400`, an integer over 64 bits); None if usable."""
    if isinstance(value, float) and not math.isfinite(value):
        return "a finite number"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 2 ** 63:
        return "an integer of at most 64 bits (below 2**63)"
    return None
