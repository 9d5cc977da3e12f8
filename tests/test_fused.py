"""Fused sweeps: jobs that differ only in optimizer hyperparameters train as one computation, and
each ends with the record it would have had alone (same status, curves, metrics, diverged step)."""
from __future__ import annotations

import json

import hydra.utils
import keras
import numpy as np
import pytest
import tensorflow as tf
from omegaconf import OmegaConf

from sweeper.job.record import read_record
from sweeper.status import Status
from sweeper.training import fused_loop
from tasks import linear, mnist, softmax
from tests.conftest import ROOT, records, run_cli
from tests.fused_jobs import adagrad, adam, assert_same_outcome, gd, momentum
from tests.mnist_files import write_mnist

# One group per family; the momentum group holds a plain gd copy (momentum 0), and the copies'
# epsilons differ (Keras' ops.add would add a per-copy epsilon along the wrong axis).
GROUPS = {
    "gd": [gd(0.1), gd(0.01), gd(0.5)],
    "momentum": [momentum(0.1, 0.9), momentum(0.01, 0.5), gd(0.3)],
    "adagrad": [adagrad(0.1), adagrad(0.5, 1e-3), adagrad(0.01)],
    "adam": [adam(0.1, 0.8, 0.9), adam(0.001, 0.99, 0.999, 1e-3), adam(0.01, 0.9, 0.95)],
}


def lone_keras(config: dict) -> keras.optimizers.Optimizer:
    return hydra.utils.instantiate({k: v for k, v in config.items() if k != "name"})


@pytest.mark.parametrize("family", GROUPS)
def test_per_copy_updates_are_keras_own(family):
    assert_each_copy_updates_as_keras_alone(GROUPS[family])


def assert_each_copy_updates_as_keras_alone(configs: list[dict]) -> None:
    rng = np.random.default_rng(0)
    start = rng.normal(size=(3, 2)).astype("float32")
    gradients = rng.normal(size=(6, len(configs), 3, 2)).astype("float32")
    copies = tf.Variable(np.stack([start] * len(configs)))
    optimizer = fused_loop.optimizer_for(configs, [copies])
    step = tf.function(lambda g: fused_loop.masked_apply(optimizer, [g], [copies], tf.ones([len(configs)], tf.bool)))
    for g in gradients:
        step(tf.constant(g))
    for i, config in enumerate(configs):
        alone = tf.Variable(start)
        keras_optimizer = lone_keras(config)
        for g in gradients:
            keras_optimizer.apply([tf.constant(g[i])], [alone])
        np.testing.assert_allclose(copies.numpy()[i], alone.numpy(), rtol=1e-6, atol=1e-7)


# Each copy's value of every optimizer hyperparameter, different in each copy.
COPY_VALUES = {"lr": (0.1, 0.01, 0.3), "momentum": (0.9, 0.5, 0.0), "beta1": (0.8, 0.9, 0.95),
               "beta2": (0.9, 0.999, 0.99), "epsilon": (1e-7, 1e-3, 1e-5)}


@pytest.mark.parametrize("family", sorted(path.stem for path in (ROOT / "conf" / "optimizer").glob("*.yaml")))
def test_every_registered_optimizer_hyperparameter_is_per_copy(family, compose_cfg):
    """The optimizer configs as the config files and the registry make them: a name the fused
    optimizer read otherwise than the registry gives would leave every copy the first's value."""
    read = {key for path in (ROOT / "conf" / "optimizer").glob("*.yaml")
            for key in OmegaConf.load(path).hparams}  # every optimizer file's hyperparameters
    assert set(COPY_VALUES) == read - {"weight_decay"}  # AdamW's: the same in every copy (fusion_key)
    configs = []
    for i in range(3):
        cfg = compose_cfg(f"optimizer={family}", *(f"{key}={values[i]}" for key, values in COPY_VALUES.items()))
        configs.append(OmegaConf.to_container(cfg.optimizer, resolve=True))
    assert_each_copy_updates_as_keras_alone(configs)


def test_a_dead_copy_keeps_its_weights_and_spoils_no_other():
    configs = GROUPS["adam"]
    copies = tf.Variable(np.ones((3, 4), "float32"))
    optimizer = fused_loop.optimizer_for(configs, [copies])
    gradient = np.ones((3, 4), "float32")
    gradient[1] = np.nan
    fused_loop.masked_apply(optimizer, [tf.constant(gradient)], [copies], tf.constant([True, False, True]))
    assert (copies.numpy()[1] == 1).all()
    for i in (0, 2):
        alone = tf.Variable(np.ones(4, "float32"))
        lone_keras(configs[i]).apply([tf.constant(gradient[i])], [alone])
        np.testing.assert_allclose(copies.numpy()[i], alone.numpy(), rtol=1e-6)


