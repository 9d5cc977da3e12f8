"""Fused groups keep working when stopped: each copy saves a lone job's per-epoch state, a stopped
group (Ctrl-C) leaves every member an `interrupted` record and continues at its next epoch on
resume, fused or alone, ending as an uninterrupted run; each copy gets Keras' per-epoch TensorBoard
scalars; a search never fuses."""
from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from sweeper.job.record import read_record
from sweeper.training import checkpoint
from tasks import cnn, mnist, softmax
from tests.conftest import ROOT, records, run_cli
from tests.mnist_files import real_mnist_dir, write_mnist
from tests.fused_jobs import adam, assert_same_outcome, gd, momentum

# A mixed SGD group (a gd copy keeps no momentum slots alone) and an Adam group whose epsilons
# differ (one fused optimizer per weight there).
GROUPS = {"momentum": [momentum(0.5, 0.9), gd(0.1)],
          "adam": [adam(0.01, 0.9, 0.99), adam(0.001, 0.8, 0.95, 1e-3)]}


@pytest.fixture(scope="module")
def settings(tmp_path_factory):
    data = write_mnist(tmp_path_factory.mktemp("mnist"), train=300, test=100)
    return {"data": mnist.load(dir=str(data)), "batch_size": 32, "seed": 0}


def saved(job_dir: Path) -> tuple[dict, dict[str, np.ndarray]]:
    """A job's saved progress and its checkpoint's variables by name."""
    progress = json.loads((job_dir / "state" / "progress.json").read_text())
    path = str(job_dir / "state" / progress["checkpoint"])
    return progress, {name: tf.train.load_variable(path, name) for name, _ in tf.train.list_variables(path)}


@pytest.mark.parametrize("family", GROUPS)
def test_a_fused_copy_saves_the_state_a_lone_job_saves(family, settings, tmp_path):
    configs = GROUPS[family]
    dirs = [tmp_path / f"fused{i}" for i in range(len(configs))]
    softmax.run_fused(optimizers=configs, epochs=2, job_dirs=dirs, **settings)
    for i, config in enumerate(configs):
        softmax.run(optimizer=config, epochs=2, job_dir=tmp_path / f"alone{i}", **settings)
        (progress, variables), (lone_progress, lone_variables) = saved(dirs[i]), saved(tmp_path / f"alone{i}")
        assert progress["epoch"] == lone_progress["epoch"] == 2
        assert progress["checkpoint"] == lone_progress["checkpoint"]
        assert variables.keys() == lone_variables.keys()  # weights, slots, iterations, learning rate
        for name, value in lone_variables.items():
            if name != "_CHECKPOINTABLE_OBJECT_GRAPH":
                np.testing.assert_allclose(variables[name], value, rtol=1e-4, atol=1e-6, err_msg=name)
        counters, lone_counters = progress["counters"], lone_progress["counters"]
        assert counters.keys() == lone_counters.keys() and counters["samples_seen"] == lone_counters["samples_seen"]
        for name in ("loss", "loss_steps", "train_loss", "train_accuracy", "test_loss", "test_accuracy"):
            np.testing.assert_allclose(counters[name], lone_counters[name], rtol=1e-4, atol=1e-6, err_msg=name)


@pytest.mark.parametrize("family", GROUPS)
def test_a_stopped_group_continues_from_its_state_fused_or_alone(family, settings, tmp_path):
    """Each way round: a group's state continued by the group, and by each job alone; lone jobs'
    states continued as a group. All end as the job run alone without a stop."""
    configs = GROUPS[family]
    uninterrupted = [softmax.run(optimizer=config, epochs=3, **settings) for config in configs]
    dirs = [tmp_path / f"{i}" for i in range(len(configs))]
    softmax.run_fused(optimizers=configs, epochs=1, job_dirs=dirs, **settings)
    first = [checkpoint.saved_history(d)[0] for d in dirs]
    kept = tmp_path / "kept"
    for d in dirs:
        shutil.copytree(d / "state", kept / d.name / "state")
    together = softmax.run_fused(optimizers=configs, epochs=3, job_dirs=dirs, **settings)
    for i, config in enumerate(configs):
        assert together[i].history["train_loss"][:1] == first[i]["train_loss"]  # epoch 1 is not trained again
        assert_same_outcome(uninterrupted[i], together[i], rtol=1e-4)
        alone = softmax.run(optimizer=config, epochs=3, job_dir=kept / dirs[i].name, **settings)
        assert_same_outcome(uninterrupted[i], alone, rtol=1e-4)
        assert alone.history["train_loss"][:1] == first[i]["train_loss"]

    lone_dirs = [tmp_path / f"lone{i}" for i in range(len(configs))]
    for config, d in zip(configs, lone_dirs):
        softmax.run(optimizer=config, epochs=1, job_dir=d, **settings)
    for config, before, outcome in zip(configs, uninterrupted,
                                       softmax.run_fused(optimizers=configs, epochs=3, job_dirs=lone_dirs, **settings)):
        assert_same_outcome(before, outcome, rtol=1e-4)


