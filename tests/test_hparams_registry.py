"""The one registry of hyperparameters (sweeper/hparams.py): its defaults are the config's, and what a
refused value's hint says."""
from __future__ import annotations

import re

import pytest
from omegaconf import OmegaConf

from sweeper.hparams import DEFAULTS, HPARAMS, REGISTRY, ConfigError, validate
from tests.conftest import ROOT


def test_registry_defaults_are_the_configs():
    config = OmegaConf.load(ROOT / "conf" / "config.yaml")
    assert {key: config[key] for key in HPARAMS} == DEFAULTS


@pytest.mark.parametrize("hparam", REGISTRY, ids=lambda h: h.name)
def test_the_hint_of_a_refused_value_names_it_and_an_override_that_is_accepted(compose_cfg, hparam):
    """What a user reads when a value is refused: the key, and an example to paste on the command line."""
    with pytest.raises(ConfigError) as refused:
        validate(compose_cfg(f"{hparam.name}=-1e99"))  # nothing the registry allows
    message = str(refused.value)
    assert message.startswith(f"{hparam.name}=") and message.endswith(hparam.hint)
    example = re.fullmatch(rf"{hparam.name} must be .+ \(e\.g\. (\S+)\)", hparam.hint).group(1)
    validate(compose_cfg(example))

