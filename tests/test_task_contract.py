"""The task contract from a user's side (a task of their own, its own data group, loss and metric):
group, written into a folder of the user's (given to run.py with Hydra's --config-dir, the module on
PYTHONPATH), trained by the framework's training helper with its own loss and metric; its data
checked once before a sweep, a bad setting refused in one line; its records carry its metric
names, whether it returns an Outcome or a plain dict; its sweep's table one call away."""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

import sweeper
from sweeper.outcome import outcome_of
from sweeper.status import Status
from tests.conftest import ROOT, checkout_env, records, run_cli

MODULE = '''
"""A regression on synthetic data: y = x . w + noise."""
import os

import keras
import numpy as np

import sweeper


def load(n: int, noise: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)).astype("float32")
    y = (x @ np.array([1.0, -2.0, 0.5], "float32") + noise * rng.normal(size=n)).astype("float32")
    cut = n * 3 // 4
    return (x[:cut], y[:cut]), (x[cut:], y[cut:])


def check(n: int) -> None:
    with open(os.environ["MYTASK_CHECKS"], "a") as log:
        log.write(f"{n}\\n")
    if n < 8:
        raise ValueError(f"data.n={n} is too few examples: give data.n=8 or more")


def model() -> keras.Model:
    return keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])


def run(*, optimizer, data, batch_size: int, epochs: int, seed: int, job_dir=None, progress=None) -> sweeper.Outcome:
    train, test = data
    outcome, _ = sweeper.train(model, train, test, optimizer=optimizer, loss="mse", metrics=["mae"],
                               batch_size=batch_size, epochs=epochs, seed=seed, job_dir=job_dir, progress=progress)
    return outcome


def run_plain(*, optimizer, data, batch_size: int, epochs: int, seed: int) -> dict:
    train, test = data
    _, trained = sweeper.train(model, train, test, optimizer=optimizer, loss="mse", metrics=["mae"],
                               batch_size=batch_size, epochs=epochs, seed=seed)
    return {"test_mae": np.float32(trained.evaluate(*test, verbose=0, return_dict=True)["mae"]), "examples": len(train[0])}
'''

DATA = """\
# A data group of the user's: its loader, its check, the loader's arguments.
_target_: mytask.load
_check_: mytask.check
n: 64
noise: 0.1
"""

TASK = """\
# @package _global_
defaults:
  - override /data: synthetic
lr: 0.05
batch_size: 16
epochs: 2
task:
  name: {name}
  objective: test_mae
  direction: minimize
  run:
    _target_: mytask.{function}
    data: ${{data}}
    batch_size: ${{batch_size}}
    epochs: ${{epochs}}
    seed: ${{seed}}
"""


@pytest.fixture
def user(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """The user's folder (mytask.py, conf/task/mine.yaml and mine_plain.yaml, conf/data/synthetic.yaml)
    and the environment a user who set nothing for TensorFlow runs run.py in."""
    (tmp_path / "mytask.py").write_text(MODULE)
    (tmp_path / "conf" / "data").mkdir(parents=True)
    (tmp_path / "conf" / "task").mkdir()
    (tmp_path / "conf" / "data" / "synthetic.yaml").write_text(DATA)
    (tmp_path / "conf" / "task" / "mine.yaml").write_text(TASK.format(name="mine", function="run"))
    (tmp_path / "conf" / "task" / "mine_plain.yaml").write_text(TASK.format(name="mine_plain", function="run_plain"))
    env = checkout_env(without_prefix="TF_CPP")
    env.update(PYTHONPATH=f"{ROOT}:{tmp_path}", MYTASK_CHECKS=str(tmp_path / "checks.txt"))
    return tmp_path, env


def _run(user: tuple[Path, dict[str, str]], *args: str):
    folder, env = user
    return run_cli(str(ROOT / "run.py"), "--config-dir", str(folder / "conf"), *args, "logging.tensorboard=false",
                   cwd=folder, env=env, timeout=240)


@pytest.mark.slow
def test_a_users_sweep_records_its_metrics_checks_its_data_once_and_tabulates(user, sweeper_cli):
    folder, _ = user
    sweep = folder / "sweep"
    done = _run(user, "-m", "task=mine", "lr=0.05,0.01", f"hydra.sweep.dir={sweep}")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stderr == ""  # the module's `import keras` started TensorFlow: none of its lines
    assert (folder / "checks.txt").read_text() == "64\n"  # two jobs, one data: checked once
    for record in records(sweep).values():
        assert record.status == "ok" and record.task == "mine"
        assert list(record.history) == ["loss", "loss_steps", "train_loss", "train_mae", "test_loss", "test_mae",
                                        "epoch_time_s"]
        assert len(record.history["test_mae"]) == 2 and record.metrics["test_mae"] == record.history["test_mae"][-1]
        assert list(record.metrics)[:3] == ["test_mae", "test_loss", "train_loss"]
        assert record.metrics["train_samples"] == 48 and record.metrics["test_samples"] == 16

    table = sweeper.results(sweep)
    assert list(table["lr"]) == [0.01, 0.05] and "test_mae" in table.columns
    assert sweeper_cli("collate", str(sweep)).returncode == 0
    assert table.to_csv(index=False) == (sweep / "results.csv").read_text()  # the rows collate writes


@pytest.mark.slow
def test_a_bad_data_setting_is_refused_in_one_line_before_the_sweep(user):
    folder, _ = user
    refused = _run(user, "-m", "task=mine", "data.n=4", "lr=0.05,0.01", f"hydra.sweep.dir={folder / 'sweep'}")
    assert refused.returncode == 2
    assert refused.stderr == "error: data.n=4 is too few examples: give data.n=8 or more\n"
    assert refused.stdout == "" and not (folder / "sweep").exists()


@pytest.mark.slow
def test_a_task_returning_a_dict_prints_only_its_line_and_records_its_metrics(user):
    folder, _ = user
    run_dir = folder / "run"
    done = _run(user, "task=mine_plain", f"hydra.run.dir={run_dir}")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stderr == ""  # no TensorFlow start-up line, from the user's `import keras` or after
    assert re.fullmatch(rf"task=mine_plain -> ok test_mae=\S+ examples=48 \(\d+\.\d\d s\)\nrun directory: {re.escape(str(run_dir))}\n",
                        done.stdout), done.stdout
    record = json.loads((run_dir / "result.json").read_text())
    assert record["status"] == "ok" and record["history"] == {} and set(record["metrics"]) == {"test_mae", "examples"}
    assert isinstance(record["metrics"]["test_mae"], float) and record["train_time_s"] > 0


def test_a_dict_of_metrics_is_an_outcome_diverged_when_one_is_not_finite():
    ok = outcome_of({"test_mae": np.float32(0.5), "steps": 3, "note": "x"}, 1.5)
    assert (ok.status, ok.metrics, ok.history, ok.train_time_s) == (Status.OK, {"test_mae": 0.5, "steps": 3, "note": "x"},
                                                                    {}, 1.5)
    assert type(ok.metrics["test_mae"]) is float
    assert outcome_of({"test_mae": math.nan}, 1.0).status == Status.DIVERGED
    assert outcome_of({"loss": np.float64(np.inf)}, 1.0).status == Status.DIVERGED
    given = sweeper.Outcome(status="pruned", metrics={}, history={}, train_time_s=None)
    assert outcome_of(given, 1.0) is given
    with pytest.raises(TypeError, match="the task returned float: a task returns a dict of metrics or a sweeper.Outcome"):
        outcome_of(0.5, 1.0)
