"""The hyperparameters: one registry (name, default, what is allowed, an example), from which the
config's top-level keys are checked, the hyperparameters that apply to a job are found, and the
tests take their defaults. `conf/config.yaml` holds the same defaults; a test keeps them equal."""
from __future__ import annotations

import dataclasses
import re
import sys
from typing import Any, Callable, cast

from hydra.errors import CompactHydraException
from omegaconf import DictConfig, OmegaConf

from sweeper.schema import lookup, type_error


class ConfigError(CompactHydraException):
    """A bad value in a job's config; its message is the one line the user sees."""


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _positive(v: Any) -> bool:
    return _is_number(v) and v > 0


def _fraction(v: Any) -> bool:
    return _is_number(v) and 0 <= v < 1


def _count(v: Any) -> bool:
    return _is_integer(v) and v > 0


@dataclasses.dataclass(frozen=True)
class HParam:
    name: str
    default: Any                     # as in conf/config.yaml (an optimizer or task may set its own)
    check: Callable[[Any], bool]
    allowed: str                     # what `check` accepts, in words
    example: str
    keras: str | None = None         # an optimizer hyperparameter: the Keras optimizer's argument it is

    @property
    def hint(self) -> str:
        return f"{self.name} must be {self.allowed} (e.g. {self.name}={self.example})"


# The top-level keys a sweep varies (`lr=0.1,0.01`), in the order tables show them.
REGISTRY: tuple[HParam, ...] = (
    HParam("lr", 0.01, _positive, "a number > 0", "0.01", keras="learning_rate"),
    HParam("momentum", 0.9, _fraction, "a number in [0, 1)", "0.9", keras="momentum"),
    HParam("beta1", 0.9, _fraction, "a number in [0, 1)", "0.9", keras="beta_1"),
    HParam("beta2", 0.999, _fraction, "a number in [0, 1)", "0.999", keras="beta_2"),
    HParam("epsilon", 1e-7, _positive, "a number > 0", "1e-7", keras="epsilon"),
    HParam("batch_size", 32, _count, "an integer > 0", "32"),
    HParam("epochs", 1, _count, "an integer > 0", "1"),
    HParam("steps", 1000, _count, "an integer > 0", "1000"),
    HParam("gpus", 0, lambda v: _is_integer(v) and v >= 0, "an integer >= 0", "2"),
    HParam("nodes", 1, _count, "an integer > 0", "2"),
    HParam("seed", 0, _is_integer, "an integer", "0"),
)
HPARAMS = tuple(h.name for h in REGISTRY)
DEFAULTS = {h.name: h.default for h in REGISTRY}
# The optimizer's hyperparameters (fused jobs may differ in these alone) and their Keras names.
KERAS_NAMES = {h.name: h.keras for h in REGISTRY if h.keras is not None}
OPTIMIZER_HPARAMS = tuple(KERAS_NAMES)
KERAS_ARGS = tuple(KERAS_NAMES.values())


def optimizer_arguments(cfg: DictConfig) -> dict[str, Any]:
    """A job's optimizer node as the task gets it: resolved, its hyperparameters as floats (the
    registry takes `lr=5`; Keras takes a learning rate only as a float)."""
    arguments = cast(dict[str, Any], OmegaConf.to_container(cfg.optimizer, resolve=True))  # a mapping node
    for key in KERAS_ARGS:
        if _is_number(arguments.get(key)):
            arguments[key] = float(arguments[key])
    return arguments

# Other keys checked the same way: they are settings, not hyperparameters of the table.
SETTINGS: tuple[HParam, ...] = (
    HParam("devices", "gpu", lambda v: v in ("gpu", "cpu"), "gpu or cpu", "cpu"),
    HParam("data.train_samples", None, lambda v: v is None or _count(v), "an integer > 0 or null (all)", "1000"),
    HParam("data.test_samples", None, lambda v: v is None or _count(v), "an integer > 0 or null (all)", "1000"),
    HParam("logging.tensorboard", True, lambda v: isinstance(v, bool), "true or false", "false"),
    HParam("logging.keep_state", False, lambda v: isinstance(v, bool), "true or false", "true"),
)


def validate(cfg: DictConfig | dict[Any, Any]) -> None:
    """Raise ConfigError (one line: key, value, what is allowed) for the first bad value: the
    registry's keys with their ranges first, then every typed key (sweeper/schema.py)."""
    for hparam in (*REGISTRY, *SETTINGS):
        value = lookup(cfg, hparam.name)[1]
        if not hparam.check(value):
            raise ConfigError(f"{hparam.name}={value!r} is invalid: {hparam.hint}")
    error = type_error(cfg)
    if error:
        raise ConfigError(error)


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


def applicable_hparams(cfg: DictConfig) -> dict[str, Any]:
    """The top-level hyperparameters this job's optimizer and task actually read.

    They are the ones the `optimizer` and `task` nodes take by interpolation (`${lr}`), so the
    YAML files are the one place that says which hyperparameters apply to what.
    """
    used = set()
    for node in ("optimizer", "task"):
        used.update(interpolations(OmegaConf.to_container(cfg[node], resolve=False)))
    return {key: cfg[key] for key in HPARAMS if key in used}


def check_or_exit(cfg: DictConfig | dict[Any, Any]) -> None:
    """Validate (a config, or a resolved one as a dict); on a bad value print the one-line error
    and exit 2, before any job has run."""
    try:
        validate(cfg)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
