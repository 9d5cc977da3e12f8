"""What a user reads: no TensorFlow start-up lines, one `[k/N]` line per job under every launcher
and sweeper, a summary, and each job's lines in its run.log. Through the real command line."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sweeper.sweep import manifest
from sweeper.training.tf import START_UP_LINES, without_start_up_lines
from tests.conftest import ROOT, run_cli, skip_or_fail

pytestmark = pytest.mark.filterwarnings("ignore")

# Any TensorFlow C++ log line (`I0000 00:00:... file.cc:12] ...`) or absl's notice.
TF_LINE = re.compile(r"^[IWEF]\d{4} \S+ +\d+ \S+:\d+\]|absl::InitializeLog|To enable the following instructions")


def _user_env() -> dict:
    """The environment of a user who set nothing for TensorFlow (conftest sets a log level)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_CPP")}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    return env


def test_start_up_lines_are_recognised_and_others_kept():
    text = ("WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
            "I0000 00:00:1796153922.971310   22459 port.cc:153] oneDNN custom operations are on. You may see\n"
            "I0000 00:00:1796153922.971836   22459 cudart_stub.cc:31] Could not find cuda drivers on your machine\n"
            "E0000 00:00:1796153928.761094   22459 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error\n"
            "I0000 00:00:1796153923.107143   22459 cpu_feature_guard.cc:227] This TensorFlow binary is optimized "
            "to use available CPU instructions in performance-critical operations.\n"
            "To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow with the "
            "appropriate compiler flags.\n"
            "E0000 00:00:1796153928.761094   22459 other.cc:1] a real error\n"
            "a Python warning\n")
    assert without_start_up_lines(text) == ("E0000 00:00:1796153928.761094   22459 other.cc:1] a real error\n"
                                            "a Python warning\n")
    assert not START_UP_LINES.search("E0000 00:00:1.0 1 x.cc:1] failed call to cuDevice")


@pytest.mark.slow
def test_linear_run_prints_no_tensorflow_start_up_lines(tmp_path):
    out = run_cli("run.py", f"hydra.run.dir={tmp_path}", env=_user_env())
    assert out.returncode == 0, out.stderr
    assert "task=linear optimizer=gd -> ok" in out.stdout
    assert [line for line in out.stderr.splitlines() if TF_LINE.search(line)] == [], out.stderr


def _mnist_dir() -> str:
    data = os.environ.get("MNIST_DIR")
    if not data:
        skip_or_fail("MNIST_DIR is not set")
    return data


@pytest.mark.slow
def test_softmax_run_prints_no_tensorflow_start_up_lines(tmp_path):
    data = _mnist_dir()
    out = run_cli("run.py", "task=softmax", f"data.dir={data}", "data.train_samples=500", "data.test_samples=100",
                  f"hydra.run.dir={tmp_path}", env=_user_env())
    assert out.returncode == 0, out.stderr
    assert "-> ok test_accuracy=" in out.stdout
    assert [line for line in out.stderr.splitlines() if TF_LINE.search(line)] == [], out.stderr


@pytest.mark.slow
def test_a_gpu_job_without_a_gpu_still_says_so(tmp_path):
    out = run_cli("run.py", "task=cnn", "gpus=1", f"data.dir={_mnist_dir()}", "data.train_samples=100",
                  "data.test_samples=100", f"hydra.run.dir={tmp_path}", env=_user_env())
    assert out.returncode == 1
    assert "DeviceError: gpus=1 but 0 GPU(s) visible" in out.stdout + out.stderr
    assert [line for line in out.stderr.splitlines() if TF_LINE.search(line)] == [], out.stderr


JOB_LINE = re.compile(r"^\[(\d+)/(\d+)\] (.*) -> (\w+) (.*) \(\d+\.\d\d s\)$")


def _job_lines(stdout: str) -> list[tuple[int, int, str, str]]:
    return [(int(m[1]), int(m[2]), m[3], m[4]) for m in map(JOB_LINE.match, stdout.splitlines()) if m]


@pytest.mark.slow
def test_local_launcher_prints_each_job_and_the_summary(tmp_path):
    sweep = tmp_path / "local"
    out = run_cli("run.py", "-m", "hydra/launcher=local", "experiment=ex1_gd", "lr=0.1,0.01", "steps=20",
                  f"hydra.sweep.dir={sweep}", env=_user_env())
    assert out.returncode == 0, out.stderr
    lines = _job_lines(out.stdout)
    assert sorted(lines) == [(1, 2, "lr=0.1 steps=20", "ok"), (2, 2, "lr=0.01 steps=20", "ok")] or \
        sorted(lines) == [(1, 2, "lr=0.01 steps=20", "ok"), (2, 2, "lr=0.1 steps=20", "ok")], out.stdout
    assert "sweep: 2 jobs: 2 ok in " in out.stdout and f"collate: python -m sweeper collate {sweep}" in out.stdout
    assert " : lr=" not in out.stdout + out.stderr  # Hydra's own `#k : <overrides>` line is not printed
    assert "experiment=" not in out.stdout  # the preset every job shares is not in each line


@pytest.mark.slow
def test_optuna_search_prints_each_trial_and_the_summary(tmp_path):
    sweep = tmp_path / "search"
    out = run_cli("run.py", "-m", "hparams_search=ex1_optuna", "hydra.sweeper.n_trials=2", "steps=20",
                  f"hydra.sweep.dir={sweep}", env=_user_env())
    assert out.returncode == 0, out.stderr
    lines = _job_lines(out.stdout)
    assert [(k, n, status) for k, n, _, status in lines] == [(1, 2, "ok"), (2, 2, "ok")], out.stdout
    assert all(label.startswith("lr=") and "hparams_search" not in label for _, _, label, _ in lines)
    assert "sweep: 2 jobs: 2 ok in " in out.stdout and f"collate: python -m sweeper collate {sweep}" in out.stdout
    assert " : lr=" not in out.stdout + out.stderr


@pytest.mark.slow
def test_in_process_grid_prints_no_hydra_job_lines(tmp_path):
    out = run_cli("run.py", "-m", "lr=0.1,0.01", "steps=20", f"hydra.sweep.dir={tmp_path}", env=_user_env())
    assert out.returncode == 0, out.stderr
    assert [(k, n, status) for k, n, _, status in _job_lines(out.stdout)] == [(1, 2, "ok"), (2, 2, "ok")]
    assert " : lr=" not in out.stdout + out.stderr

