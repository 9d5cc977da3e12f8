"""`python -m sweeper new-task NAME`: a task of one's own to start from, in the current directory
(or `--dir D`): NAME.py (a small Keras MLP on data it makes itself), its conf/task/NAME.yaml, a search
of it (conf/hparams_search/NAME_search.yaml) and test_NAME.py. Each passes as written; nothing that exists is overwritten."""
from __future__ import annotations

import importlib.util
import keyword
import sys
from pathlib import Path

from sweeper.errors import BadInput
from sweeper.paths import conf_dir

PLACEHOLDER = "__NAME__"  # in the texts below; not str.format: the YAML has braces of its own

MODULE = """\"\"\"__NAME__: a task of your own (written by `python -m sweeper new-task __NAME__`): a small Keras MLP
that tells two classes apart, on data made here (no download). Change `make_data`, `make_model` and
`run` at will.

Swept from this directory:  hpc-sweeper -m --config-dir conf task=__NAME__ hidden=8,32
`run` gets its arguments from `task.run` in conf/task/__NAME__.yaml (their types: the annotations
below), and those of the framework's it names (docs/records.md#the-task-contract): `optimizer` (the
chosen optimizer's settings), `job_dir`, `trial` (a search's pruning), `progress` (its progress line).
\"\"\"
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from sweeper import Outcome, Reporter, train
from sweeper.training.tf import import_keras

FEATURES = 8


def make_data(seed: int, samples: int = 2000) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    \"\"\"Points in FEATURES dimensions, labelled by the side of a random plane they are on: 80 %
    to train on, 20 % to test on.\"\"\"
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(samples, FEATURES)).astype("float32")
    y = (x @ rng.normal(size=FEATURES) > 0).astype("int32")
    split = samples * 4 // 5
    return (x[:split], y[:split]), (x[split:], y[split:])


def make_model(hidden: int, activation: str) -> Any:
    keras = import_keras()  # here, not at the top: TensorFlow starts quietly, and only in a job
    return keras.Sequential([
        keras.Input((FEATURES,)),
        keras.layers.Dense(hidden, activation=activation),
        keras.layers.Dense(2, activation="softmax"),
    ])


def run(*, optimizer: dict[str, Any], hidden: int, epochs: int, batch_size: int, seed: int,
        activation: str = "relu", logging: dict[str, Any] | None = None, job_dir: Path | None = None,
        trial: Reporter | None = None, progress: str | None = None) -> Outcome:
    \"\"\"Train a hidden layer of `hidden` units for `epochs` epochs with the framework's training helper:
    the record gets the curves per epoch (train_loss, test_accuracy, ...) and the last values as metrics
    (test_accuracy is the task's objective); a stopped job continues from its last epoch.\"\"\"
    train_data, test_data = make_data(seed)
    outcome, _ = train(lambda: make_model(hidden, activation), train_data, test_data, optimizer=optimizer,
                       loss="sparse_categorical_crossentropy", metrics=["accuracy"], batch_size=batch_size,
                       epochs=epochs, seed=seed, job_dir=job_dir, logging=logging, trial=trial, progress=progress)
    return outcome
"""

CONFIG = """# @package _global_
# A task of your own: __NAME__.py's `run`, swept with `hpc-sweeper -m --config-dir conf task=__NAME__ hidden=8,32`.
defaults:
  - override /optimizer: adam
lr: 0.01
hidden: 16                  # a hyperparameter of this task: a top-level key its `run` node reads by ${...}
epochs: 5
batch_size: 32
hparams:                    # optional declarations, checked before any job runs: gt/ge/lt/le, values, log, help
  hidden: {ge: 1, le: 256, log: true, help: "units of the hidden layer"}
  epochs: {gt: 0, help: "passes over the training set"}
  batch_size: {gt: 0, help: "points per training step"}
task:
  name: __NAME__
  objective: test_accuracy
  direction: maximize
  run:
    _target_: __NAME__.run
    hidden: ${hidden}
    epochs: ${epochs}
    batch_size: ${batch_size}
    seed: ${seed}
    activation: relu        # a setting, not a hyperparameter: swept as task.run.activation=relu,tanh
    logging: ${logging}     # TensorBoard's curves per epoch (logging.tensorboard), kept state (logging.keep_state)
"""

