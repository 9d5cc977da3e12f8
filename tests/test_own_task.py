"""A user's own task, from a directory of theirs outside the checkout: its own hyperparameters swept,
checked by their declarations and their function's annotations, recorded and shown in every table,
searched over their declared range; no framework file edited (issue 27)."""
from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from tests.conftest import ROOT, checkout_env, run_cli

MODULE = '''\
"""A task of my own: no TensorFlow, a score that depends on every argument."""
from __future__ import annotations

import time

from sweeper import Outcome


def run(*, hidden: int, width: float = 1.0, activation: str = "relu", seed: int = 0) -> Outcome:
    start = time.perf_counter()
    score = 1.0 - 1.0 / (hidden * width) + (0.001 if activation == "tanh" else 0.0) + 1e-4 * seed
    return Outcome(status="ok", metrics={"score": score}, history={"score": [score / 2, score]},
                   train_time_s=time.perf_counter() - start)
'''
TASK = '''\
# @package _global_
hidden: 16
width: 1.0
hparams:
  hidden: {ge: 1, le: 4096, values: null, help: "units of the hidden layer"}
  width: {ge: 0.25, le: 4, log: true}
task:
  name: mine
  objective: score
  direction: maximize
  run:
    _target_: mine.run
    hidden: ${hidden}
    width: ${width}
    activation: relu
    seed: ${seed}
'''
SEARCH = '''\
# @package _global_
defaults:
  - override /task: mine
  - override /hydra/sweeper: optuna_search
hydra:
  sweeper:
    direction: ${task.direction}
    study_name: mine
    n_trials: 4
    sampler:
      seed: 0
    params:
      hidden: choice(8, 64)
      width: declared
'''


@pytest.fixture
def user_dir(tmp_path: Path) -> Path:
    """A directory of the user's: their module and their conf/ (a task and a search), nothing else."""
    home = tmp_path / "mine"
    (home / "conf" / "task").mkdir(parents=True)
    (home / "conf" / "hparams_search").mkdir()
    (home / "mine.py").write_text(MODULE)
    (home / "conf" / "task" / "mine.yaml").write_text(TASK)
    (home / "conf" / "hparams_search" / "mine_search.yaml").write_text(SEARCH)
    return home


def tensorboard_hparams(job_dir: Path) -> dict:
    """The hyperparameters of a job's session in TensorBoard's HParams dashboard, as its files hold them."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import metadata

    accumulator = EventAccumulator(str(job_dir / "tensorboard"), size_guidance={"tensors": 0})
    accumulator.Reload()
    content = accumulator.SummaryMetadata(metadata.SESSION_START_INFO_TAG).plugin_data.content
    values = metadata.parse_session_start_info_plugin_data(content).hparams
    return {name: value.number_value if value.HasField("number_value") else value.string_value
            for name, value in values.items()}


def sweep(user_dir: Path, *args: str):
    env = checkout_env()
    env["PYTHONPATH"] = f"{user_dir}:{ROOT}"  # their module, and this checkout's framework
    return run_cli(str(ROOT / "run.py"), *args, cwd=user_dir, env=env)


def test_a_grid_over_the_tasks_own_keys_and_a_nested_one(user_dir: Path) -> None:
    out = user_dir / "grid"
    done = sweep(user_dir, "-m", "--config-dir", "conf", "task=mine", "hidden=4,32", "task.run.activation=relu,tanh",
                 f"hydra.sweep.dir={out}")
    assert done.returncode == 0, done.stderr
    records = [json.loads((out / str(i) / "result.json").read_text()) for i in range(4)]
    assert [r["hparams"] for r in records] == [
        {"hidden": hidden, "width": 1.0, "seed": 0, "task.run.activation": activation}
        for hidden in (4, 32) for activation in ("relu", "tanh")]
    assert len({json.dumps(r["fingerprint"]) for r in records}) == 4
    collated = run_cli("-m", "sweeper", "collate", str(out))
    header = (out / "results.csv").read_text().splitlines()[0].split(",")
    assert header[:8] == ["job", "task", "optimizer", "hidden", "width", "seed", "task.run.activation", "status"]
    rows = [line.split(",")[3:7] for line in (out / "results.csv").read_text().splitlines()[1:]]
    assert len({tuple(row) for row in rows}) == 4, collated.stdout  # no two rows alike
    assert tensorboard_hparams(out / "1") == {"hidden": 4.0, "width": 1.0, "seed": 0.0, "task.run.activation": "tanh",
                                              "optimizer": "gd", "task": "mine"}
    report = run_cli("-m", "sweeper", "report", str(out))
    assert report.returncode == 0, report.stderr
    markdown = (out / "report" / "report.md").read_text()
    assert "### hidden x task.run.activation -> score" in markdown


@pytest.mark.parametrize("args, line", [
    (["hidden=1.5"], "error: hidden=1.5 is invalid: hidden must be an integer in [1, 4096] (e.g. hidden=1)"),
    (["hidden=0"], "error: hidden=0 is invalid: hidden must be an integer in [1, 4096] (e.g. hidden=1)"),
    (["width=9"], "error: width=9 is invalid: width must be a number in [0.25, 4] (e.g. width=2.125)"),
    (["hiden=3"], "error: hiden is not a key of the config: did you mean hidden=3?"),
    (["task.run.hidden=3"], "error: task.run.hidden=3 bypasses hidden: set hidden=3 instead"),
    (["lr=0.1"], "error: lr applies to none of the 1 job (task=mine optimizer=gd take hidden, width, seed): remove it"),
])
def test_the_tasks_keys_are_checked_before_anything_is_written(user_dir: Path, args: list[str], line: str) -> None:
    out = user_dir / "refused"
    done = sweep(user_dir, "-m", "--config-dir", "conf", "task=mine", *args, f"hydra.sweep.dir={out}")
    assert (done.returncode, done.stderr.strip().splitlines()[-1]) == (2, line)
    assert not out.exists()


def test_a_search_over_a_choice_and_a_declared_range(user_dir: Path) -> None:
    pytest.importorskip("optuna")
    out = user_dir / "search"
    done = sweep(user_dir, "-m", "--config-dir", "conf", "hparams_search=mine_search", f"hydra.sweep.dir={out}")
    assert done.returncode == 0, done.stderr
    records = [json.loads(path.read_text()) for path in sorted(out.glob("*/result.json"))]
    assert len(records) == 4
    assert all(r["hparams"]["hidden"] in (8, 64) and 0 < r["hparams"]["width"] <= 4 for r in records)
    assert len({r["hparams"]["width"] for r in records}) == 4  # drawn from the declared range
    header = (run_cli("-m", "sweeper", "collate", str(out)), (out / "results.csv").read_text().splitlines()[0])[1]
    assert header.startswith("job,task,optimizer,hidden,width,seed,status")


def test_a_file_of_the_users_that_the_projects_hides_is_refused(user_dir: Path) -> None:
    """Hydra reads the project's conf/task/linear.yaml before the user's: the user's would silently not run."""
    (user_dir / "conf" / "task" / "linear.yaml").write_text(TASK)
    done = sweep(user_dir, "-m", "--config-dir", "conf", "task=linear", f"hydra.sweep.dir={user_dir / 'out'}")
    assert done.returncode == 2 and done.stderr.strip() == (
        f"error: {Path('conf') / 'task' / 'linear.yaml'} is hidden by the project's task=linear, which Hydra reads "
        "first: rename yours (e.g. task/my_linear.yaml) and choose task=my_linear")
