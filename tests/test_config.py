"""Composition of the config groups, and the one-line errors for bad input."""
from __future__ import annotations

import math

import pytest
from omegaconf import OmegaConf, open_dict

from sweeper.hparams import ConfigError, applicable_hparams, interpolated_key, interpolations, validate
from tests.conftest import ROOT, run_cli

OPTIMIZER_FILES = sorted((ROOT / "conf" / "optimizer").glob("*.yaml"))


def test_defaults_are_exercise_1_gradient_descent(compose_cfg):
    cfg = compose_cfg()
    assert cfg.task.name == "linear" and cfg.optimizer.name == "gd"
    assert cfg.lr == 0.01 and cfg.steps == 1000
    assert applicable_hparams(cfg) == {"lr": 0.01, "steps": 1000}


def test_optimizer_reads_top_level_keys(compose_cfg):
    cfg = compose_cfg("optimizer=adam", "lr=0.1", "beta1=0.8")
    resolved = OmegaConf.to_container(cfg.optimizer, resolve=True)
    assert resolved == {"_target_": "keras.optimizers.Adam", "name": "adam", "learning_rate": 0.1,
                        "beta_1": 0.8, "beta_2": 0.999, "epsilon": 1e-7}
    assert list(applicable_hparams(cfg)) == ["lr", "beta1", "beta2", "epsilon", "steps"]


def test_momentum_default_and_applicable(compose_cfg):
    cfg = compose_cfg("optimizer=momentum")
    assert applicable_hparams(cfg) == {"lr": 0.01, "momentum": 0.9, "steps": 1000}


def _content(path) -> dict:
    return OmegaConf.to_container(OmegaConf.load(path), resolve=False)


@pytest.mark.parametrize("path", OPTIMIZER_FILES, ids=lambda path: path.stem)
def test_every_optimizer_hyperparameter_is_set_and_declared_in_its_file(path):
    """Each Keras argument an optimizer file sets reads a top-level key that the same file sets and
    declares as a float (what Keras takes), with a range: nothing about it lives elsewhere."""
    content = _content(path)
    for field, value in content["optimizer"].items():
        if field not in ("_target_", "name"):
            key = interpolated_key(value)
            assert key in content, f"{path.name}: {field}: {value}"
            assert content["hparams"][key]["type"] == "float", f"{path.name}: {key}"
            assert {"gt", "ge"} & set(content["hparams"][key]), f"{path.name}: {key}"


def test_an_interpolation_is_read_one_way():
    assert interpolated_key("${lr}") == "lr" and interpolated_key("${data}") == "data"
    for value in ("${oc.env:MNIST_DIR,null}", "x${lr}", "${lr}x", "${data.dir}", "lr", 0.1, None, ["${lr}"]):
        assert interpolated_key(value) is None, value
    assert interpolations({"a": ["${lr}", {"b": "${steps}", "c": 1}], "d": "${x.y}"}) == ["lr", "steps"]
    assert interpolations("${seed}") == ["seed"]


@pytest.mark.parametrize("name,jobs", [("ex1_gd", 4), ("ex1_momentum", 16), ("ex1_adagrad", 4), ("ex1_adam", 64)])
def test_experiment_presets_define_the_course_grids(compose_cfg, name, jobs):
    cfg = compose_cfg(f"experiment={name}")
    assert cfg.task.name == "linear" and cfg.optimizer.name == name.removeprefix("ex1_")
    params = cfg.hydra.sweeper.params
    assert math.prod(len(values.split(",")) for values in params.values()) == jobs
    assert set(params) <= set(applicable_hparams(cfg))
    # Every value of the grid is a job the registry accepts, and the four optimizers share one lr grid.
    for key, values in params.items():
        for value in values.split(","):
            validate(compose_cfg(f"experiment={name}", f"{key}={value}"))
    assert params.lr == compose_cfg("experiment=ex1_gd").hydra.sweeper.params.lr