# Exercise 1 at its grids' settings, and one diverging copy in each group. Not Adam at lr 0.1 with a
# low beta2: it oscillates around the optimum, and the last bit of a loss (the lone loop and the
# fused one are traced from other graphs) grows into another end point there.
LINEAR = {
    "gd": [gd(0.01), gd(0.001), gd(0.1)],
    "momentum": [momentum(0.01, 0.9), momentum(0.001, 0.99), gd(0.01), momentum(0.1, 0.99)],
    "adagrad": [adagrad(0.1), adagrad(0.01, 1e-3), adagrad(1.0), adagrad(1e38)],
    "adam": [adam(0.01, 0.9, 0.99), adam(0.001, 0.8, 0.8), adam(0.0001, 0.99, 0.95), adam(1e38)],
}


@pytest.mark.parametrize("family", LINEAR)
def test_linear_fused_is_each_job_alone(family):
    configs = LINEAR[family]
    together = linear.run_fused(optimizers=configs, steps=1000)
    assert any(o.status is Status.DIVERGED for o in together) and any(o.status is Status.OK for o in together)
    for config, outcome in zip(configs, together):
        assert outcome.fused == len(configs)
        # 1e-3: over 1000 steps Adam divides by sqrt(v) of ever smaller gradients, and the last bit of
        # a gradient (the two loops are traced from other graphs) grows to 2e-4 of W there.
        assert_same_outcome(linear.run(optimizer=config, steps=1000), outcome, rtol=1e-3)


SOFTMAX = {
    "gd": [gd(0.5), gd(0.01), gd(1e38)],
    "momentum": [momentum(0.5, 0.9), gd(0.1), momentum(1e38, 0.99)],
    "adagrad": [adagrad(0.1), adagrad(0.01, 1e-3)],
    "adam": [adam(0.01, 0.9, 0.99), adam(0.001, 0.8, 0.95, 1e-3)],
}


@pytest.mark.parametrize("family", SOFTMAX)
def test_softmax_fused_is_each_job_alone(family, tiny):
    configs = SOFTMAX[family]
    settings = {"data": mnist.load(dir=tiny), "batch_size": 32, "epochs": 2,
                "seed": 0}
    together = softmax.run_fused(optimizers=configs, **settings)
    for config, outcome in zip(configs, together):
        alone = softmax.run(optimizer=config, **settings)
        assert_same_outcome(alone, outcome, rtol=1e-4)
        assert outcome.fused == len(configs)
        assert outcome.train_time_s * len(configs) == pytest.approx(sum(o.train_time_s for o in together))


GRID = ["task=linear", "optimizer=adam", "lr=0.01,0.001,1e38", "beta1=0.8,0.9", "steps=200"]


@pytest.mark.slow
def test_a_sweep_fuses_its_grid_and_each_job_ends_as_alone(tmp_path):
    fused_dir, alone_dir = tmp_path / "fused", tmp_path / "alone"
    result = run_cli("run.py", "-m", *GRID, "hydra.sweeper.max_fused=4", f"hydra.sweep.dir={fused_dir}")
    assert result.returncode == 0, result.stderr
    alone = run_cli("run.py", "-m", *GRID, "hydra.sweeper.fuse=false", f"hydra.sweep.dir={alone_dir}")
    assert alone.returncode == 0, alone.stderr
    packed_dir = tmp_path / "packed"  # one packed task (local launcher) fuses its jobs the same way
    packed = run_cli("run.py", "-m", *GRID, "hydra.sweeper.max_fused=4", "hydra/launcher=local",
                     "hydra.launcher.jobs_per_task=6", f"hydra.sweep.dir={packed_dir}")
    assert packed.returncode == 0, packed.stdout + packed.stderr
    assert len(list(packed_dir.glob(".submitit/*/*_log.out"))) == 1  # one process
    in_task = records(packed_dir)
    assert in_task.keys() == records(alone_dir).keys()
    for overrides, record in in_task.items():
        assert record.fused == records(fused_dir)[overrides].fused
        np.testing.assert_allclose(record.history["loss"], records(alone_dir)[overrides].history["loss"],
                                   rtol=1e-4)
    for k in range(1, 7):
        assert f"[{k}/6] " in result.stdout
    together, apart = records(fused_dir), records(alone_dir)
    assert together.keys() == apart.keys() and len(together) == 6
    assert sorted(r.fused for r in together.values()) == [2, 2, 4, 4, 4, 4]  # max_fused=4
    for overrides, record in together.items():
        other = apart[overrides]
        assert other.fused is None
        assert record.status == other.status and record.hparams == other.hparams
        assert record.status == ("diverged" if record.hparams["lr"] > 1 else "ok"), overrides
        assert len(record.history["loss"]) == len(other.history["loss"])
        np.testing.assert_allclose(record.history["loss"], other.history["loss"], rtol=1e-4)
        for name, value in other.metrics.items():
            if value is not None:
                assert record.metrics[name] == pytest.approx(value, rel=1e-4, abs=1e-6)
    from sweeper.sweep.collate import collate

    table = collate(fused_dir)  # the table says which times are shares of a group's
    assert sorted(table.fused) == [2, 2, 4, 4, 4, 4] and "fused" not in collate(alone_dir).columns
    for job in fused_dir.glob("*/result.json"):
        directory = job.parent
        assert (directory / ".hydra" / "overrides.yaml").exists() and any((directory / "tensorboard").iterdir())
        assert not (directory / ".owner").exists() and read_record(job).fused in (2, 4)

    redo = sorted(fused_dir.glob("*/result.json"))[:3]
    for path in redo:
        path.unlink()
    again = run_cli("run.py", "-m", *GRID, f"hydra.sweep.dir={fused_dir}")
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("skipped: done") == 3  # done jobs stay out of the group
    assert {json.loads(path.read_text())["fused"] for path in redo} == {3}


