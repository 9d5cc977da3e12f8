"""The house: one job list per sweep, one owner per job directory, a job run without Hydra's state,
one status type, one registry of hyperparameters."""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys

import pytest
from omegaconf import OmegaConf

from sweeper.hparams import DEFAULTS, HPARAMS, REGISTRY, ConfigError, validate
from sweeper.job import owner
from sweeper.job.execute import execute
from sweeper.job.fingerprint import MismatchError, fingerprint
from sweeper.job.record import read_record
from sweeper.job.spec import JobSpec
from sweeper.job.status import FINISHED, NEEDS_RERUN, Status, decide, summary
from sweeper.sweep import manifest, progress
from sweeper.sweep.collate import collate
from tests import synthetic
from tests.conftest import ROOT, checkout_env, run_cli


def test_registry_defaults_are_the_configs():
    config = OmegaConf.load(ROOT / "conf" / "config.yaml")
    assert {key: config[key] for key in HPARAMS} == DEFAULTS


@pytest.mark.parametrize("hparam", REGISTRY, ids=lambda h: h.name)
def test_the_hint_of_a_refused_value_names_it_and_an_override_that_is_accepted(compose_cfg, hparam):
    """What a user reads when a value is refused: the key, and an example to paste on the command line."""
    with pytest.raises(ConfigError) as refused:
        validate(compose_cfg(f"{hparam.name}=-1e99"))  # nothing the registry allows
    message = str(refused.value)
    assert message.startswith(f"{hparam.name}=") and message.endswith(hparam.hint)
    example = re.fullmatch(rf"{hparam.name} must be .+ \(e\.g\. (\S+)\)", hparam.hint).group(1)
    validate(compose_cfg(example))


def test_what_decides_a_job_status():
    """The rules of decide(): a record, Slurm's state, a live owner, a search's failed trial."""
    assert decide("ok") == Status.OK and decide("interrupted", slurm="PENDING") == Status.PENDING
    assert decide("failed", slurm="RUNNING") == Status.FAILED  # a record of failure is final
    assert decide(corrupt=True) == Status.CORRUPT
    assert decide(slurm="CANCELLED by 0") == Status.CANCELLED and decide(slurm="COMPLETED") == Status.MISSING
    assert decide(owner_alive=True) == Status.RUNNING
    assert decide(started=False) == Status.NOT_STARTED and decide() == Status.MISSING
    # A search's trial marked failed on resume (killed with its search): failed, unless it has a record.
    assert decide(trial_failed=True) == Status.FAILED and decide(started=False, trial_failed=True) == Status.FAILED
    assert decide("ok", trial_failed=True) == Status.OK and decide(owner_alive=True, trial_failed=True) == Status.RUNNING
    assert Status.NOT_STARTED in NEEDS_RERUN and Status.RUNNING not in NEEDS_RERUN | FINISHED
    statuses = [Status.RUNNING, Status.OK, Status.NOT_STARTED, Status.OK]
    assert summary(statuses, skipped=2) == "6 jobs: 2 ok, 1 running, 1 not started, 2 skipped (done before)"



def test_collate_status_and_the_sweep_end_give_each_job_one_status(tmp_path, sweeper_cli, capfd):
    """The status of a job is decided once: collate's table, `python -m sweeper status` and the
    summary at a sweep's end agree on every kind of job directory."""
    jobs = [{"lr": lr} for lr in (0.1, 0.01, 0.001, 0.0001, 0.2, 0.02, 0.002)]
    synthetic.write_job_list(tmp_path, "linear", "gd", jobs)
    synthetic.linear_job(tmp_path / "0", "gd", lr=0.1)
    synthetic.linear_job(tmp_path / "1", "gd", lr=0.01, diverge_at=5)
    synthetic.write_job(tmp_path / "2", "linear", "gd", {"lr": 0.001}, {}, {}, status="failed", error="boom")
    (tmp_path / "3").mkdir()
    (tmp_path / "3" / "result.json").write_text('{"status": ')  # cut short
    mark = {"host": socket.gethostname(), "pid": os.getpid(), "started": "2026-01-01T00:00:00+00:00"}
    (tmp_path / "4").mkdir()
    (tmp_path / "4" / owner.OWNER_NAME).write_text(json.dumps(mark))  # a live process holds it
    (tmp_path / "5" / ".hydra").mkdir(parents=True)  # started, died before its record
    # job 6: never started
    expected = ["ok", "diverged", "failed", "corrupt", "running", "missing", "not_started"]

    assert list(collate(tmp_path).sort_values("job", key=lambda c: c.astype(int)).status) == expected
    table = sweeper_cli("status", str(tmp_path))
    assert table.returncode == 0, table.stderr
    rows = table.stdout.split("\n\n")[0].splitlines()[1:]
    assert [row.split()[1] for row in rows] == expected  # job, status, overrides: no Slurm columns here
    with pytest.raises(SystemExit):  # jobs that did not finish: the sweep's exit status is 1
        progress.end(tmp_path, 1.0)
    end = capfd.readouterr().out
    counted = summary(Status(value) for value in expected)
    assert end.startswith(f"sweep: {counted} in ") and table.stdout.strip().endswith(f"{counted} ({tmp_path})")


