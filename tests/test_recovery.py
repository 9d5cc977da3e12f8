"""Recovering from the commonest mistakes, through the command line as a user types it: a sweep
started without its data (MNIST_DIR) is refused in one line, and one whose jobs failed for want of
it resumes once the data are there; where the data live is not what a job is."""
from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time

import pytest

from sweeper.job.fingerprint import identity
from sweeper.job.record import read_record
from sweeper.job import manifest
from tests.conftest import ROOT, checkout_env, run_cli

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("where", ["missing", "empty"])
def test_a_sweep_without_its_data_is_one_line_and_writes_nothing(tmp_path, where):
    data = tmp_path / "mnist"
    if where == "empty":
        data.mkdir()
    env = {**checkout_env(), "MNIST_DIR": str(data)}
    sweep = tmp_path / "sweep"
    result = run_cli("run.py", "-m", "experiment=ex1_adam", "task=softmax", f"hydra.sweep.dir={sweep}", env=env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {data}"), result.stderr
    assert "MNIST_DIR" in lines[0] and result.stdout == ""
    assert not sweep.exists()


def _as_written_before(sweep, job: str, cfg, data_dir_known: bool, status: str | None = None) -> None:
    """Job `job`'s record and list entry as the code before data.dir left the fingerprint wrote
    them: with data.dir as now (data_dir_known) or null (MNIST_DIR unset), and `status`."""
    as_now, as_null = identity(cfg)[1][:2]  # the former fingerprints from before data.dir left it
    old = as_now if data_dir_known else as_null
    path = sweep / job / "result.json"
    record = json.loads(path.read_text())
    record.update(fingerprint=old, **({"status": status, "error": "DataError: no data.dir and the download "
                                       "failed"} if status else {}))
    path.write_text(json.dumps(record))
    listed = manifest.read_manifest(sweep)
    for entry in listed.jobs:
        if entry.dir == job:
            entry.fingerprint = old
    manifest.write_manifest(sweep, listed)


def test_forgetting_mnist_dir_then_setting_it_resumes(tmp_path, tiny, compose_cfg, sweeper_cli, monkeypatch):
    monkeypatch.setenv("MNIST_DIR", tiny)
    sweep = tmp_path / "sweep"
    common = ["task=softmax", "data.train_samples=200", "data.test_samples=50", "logging.tensorboard=false"]
    result = run_cli("run.py", "-m", *common, "lr=0.5,0.1", f"hydra.sweep.dir={sweep}",
                     env={**checkout_env(), "MNIST_DIR": tiny})
    assert result.returncode == 0, result.stderr
    cfgs = {job: compose_cfg(*common, f"lr={lr}") for job, lr in (("0", 0.5), ("1", 0.1))}
    # Job 0 failed for want of data (MNIST_DIR unset then); job 1 finished with the data where they are.
    _as_written_before(sweep, "0", cfgs["0"], data_dir_known=False, status="failed")
    _as_written_before(sweep, "1", cfgs["1"], data_dir_known=True)
    finished = read_record(sweep / "1" / "result.json").finished

    result = sweeper_cli("resume", str(sweep))
    assert result.returncode == 0, result.stderr
    assert "another configuration" not in result.stderr
    assert "1 ok, 1 skipped (done before)" in result.stdout
    assert read_record(sweep / "0" / "result.json").status == "ok"
    assert read_record(sweep / "1" / "result.json").finished == finished  # an old finished record is done

    # The same files in another folder are the same experiment: nothing runs again.
    moved = tmp_path / "elsewhere"
    shutil.copytree(tiny, moved)
    result = run_cli("run.py", "-m", *common, "lr=0.5,0.1", f"hydra.sweep.dir={sweep}",
                     env={**checkout_env(), "MNIST_DIR": str(moved)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("-> skipped: done") == 2


def test_another_configuration_names_what_differs(tmp_path):
    sweep = tmp_path / "sweep"
    assert run_cli("run.py", "-m", "lr=0.01,0.001", "steps=10", f"hydra.sweep.dir={sweep}").returncode == 0
    shutil.rmtree(sweep / "0" / ".hydra")  # only the record knows what ran: its hyperparameters say
    result = run_cli("run.py", "-m", "lr=0.01,0.001", "steps=20", f"hydra.sweep.dir={sweep}")
    assert result.returncode == 2
    assert result.stderr.strip() == (  # both jobs named, job 0 by its record alone
        f"error: {sweep} holds the records of other configurations in 2 job directories: 0 (steps: 10 -> 20), "
        "1 (steps: 10 -> 20): use a new hydra.sweep.dir, or delete those directories to run them again")


@pytest.mark.slow
def test_a_smaller_sweep_into_a_larger_ones_folder_leaves_it_resumable(tmp_path):
    """The first jobs of a sweep run again alone into its folder: the folder keeps the larger sweep,
    this command ends well, and `resume` finishes the job that was missing (issue 29)."""
    sweep = tmp_path / "subset"
    assert run_cli("run.py", "-m", "lr=0.1,0.01,0.001", f"hydra.sweep.dir={sweep}").returncode == 0
    shutil.rmtree(sweep / "2")
    again = run_cli("run.py", "-m", "lr=0.1", f"hydra.sweep.dir={sweep}")
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.splitlines()[0] == (f"note: {sweep} holds a sweep of 3 jobs, of which this command runs the "
                                            f"first 1; the others run with: python -m sweeper resume {sweep}")
    resumed = run_cli("-m", "sweeper", "resume", str(sweep))
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "[3/3] lr=0.001 -> ok" in resumed.stdout
    assert read_record(sweep / "2" / "result.json").status == "ok"


@pytest.mark.slow
def test_a_folder_of_other_configurations_is_refused_once_naming_every_job(tmp_path):
    """Every job that differs is named in one refusal (issue 29), from the job directories and, where
    they are gone, from the folder's job list; nothing is written."""
    sweep = tmp_path / "reuse"
    assert run_cli("run.py", "-m", "lr=0.1,0.01,0.001", f"hydra.sweep.dir={sweep}").returncode == 0
    listed = (sweep / "jobs.json").read_bytes()
    records = run_cli("run.py", "-m", "lr=0.5,0.05,0.005", f"hydra.sweep.dir={sweep}")
    assert records.returncode == 2 and records.stderr.strip() == (
        f"error: {sweep} holds the records of other configurations in 3 job directories: 0 (lr: 0.1 -> 0.5), "
        "1 (lr: 0.01 -> 0.05), 2 (lr: 0.001 -> 0.005): use a new hydra.sweep.dir, or delete those directories "
        "to run them again")
    for job in ("0", "1", "2", "index"):
        shutil.rmtree(sweep / job)
    in_the_list = run_cli("run.py", "-m", "lr=0.5,0.05", f"hydra.sweep.dir={sweep}")
    assert in_the_list.returncode == 2 and in_the_list.stderr.strip() == (
        f"error: {sweep} holds another sweep: its jobs 0 (lr: 0.1 -> 0.5), 1 (lr: 0.01 -> 0.05) are other "
        "configurations: use a new hydra.sweep.dir, or delete that directory to run it again")
    assert (sweep / "jobs.json").read_bytes() == listed and sorted(p.name for p in sweep.iterdir()) == \
        ["jobs.json", "multirun.yaml"]


@pytest.mark.slow
def test_cancel_stops_a_sweep_running_here_as_ctrl_c_does_leaving_it_for_resume(tmp_path, tiny):
    """`python -m sweeper cancel DIR` (issue 29) on a sweep started in the background, where SIGINT
    is ignored for it: the running job records `interrupted`, the sweep prints its resume line."""
    sweep = tmp_path / "cancelled"
    command = ["run.py", "-m", "task=softmax", "lr=0.5,0.1", "epochs=400", "hydra.sweeper.fuse=false",
               f"data.dir={tiny}", "logging.tensorboard=false", f"hydra.sweep.dir={sweep}"]
    background = subprocess.Popen([sys.executable, *command], cwd=ROOT, env=checkout_env(), start_new_session=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        deadline = time.monotonic() + 60
        while not (sweep / "0" / ".owner").exists():
            assert time.monotonic() < deadline and background.poll() is None, "the first job did not start"
            time.sleep(0.2)
        done = run_cli("-m", "sweeper", "cancel", str(sweep))
        out, err = background.communicate(timeout=60)
    finally:
        background.kill()
    assert done.returncode == 0 and done.stdout.strip() == (
        f"cancelled 1 job: 1 process on this machine ({background.pid}); finish the sweep with: "
        f"python -m sweeper resume {sweep}"), done.stdout + done.stderr
    assert background.returncode == 130 and out.rstrip().endswith(f"interrupted; finish the sweep with: "
                                                                  f"python -m sweeper resume {sweep}"), out + err
    assert read_record(sweep / "0" / "result.json").status == "interrupted"
    again = run_cli("-m", "sweeper", "cancel", str(sweep))
    assert again.stdout.strip() == f"nothing to cancel: 2 jobs: 1 interrupted, 1 not started ({sweep})"