def test_a_stopped_cnn_group_with_dropout_ends_as_the_uninterrupted_group(tmp_path):
    # A step's dropout masks are drawn from the job's seed and the step, which the state holds.
    data = mnist.load(dir=str(write_mnist(tmp_path / "mnist", train=128, test=64)))
    group = dict(optimizers=GROUPS["adam"], data=data, batch_size=32, seed=0, dropout=0.5)
    dirs = [tmp_path / str(i) for i in range(2)]
    uninterrupted = cnn.run_fused(epochs=2, **group)
    cnn.run_fused(epochs=1, job_dirs=dirs, **group)  # stopped after its first epoch
    resumed = cnn.run_fused(epochs=2, job_dirs=dirs, **group)
    for before, after in zip(uninterrupted, resumed):
        for name in ("loss", "train_loss", "train_accuracy", "test_loss", "test_accuracy"):
            assert after.history[name] == before.history[name], name
    assert uninterrupted[0].history["loss"] != uninterrupted[1].history["loss"]


def scalars(log_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar's (step, value) points under one TensorBoard run directory."""
    events = EventAccumulator(str(log_dir), size_guidance={"tensors": 0})
    events.Reload()
    return {tag: [(e.step, float(tf.make_ndarray(e.tensor_proto))) for e in events.Tensors(tag)]
            for tag in events.Tags()["tensors"]}


def test_a_fused_copy_writes_keras_per_epoch_tensorboard_scalars(settings, tmp_path):
    configs = GROUPS["adam"]
    dirs = [tmp_path / f"fused{i}" for i in range(len(configs))]
    softmax.run_fused(optimizers=configs, epochs=2, job_dirs=dirs, logging={"tensorboard": True}, **settings)
    lone = tmp_path / "alone"
    softmax.run(optimizer=configs[1], epochs=2, job_dir=lone, logging={"tensorboard": True}, **settings)
    for run in ("train", "validation"):
        ours, keras_own = scalars(dirs[1] / "tensorboard" / run), scalars(lone / "tensorboard" / run)
        assert ours.keys() == keras_own.keys() and len(ours) >= 3, (run, sorted(ours), sorted(keras_own))
        for tag, points in keras_own.items():
            assert [step for step, _ in ours[tag]] == [step for step, _ in points], tag
            np.testing.assert_allclose([v for _, v in ours[tag]], [v for _, v in points], rtol=1e-4, err_msg=tag)
    assert scalars(dirs[0] / "tensorboard" / "train")["epoch_learning_rate"][0][1] == pytest.approx(0.01)


def job_dirs(sweep: Path) -> dict[str, Path]:
    """Each job's directory by its overrides."""
    return {" ".join(read_record(path).overrides): path.parent for path in sweep.glob("*/result.json")}


# Learning rates at which a fused CNN copy and a lone run stay within 1e-3 for 3 epochs on real
# MNIST (at 1e-3 Adam's steps amplify the last bits of the two computations' sums to about 1e-2).
GRID = ["task=cnn", "optimizer=adam", "lr=0.0003,0.0002,0.0001", "epochs=3", "batch_size=32",
        "data.train_samples=256", "data.test_samples=100", "+task.run.dropout=0"]


def _interrupt_after_an_epoch(command: list[str], sweep: Path) -> subprocess.CompletedProcess:
    """Start the sweep and press Ctrl-C (SIGINT) once every job of the group has saved an epoch."""
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
        if len(list(sweep.glob("*/state/progress.json"))) == 3:
            break
        time.sleep(0.02)
    assert process.poll() is None, "the sweep ended before it could be interrupted"
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    return subprocess.CompletedProcess(command, process.returncode, out, err)


@pytest.mark.slow
@pytest.mark.mnist
def test_ctrl_c_stops_a_fused_sweep_and_it_continues_at_its_epoch(sweeper_cli, tmp_path):
    grid = [*GRID, f"data.dir={real_mnist_dir()}"]
    sweep, fused_dir = tmp_path / "stopped", tmp_path / "fused"
    command = [sys.executable, "run.py", "-m", *grid, f"hydra.sweep.dir={sweep}"]
    stopped = _interrupt_after_an_epoch(command, sweep)
    assert stopped.returncode == 130 and "python -m sweeper resume" in stopped.stdout, stopped.stderr[-3000:]
    interrupted = records(sweep)
    assert len(interrupted) == 3, stopped.stdout
    epochs_done = {}
    for overrides, record in interrupted.items():  # every member, not only the job that trained the group
        job_dir = job_dirs(sweep)[overrides]
        progress = json.loads((job_dir / "state" / "progress.json").read_text())
        epochs_done[overrides] = progress["epoch"]
        assert record.status == "interrupted" and record.attempts == 1 and not (job_dir / ".owner").exists()
        assert 1 <= progress["epoch"] < 3, "Ctrl-C came after the last epoch"
        assert record.history["train_loss"] == progress["counters"]["train_loss"]  # its epochs so far
        assert record.train_time_s == progress["counters"]["fit_time_s"]
    kept = tmp_path / "kept"  # the same stopped sweep, to continue alone below
    shutil.copytree(sweep, kept)

    resumed = sweeper_cli("resume", str(sweep))
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    apart = run_cli("run.py", "-m", *grid, "hydra.sweeper.fuse=false", f"hydra.sweep.dir={kept}", timeout=400)
    assert apart.returncode == 0, apart.stdout[-3000:] + apart.stderr[-3000:]
    whole = run_cli("run.py", "-m", *grid, f"hydra.sweep.dir={fused_dir}", timeout=400)
    assert whole.returncode == 0, whole.stderr[-3000:]

    continued, continued_alone = records(sweep), records(kept)
    fused_runs = records(fused_dir)
    for overrides, before in interrupted.items():
        for record in (continued[overrides], continued_alone[overrides]):
            assert record.status == "ok" and record.attempts == 2
            history = record.history
            assert history["train_loss"][:epochs_done[overrides]] == before.history["train_loss"]  # not trained again
            assert len(history["test_accuracy"]) == 3 and history["loss_steps"][-1] == 3 * 8
            assert history["loss_steps"] == sorted(set(history["loss_steps"]))  # continuous
            # The same computation as the group run without a stop (which test_fused.py holds equal
            # to each job run alone).
            for name in ("loss", "train_loss", "test_loss", "test_accuracy"):
                np.testing.assert_allclose(history[name], fused_runs[overrides].history[name], rtol=1e-5, atol=1e-6,
                                           err_msg=name)
        if len(set(epochs_done.values())) == 1:  # else Ctrl-C came while the states were saved: groups split
            assert continued[overrides].fused == 3 == fused_runs[overrides].fused
        assert continued_alone[overrides].fused is None
    for overrides, job_dir in job_dirs(sweep).items():
        assert not (job_dir / "state").exists()  # removed with the record, as for a lone job
        points = dict(scalars(job_dir / "tensorboard" / "train")["epoch_loss"])  # both attempts' epochs
        assert sorted(points) == [0, 1, 2]
        assert [points[epoch] for epoch in range(3)] == pytest.approx(continued[overrides].history["train_loss"],
                                                                      rel=1e-6)


@pytest.mark.slow
def test_a_search_never_fuses_and_each_trial_reports_its_epochs(tmp_path):
    """A batch of 4 trials that differ only in optimizer hyperparameters would fuse in a grid; each
    search job reports every epoch to its own trial instead, alone."""
    import optuna

    from sweeper.trial import JOURNAL_NAME, open_storage

    sweep = tmp_path / "search"
    data = write_mnist(tmp_path / "mnist", train=200, test=50)
    result = run_cli("run.py", "-m", "hparams_search=ex2_optuna", "hydra/sweeper/pruner=median",
                     "hydra.sweeper.n_trials=4", "hydra.sweeper.n_jobs=4", "epochs=2", f"data.dir={data}",
                     "logging.tensorboard=false", f"hydra.sweep.dir={sweep}")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    found = list(map(read_record, sweep.glob("*/result.json")))
    assert len(found) == 4 and all(record.fused is None for record in found)
    study = optuna.load_study(study_name="ex2_optuna", storage=open_storage(str(sweep / JOURNAL_NAME)))
    assert all(sorted(t.intermediate_values) == [1, 2] for t in study.trials)
