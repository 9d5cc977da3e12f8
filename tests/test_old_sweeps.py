"""Sweeps written before tasks declared their own hyperparameters (tests/fixtures/sweeps_2026_12_06,
made by the main of 2026-12-06 with the course's linear, softmax and cnn tasks) still read, and the
same command run into a copy skips every finished job: their fingerprints did not change (the
copies' `.hydra/` folders are deleted, so a job is recognised by its fingerprint alone)."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_cli

FIXTURE = ROOT / "tests" / "fixtures" / "sweeps_2026_12_06"
DATA = "data.train_samples=200 data.test_samples=100 logging.tensorboard=false"
COMMANDS = {  # what made each sweep
    "linear": "task=linear optimizer=gd,adam lr=0.1,0.01 steps=50 logging.tensorboard=false",
    "softmax": f"task=softmax optimizer=momentum lr=0.5,0.1 {DATA}",
    "cnn": f"task=cnn epochs=1 batch_size=50,100 {DATA}",
}


@pytest.fixture
def old_sweeps(tmp_path: Path) -> Path:
    copied = tmp_path / "sweeps"
    shutil.copytree(FIXTURE, copied)
    for saved in copied.glob("*/*/.hydra"):
        shutil.rmtree(saved)
    return copied


@pytest.mark.slow
@pytest.mark.parametrize("name", list(COMMANDS))
def test_the_same_sweep_into_an_old_one_skips_its_finished_jobs(old_sweeps: Path, name: str, tiny: str) -> None:
    sweep = old_sweeps / name
    before = {path: path.read_bytes() for path in sweep.glob("*/result.json")}
    done = run_cli("run.py", "-m", *COMMANDS[name].split(), f"data.dir={tiny}", f"hydra.sweep.dir={sweep}")
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("skipped: done") == len(before), done.stdout + done.stderr
    assert {path: path.read_bytes() for path in sweep.glob("*/result.json")} == before


def test_old_records_collate_with_their_hyperparameters(old_sweeps: Path, sweeper_cli) -> None:
    done = sweeper_cli("collate", str(old_sweeps / "linear"))
    assert done.returncode == 0, done.stderr
    header = (old_sweeps / "linear" / "results.csv").read_text().splitlines()[0].split(",")
    assert header[:8] == ["job", "task", "optimizer", "lr", "beta1", "beta2", "epsilon", "steps"]
