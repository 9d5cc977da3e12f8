"""The MNIST tasks' config: task defaults, the data node, the presets, and one-line errors."""
from __future__ import annotations

import math

import pytest
from omegaconf import OmegaConf

from sweeper.hparams import ConfigError, applicable_hparams, validate
from tests.conftest import run_cli


def grid_size(cfg) -> int:
    return math.prod(len(str(values).split(",")) for values in cfg.hydra.sweeper.params.values())


def test_softmax_defaults_are_the_courses(compose_cfg):
    cfg = compose_cfg("task=softmax")
    assert cfg.optimizer.name == "gd" and cfg.task.objective == "test_accuracy" and cfg.task.direction == "maximize"
    assert applicable_hparams(cfg) == {"lr": 0.5, "batch_size": 100, "epochs": 1, "seed": 0}


def test_cnn_defaults_are_the_courses(compose_cfg):
    cfg = compose_cfg("task=cnn")
    assert cfg.optimizer.name == "adam"
    assert applicable_hparams(cfg) == {"lr": 1e-4, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-7, "batch_size": 50,
                                       "epochs": 1, "gpus": 0, "nodes": 1, "seed": 0}
    assert compose_cfg("task=cnn", "optimizer=gd").optimizer.name == "gd"  # still the user's choice


def test_data_node_reaches_the_task_and_defaults_to_mnist_dir(compose_cfg, monkeypatch):
    monkeypatch.delenv("MNIST_DIR", raising=False)
    functions = {"_target_": "tasks.mnist.load", "_check_": "tasks.mnist.check"}  # conf/data/mnist.yaml
    task = OmegaConf.to_container(compose_cfg("task=cnn", "devices=cpu").task.run, resolve=True)
    assert task["data"] == {**functions, "dir": None, "train_samples": None, "test_samples": None}
    assert task["devices"] == "cpu" and task["gpus"] == 0
    monkeypatch.setenv("MNIST_DIR", "/somewhere/mnist")
    task = OmegaConf.to_container(compose_cfg("task=softmax", "data.train_samples=500").task.run, resolve=True)
    assert task["data"] == {**functions, "dir": "/somewhere/mnist", "train_samples": 500, "test_samples": None}
    assert compose_cfg("task=softmax", "data.dir=/here").task.run.data.dir == "/here"


@pytest.mark.parametrize(
    "name,task,optimizer,jobs",
    [("ex2_gd", "softmax", "gd", 6), ("ex2_momentum", "softmax", "momentum", 24),
     ("ex2_adagrad", "softmax", "adagrad", 6), ("ex2_adam", "softmax", "adam", 192),
     ("ex3_1epoch", "cnn", "adam", 56), ("ex3_40epochs", "cnn", "adam", 18), ("ex4_gpus", "cnn", "adam", 3),
     ("ex4_nodes", "cnn", "adam", 2)],
)
def test_presets_define_the_course_grids(compose_cfg, name, task, optimizer, jobs):
    cfg = compose_cfg(f"experiment={name}")
    assert cfg.task.name == task and cfg.optimizer.name == optimizer
    assert grid_size(cfg) == jobs
    assert set(cfg.hydra.sweeper.params) <= set(applicable_hparams(cfg))


def test_exercise_4_preset(compose_cfg):
    cfg = compose_cfg("experiment=ex4_gpus")
    assert cfg.hydra.sweeper.params.gpus == "1,2,4"
    assert (cfg.batch_size, cfg.lr, cfg.epochs) == (16, 1e-4, 40)
    assert compose_cfg("experiment=ex4_gpus", "epochs=2").epochs == 2


def test_exercise_4_on_two_nodes_preset(compose_cfg):
    cfg = compose_cfg("experiment=ex4_nodes")
    assert (str(cfg.hydra.sweeper.params.gpus), cfg.hydra.sweeper.params.nodes) == ("4", "1,2")
    assert (cfg.batch_size, cfg.lr, cfg.epochs) == (16, 1e-4, 40)


@pytest.mark.parametrize(
    "override,message",
    [
        ("data.train_samples=0", "data.train_samples=0 is invalid: data.train_samples must be an integer > 0 or null"),
        ("data.train_samples=-5", "data.train_samples=-5 is invalid"),
        ("data.train_samples=1.5", "data.train_samples=1.5 is invalid"),
        ("data.test_samples=abc", "data.test_samples='abc' is invalid: data.test_samples must be an integer > 0"),
        ("devices=tpu", "devices='tpu' is invalid: devices must be gpu or cpu (e.g. devices=cpu)"),
    ],
)
def test_bad_values_are_one_line(compose_cfg, override, message):
    with pytest.raises(ConfigError) as error:
        validate(compose_cfg("task=softmax", override))
    assert str(error.value).startswith(message) and "\n" not in str(error.value)


@pytest.mark.parametrize("args,line", [
    (["task=softmax", "data.train_samples=10,0"], "error: data.train_samples=0 is invalid"),
    (["task=cnn", "devices=cpu,tpu"], "error: devices='tpu' is invalid"),
])
def test_multirun_checks_data_and_devices_before_any_job(tmp_path, args, line):
    result = run_cli("run.py", "-m", *args, f"hydra.sweep.dir={tmp_path}/sweep")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith(line)
    assert not list(tmp_path.rglob("result.json"))
