"""Checks on a composed job config, and which hyperparameters apply to a job."""
from __future__ import annotations

import re
import sys
from typing import Any, Callable

from hydra.errors import CompactHydraException
from omegaconf import DictConfig, OmegaConf

HPARAMS = ("lr", "momentum", "beta1", "beta2", "epsilon", "batch_size", "epochs", "steps", "gpus", "seed")


class ConfigError(CompactHydraException):
    """A bad value in a job's config; its message is the one line the user sees."""


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# key -> (test, what is allowed, an example)
_RULES: dict[str, tuple[Callable[[Any], bool], str, str]] = {
    "lr": (lambda v: _number(v) and v > 0, "a number > 0", "lr=0.01"),
    "epsilon": (lambda v: _number(v) and v > 0, "a number > 0", "epsilon=1e-7"),
    "momentum": (lambda v: _number(v) and 0 <= v < 1, "a number in [0, 1)", "momentum=0.9"),
    "beta1": (lambda v: _number(v) and 0 <= v < 1, "a number in [0, 1)", "beta1=0.9"),
    "beta2": (lambda v: _number(v) and 0 <= v < 1, "a number in [0, 1)", "beta2=0.999"),
    "steps": (lambda v: _integer(v) and v > 0, "an integer > 0", "steps=1000"),
    "epochs": (lambda v: _integer(v) and v > 0, "an integer > 0", "epochs=1"),
    "batch_size": (lambda v: _integer(v) and v > 0, "an integer > 0", "batch_size=32"),
    "gpus": (lambda v: _integer(v) and v >= 0, "an integer >= 0", "gpus=2"),
    "seed": (_integer, "an integer", "seed=0"),
    "devices": (lambda v: v in ("gpu", "cpu"), "gpu or cpu", "devices=cpu"),
    "data.train_samples": (lambda v: v is None or (_integer(v) and v > 0), "an integer > 0 or null (all)",
                           "data.train_samples=1000"),
    "data.test_samples": (lambda v: v is None or (_integer(v) and v > 0), "an integer > 0 or null (all)",
                          "data.test_samples=1000"),
}

# The top-level keys validate() reads (the sweeper's early check hands it just these).
CHECKED_KEYS = tuple(dict.fromkeys(key.split(".")[0] for key in _RULES))


def _get(cfg: Any, dotted: str) -> Any:
    """cfg["a"]["b"] for "a.b", None where a key is missing; cfg is a DictConfig or a dict."""
    for key in dotted.split("."):
        cfg = cfg.get(key) if cfg is not None else None
    return cfg


def validate(cfg: DictConfig) -> None:
    """Raise ConfigError (one line: key, value, what is allowed) for the first bad value."""
    for key, (ok, allowed, example) in _RULES.items():
        value = _get(cfg, key)
        if not ok(value):
            raise ConfigError(f"{key}={value!r} is invalid: {key} must be {allowed} (e.g. {example})")


_INTERPOLATION = re.compile(r"^\$\{(\w+)\}$")


def applicable_hparams(cfg: DictConfig) -> dict[str, Any]:
    """The top-level hyperparameters this job's optimizer and task actually read.

    They are the ones the `optimizer` and `task` nodes take by interpolation (`${lr}`), so the
    YAML files are the one place that says which hyperparameters apply to what.
    """
    used: list[str] = []
    for node in ("optimizer", "task"):
        raw = OmegaConf.to_container(cfg[node], resolve=False)
        for value in raw.values():
            match = _INTERPOLATION.match(str(value))
            if match and match.group(1) in HPARAMS and match.group(1) not in used:
                used.append(match.group(1))
    return {key: cfg[key] for key in HPARAMS if key in used}


def check_or_exit(cfg: DictConfig) -> None:
    """Validate; on a bad value print the one-line error and exit 2, before any job has run."""
    try:
        validate(cfg)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
