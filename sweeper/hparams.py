"""The hyperparameters.

A hyperparameter is a top-level key of the config that the job's optimizer or task node reads by
interpolation (`learning_rate: ${lr}`, `hidden: ${hidden}`): the file that sets the key and reads it
says it is one, and nothing in the framework lists a task's or an optimizer's keys. A file may
declare a range or a set of values beside the key, in the top-level `hparams` node
(`hparams: {hidden: {ge: 1, le: 4096}}`): the checks, the search (`declared`) and the docs read it
there. The framework declares here only what it reads itself (seed, gpus, nodes) and the settings.
"""
from __future__ import annotations

import dataclasses
import operator
import re
from typing import Any, Callable, Iterable, Sequence, cast

from hydra.errors import CompactHydraException
from omegaconf import DictConfig, OmegaConf

from sweeper import schema
from sweeper.errors import BadInput, refuse
from sweeper.schema import describe, is_of, lookup, top_level_types, type_error

DECLARATIONS = "hparams"   # the config's node of declarations: not a hyperparameter, not fingerprinted


class ConfigError(CompactHydraException, BadInput):
    """A bad value in a job's config; its message is the one line the user sees."""


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _count(v: Any) -> bool:
    return _is_integer(v) and v > 0


@dataclasses.dataclass(frozen=True)
class HParam:
    name: str
    check: Callable[[Any], bool]
    allowed: str                     # what `check` accepts, in words
    example: str
    help: str = ""                   # what it is, for the docs' table
    log: bool = False                # a search samples it on a log scale
    bounds: tuple[tuple[str, float], ...] = ()   # (gt|ge|lt|le, value), as declared
    values: tuple[Any, ...] | None = None        # the values allowed, as declared
    type: Any = None                             # int, float, bool, str: annotated or declared; None: any

    @property
    def hint(self) -> str:
        return f"{self.name} must be {self.allowed} (e.g. {self.name}={self.example})"


# The framework's own hyperparameters: it reads them itself (the seed of every job, the devices and
# nodes a job runs on). A task takes them by interpolation like any other (`seed: ${seed}`).
REGISTRY: tuple[HParam, ...] = (
    HParam("gpus", lambda v: _is_integer(v) and v >= 0, "an integer >= 0", "2", "GPUs of one job (MirroredStrategy)"),
    HParam("nodes", _count, "an integer > 0", "2", "Slurm nodes of one job, one worker each"),
    HParam("seed", _is_integer, "an integer", "0", "the random seed"),
)
HPARAMS = tuple(h.name for h in REGISTRY)

# Other keys checked the same way: settings, never hyperparameters of the table.
SETTINGS: tuple[HParam, ...] = (
    HParam("repeats", _count, "an integer > 0", "5", "seeds per configuration of a sweep: seed, seed+1, ..."),
    HParam("devices", lambda v: v in ("gpu", "cpu"), "gpu or cpu", "cpu", "what gpus=N counts: GPUs, or logical CPU devices"),
    HParam("data.train_samples", lambda v: v is None or _count(v), "an integer > 0 or null (all)", "1000",
           "the first N training images"),
    HParam("data.test_samples", lambda v: v is None or _count(v), "an integer > 0 or null (all)", "1000",
           "the first N test images"),
    HParam("logging.tensorboard", lambda v: isinstance(v, bool), "true or false", "false",
           "TensorBoard logs in each job's directory"),
    HParam("logging.keep_state", lambda v: isinstance(v, bool), "true or false", "true",
           "keep a finished job's training state"),
)
NOT_HPARAMS = frozenset(h.name for h in SETTINGS if "." not in h.name)


# -- declarations ------------------------------------------------------------------------------------

_BOUNDS = {"gt": (">", operator.gt), "ge": (">=", operator.ge), "lt": ("<", operator.lt), "le": ("<=", operator.le)}
FIELDS = (*_BOUNDS, "values", "log", "help", "type")
_TYPES = {"int": int, "float": float, "bool": bool, "str": str}