SEARCH = """# @package _global_
# A search over __NAME__'s hyperparameters: hpc-sweeper -m --config-dir conf hparams_search=__NAME___search
defaults:
  - override /task: __NAME__
  - override /hydra/sweeper: optuna_search
epochs: 3
hydra:
  sweeper:
    direction: ${task.direction}
    study_name: __NAME___search
    n_trials: 6
    sampler:
      seed: 0
    params:
      hidden: declared                     # the range conf/task/__NAME__.yaml declares
      lr: tag(log, interval(0.001, 0.1))
"""

TEST = """\"\"\"The task __NAME__'s tests (written by `python -m sweeper new-task __NAME__`): `pytest test___NAME__.py`.\"\"\"
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import __NAME__

HERE = Path(__file__).resolve().parent


def test_run_learns_the_data(tmp_path: Path) -> None:
    outcome = __NAME__.run(optimizer={"_target_": "keras.optimizers.Adam", "learning_rate": 0.01}, hidden=8,
                           epochs=2, batch_size=32, seed=0, job_dir=tmp_path)
    assert outcome.status == "ok"
    assert len(outcome.history["test_accuracy"]) == 2
    assert outcome.metrics["test_accuracy"] > 0.75  # two classes: a coin would get 0.5


def test_its_config_runs_a_job(tmp_path: Path) -> None:
    \"\"\"conf/task/__NAME__.yaml with the framework's config: one job, as `hpc-sweeper` runs it.\"\"\"
    command = [sys.executable, "-m", "sweeper.run", "--config-dir", str(HERE / "conf"), "task=__NAME__",
               "epochs=1", f"hydra.run.dir={tmp_path}"]
    result = subprocess.run(command, cwd=HERE, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "task=__NAME__ epochs=1 -> ok " in result.stdout and " test_accuracy=" in result.stdout, result.stdout
"""


class TaskRefused(BadInput):
    """A name or a file that new-task cannot use; its message is the one line the user sees."""


def files(name: str) -> dict[Path, str]:
    """What new-task writes for the task `name`: each file's path (relative) and its text."""
    texts = {Path(f"{name}.py"): MODULE, Path("conf") / "task" / f"{name}.yaml": CONFIG,
             Path("conf") / "hparams_search" / f"{name}_search.yaml": SEARCH, Path(f"test_{name}.py"): TEST}
    return {path: text.replace(PLACEHOLDER, name) for path, text in texts.items()}


def check_name_free(name: str) -> None:
    """A task's name is its module's and its option's: not a module there is already (the user's
    directory comes early on a job's path: the task would hide that module, or be hidden by it),
    nor a task of the project (Hydra finds the project's conf/task/NAME.yaml before the user's)."""
    if name in sys.modules or name in sys.stdlib_module_names or importlib.util.find_spec(name) is not None:
        raise TaskRefused(f"{name!r} is the name of a module there is already: choose another, e.g. my_{name}")
    if (conf_dir() / "task" / f"{name}.yaml").exists():
        raise TaskRefused(f"the project has a task {name!r} already, whose config would be used, not yours: "
                      f"choose another, e.g. my_{name}")


def write_task(name: str, directory: Path) -> list[Path]:
    """Write the task's files into `directory`; refuse, writing nothing, if any of them exists."""
    if not name.isidentifier() or keyword.iskeyword(name):
        raise TaskRefused(f"{name!r} cannot name a Python module, and a task's name is its module's: letters, "
                      "digits and _, not starting with a digit, not a keyword (e.g. my_task)")
    written = {directory / path: text for path, text in files(name).items()}
    there = [str(path) for path in written if path.exists()]
    if there:
        raise TaskRefused(f"{', '.join(there)} exist{'s' if len(there) == 1 else ''} already: new-task writes "
                      "no file over another (choose another name, or --dir)")
    check_name_free(name)
    for path, text in written.items():
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        except OSError as e:
            raise TaskRefused(f"cannot write {path}: {e.strerror or e}") from None
    return list(written)
