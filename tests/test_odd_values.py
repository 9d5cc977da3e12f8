"""Values no job can take and directories no sweep can use (issue 29): refused in one line, exit 2,
before anything is written."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import ROOT, run_cli


@pytest.mark.parametrize("given, said", [
    (["lr=inf"], "error: lr=inf is invalid: lr must be a finite number"),
    (["lr=1e400"], "error: lr=inf is invalid: lr must be a finite number"),  # what Python reads it as
    (["lr=0.1,-inf"], "error: lr=-inf is invalid: lr must be a number > 0 (e.g. lr=0.01)"),  # its range says it first
    (["steps=99999999999999999999999"], "error: steps=99999999999999999999999 is invalid: steps must be an integer "
                                        "of at most 64 bits (below 2**63)"),
    (["steps=range(5,5)"], "error: steps=range(5,5) lists no values, so the sweep would have no job: give at least one"),
    (["hparams_search=ex1_optuna", "optimizer=adam", "lr=inf"], "error: lr=inf is invalid: lr must be a finite number"),
])
def test_a_value_no_job_can_take_is_refused(tmp_path: Path, given: list[str], said: str) -> None:
    sweep = tmp_path / "sweep"
    done = run_cli(str(ROOT / "run.py"), "-m", *given, f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    assert (done.returncode, done.stderr.strip()) == (2, said), done.stdout + done.stderr
    assert not sweep.exists()


def test_a_single_run_of_a_value_no_job_can_take_is_refused(tmp_path: Path) -> None:
    done = run_cli(str(ROOT / "run.py"), "lr=inf", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert (done.returncode, done.stderr.strip()) == (2, "error: lr=inf is invalid: lr must be a finite number")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("where, said", [
    ("", "error: hydra.sweep.dir is empty: give the sweep's directory (e.g. hydra.sweep.dir=outputs/my_sweep)"),
    ("a_file", "error: hydra.sweep.dir=a_file is a file: give a directory for the sweep"),
    ("/proc/sweep", "error: hydra.sweep.dir=/proc/sweep: /proc cannot be written to (a read-only or system folder): "
                    "give a directory of yours"),
])
@pytest.mark.parametrize("search", [False, True])
def test_a_sweep_directory_that_cannot_be_one_is_refused(tmp_path: Path, where: str, said: str, search: bool) -> None:
    (tmp_path / "a_file").write_text("mine\n")
    before = sorted(tmp_path.rglob("*"))
    preset = ["hparams_search=ex1_optuna"] if search else []
    done = run_cli(str(ROOT / "run.py"), "-m", *preset, f"hydra.sweep.dir={where}", cwd=tmp_path)
    assert (done.returncode, done.stderr.strip()) == (2, said), done.stdout + done.stderr
    assert sorted(tmp_path.rglob("*")) == before and (tmp_path / "a_file").read_text() == "mine\n"
