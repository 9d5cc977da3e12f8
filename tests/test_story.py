"""What a user meets after a sweep: commands given a job's folder or a folder of folders, an
interrupted job's record, the status table of a local sweep, TensorBoard names and report figures."""
from __future__ import annotations

import pytest

from tests import synthetic
from tests.conftest import run_cli


@pytest.fixture
def softmax_sweep(tmp_path):
    sweep = tmp_path / "outputs" / "x"
    sweep.mkdir(parents=True)
    synthetic.softmax_grid_sweep(sweep)
    return sweep


@pytest.mark.parametrize("command", ["collate", "report", "status"])
def test_a_job_of_a_sweep_is_refused_naming_the_sweep(softmax_sweep, command):
    result = run_cli("-m", "sweeper", command, str(softmax_sweep / "0"))
    assert result.returncode == 2
    assert "is one job of the sweep" in result.stderr and str(softmax_sweep.resolve()) in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (softmax_sweep / "0" / "report").exists() and not (softmax_sweep / "0" / "results.csv").exists()


def test_report_of_a_folder_with_records_only_deep_below_is_refused(softmax_sweep):
    outputs = softmax_sweep.parent
    deep = outputs.parent / "deep"
    (deep / "multirun").mkdir(parents=True)
    softmax_sweep.rename(deep / "multirun" / "x")
    result = run_cli("-m", "sweeper", "report", str(deep))
    assert result.returncode == 2
    assert "holds no sweep" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (deep / "report").exists()
    assert run_cli("-m", "sweeper", "report", str(deep / "multirun")).returncode == 0  # a folder of sweeps