@pytest.mark.parametrize(
    "override,message",
    [
        ("lr=0", "lr=0 is invalid: lr must be a number > 0"),
        ("lr=-1", "lr=-1 is invalid: lr must be a number > 0"),
        ("lr=abc", "lr='abc' is invalid: lr must be a number > 0"),
        ("epsilon=0", "epsilon=0 is invalid"),
        ("steps=0", "steps=0 is invalid: steps must be an integer > 0"),
        ("steps=2.5", "steps=2.5 is invalid"),
        ("epochs=-3", "epochs=-3 is invalid"),
        ("batch_size=0", "batch_size=0 is invalid"),
        ("momentum=1", "momentum=1 is invalid: momentum must be a number in [0, 1)"),
        ("beta1=-0.1", "beta1=-0.1 is invalid"),
        ("beta2=1.5", "beta2=1.5 is invalid"),
        ("gpus=-1", "gpus=-1 is invalid: gpus must be an integer >= 0"),
    ],
)
def test_bad_values_are_rejected_with_one_line(compose_cfg, override, message):
    """Each value checked where the job's files read it (their declarations): adam's epsilon, cnn's epochs."""
    reads = {"epsilon": "optimizer=adam", "beta1": "optimizer=adam", "beta2": "optimizer=adam",
             "momentum": "optimizer=momentum", "epochs": "task=cnn", "batch_size": "task=cnn"}
    key = override.partition("=")[0]
    with pytest.raises(ConfigError, match=None) as error:
        validate(compose_cfg(*([reads[key]] if key in reads else []), override))
    assert str(error.value).startswith(message)
    assert "\n" not in str(error.value)


def test_bad_value_on_the_command_line(tmp_path):
    result = run_cli("run.py", "lr=-1", f"hydra.run.dir={tmp_path}/run")
    assert result.returncode == 2
    assert result.stderr.strip() == "error: lr=-1 is invalid: lr must be a number > 0 (e.g. lr=0.01)"
    assert "Traceback" not in result.stderr
    assert not list(tmp_path.rglob("result.json"))


def test_multirun_checks_every_job_before_the_first_runs(tmp_path):
    result = run_cli("run.py", "-m", "lr=0.1,0.01,abc", f"hydra.sweep.dir={tmp_path}/sweep")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == "error: lr='abc' is invalid: lr must be a number > 0 (e.g. lr=0.01)"
    assert not list(tmp_path.rglob("result.json"))


def test_unknown_group_option_lists_the_choices(tmp_path):
    result = run_cli("run.py", "optimizer=rmsprop", f"hydra.run.dir={tmp_path}/run")
    assert result.returncode == 1
    assert "Could not find 'optimizer/rmsprop'" in result.stderr
    for choice in ("adagrad", "adam", "gd", "momentum"):
        assert choice in result.stderr
    assert "Traceback" not in result.stderr
    assert not list(tmp_path.rglob("result.json"))


def test_help_lists_the_config_groups():
    result = run_cli("run.py", "--help")
    assert result.returncode == 0
    for text in ("task: cnn, linear, softmax", "optimizer: adagrad, adam, adamw, gd, momentum", "experiment: ex1_adagrad"):
        assert text in result.stdout


def test_fingerprint_follows_the_job_not_the_logging_nor_the_data_folder(compose_cfg):
    from sweeper.job.fingerprint import fingerprint

    def of(*overrides: str) -> str:
        cfg = compose_cfg(*overrides)
        with open_dict(cfg):
            del cfg["hydra"]  # as the job sees its config
        return fingerprint(cfg)

    base = of("task=softmax")
    assert isinstance(base, str) and len(base) == 16
    assert of("task=softmax", "lr=0.1") != base and of("task=cnn") != base
    assert of("task=softmax", "logging.tensorboard=false", "logging.keep_state=true") == base
    assert of("task=softmax", "data.dir=/x") == of("task=softmax", "data.dir=null") == base
    assert of("task=softmax", "data.train_samples=100") != base