def test_a_job_list_is_claimed_once(tmp_path):
    synthetic.write_job_list(tmp_path, "linear", "gd", [{"lr": 0.1}, {"lr": 0.01}])
    same = manifest.read_manifest(tmp_path)
    more = manifest.Manifest("CheckedSweeper", False, 3, [*same.jobs, manifest.JobEntry(
        num=2, dir="2", overrides=["lr=0.001"], fingerprint="x", task="linear", optimizer="gd", hparams={})])
    assert len(manifest.claim(tmp_path, more).jobs) == 3  # a resumed sweep may add jobs
    other = manifest.Manifest("CheckedSweeper", False, 1, [manifest.JobEntry(
        num=0, dir="0", overrides=["lr=0.5"], fingerprint="another", task="linear", optimizer="gd", hparams={})])
    before = (tmp_path / "jobs.json").read_text()
    with pytest.raises(MismatchError, match="holds another sweep: its job 0 is lr=0.1"):
        manifest.claim(tmp_path, other)
    assert (tmp_path / "jobs.json").read_text() == before


def test_a_damaged_job_list_is_one_line_and_kept(tmp_path):
    sweep = tmp_path / "s"
    sweep.mkdir()
    (sweep / "jobs.json").write_text('{"sweeper": "CheckedSweeper", "jobs": [')
    result = run_cli("run.py", "-m", "lr=0.1,0.01", "steps=20", f"hydra.sweep.dir={sweep}")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"error: {sweep / 'jobs.json'}: not a valid job list" in result.stderr
    assert (sweep / "jobs.json").read_text() == '{"sweeper": "CheckedSweeper", "jobs": ['
    assert sorted(p.name for p in sweep.iterdir()) == ["jobs.json"]


def _spec(compose_cfg, job_dir, *overrides: str) -> JobSpec:
    cfg = compose_cfg(*overrides, "logging.tensorboard=false")
    return JobSpec(directory=job_dir, config=cfg, overrides=list(overrides), fingerprint=fingerprint(cfg))


def test_jobs_run_in_one_process_without_hydra(compose_cfg, tmp_path):
    """The second layer runs specifications one after the other, each writing its own record."""
    specs = [_spec(compose_cfg, tmp_path / str(n), "optimizer=adam", f"lr={lr}", "steps=30")
             for n, lr in enumerate((0.1, 0.01))]
    records = [execute(spec) for spec in specs]
    assert [r.hparams["lr"] for r in records] == [0.1, 0.01]
    for spec, record in zip(specs, records):
        assert read_record(spec.directory / "result.json") == record
        assert record.schema_version == 2 and record.direction == "minimize" and record.status == "ok"
        assert not (spec.directory / owner.OWNER_NAME).exists()  # given back
    assert execute(specs[0]).finished == records[0].finished  # done: kept, not run again


def test_a_live_owner_keeps_its_directory_and_a_stale_one_is_taken_over(compose_cfg, tmp_path, capsys):
    spec = _spec(compose_cfg, tmp_path / "0", "steps=30")
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        spec.directory.mkdir()
        mark = {"host": socket.gethostname(), "pid": sleeper.pid, "started": "2026-01-01T00:00:00+00:00"}
        (spec.directory / owner.OWNER_NAME).write_text(json.dumps(mark))
        assert execute(spec) is None
        assert f"-> skipped: running (pid {sleeper.pid} on {socket.gethostname()})" in capsys.readouterr().out
        assert not (spec.directory / "result.json").exists()
        assert collate(tmp_path).set_index("job").loc["0", "status"] == "running"
    finally:
        sleeper.kill()
        sleeper.wait()
    assert execute(spec).status == "ok"  # its owner is gone: taken over
    assert not (spec.directory / owner.OWNER_NAME).exists()


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
    assert (listed.sweeper, listed.search, listed.total) == ("CheckedSweeper", False, 4)
    assert [(j.hparams["lr"], j.hparams["momentum"], j.dir) for j in listed.jobs] == \
        [(0.1, 0.8, "0"), (0.1, 0.9, "1"), (0.01, 0.8, "2"), (0.01, 0.9, "3")]
    assert {j.preset for j in listed.jobs} == {"experiment=ex1_momentum"}
    for job in listed.jobs:
        assert read_record(sweep / job.dir / "result.json").fingerprint == job.fingerprint
