"""The config's types (sweeper/schema.py): every node typed, values checked as they are, a task's
`run` node typed by its function, keys beyond the schema left alone."""
from __future__ import annotations

from typing import Optional

import pytest

from omegaconf import OmegaConf

from sweeper.hparams import REGISTRY, SETTINGS, ConfigError, applicable_hparams, validate
from sweeper.schema import describe, is_of, leaves, run_types, top_level_types
from tests.conftest import ROOT

TYPES = dict(leaves())


@pytest.mark.parametrize("hparam", (*REGISTRY, *SETTINGS), ids=lambda h: h.name)
def test_what_the_registry_allows_is_of_the_schemas_type(hparam):
    """The registry adds ranges to the schema's types; its words start with the type's."""
    tp = TYPES[hparam.name]
    assert hparam.allowed.startswith(describe(tp).removesuffix(" or null"))
    assert is_of(OmegaConf.select(OmegaConf.load(ROOT / "conf" / "config.yaml"), hparam.name), tp)


def _keys(node: dict, prefix: str = "") -> list[str]:
    """The dotted keys of a config's leaves."""
    return [key for name, value in node.items()
            for key in (_keys(value, f"{prefix}{name}.") if isinstance(value, dict) else [f"{prefix}{name}"])]


def test_every_node_of_the_config_is_typed(compose_cfg):
    """Every leaf of the composed config but Hydra's own and the declarations is typed, for every task
    and optimizer (a task's `run` node: by its function; a hyperparameter by what reads it), less the
    course's keys that the job does not read (config.yaml keeps them for old fingerprints)."""
    for task in ("linear", "softmax", "cnn"):
        for optimizer in ("gd", "momentum", "adagrad", "adam"):
            composed = compose_cfg(f"task={task}", f"optimizer={optimizer}")
            typed = set(TYPES) | set(top_level_types(composed))
            unread = {"lr", "momentum", "beta1", "beta2", "epsilon", "batch_size", "epochs", "steps"} - \
                set(applicable_hparams(composed))
            cfg = OmegaConf.to_container(composed, resolve=False)
            cfg.pop("hydra")
            cfg.pop("hparams")
            run = cfg["task"].pop("run")
            assert set(_keys(cfg)) - unread <= typed, (task, optimizer)
            interpolated = {"data", "logging"}  # nodes typed above
            assert set(run) - {"_target_"} - interpolated <= set(run_types(run["_target_"])), task


def test_values_are_checked_as_they_are(compose_cfg):
    types = top_level_types(compose_cfg("task=cnn"))
    assert is_of(5, types["lr"]) and is_of(0.5, types["lr"])
    assert not is_of(True, types["lr"]) and not is_of("0.5", types["lr"])
    assert not is_of(1.5, types["epochs"]) and not is_of("3", TYPES["seed"])
    assert not is_of("yes", TYPES["logging.tensorboard"])
    assert is_of(None, TYPES["data.dir"]) and not is_of(None, TYPES["task.name"])
    assert is_of("cpu", TYPES["devices"]) and not is_of("tpu", TYPES["devices"])


def test_a_tasks_run_node_is_typed_by_its_function():
    assert run_types("tasks.cnn.run") == {"batch_size": int, "epochs": int, "seed": int, "gpus": int, "nodes": int, "devices": str,
                                          "dropout": float, "progress": Optional[str]}
    assert run_types("tasks.linear.run") == {"steps": int}
    assert run_types("tasks.nowhere.run") == {}


@pytest.mark.parametrize("overrides", [
    ("lr=5",), ("lr=${epsilon}",), ("data.dir=null",), ("data.dir=${oc.env:HOME}",),
    ("task=cnn", "+task.run.dropout=0"), ("task=softmax", "data.train_samples=null"),
    ("+task.notes=[1, 2]", "+task.run.extra=x", "+optimizer.nesterov=true", "+mine=1"),  # beyond the schema
], ids=" ".join)
def test_values_of_the_right_type_and_keys_beyond_the_schema_pass(compose_cfg, overrides):
    validate(compose_cfg(*overrides))


def test_a_checked_value_is_not_converted(compose_cfg):
    """lr=5 stays 5 in the job's config (its record and fingerprint), as before the schema."""
    cfg = compose_cfg("lr=5")
    validate(cfg)
    assert cfg.lr == 5 and isinstance(cfg.lr, int)


@pytest.mark.parametrize("overrides, message", [
    (("optimizer=adam", "optimizer.name=5"), "optimizer.name=5 is invalid: optimizer.name must be a string"),
    (("task.objective=[1]",), "task.objective=[1] is invalid: task.objective must be a string"),
    (("task=linear", "task.run.steps=${data.dir}", "data.dir=x"),
     "task.run.steps='x' is invalid: task.run.steps must be an integer"),  # after interpolation
])
def test_a_value_of_the_wrong_type_names_key_value_and_type(compose_cfg, overrides, message):
    with pytest.raises(ConfigError, match="^" + message.replace("[", r"\[").replace("]", r"\]") + "$"):
        validate(compose_cfg(*overrides))
