"""A user's own task, from the user's own directory, with the project pip-installed (not this
checkout: tests/installed.py): `hpc-sweeper -m --config-dir conf task=mine ...` in process, with
`hydra/launcher=local`, the job processes importing the user's module; `python -m sweeper
collate|status|report|resume` on those sweeps; and `hpc-sweeper` printing what `python run.py` prints.
A search and a Slurm sweep of the user's task: tests/test_own_task_docs.py (docs/own_task.md as written)."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_cli

pytestmark = pytest.mark.slow

GRID = ("-m", "--config-dir", "conf", "task=mine", "epochs=1", "hidden=4,32")  # the task's own key


@pytest.fixture(scope="module")
def user_dir(installed, tmp_path_factory) -> Path:
    """A directory of the user's, outside the checkout: their module and conf/, from new-task."""
    mine = tmp_path_factory.mktemp("user")
    done = installed.run(installed.python, "-m", "sweeper", "new-task", "mine", cwd=mine)
    assert done.returncode == 0, done.stderr
    return mine


@pytest.fixture(scope="module")
def grid(installed, user_dir) -> tuple[Path, str]:
    """The user's grid, in process: its sweep directory and what it printed."""
    sweep = user_dir / "sweeps" / "in_process"
    done = installed.run(installed.command, *GRID, f"hydra.sweep.dir={sweep}", cwd=user_dir)
    assert done.returncode == 0, done.stdout + done.stderr
    return sweep, done.stdout


def _record(job: Path) -> dict:
    return json.loads((job / "result.json").read_text())


def test_the_installed_copy_is_imported_not_the_checkout(installed, user_dir):
    where = installed.run(installed.python, "-c", "import sys, sweeper, tasks; print(sweeper.__file__); "
                          "print(tasks.__file__); print(*sys.path, sep='\\n')", cwd=user_dir)
    sweeper_file, tasks_file, *path = where.stdout.splitlines()
    assert Path(sweeper_file).is_relative_to(installed.site) and Path(tasks_file).is_relative_to(installed.site)
    others = [entry for entry in path if entry and (Path(entry) / "sweeper").is_dir() and Path(entry) != installed.site]
    assert others == [] and str(ROOT) not in path, path


def test_a_grid_of_the_users_task_in_process(grid):
    sweep, out = grid
    lines = [line for line in out.splitlines() if re.match(r"\[\d/2\] ", line)]
    assert [line.split(" -> ")[0] for line in lines] == ["[1/2] task=mine epochs=1 hidden=4",
                                                          "[2/2] task=mine epochs=1 hidden=32"]
    assert all(" -> ok test_accuracy=" in line for line in lines), out
    assert "sweep: 2 jobs: 2 ok in " in out and f"collate: python -m sweeper collate {sweep}" in out
    record = _record(sweep / "1")
    assert record["task"] == "mine" and len(record["history"]["test_accuracy"]) == 1
    assert record["hparams"] == {"lr": 0.01, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-07, "batch_size": 32,
                                 "epochs": 1, "hidden": 32, "seed": 0}
    assert record["git_commit"] is None  # the installed copy ran it: it is in no git checkout, this one is
    assert (sweep / "0" / "run.log").is_file()


def test_collate_status_and_report_of_the_users_sweep(installed, grid, tmp_path):
    sweep, _ = grid
    collated = installed.run(installed.python, "-m", "sweeper", "collate", sweep, cwd=tmp_path)
    assert collated.returncode == 0, collated.stderr
    header = (sweep / "results.csv").read_text().splitlines()[0].split(",")
    assert header[:3] == ["job", "task", "optimizer"] and "test_accuracy" in header
    assert header[header.index("epochs"):header.index("status")] == ["epochs", "hidden", "seed"]
    assert [line.split(",")[header.index("hidden")] for line in (sweep / "results.csv").read_text().splitlines()[1:]] \
        == ["4", "32"]
    status = installed.run(installed.python, "-m", "sweeper", "status", sweep, cwd=tmp_path)
    assert status.returncode == 0 and f"2 jobs: 2 ok ({sweep})" in status.stdout, status.stderr
    report = installed.run(installed.python, "-m", "sweeper", "report", sweep, cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    assert (sweep / "report" / "report.md").is_file()


def test_a_local_grid_of_the_users_task_and_its_resume_from_elsewhere(installed, user_dir, tmp_path):
    """Local job processes import the user's module (their path says where from, not their working
    directory); `resume`, run from another directory, finds the user's conf and module again."""
    sweep = user_dir / "sweeps" / "local"
    done = installed.run(installed.command, *GRID, "hydra/launcher=local", f"hydra.sweep.dir={sweep}", cwd=user_dir)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count(" -> ok test_accuracy=") == 2 and "sweep: 2 jobs: 2 ok" in done.stdout
    assert _record(sweep / "0")["git_commit"] is None
    (sweep / "1" / "result.json").unlink()
    resumed = installed.run(installed.python, "-m", "sweeper", "resume", sweep, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"--config-dir {user_dir / 'conf'} -m task=mine epochs=1 hidden=4,32 hydra/launcher=local" in resumed.stdout
    assert "[1/2] task=mine epochs=1 hidden=4 -> skipped: done" in resumed.stdout
    assert "[2/2] task=mine epochs=1 hidden=32 -> ok test_accuracy=" in resumed.stdout
    assert _record(sweep / "1")["attempts"] == 2


def _same(out: str, sweep: Path) -> list[str]:
    """Printed lines less what differs between two runs: seconds, speeds, and the sweep directory."""
    out = out.replace(str(sweep), "SWEEP")
    return [re.sub(r"\d+ images/s", "N images/s", re.sub(r"\d+\.\d+ s\b", "T s", line)) for line in out.splitlines()]


def test_hpc_sweeper_prints_what_run_py_prints(installed, user_dir, grid):
    sweep, out = grid
    by_run_py = user_dir / "sweeps" / "run_py"
    done = run_cli(str(ROOT / "run.py"), *GRID, f"hydra.sweep.dir={by_run_py}", cwd=user_dir)
    assert done.returncode == 0, done.stdout + done.stderr
    assert _same(done.stdout, by_run_py) == _same(out, sweep)
    assert (by_run_py / "0" / "run.log").is_file()  # the same job name: Hydra's log is run.log


def test_a_refusal_names_the_command_the_user_typed(installed, user_dir):
    done = installed.run(installed.command, "experiment=ex1_gd", cwd=user_dir)
    assert (done.returncode, done.stderr.strip()) == (
        2, "error: experiment=ex1_gd is a grid of 4 jobs: add -m (hpc-sweeper -m experiment=ex1_gd)")
