"""Interrupted training continues: the state saved at every epoch end comes back whole."""
from __future__ import annotations

import functools
import json
import re
import signal
import subprocess
import sys

import keras
import numpy as np
import pytest

from sweeper.training import checkpoint, fit
from sweeper.job.record import read_record
from tasks import cnn, mnist, softmax
from tests.conftest import ROOT
from tests import synthetic
from tests.mnist_files import write_mnist

ADAM = {"_target_": "keras.optimizers.Adam", "name": "adam", "learning_rate": 1e-3}


def test_optimizer_state_and_epoch_come_back(tmp_path):
    splits = mnist.load(str(write_mnist(tmp_path / "mnist", train=200, test=50)))
    _, trained = fit.train(softmax.make_model, splits.train, splits.test, optimizer=ADAM, loss=fit.CROSS_ENTROPY,
                           metrics=[fit.ACCURACY], prepare=fit.images(softmax.INPUT_SHAPE), batch_size=50, epochs=2,
                           seed=0, job_dir=tmp_path)
    progress = json.loads((tmp_path / "state" / "progress.json").read_text())
    assert progress["epoch"] == 2 and len(progress["counters"]["train_loss"]) == 2

    fresh = softmax.make_model()
    fresh.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    epoch, counters = checkpoint.restore(tmp_path, fresh)
    assert epoch == 2 and counters == progress["counters"]
    assert int(fresh.optimizer.iterations.numpy()) == 8 == int(trained.optimizer.iterations.numpy())
    trained_slots, fresh_slots = trained.optimizer.variables, fresh.optimizer.variables
    assert len(trained_slots) == len(fresh_slots) == 6  # iteration, lr, m and v of kernel and bias
    for ours, theirs in zip(trained_slots, fresh_slots):
        assert ours.name.split("_")[-1] == theirs.name.split("_")[-1]  # iteration, momentum, velocity
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    for ours, theirs in zip(trained.weights, fresh.weights):
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


@pytest.mark.slow
def test_ctrl_c_mid_training_then_the_job_continues_at_its_epoch(tmp_path):
    data = write_mnist(tmp_path / "mnist", train=512, test=64)
    run_dir = tmp_path / "run"
    command = [sys.executable, "run.py", "task=cnn", "epochs=4", "batch_size=16", f"data.dir={data}",
               f"hydra.run.dir={run_dir}"]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    epochs_seen = 0
    for line in process.stdout:  # not a terminal: the progress line prints one line per epoch
        epochs_seen += bool(re.search(r": epoch \d/4: loss ", line))
        if epochs_seen == 2:
            break
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=120)
    interrupted = read_record(run_dir / "result.json")
    assert interrupted.status == "interrupted"
    saved = json.loads((run_dir / "state" / "progress.json").read_text())
    assert saved["epoch"] in (2, 3)
    assert interrupted.history["train_loss"] == saved["counters"]["train_loss"]  # the epochs done so far
    assert len(interrupted.history["test_accuracy"]) == saved["epoch"]
    assert interrupted.history["loss_steps"] == saved["counters"]["loss_steps"]
    assert interrupted.train_time_s == saved["counters"]["fit_time_s"]

    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert f": epoch {saved['epoch'] + 1}/4: " in result.stdout and ": epoch 1/4: " not in result.stdout
    record = read_record(run_dir / "result.json")
    assert record.status == "ok" and record.attempts == 2
    assert f"(training {record.train_time_s:.2f} s over 2 attempts)" in result.stdout
    history = record.history
    assert all(len(history[k]) == 4 for k in ("train_loss", "test_accuracy", "epoch_time_s"))
    assert history["train_loss"][:saved["epoch"]] == saved["counters"]["train_loss"]
    steps = history["loss_steps"]
    assert steps == sorted(set(steps)) and steps[-1] == 4 * 32  # continuous, 32 steps an epoch
    assert_training_time_is_the_sum_of_the_attempts(record, saved)
    assert not (run_dir / "state").exists()  # removed once the record is written
    print(f"\nresumed at epoch {saved['epoch']} of 4: {saved['counters']['fit_time_s']:.1f} s of training "
          "not redone")


