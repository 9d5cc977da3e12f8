"""Exercises 2-4 with real Keras training: softmax and the CNN on a few hundred images, the
multi-replica path on logical CPUs, and softmax on the real MNIST."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from sweeper.sweep.collate import collate
from tasks import cnn, mnist, softmax
from sweeper.training.devices import DeviceError
from tests.conftest import checkout_env, run_cli
from tests.mnist_files import real_mnist_dir

SGD = {"_target_": "keras.optimizers.SGD", "name": "gd", "learning_rate": 0.5}
ADAM = {"_target_": "keras.optimizers.Adam", "name": "adam", "learning_rate": 1e-3}
HISTORY = {"loss", "loss_steps", "train_loss", "train_accuracy", "test_loss", "test_accuracy", "epoch_time_s"}
METRICS = {"test_accuracy", "test_loss", "train_loss", "samples_per_s", "params", "train_samples", "test_samples",
           "test_time_s"}


def data(directory: str, train: int | None = None, test: int | None = None) -> mnist.Splits:
    """What the data node's loader gives a task (conf/data/mnist.yaml)."""
    return mnist.load(dir=directory, train_samples=train, test_samples=test)


def test_softmax_starts_at_zero_and_learns(tiny):
    model = softmax.make_model()
    assert model.count_params() == 7850 and all(not w.numpy().any() for w in model.weights)
    outcome = softmax.run(optimizer=SGD, data=data(tiny), batch_size=100, epochs=2, seed=0)
    assert outcome.status == "ok" and set(outcome.history) == HISTORY and set(outcome.metrics) == METRICS
    h, m = outcome.history, outcome.metrics
    assert h["loss_steps"] == [1, 2, 3, 4, 5, 6]  # 3 steps an epoch, every step recorded
    assert h["loss"][0] == pytest.approx(math.log(10), rel=1e-5)  # zero weights: uniform prediction
    assert all(len(h[k]) == 2 for k in ("train_loss", "train_accuracy", "test_loss", "test_accuracy", "epoch_time_s"))
    assert m["test_accuracy"] == h["test_accuracy"][-1] > 0.8  # the squares are easy to tell apart
    assert m["train_loss"] == h["train_loss"][-1] < h["loss"][0]
    assert m["params"] == 7850 and m["train_samples"] == 300 and m["test_samples"] == 100
    assert m["samples_per_s"] == pytest.approx(600 / sum(h["epoch_time_s"]))
    assert outcome.train_time_s > sum(h["epoch_time_s"])


def test_loss_curve_is_the_mean_of_each_stretch_of_steps(tiny):
    # With a learning rate of ~0 the weights stay zero: every batch's loss is ln 10, including the
    # short last batch of each epoch (250 images in batches of 100), so every point must be too.
    outcome = softmax.run(optimizer={**SGD, "learning_rate": 1e-30}, data=data(tiny, train=250), batch_size=100,
                          epochs=2, seed=0)
    assert outcome.history["loss"] == pytest.approx([math.log(10)] * 6, rel=1e-6)


def test_same_seed_same_result_other_seed_other_order(tiny):
    runs = [softmax.run(optimizer=SGD, data=data(tiny), batch_size=50, epochs=1, seed=s).history["loss"]
            for s in (0, 0, 1)]
    assert runs[0] == runs[1] and runs[0] != runs[2]


def test_a_non_finite_loss_stops_the_job_as_diverged(tiny):
    outcome = softmax.run(optimizer={**SGD, "learning_rate": 1e38}, data=data(tiny), batch_size=100, epochs=3,
                          seed=0)
    assert outcome.status == "diverged"
    assert len(outcome.history["train_loss"]) == 1 and not math.isfinite(outcome.history["loss"][-1])


def test_cnn_is_the_course_model():
    model = cnn.make_model()
    assert model.count_params() == 3_274_634
    shapes = [tuple(layer.output.shape[1:]) for layer in model.layers]
    assert shapes == [(28, 28, 32), (14, 14, 32), (14, 14, 64), (7, 7, 64), (3136,), (1024,), (1024,), (10,)]


def test_cnn_trains_on_a_few_hundred_images(tiny):
    outcome = cnn.run(optimizer=ADAM, data=data(tiny, train=256), batch_size=32, epochs=2, seed=0)
    assert outcome.status == "ok" and set(outcome.history) == HISTORY
    assert set(outcome.metrics) == METRICS | {"replicas", "devices"}
    assert outcome.metrics["replicas"] == 1 and outcome.metrics["devices"] == ["/device:CPU:0"]
    assert outcome.metrics["params"] == 3_274_634
    assert outcome.history["loss_steps"] == list(range(1, 17))
    assert outcome.history["test_loss"][1] < outcome.history["test_loss"][0]


def test_more_gpus_than_visible_is_one_clear_line(tiny):
    import tensorflow as tf

    wanted = len(tf.config.list_physical_devices("GPU")) + 1
    with pytest.raises(DeviceError) as error:
        cnn.run(optimizer=ADAM, data=data(tiny), batch_size=16, epochs=1, seed=0, gpus=wanted)
    assert str(error.value).startswith(f"gpus={wanted} but {wanted - 1} GPU(s) visible")
    assert "add devices=cpu" in str(error.value) and "\n" not in str(error.value)


