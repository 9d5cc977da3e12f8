"""One job list per sweep (jobs.json, sweeper/job/manifest.py): claimed once, refused when
damaged or another sweep's, written before the jobs run."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from sweeper.job.fingerprint import MismatchError
from sweeper.job.record import read_record
from sweeper.job import manifest
from sweeper.status import Status
from sweeper.sweep.collate import collate
from sweeper.sweep.jobs import read_sweep
from tests import synthetic
from tests.fake_slurm import slurm  # noqa: F401  (the fake Slurm commands)
from tests.conftest import ROOT, checkout_env, run_cli


def test_a_job_list_is_claimed_once(tmp_path):
    synthetic.write_job_list(tmp_path, "linear", "gd", [{"lr": 0.1}, {"lr": 0.01}])
    same = manifest.read_manifest(tmp_path)
    more = manifest.Manifest("CheckedSweeper", False, 3, [*same.jobs, manifest.ListedJob(
        num=2, dir="2", overrides=["lr=0.001"], fingerprint="x", task="linear", optimizer="gd", hparams={})])
    manifest.claim(tmp_path, more)
    assert len(manifest.read_manifest(tmp_path).jobs) == 3  # a resumed sweep may add jobs
    other = manifest.Manifest("CheckedSweeper", False, 1, [manifest.ListedJob(
        num=0, dir="0", overrides=["lr=0.5"], fingerprint="another", task="linear", optimizer="gd", hparams={"lr": 0.5})])
    before = (tmp_path / "jobs.json").read_text()
    with pytest.raises(MismatchError, match=r"holds another sweep: its job 0 is another configuration \(lr: 0.1 -> 0.5\)"):
        manifest.claim(tmp_path, other)
    assert (tmp_path / "jobs.json").read_text() == before


def test_a_list_written_before_jobs_named_their_scheduler_is_slurms(tmp_path, slurm):
    """Rows written before (`slurm_job_id`, `slurm_job_ids`) read as the Slurm backend's jobs, and
    their statuses come from Slurm's states as they did."""
    synthetic.write_job_list(tmp_path, "linear", "gd", [{"lr": 0.1}, {"lr": 0.01}])
    data = json.loads((tmp_path / "jobs.json").read_text())
    for row in data["jobs"]:
        del row["scheduler"], row["scheduler_job_id"], row["scheduler_job_ids"]
        row["slurm_job_id"], row["slurm_job_ids"] = f"77_{row['num']}", [f"77_{row['num']}"]
    (tmp_path / "jobs.json").write_text(json.dumps(data))
    listed = manifest.read_manifest(tmp_path)
    assert [(row.scheduler, row.scheduler_job_id, row.scheduler_job_ids) for row in listed.jobs] == [
        ("slurm", "77_0", ["77_0"]), ("slurm", "77_1", ["77_1"])]
    slurm.command("sacct", "77_0|RUNNING\n77_1|CANCELLED by 0\n")
    jobs = read_sweep(tmp_path).jobs
    assert [(job.status, job.scheduler_state) for job in jobs] == [(Status.RUNNING, "RUNNING"), (Status.CANCELLED, "CANCELLED")]


def test_a_damaged_job_list_is_one_line_and_kept(tmp_path):
    sweep = tmp_path / "s"
    sweep.mkdir()
    (sweep / "jobs.json").write_text('{"sweeper": "CheckedSweeper", "jobs": [')
    result = run_cli("run.py", "-m", "lr=0.1,0.01", "steps=20", f"hydra.sweep.dir={sweep}")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"error: {sweep / 'jobs.json'}: not a valid job list" in result.stderr
    assert (sweep / "jobs.json").read_text() == '{"sweeper": "CheckedSweeper", "jobs": ['
    assert sorted(p.name for p in sweep.iterdir()) == ["jobs.json"]


@pytest.mark.slow
def test_two_sweeps_started_into_one_directory(tmp_path):
    """Of two different sweeps started at once into one directory, one refuses before writing
    anything and the other runs; every record is the configuration the job list names."""
    sweep = tmp_path / "sweep"
    commands = [[sys.executable, "run.py", "-m", f"lr={lrs}", "steps=50", f"hydra.sweep.dir={sweep}"]
                for lrs in ("0.001,0.002,0.003,0.004", "0.01,0.02,0.03,0.04")]
    processes = [subprocess.Popen(c, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=checkout_env())
                 for c in commands]
    outputs = [p.communicate(timeout=300) for p in processes]
    codes = sorted(p.returncode for p in processes)
    assert codes == [0, 2], outputs
    refused = outputs[[p.returncode for p in processes].index(2)][1]
    assert "holds another sweep" in refused and "Traceback" not in refused
    listed = manifest.read_manifest(sweep)
    for entry in listed.jobs:
        record = read_record(sweep / entry.dir / "result.json")
        assert (record.fingerprint, record.overrides) == (entry.fingerprint, entry.overrides)
    assert (collate(sweep).status == "ok").all() and len(collate(sweep)) == 4


@pytest.mark.slow
def test_the_sweep_lists_its_jobs_before_they_run(tmp_path):
    """jobs.json: every job of the grid, as Hydra expands it, with the preset and directory."""
    sweep = tmp_path / "s"
    result = run_cli("run.py", "-m", "experiment=ex1_momentum", "lr=0.1,0.01", "momentum=0.8,0.9", "steps=20",
                     "logging.tensorboard=false", f"hydra.sweep.dir={sweep}")
    assert result.returncode == 0, result.stderr
    listed = manifest.read_manifest(sweep)
    assert (listed.sweeper, listed.search, listed.total) == ("checked", False, 4)
    assert [(j.hparams["lr"], j.hparams["momentum"], j.dir) for j in listed.jobs] == \
        [(0.1, 0.8, "0"), (0.1, 0.9, "1"), (0.01, 0.8, "2"), (0.01, 0.9, "3")]
    assert {j.preset for j in listed.jobs} == {"experiment=ex1_momentum"}
    for job in listed.jobs:
        assert read_record(sweep / job.dir / "result.json").fingerprint == job.fingerprint