def _text(value: Any) -> str:
    return "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def _allowed(tp: Any, bounds: Sequence[tuple[str, float]], values: Sequence[Any] | None) -> str:
    """`a number > 0`, `an integer in [1, 4096]`, `one of relu, tanh`."""
    if values is not None:
        return "one of " + ", ".join(_text(v) for v in values)
    kind = describe(tp) if tp is not None else "a number"
    limits = dict(bounds)
    low = next(((b, limits[b]) for b in ("gt", "ge") if b in limits), None)
    high = next(((b, limits[b]) for b in ("lt", "le") if b in limits), None)
    if low and high:
        return f"{kind} in {'(' if low[0] == 'gt' else '['}{_text(low[1])}, {_text(high[1])}{')' if high[0] == 'lt' else ']'}"
    bound = low or high
    return f"{kind} {_BOUNDS[bound[0]][0]} {_text(bound[1])}" if bound else kind


def _checker(tp: Any, bounds: Sequence[tuple[str, float]], values: Sequence[Any] | None) -> Callable[[Any], bool]:
    def check(value: Any) -> bool:
        if values is not None:
            return any(value == v and type(value) is type(v) or _is_number(value) and _is_number(v) and value == v
                       for v in values)
        if tp is not None and not is_of(value, tp):
            return False
        if bounds and not _is_number(value):
            return False
        return all(_BOUNDS[b][1](value, limit) for b, limit in bounds)
    return check


def declared(name: str, spec: Any, tp: Any = None) -> HParam:
    """The HParam of a declaration (`{ge: 1, le: 4096, help: ...}`); `tp`: its type where a function's
    annotation gives one. Raises ConfigError for a declaration that
    is not one (an unknown field, a bound that is not a number)."""
    where = f"{DECLARATIONS}.{name}"
    if not isinstance(spec, dict):
        raise ConfigError(f"{where}={spec!r} is not a declaration: give a mapping of {', '.join(FIELDS)} "
                          f"(e.g. {where}: {{ge: 1}})")
    unknown = [str(k) for k in spec if k not in FIELDS]
    if unknown:
        raise ConfigError(f"{where} has no field {unknown[0]!r}: the fields are {', '.join(FIELDS)}")
    bounds = tuple((b, spec[b]) for b in _BOUNDS if spec.get(b) is not None)
    if any(not _is_number(limit) for _, limit in bounds):
        raise ConfigError(f"{where}: a bound ({', '.join(_BOUNDS)}) must be a number, not {dict(bounds)}")
    values = spec.get("values")
    if values is not None and not isinstance(values, (list, tuple)):
        raise ConfigError(f"{where}.values must be a list (e.g. values: [8, 16, 32])")
    if spec.get("type") is not None and spec["type"] not in _TYPES:
        raise ConfigError(f"{where}.type must be one of {', '.join(_TYPES)}")
    tp = tp if tp is not None else _TYPES.get(spec.get("type") or "")
    values = tuple(values) if values is not None else None
    check = _checker(tp, bounds, values)
    return HParam(name, check, _allowed(tp, bounds, values), _text(_example(tp, dict(bounds), values)),
                  str(spec.get("help") or ""), bool(spec.get("log")), bounds, values, tp)


def _example(tp: Any, bounds: dict[str, float], values: Sequence[Any] | None) -> Any:
    """A value the declaration allows, for the hint of a refused one."""
    if values:
        return values[0]
    step = 1 if tp is int else 0.01
    low = bounds.get("ge", bounds["gt"] + step if "gt" in bounds else None)
    high = bounds.get("le", bounds["lt"] - step if "lt" in bounds else None)
    if low is not None and high is not None and tp is not int:
        return (bounds.get("ge", bounds.get("gt", 0)) + bounds.get("le", bounds.get("lt", 0))) / 2
    return low if low is not None else high if high is not None else {int: 1, bool: True, str: "x"}.get(tp, 0.1)


_cached: dict[tuple[int, Any], tuple[Any, tuple[HParam, ...]]] = {}