@pytest.mark.slow
def test_two_replicas_on_logical_cpus_from_the_command_line(tiny, tmp_path):
    # TensorFlow splits the CPU only before it starts: a process of its own, as a user runs it.
    run = tmp_path / "run"
    result = run_cli("run.py", "task=cnn", "gpus=2", "devices=cpu", "batch_size=16", f"data.dir={tiny}",
                     "data.train_samples=256", "data.test_samples=64", f"hydra.run.dir={run}")
    assert result.returncode == 0, result.stdout + result.stderr
    record = json.loads((run / "result.json").read_text())
    assert record["status"] == "ok" and record["hparams"]["gpus"] == 2 and record["hparams"]["batch_size"] == 16
    assert record["metrics"]["replicas"] == 2
    assert record["metrics"]["devices"] == ["/device:CPU:0", "/device:CPU:1"]
    assert record["history"]["loss_steps"][-1] == 8  # 256 images, 2 x 16 per step
    assert "replicas=2" in result.stdout and "[INFO]" not in result.stdout


def saved_weights(job_dir) -> list:
    """The model's weights in a job's saved state (logging.keep_state=true), in the model's order."""
    import tensorflow as tf

    state = job_dir / "state"
    reader = tf.train.load_checkpoint(str(state / json.loads((state / "progress.json").read_text())["checkpoint"]))
    key = "optimizer/_trainable_variables/{}/.ATTRIBUTES/VARIABLE_VALUE"
    return [reader.get_tensor(key.format(i)) for i in range(8)]


@pytest.mark.slow
def test_two_cpu_replicas_under_fit_train_as_one_device_with_the_global_batch(tiny, tmp_path):
    # Dropout off: each replica would draw its own mask for its half of the batch (docs/exercises.md).
    # 300 images: 9 steps of 32 and one of 12, which each replica takes 6 of.
    job = ("task=cnn", "devices=cpu", "+task.run.dropout=0", "logging.keep_state=true", f"data.dir={tiny}",
           "data.test_samples=64", "optimizer=gd", "lr=0.05")
    runs = {}
    for gpus, batch in ((0, 32), (2, 16)):  # the CPU alone, as `python run.py task=cnn` trains
        runs[gpus] = tmp_path / str(gpus)
        result = run_cli("run.py", *job, f"gpus={gpus}", f"batch_size={batch}", f"hydra.run.dir={runs[gpus]}",
                         env=checkout_env(without_prefix="TF_CPP"))  # TensorFlow's warnings shown, as a user's
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stderr == ""  # not `W0000 ... GeneratorDatasetOp::Dataset will not be optimized`
    one, two = (json.loads((runs[n] / "result.json").read_text())["history"] for n in (0, 2))
    assert one["loss_steps"] == two["loss_steps"] == list(range(1, 11))
    # The same batches in the same order: Keras' fit under the strategy began at the second epoch's
    # order (first loss 2.3067 against 2.2949 on real MNIST).
    np.testing.assert_allclose(two["loss"][:4], one["loss"][:4], rtol=0, atol=1e-6)
    for ours, alone in zip(saved_weights(runs[2]), saved_weights(runs[0])):  # 10 steps
        np.testing.assert_allclose(ours, alone, rtol=1e-4, atol=1e-6)


@pytest.mark.slow
def test_one_process_sweep_over_cpu_replicas_reuses_the_logical_cpus(tiny, tmp_path):
    sweep = tmp_path / "sweep"
    # ex4's 1, 2, 4 in one process: a 4-replica job after a 2-replica one (collective groups differ)
    result = run_cli("run.py", "-m", "task=cnn", "devices=cpu", "gpus=1,2,4", "batch_size=16", f"data.dir={tiny}",
                     "data.train_samples=64", "data.test_samples=32", f"hydra.sweep.dir={sweep}")
    assert result.returncode == 0, result.stdout + result.stderr
    records = [json.loads((sweep / str(n) / "result.json").read_text()) for n in range(3)]
    assert [r["status"] for r in records] == ["ok"] * 3
    assert [r["metrics"]["replicas"] for r in records] == [1, 2, 4]
    assert records[1]["metrics"]["devices"] == ["/device:CPU:0", "/device:CPU:1"]


@pytest.mark.slow
def test_cpu_replicas_after_tensorflow_started_is_one_clear_line():
    code = ("import tensorflow as tf; tf.config.list_logical_devices()\n"
            "from sweeper.training import devices\n"
            "try:\n    devices.strategy(2, 'cpu')\nexcept devices.DeviceError as e:\n    print(e)")
    result = run_cli("-c", code)
    assert result.stdout.strip() == ("gpus=2 devices=cpu needs 2 logical CPU devices but TensorFlow started in this "
                                     "process with 1: run it in a process of its own")


@pytest.mark.slow
def test_softmax_sweep_and_its_table(tiny, tmp_path):
    sweep = tmp_path / "sweep"
    result = run_cli("run.py", "-m", "task=softmax", "lr=0.5,0.01", f"data.dir={tiny}", f"hydra.sweep.dir={sweep}")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("-> ok") == 2
    table = collate(sweep)
    assert list(table.columns[:11]) == ["job", "task", "optimizer", "lr", "batch_size", "epochs", "seed", "status",
                                        "test_accuracy", "test_loss", "train_loss"]
    assert {"train_time_s", "samples_per_s", "params"} <= set(table.columns)
    assert table.lr.tolist() == [0.01, 0.5] and (table.params == 7850).all()
    assert table.test_accuracy.between(0, 1).all() and table.test_loss.nunique() == 2


@pytest.mark.mnist
def test_softmax_reaches_90_percent_in_one_epoch_on_real_mnist():
    outcome = softmax.run(optimizer=SGD, data=data(str(real_mnist_dir())), batch_size=100, epochs=1, seed=0)
    assert outcome.status == "ok" and outcome.metrics["test_accuracy"] >= 0.90
    assert outcome.metrics["train_samples"] == 60000 and len(outcome.history["loss"]) == 100
