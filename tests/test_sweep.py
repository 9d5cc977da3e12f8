"""Real multiruns of the entry point, their records, and their collation."""
from __future__ import annotations

import json
import shutil

import pandas as pd
from omegaconf import OmegaConf
import pytest

from sweeper.sweep.collate import collate
from sweeper.job.record import read_record
from tests.conftest import checkout_env, run_cli

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def adam_sweep(tmp_path_factory):
    """The design's own example, exactly as a user types it, into a temporary sweep directory."""
    sweep = tmp_path_factory.mktemp("adam") / "sweep"
    result = run_cli("run.py", "-m", "optimizer=adam", "lr=0.1,0.01", "beta1=0.8,0.9", f"hydra.sweep.dir={sweep}")
    assert result.returncode == 0, result.stderr
    return sweep, result


def test_multirun_writes_one_record_per_job(adam_sweep):
    sweep, result = adam_sweep
    records = [read_record(sweep / str(n) / "result.json") for n in range(4)]
    assert [(r.hparams["lr"], r.hparams["beta1"]) for r in records] == [(0.1, 0.8), (0.1, 0.9), (0.01, 0.8), (0.01, 0.9)]
    for record in records:
        assert record.status == "ok" and record.task == "linear" and record.optimizer == "adam"
        assert record.hparams["beta2"] == 0.999 and record.hparams["steps"] == 1000
        assert len(record.history["loss"]) == 1000
        assert set(record.metrics) == {"final_loss", "W", "b"}
        assert record.train_time_s > 0 and record.started < record.finished
        assert {"python", "tensorflow", "keras"} <= set(record.versions)
        assert "optimizer=adam" in record.overrides and record.objective == "final_loss"
    assert result.stdout.count("-> ok") == 4
    assert not list(sweep.rglob("*.tmp"))


def test_collate_command_prints_and_writes_the_table(sweeper_cli, adam_sweep, tmp_path):
    sweep = shutil.copytree(adam_sweep[0], tmp_path / "sweep")
    result = sweeper_cli("collate", str(sweep))
    assert result.returncode == 0, result.stderr
    table = pd.read_csv(sweep / "results.csv")
    assert list(table.columns) == ["job", "task", "optimizer", "lr", "beta1", "beta2", "epsilon", "steps",
                                   "status", "final_loss", "W", "b", "train_time_s", "fused"]
    assert (table.fused == 4).all()  # the 4 jobs trained as one group: train_time_s is a share
    assert list(zip(table.lr, table.beta1)) == [(0.01, 0.8), (0.01, 0.9), (0.1, 0.8), (0.1, 0.9)]
    assert (table.status == "ok").all()
    markdown = (sweep / "results.md").read_text()
    assert markdown.startswith("|") and markdown.strip() in result.stdout


def test_collation_of_a_partial_sweep_with_a_corrupt_record(sweeper_cli, adam_sweep, tmp_path):
    sweep = shutil.copytree(adam_sweep[0], tmp_path / "sweep")
    (sweep / "1" / "result.json").unlink()                        # job 1 never finished
    (sweep / "2" / "result.json").write_text('{"status": "ok", ')  # job 2's record is cut short
    result = sweeper_cli("collate", str(sweep))
    assert result.returncode == 0
    assert f"warning: {sweep / '2' / 'result.json'}: not a valid result record" in result.stderr
    table = collate(sweep).set_index("job")
    assert table.loc["0", "status"] == "ok" and table.loc["3", "status"] == "ok"
    assert table.loc["1", "status"] == "missing"
    assert table.loc["2", "status"] == "corrupt"


def test_a_failing_job_is_recorded_and_the_sweep_goes_on(tmp_path):
    # The course's exercise 1 has no failing configuration; an unknown optimizer class is one.
    sweep = tmp_path / "sweep"
    result = run_cli("run.py", "-m", "steps=5,10", "optimizer._target_=keras.optimizers.NoSuch",
                     f"hydra.sweep.dir={sweep}")
    records = [json.loads((sweep / str(n) / "result.json").read_text()) for n in range(2)]
    assert [r["status"] for r in records] == ["failed", "failed"]
    assert "NoSuch" in records[0]["error"] and "\n" not in records[0]["error"]
    assert "Traceback" in (sweep / "0" / "error.txt").read_text()
    assert result.stdout.count("-> failed") == 2


def test_collate_refuses_what_is_not_a_sweep(sweeper_cli, tmp_path):
    result = sweeper_cli("collate", str(tmp_path / "nowhere"))
    assert result.returncode == 2
    assert "is not a directory" in result.stderr and "Traceback" not in result.stderr
    result = sweeper_cli("collate", str(tmp_path))
    assert result.returncode == 2 and "holds no sweep" in result.stderr


def test_each_job_gets_the_config_hydra_composes_for_it(adam_sweep, compose_cfg):
    # The in-process sweep composes once per combination of group options (sweeper/launching/compose.py).
    sweep, _ = adam_sweep
    for job in range(4):
        overrides = OmegaConf.load(sweep / str(job) / ".hydra" / "overrides.yaml")
        expected = OmegaConf.to_container(compose_cfg(*overrides))
        del expected["hydra"]
        assert OmegaConf.to_container(OmegaConf.load(sweep / str(job) / ".hydra" / "config.yaml")) == expected


def test_a_big_grid_says_its_size_and_how_far_its_checking_got(tmp_path):
    """A grid of more than BIG_GRID jobs (100,000; here 5) says its size before it checks its jobs,
    and how many it checked every BIG_GRID jobs (or 10 s), before its first job's line."""
    env = {**checkout_env(), "SWEEPER_BIG_GRID": "5"}
    result = run_cli("run.py", "-m", "task=linear", "optimizer=adam", "steps=2", "lr=0.1,0.2,0.3,0.4,0.5,0.6",
                     "beta1=0.8,0.9", "logging.tensorboard=false", f"hydra.sweep.dir={tmp_path / 'sweep'}", env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert lines[:3] == ["checking 12 jobs before the first starts ...", "checked 5 of 12 jobs", "checked 10 of 12 jobs"]
    assert lines[3].startswith("[1/12] ")