def declarations(cfg: DictConfig | dict[Any, Any], types: dict[str, Any] | None = None) -> tuple[HParam, ...]:
    """The hyperparameters the job's files declare (its `hparams` node), typed by the task's function
    (`types`: the config's top_level_types where the caller has them, as for a resolved config).
    A sweep's jobs share one declarations node per combination: read once for all of them."""
    raw = _raw(cfg, DECLARATIONS)
    if not raw:
        return ()
    key = (id(raw), lookup(cfg, "task.run._target_")[1])
    if key not in _cached or _cached[key][0] is not raw:
        types = top_level_types(cfg) if types is None else types
        if not isinstance(raw, dict):
            raise ConfigError(f"{DECLARATIONS} must be a mapping of declarations (e.g. {DECLARATIONS}: {{hidden: {{ge: 1}}}})")
        found = tuple(declared(str(name), spec, types.get(str(name))) for name, spec in raw.items())
        if len(_cached) > 1000:  # a config's node is new at every call: keep the cache small
            _cached.clear()
        _cached[key] = (raw, found)
    return _cached[key][1]


def _raw(cfg: DictConfig | dict[Any, Any], key: str) -> Any:
    """A top-level node as plain containers, its interpolations unresolved (a DictConfig's) or as is."""
    if isinstance(cfg, DictConfig):
        node = cfg[key] if key in cfg else None  # a node: its own interpolations stay unresolved
        return OmegaConf.to_container(node, resolve=False) if OmegaConf.is_config(node) else None
    return cfg.get(key)


# -- the check ---------------------------------------------------------------------------------------

def validate(cfg: DictConfig | dict[Any, Any], types: dict[str, Any] | None = None) -> None:
    """Raise ConfigError (one line: key, value, what is allowed) for the first bad value: the
    framework's keys and the declared ones with their ranges first, then every typed key
    (sweeper/schema.py: the config's nodes, and a task's keys by its function's annotations).
    `cfg`: a job's config, or its resolved config (then `types`: its combination's top_level_types)."""
    for hparam in (*REGISTRY, *SETTINGS, *declarations(cfg, types)):
        present, value = lookup(cfg, hparam.name)
        if present and not hparam.check(value):
            raise ConfigError(f"{hparam.name}={value!r} is invalid: {hparam.hint}")
    error = type_error(cfg, types)
    if error:
        raise ConfigError(error)


def check_or_exit(cfg: DictConfig | dict[Any, Any], types: dict[str, Any] | None = None) -> None:
    """Validate (a config, or a resolved one as a dict with its `types`, see validate); on a bad
    value print the one-line error and exit 2, before any job has run."""
    try:
        validate(cfg, types)
    except ConfigError as e:
        refuse(str(e))


# -- which keys are a job's hyperparameters ----------------------------------------------------------

_INTERPOLATION = re.compile(r"^\$\{(\w+)\}$")


def interpolated_key(value: Any) -> str | None:
    """The top-level key a config value is a plain interpolation of (`${lr}` -> lr), else None."""
    match = _INTERPOLATION.match(value) if isinstance(value, str) else None
    return match.group(1) if match else None


def interpolations(node: Any) -> list[str]:
    """The top-level keys a config node takes by plain interpolation (`${lr}`), nested nodes too."""
    if isinstance(node, (dict, list)):
        values = node.values() if isinstance(node, dict) else node
        return [key for value in values for key in interpolations(value)]
    key = interpolated_key(node)
    return [key] if key else []


def _is_value(cfg: DictConfig, key: str) -> bool:
    """A top-level key holding one value (not a node such as `data`), and not a setting."""
    return key in cfg and key not in NOT_HPARAMS and key != DECLARATIONS and not OmegaConf.is_config(cfg[key])


def applicable_hparams(cfg: DictConfig) -> dict[str, Any]:
    """The top-level hyperparameters this job's optimizer and task actually read, in the config's
    order, the framework's own (gpus, nodes, seed) last: the keys the `optimizer` and `task` nodes take by plain interpolation (`${lr}`), so the
    YAML files are the one place that says which hyperparameters apply to what."""
    used = set(interpolations(_raw(cfg, "task")))
    if takes_optimizer(cfg):
        used.update(interpolations(_raw(cfg, "optimizer")))
    keys = [str(key) for key in cfg if key in used and _is_value(cfg, str(key))]
    return {key: cfg[key] for key in sorted(keys, key=lambda key: key in HPARAMS)}  # the framework's last


