"""The framework's registry of its own hyperparameters (sweeper/hparams.py) and the files' declarations:
the registry's keys are the config's, and what a refused value's hint says."""
from __future__ import annotations

import re

import pytest
from omegaconf import OmegaConf

from sweeper.hparams import HPARAMS, REGISTRY, ConfigError, declarations, validate
from tests.conftest import ROOT


def test_the_registry_names_keys_of_the_config():
    config = OmegaConf.load(ROOT / "conf" / "config.yaml")
    assert set(HPARAMS) <= set(config)


# every declared hyperparameter of the course's files, with the options that compose it
DECLARED = [("", "gpus"), ("", "nodes"), ("", "seed")] + [
    (f"optimizer={o}", name) for o in ("gd", "momentum", "adagrad", "adam")
    for name in OmegaConf.load(ROOT / "conf" / "optimizer" / f"{o}.yaml").hparams] + [
    (f"task={t}", name) for t in ("linear", "softmax", "cnn")
    for name in OmegaConf.load(ROOT / "conf" / "task" / f"{t}.yaml").hparams]


@pytest.mark.parametrize("option, name", DECLARED, ids=lambda x: x)
def test_the_hint_of_a_refused_value_names_it_and_an_override_that_is_accepted(compose_cfg, option, name):
    """What a user reads when a value is refused: the key, and an example to paste on the command line."""
    options = [option] if option else []
    cfg = compose_cfg(*options, f"{name}=-1e99")  # nothing the registry or a declaration allows
    hparam = next(h for h in (*REGISTRY, *declarations(cfg)) if h.name == name)
    with pytest.raises(ConfigError) as refused:
        validate(cfg)
    message = str(refused.value)
    assert message.startswith(f"{hparam.name}=") and message.endswith(hparam.hint)
    example = re.fullmatch(rf"{hparam.name} must be .+ \(e\.g\. (\S+)\)", hparam.hint).group(1)
    validate(compose_cfg(*options, example))


def test_an_integer_learning_rate_reaches_keras_as_a_float(compose_cfg, tmp_path):
    """The registry takes `lr=5`; Keras takes a learning rate only as a float: the job's optimizer
    arguments carry it as one, fused or alone (`-m lr=5,50` failed in process once)."""
    from sweeper.hparams import optimizer_arguments
    from sweeper.job.fused_groups import train_group

    configs = [compose_cfg("optimizer=momentum", f"lr={lr}", "steps=20") for lr in (5, 1)]
    arguments = optimizer_arguments(configs[0])
    assert arguments["learning_rate"] == 5.0 and isinstance(arguments["learning_rate"], float)
    assert configs[0].lr == 5  # the job's own value is kept as given (its record's hparams)
    outcomes = train_group(configs, [tmp_path / "0", tmp_path / "1"])
    assert [outcome.status for outcome in outcomes] == ["diverged", "diverged"]