def test_a_bad_max_fused_is_one_line(tmp_path):
    result = run_cli("run.py", "-m", *GRID, "hydra.sweeper.max_fused=0", f"hydra.sweep.dir={tmp_path / 's'}")
    assert result.returncode == 2
    assert "max_fused=0" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "s").exists()

CNN_SETTINGS = {"batch_size": 32, "epochs": 1, "seed": 0}
CNN_OPTIMIZERS = [adam(1e-3), adam(1e-4, 0.8, 0.99, 1e-3), momentum(0.01, 0.9)]


def test_cnn_fused_without_dropout_is_each_job_alone(tiny):
    from tasks import cnn

    data = mnist.load(dir=tiny)
    together = cnn.run_fused(optimizers=CNN_OPTIMIZERS[:2], data=data, dropout=0.0, **CNN_SETTINGS)
    for config, outcome in zip(CNN_OPTIMIZERS[:2], together):
        alone = cnn.run(optimizer=config, data=data, dropout=0.0, **CNN_SETTINGS)
        assert_same_outcome(alone, outcome, rtol=1e-3)  # 3.3 million weights: float sums in another order
        assert outcome.metrics["params"] == 3_274_634 and outcome.fused == 2


def test_cnn_fused_with_dropout_is_within_run_to_run_spread(tiny):
    """Two fused copies with the same settings differ only in their dropout draws: how far apart
    they end is the run-to-run spread, and the lone run must end no farther from them."""
    from tasks import cnn

    data = mnist.load(dir=tiny)
    config = adam(1e-3)
    first, second = cnn.run_fused(optimizers=[config, config], data=data, **CNN_SETTINGS)
    alone = cnn.run(optimizer=config, data=data, **CNN_SETTINGS)
    for name, floor in (("test_accuracy", 0.05), ("train_loss", 0.1)):
        spread = max(abs(first.metrics[name] - second.metrics[name]), floor * max(1.0, abs(alone.metrics[name])))
        assert abs(alone.metrics[name] - first.metrics[name]) <= 2 * spread, name


def test_adamw_jobs_fuse_only_with_the_same_weight_decay(compose_cfg):
    """AdamW's copies differ in the per-copy hyperparameters; its weight decay is one float for the group."""
    from sweeper.job.fused_groups import fusion_key

    keys = [fusion_key(compose_cfg("optimizer=adamw", f"lr={lr}", f"weight_decay={wd}", "steps=20"))
            for lr, wd in ((0.1, 0.004), (0.01, 0.004), (0.1, 0.5))]
    assert keys[0] is not None and keys[0] == keys[1] != keys[2]


RMSPROP = """\
# @package _global_
rho: 0.9
hparams:
  rho: {ge: 0, lt: 1, type: float}
optimizer:
  _target_: keras.optimizers.RMSprop
  name: rmsprop
  learning_rate: ${lr}
  rho: ${rho}
"""


@pytest.mark.slow
def test_an_optimizer_of_a_users_file_trains_unfused_and_says_so_once(tmp_path):
    """`conf/optimizer/rmsprop.yaml` of the user's: nothing else changed; the fused loop does not know
    RMSprop, so its jobs train one by one, with one note line, and each record is a lone job's."""
    (tmp_path / "conf" / "optimizer").mkdir(parents=True)
    (tmp_path / "conf" / "optimizer" / "rmsprop.yaml").write_text(RMSPROP)
    sweep = tmp_path / "sweep"
    done = run_cli("run.py", "-m", "--config-dir", str(tmp_path / "conf"), "optimizer=rmsprop", "lr=0.1,0.01",
                   "rho=0.9,0.5", "steps=30", f"hydra.sweep.dir={sweep}")
    assert done.returncode == 0, done.stderr
    notes = [line for line in done.stderr.splitlines() if line.startswith("note:")]
    assert notes == ["note: optimizer=rmsprop (keras.optimizers.RMSprop) is not fused: its jobs train one by one "
                     "(fused training knows SGD, Adam, Adagrad, AdamW)"]
    found = records(sweep)
    assert len(found) == 4 and all(r.status == "ok" and r.fused is None for r in found.values())
    assert found["optimizer=rmsprop lr=0.1 rho=0.5 steps=30"].hparams == {"lr": 0.1, "rho": 0.5, "steps": 30}