def takes_optimizer(cfg: DictConfig | dict[Any, Any]) -> bool:
    """Whether the task's function takes the job's optimizer (a task without one has no lr to sweep);
    yes where its arguments are unknown (**kwargs, a function not found by its source)."""
    arguments = schema.arguments(str(lookup(cfg, "task.run._target_")[1]))
    return arguments is None or "optimizer" in arguments


# Overrides that never tell jobs apart in a table: Hydra's own, where the data and logs are, the
# groups the record names itself (task, optimizer, the preset) and how jobs pack into Slurm tasks.
_NOT_RECORDED = ("task", "optimizer", "experiment", "hparams_search", "packing", "data.dir", "task.run.data.dir")
_NOT_RECORDED_PREFIX = ("hydra", "logging.", "task.run.logging.")


def override_keys(overrides: Iterable[str], groups: Iterable[str]) -> list[str]:
    """The keys a job's overrides set besides its hyperparameters, as the user wrote them: nested keys
    (`task.run.activation`, `+data.foo` -> data.foo) and the options of other config groups (`model`),
    so that jobs that differ in them do not look alike in the record and the table."""
    keys = []
    for override in overrides:
        key, sep, _ = override.lstrip("+").partition("=")
        if not sep or override.startswith("~") or "@" in key or key in _NOT_RECORDED:
            continue
        if key.startswith(_NOT_RECORDED_PREFIX) or ("." not in key and key not in groups):
            continue  # Hydra's, or a top-level key: a hyperparameter where one applies
        keys.append(key)
    return keys


def recorded_keys(cfg: DictConfig) -> tuple[tuple[str, str | None], ...]:
    """The keys of the record's `hparams` for a job: its applicable hyperparameters, then the other
    keys its overrides set (override_keys); each with the option chosen where it is a config group
    (a group's value in the record is its option's name), else None (the value is the config's).
    The same for every job of a sweep's combination (sweeper/launching/compose.py)."""
    choices = OmegaConf.select(cfg, "hydra.runtime.choices", default=None) or {}
    overrides = OmegaConf.select(cfg, "hydra.overrides.task", default=None) or []
    return (*((key, None) for key in applicable_hparams(cfg)),
            *((key, choices.get(key)) for key in override_keys(overrides, choices)))


def hparams_of(keys: Iterable[tuple[str, str | None]], resolved: dict[Any, Any]) -> dict[str, Any]:
    """A job's recorded `hparams` from its recorded_keys and its resolved config (fingerprint.container)."""
    return {key: option if option is not None else lookup(resolved, key)[1] for key, option in keys}


def recorded_hparams(cfg: DictConfig) -> dict[str, Any]:
    """What the record's `hparams` holds for the job of this config (recorded_keys, with their values)."""
    hparams = {}
    for key, option in recorded_keys(cfg):
        value = option if option is not None else OmegaConf.select(cfg, key)
        hparams[key] = OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value
    return hparams


def optimizer_hparams(cfg: DictConfig) -> dict[str, str]:
    """The optimizer node's arguments that read a hyperparameter, and which (`learning_rate` -> lr)."""
    raw = cast("dict[str, Any]", _raw(cfg, "optimizer") or {})
    return {str(arg): key for arg, value in raw.items() if (key := interpolated_key(value)) and key in cfg}


def optimizer_arguments(cfg: DictConfig) -> dict[str, Any]:
    """A job's optimizer node as the task gets it: resolved, the arguments that read a hyperparameter
    declared `type: float` as floats (the checks take `lr=5`; Keras takes a learning rate only as a float)."""
    arguments = cast(dict[str, Any], OmegaConf.to_container(cfg.optimizer, resolve=True))  # a mapping node
    if not any(_is_integer(value) for value in arguments.values()):
        return arguments  # nothing to convert: most jobs (0.2 ms a job less)
    floats = {str(name) for name, spec in (_raw(cfg, DECLARATIONS) or {}).items()
              if isinstance(spec, dict) and spec.get("type") == "float"}
    for argument, key in optimizer_hparams(cfg).items():
        if key in floats and _is_number(arguments.get(argument)):
            arguments[argument] = float(arguments[argument])
    return arguments