def assert_training_time_is_the_sum_of_the_attempts(record, saved: dict) -> None:
    """`record`'s train_time_s is the first attempt's (up to its last saved epoch, in `saved`) and the
    second's: at least the second attempt's epochs with their evaluations, and little more (the fit's
    set-up and end, 0.12 s of 0.6 s here). A resumed job counted its second attempt twice."""
    first = saved["counters"]["fit_time_s"]
    in_epochs = (sum(record.history["epoch_time_s"][saved["epoch"]:])
                 + record.metrics["test_time_s"] - saved["counters"]["test_time_s"])
    second = record.train_time_s - first
    assert in_epochs <= second < 1.5 * in_epochs, (first, second, in_epochs)


def test_a_resumed_jobs_training_time_is_the_sum_of_its_attempts(tmp_path):
    # 6,000 images at 50 a step: 120 steps an epoch, the second attempt's 3 epochs about 2 s here.
    splits = mnist.load(str(write_mnist(tmp_path / "mnist", train=6000, test=200)))
    settings = dict(optimizer=ADAM, loss=fit.CROSS_ENTROPY, metrics=[fit.ACCURACY], batch_size=50, seed=0,
                    prepare=fit.images(softmax.INPUT_SHAPE), job_dir=tmp_path)
    fit.train(softmax.make_model, splits.train, splits.test, epochs=1, **settings)  # stopped after epoch 1
    saved = json.loads((tmp_path / "state" / "progress.json").read_text())
    resumed, _ = fit.train(softmax.make_model, splits.train, splits.test, epochs=4, **settings)
    assert len(resumed.history["epoch_time_s"]) == 4 and resumed.history["epoch_time_s"][0] == \
        saved["counters"]["epoch_time_s"][0]
    assert_training_time_is_the_sum_of_the_attempts(resumed, saved)


def test_a_resumed_job_with_dropout_ends_exactly_as_the_uninterrupted_one(tmp_path):
    # The dropout layer's seed state is saved with the weights: its draws go on after the stop.
    splits = mnist.load(str(write_mnist(tmp_path / "mnist", train=128, test=64)))
    settings = dict(optimizer=ADAM, loss=fit.CROSS_ENTROPY, metrics=[fit.ACCURACY], batch_size=32, seed=0,
                    prepare=fit.images(cnn.INPUT_SHAPE))
    make_model = functools.partial(cnn.make_model, 0.5)
    straight, straight_model = fit.train(make_model, splits.train, splits.test, epochs=2, **settings)
    fit.train(make_model, splits.train, splits.test, epochs=1, job_dir=tmp_path / "job", **settings)  # stopped
    resumed, resumed_model = fit.train(make_model, splits.train, splits.test, epochs=2, job_dir=tmp_path / "job",
                                       **settings)
    for name in ("loss", "train_loss", "train_accuracy", "test_loss", "test_accuracy"):
        assert resumed.history[name] == straight.history[name], name
    for ours, theirs in zip(resumed_model.get_weights(), straight_model.get_weights()):
        np.testing.assert_array_equal(ours, theirs)


def test_saved_history_is_the_curves_of_the_last_saved_epoch(tmp_path):
    import json

    from sweeper.training import checkpoint

    assert checkpoint.saved_history(tmp_path) == ({}, None)
    (tmp_path / "state").mkdir()
    counters = {"loss": [2.0, 1.0], "loss_steps": [5, 10], "train_loss": [1.1], "test_time_s": 0.4,
                "samples_seen": 320, "fit_time_s": 3.5}
    (tmp_path / "state" / "progress.json").write_text(json.dumps({"epoch": 1, "checkpoint": "ckpt-1",
                                                                  "counters": counters}))
    assert checkpoint.saved_history(tmp_path) == ({"loss": [2.0, 1.0], "loss_steps": [5, 10], "train_loss": [1.1]}, 3.5)


def test_a_resumed_job_line_says_its_time_is_training_over_its_attempts(tmp_path):
    from sweeper.job.display import job_line
    from sweeper.job.record import read_record

    synthetic.mnist_job(tmp_path / "0", "softmax", "gd", lr=0.1, train_time_s=24.25)
    record = read_record(tmp_path / "0" / "result.json")
    assert job_line(record, every_metric=False).endswith("(24.25 s)")
    record.attempts = 2
    assert job_line(record, every_metric=False).endswith("-> ok test_accuracy=0.9099 (training 24.25 s over 2 attempts)")

