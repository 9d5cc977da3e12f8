"""Sweeps on the real Slurm cluster of this machine (`make slurm-up`), as a user runs them."""
from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sweeper import allocation
from sweeper.sweep.collate import collate
from sweeper.job.record import read_record
from sweeper.launching.slurm_queries import ENDED, job_states
from sweeper.job import manifest
from tests import synthetic
from tests.cluster import final_state, read_job_ids, sacct, slurm_multirun, states, status, status_rows  # noqa: F401  (status: a fixture)
from tests.conftest import ROOT, run_cli, skip_or_fail
from tests.mnist_files import write_mnist

pytestmark = [pytest.mark.slurm, pytest.mark.slow]


def test_ex1_gd_grid_runs_on_slurm_and_collates(sweeper_cli, status, tmp_path):
    sweep = tmp_path / "gd"
    result = slurm_multirun(sweep, "experiment=ex1_gd")  # the preset packs its 4 jobs into one task
    assert result.returncode == 0, result.stderr
    assert re.search(r"^Waiting for 4 jobs in 1 Slurm task; Slurm job ids: \d+ \(jobs 0-3: 4 x 0 GPU, 1 CPU, 8 GB "
                     r"in 1 Slurm task\)$", result.stdout, re.M), result.stdout
    jobs = read_job_ids(sweep)
    assert sorted(jobs) == [0, 1, 2, 3]
    assert len({entry["slurm_job_id"] for entry in jobs.values()}) == 1  # one task
    for num, entry in jobs.items():
        record = read_record(sweep / entry["dir"] / "result.json")
        assert record.environment["SLURM_JOB_ID"] == entry["slurm_job_id"]  # one task: a plain Slurm job
        assert allocation.ran_under_scheduler(record.environment)  # as the course report counts it
        assert final_state(entry["slurm_job_id"]) == "COMPLETED"
    table = collate(sweep)
    assert dict(zip(table.lr, table.status)) == {0.1: "diverged", 0.01: "ok", 0.001: "ok", 0.0001: "ok"}
    assert sweeper_cli("collate", str(sweep)).returncode == 0
    assert (sweep / "results.csv").exists()
    assert status(sweep).stdout.strip().endswith(f"4 jobs: 3 ok, 1 diverged ({sweep})")


def test_nonblocking_submission_then_status_until_done(status, tmp_path):
    # Two jobs: Keras SGD, and an optimizer class that does not exist, so that job raises.
    sweep = tmp_path / "nonblocking"
    result = slurm_multirun(sweep, "optimizer._target_=keras.optimizers.SGD,keras.optimizers.NoSuch", "steps=10",
                            "hydra.launcher.wait=false")
    assert result.returncode == 0, result.stderr
    ids = [entry["slurm_job_id"] for entry in read_job_ids(sweep).values()]
    assert f"Slurm job ids: {ids[0].split('_')[0]} (jobs 0-1" in result.stdout
    assert f"Sweep directory: {sweep}" in result.stdout
    first = status(sweep).stdout  # each job imports TensorFlow for seconds: none has finished yet
    assert re.search(r"2 jobs: (\d (pending|running)(, )?)+ \(", first), first

    done = {"0": ["completed", "ok"], "1": ["completed", "failed"]}  # Slurm's COMPLETED; the record's failed
    deadline = time.monotonic() + 180
    while states(last := status(sweep).stdout) != done:
        assert time.monotonic() < deadline, last
        time.sleep(1)
    assert last.strip().endswith(f"2 jobs: 1 ok, 1 failed ({sweep})")
    assert "NoSuch" in read_record(sweep / "1" / "result.json").error


def test_jobs_slurm_refuses_are_one_clear_line(tmp_path):
    sweep = tmp_path / "refused"
    # A partition the cluster does not have (a request its nodes cannot satisfy is refused before
    # sbatch is asked: tests/test_packing.py).
    result = slurm_multirun(sweep, "steps=5,10", "hydra.launcher.partition=nosuch")
    assert (result.returncode, result.stdout) == (2, ""), result.stderr
    assert result.stderr.splitlines() == [
        "error: Slurm refused jobs 0-1 (steps=5, ...): invalid partition specified: nosuch; nothing was submitted"]
    assert read_job_ids(sweep) == {}  # nothing was submitted


def _no_accounting_conf(tmp_path: Path) -> Path:
    """This cluster's slurm.conf without accounting, for the client commands: sacct then fails as
    on a cluster without accounting, and squeue still asks the same controller."""
    conf = Path("/etc/slurm/slurm.conf").read_text()
    path = tmp_path / "no-accounting" / "slurm.conf"
    path.parent.mkdir()
    path.write_text(re.sub(r"(?m)^AccountingStorage\w*=.*$", "", conf) + "AccountingStorageType=accounting_storage/none\n")
    return path


def test_cancelled_job_is_shown_cancelled_and_the_others_are_collected(status, tmp_path, monkeypatch):
    sweep = tmp_path / "cancel"
    # Job 1 waits in its setup line until it is cancelled; job 0 runs.
    command = [sys.executable, str(ROOT / "run.py"), "-m", "hydra/launcher=slurm", f"hydra.sweep.dir={sweep}",
               "steps=5,10", "hydra.launcher.setup=['test \"$SLURM_ARRAY_TASK_ID\" != 1 || sleep 300']"]
    sweep_run = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while len(jobs := read_job_ids(sweep)) < 2 or job_states([jobs[1]["slurm_job_id"]]) != {
                jobs[1]["slurm_job_id"]: "RUNNING"}:
            assert time.monotonic() < deadline, "job 1 did not start"
            time.sleep(0.5)
        subprocess.run(["scancel", jobs[1]["slurm_job_id"]], check=True, timeout=10)
        stdout, stderr = sweep_run.communicate(timeout=120)
    finally:
        sweep_run.kill()
    # The sweep ends as any sweep with a job that did not finish: its line, the summary, the resume
    # line and exit 1; not Hydra's "Error executing job" (issue 29).
    assert sweep_run.returncode == 1 and "Error executing job" not in stderr and "Traceback" not in stderr, stderr
    assert f"steps=10 -> Slurm job {jobs[1]['slurm_job_id']} ended CANCELLED without a result" in stdout
    assert "sweep: 2 jobs: 1 ok, 1 cancelled in " in stdout
    assert stderr.rstrip().endswith(f"error: 1 job did not finish: {sweep / '1'}; finish them with: "
                                    f"python -m sweeper resume {sweep}"), stderr
    assert read_record(sweep / "0" / "result.json").status == "ok"

    final_state(jobs[0]["slurm_job_id"])
    cancelled = {"0": ["completed", "ok"], "1": ["cancelled", "cancelled"]}
    assert states(status(sweep).stdout) == cancelled
    # Without accounting, the state comes from the controller (squeue) instead.
    cluster_conf = os.environ.get("SLURM_CONF")
    monkeypatch.setenv("SLURM_CONF", str(_no_accounting_conf(tmp_path)))
    assert "accounting storage is disabled" in subprocess.run(["sacct"], capture_output=True, text=True).stderr
    assert states(status(sweep).stdout) == cancelled
    if cluster_conf is None:
        monkeypatch.delenv("SLURM_CONF")
    else:
        monkeypatch.setenv("SLURM_CONF", cluster_conf)
    resumed = run_cli("-m", "sweeper", "resume", str(sweep))  # job 1 runs again, as array task 0: no sleep
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert read_record(sweep / "1" / "result.json").status == "ok"


def test_cancel_scancels_a_sweeps_jobs_and_resume_runs_them(status, tmp_path):
    """`python -m sweeper cancel DIR` (issue 29) on a sweep left to Slurm: its jobs cancelled in one
    scancel, `status` says so, and `resume` runs them (a marker file lets them through this time)."""
    sweep, go = tmp_path / "stop", tmp_path / "go"
    result = slurm_multirun(sweep, "steps=5,10", "hydra.launcher.wait=false",
                            f"hydra.launcher.setup=['test -e {go} || sleep 300']")
    assert result.returncode == 0, result.stderr
    ids = [job["slurm_job_id"] for job in read_job_ids(sweep).values()]
    deadline = time.monotonic() + 60
    while (running := job_states(ids)) != {i: "RUNNING" for i in ids}:  # both in their setup's sleep
        assert time.monotonic() < deadline, running
        time.sleep(0.5)
    done = run_cli("-m", "sweeper", "cancel", str(sweep))
    assert done.returncode == 0 and done.stdout.strip() == (
        f"cancelled 2 jobs: 2 Slurm jobs ({', '.join(sorted(ids))}); finish the sweep with: "
        f"python -m sweeper resume {sweep}"), done.stdout + done.stderr
    deadline = time.monotonic() + 30
    while (now := states(status(sweep).stdout)) != {"0": ["cancelled", "cancelled"], "1": ["cancelled", "cancelled"]}:
        assert time.monotonic() < deadline, now
        time.sleep(0.5)
    go.touch()
    resumed = run_cli("-m", "sweeper", "resume", str(sweep), "hydra.launcher.wait=true")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert {read_record(sweep / job / "result.json").status for job in ("0", "1")} == {"ok"}


def _controller_forgot(tmp_path: Path, monkeypatch) -> None:
    """squeue as the controller answers once a job ended more than MinJobAge (300 s) ago; sacct is the real one."""
    stub = tmp_path / "bin"
    stub.mkdir()
    (stub / "squeue").write_text("#!/bin/sh\necho 'slurm_load_jobs error: Invalid job id specified' >&2\nexit 1\n")
    (stub / "squeue").chmod(0o755)
    monkeypatch.setenv("PATH", f"{stub}:{os.environ['PATH']}")


def test_status_shows_an_array_cancelled_while_pending_as_cancelled(status, tmp_path, monkeypatch):
    """A sweep's array cancelled before any of its tasks started: sacct names the array alone
    (`123|CANCELLED by 0`); its jobs are `cancelled`, not `not_started`, also once squeue forgot them."""
    sweep = tmp_path / "held"
    synthetic.write_job_list(sweep, "linear", "gd", [{"lr": 0.1}, {"lr": 0.2}, {"lr": 0.3}])
    array = subprocess.run(["sbatch", "--parsable", "--hold", "--array=0-2", "-o", "/dev/null", "--wrap", "true"],
                           capture_output=True, text=True, check=True, timeout=30).stdout.strip()
    manifest.update(sweep, {n: {"scheduler": "slurm", "scheduler_job_id": f"{array}_{n}"} for n in range(3)})
    subprocess.run(["scancel", array], check=True, timeout=10)
    deadline = time.monotonic() + 30
    while not sacct(array, "State").startswith("CANCELLED"):
        assert time.monotonic() < deadline, sacct(array, "JobID,State")
        time.sleep(0.5)
    _controller_forgot(tmp_path, monkeypatch)
    assert states(status(sweep).stdout) == {str(n): ["cancelled", "cancelled"] for n in range(3)}


def _ended_slurm_job(cancelled: bool = False) -> str:
    """The id of a Slurm job that has ended: completed, or cancelled while it ran (accounting
    records a running job's end at once; a held job's cancel took it up to 30 s)."""
    job_id = subprocess.run(["sbatch", "--parsable", "-o", "/dev/null", "--wrap", "sleep 60" if cancelled else "true"],
                            capture_output=True, text=True, check=True, timeout=30).stdout.strip()
    if cancelled:
        deadline = time.monotonic() + 60
        while job_states([job_id]) != {job_id: "RUNNING"}:
            assert time.monotonic() < deadline, "the job did not start"
            time.sleep(0.2)
        subprocess.run(["scancel", job_id], check=True, timeout=10)
    assert final_state(job_id).split()[0] in ENDED
    return job_id


@pytest.mark.parametrize("how", ["completed", "cancelled"])
def test_a_dead_nodes_marker_is_resolved_by_asking_slurm(status, tmp_path, how):
    """A job's `.owner` left on another host by a Slurm job that has ended (its node died): `status`
    does not show it running and `resume` runs the job, the marker taken over, not deleted by hand."""
    from sweeper.job.owner import OWNER_NAME

    sweep = tmp_path / "dead"
    result = run_cli(str(ROOT / "run.py"), "-m", "lr=0.1,0.01", "steps=20", f"hydra.sweep.dir={sweep}")
    assert result.returncode == 0, result.stderr
    (sweep / "1" / "result.json").unlink()
    slurm_id = _ended_slurm_job(cancelled=how == "cancelled")
    marker = {"host": "a-node-that-died", "pid": 4242, "started": "2026-01-01T00:00:00+00:00", "slurm_job_id": slurm_id}
    (sweep / "1" / OWNER_NAME).write_text(json.dumps(marker) + "\n")
    assert status_rows(status(sweep).stdout)["1"][0] == "missing"  # not running: no Slurm column, its own state
    resumed = run_cli("-m", "sweeper", "resume", str(sweep))
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert read_record(sweep / "1" / "result.json").status == "ok" and not (sweep / "1" / OWNER_NAME).exists()


def test_a_running_slurm_jobs_marker_on_another_host_is_kept(tmp_path):
    from sweeper.job import owner

    job_id = subprocess.run(["sbatch", "--parsable", "--hold", "-o", "/dev/null", "--wrap", "true"],
                            capture_output=True, text=True, check=True, timeout=30).stdout.strip()
    try:
        mark = owner.Owner("a-live-node", 4242, "2026-01-01T00:00:00+00:00", job_id)
        (tmp_path / owner.OWNER_NAME).write_text(json.dumps(dataclasses.asdict(mark)) + "\n")
        assert owner.take(tmp_path) == mark  # pending is not ended: its owner may run yet
    finally:
        subprocess.run(["scancel", job_id], timeout=10)


def test_status_does_not_wait_for_jobs_slurm_does_not_know(status, tmp_path, monkeypatch):
    sweep = tmp_path / "gone"
    synthetic.write_job_list(sweep, "linear", "gd", [{"lr": 0.1}, {"lr": 0.2}])
    manifest.update(sweep, {0: {"scheduler": "slurm", "scheduler_job_id": "999999_0"}, 1: {"scheduler": "slurm", "scheduler_job_id": "999999_1"}})
    (sweep / "0").mkdir()  # started, no record; job 1 has no directory
    rows = status_rows(status(sweep).stdout)
    assert rows == {"0": ["999999_0", "-", "missing", "lr=0.1"], "1": ["999999_1", "-", "not_started", "lr=0.2"]}
    # A cluster that does not answer at all (its commands look for it for a minute): said, not waited for.
    monkeypatch.setenv("SLURM_CONF", str(tmp_path / "nowhere.conf"))
    monkeypatch.setenv("SWEEPER_SLURM_TIMEOUT_S", "2")
    result = status(sweep)
    assert "Slurm did not answer" in result.stderr and "2 jobs: 1 missing, 1 not started" in result.stdout


def _our_cluster() -> None:
    if "Written by hpc-sweeper scripts/slurm-up.sh" not in Path("/etc/slurm/slurm.conf").read_text():
        skip_or_fail("the Slurm cluster here is not the one `make slurm-up` made: its MaxArraySize is not ours to change")


def test_slurm_up_again_finds_everything_running():
    _our_cluster()
    result = subprocess.run(["bash", str(ROOT / "scripts" / "slurm-up.sh")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "started" not in result.stdout and " is up: debug" in result.stdout


@pytest.fixture
def max_array_size_2():
    """The test cluster with MaxArraySize=2 (array indices 0 and 1), restored afterwards."""
    _our_cluster()
    up = ["bash", str(ROOT / "scripts" / "slurm-up.sh")]
    subprocess.run(up, check=True, env={**os.environ, "MAX_ARRAY_SIZE": "2"}, capture_output=True, timeout=120)
    try:
        yield
    finally:
        subprocess.run(up, check=True, capture_output=True, timeout=120)


def test_a_sweep_larger_than_max_array_size_is_split(tmp_path, max_array_size_2):
    refused = subprocess.run(["sbatch", "--array=0-2", "--wrap=true"], capture_output=True, text=True, timeout=30)
    assert refused.returncode != 0 and "Invalid job array specification" in refused.stderr
    sweep = tmp_path / "split"
    result = slurm_multirun(sweep, "steps=5,10,15")
    assert result.returncode == 0, result.stderr
    ids = [entry["slurm_job_id"] for entry in read_job_ids(sweep).values()]
    assert ids[0].split("_")[0] == ids[1].split("_")[0] != ids[2].split("_")[0]   # arrays of 2 and 1
    assert [read_record(sweep / str(n) / "result.json").status for n in range(3)] == ["ok"] * 3


def sbatch_directives(script: str) -> list[str]:
    """The `#SBATCH` lines sbatch reads: those before the first command."""
    lines = script.splitlines()[1:]
    first_command = next(n for n, line in enumerate(lines) if line.strip() and not line.startswith("#"))
    return [line for line in lines[:first_command] if line.startswith("#SBATCH")]


WEIRD_LAUNCHER = """\
defaults:
  - slurm
  - _self_
name: "it's a \\"job\\"\\n#SBATCH --partition=nowhere"
setup:
  - "#SBATCH --qos=nowhere"
  - export GREETING="it's \\"quoted\\" and spaced"
  - printf '%s\\n' "$GREETING" > greeting.txt
  - "echo one > one.txt\\necho two > two.txt"
"""


def test_weird_launcher_settings_neither_break_the_script_nor_add_directives(tmp_path):
    (tmp_path / "conf" / "hydra" / "launcher").mkdir(parents=True)
    (tmp_path / "conf" / "hydra" / "launcher" / "weird.yaml").write_text(WEIRD_LAUNCHER)
    sweep = tmp_path / "we ird 'sweep' \"dir\""
    work = tmp_path / "work"
    work.mkdir()
    quoted = str(sweep).replace("\\", "\\\\").replace("'", "\\'")  # Hydra's quoting
    result = run_cli(str(ROOT / "run.py"), "-m", f"--config-dir={tmp_path / 'conf'}", "hydra/launcher=weird",
                     f"hydra.sweep.dir='{quoted}'", "steps=5", cwd=work)
    assert result.returncode == 0, result.stderr
    slurm_id = read_job_ids(sweep)[0]["slurm_job_id"]
    assert read_record(sweep / "0" / "result.json").status == "ok"
    assert final_state(slurm_id) == "COMPLETED"
    assert sacct(slurm_id, "Partition") == "debug" and sacct(slurm_id, "QOS") == "normal"
    assert sacct(slurm_id, "JobName") == "it's a `job` #SBATCH --partition=nowhere"  # sacct shows " as `
    script = next(sweep.glob(".submitit/*/*submission.sh")).read_text()
    directives = sbatch_directives(script)
    assert not [line for line in directives if "nowhere" in line and not line.startswith("#SBATCH --job-name=")]
    assert (work / "greeting.txt").read_text() == "it's \"quoted\" and spaced\n"
    assert (work / "one.txt").read_text() == "one\n" and (work / "two.txt").read_text() == "two\n"


def test_ex4_gpus_preset_gives_each_job_its_replicas(tmp_path):
    """Exercise 4 as a user starts it, on CPU replicas: each job gets its GPUs and trains on as many."""
    data = write_mnist(tmp_path / "mnist", train=256, test=64)
    sweep = tmp_path / "ex4"
    result = run_cli("run.py", "-m", "experiment=ex4_gpus", "devices=cpu", "epochs=1", f"data.dir={data}",
                     "hydra.launcher.cpus_per_gpu=0", f"hydra.sweep.dir={sweep}", timeout=600)
    assert result.returncode == 0, result.stderr
    for entry, gpus in zip(read_job_ids(sweep).values(), (1, 2, 4)):
        record = read_record(sweep / entry["dir"] / "result.json")
        assert record.status == "ok" and record.task == "cnn" and record.hparams["gpus"] == gpus
        assert record.environment["SLURM_GPUS_ON_NODE"] == str(gpus)
        devices = record.environment["CUDA_VISIBLE_DEVICES"].split(",")  # which ones: what was free
        assert len(set(devices)) == gpus and set(devices) <= {"0", "1", "2", "3"}
        assert final_state(entry["slurm_job_id"]) == "COMPLETED"
        assert record.metrics["replicas"] == gpus and len(record.metrics["devices"]) == gpus
        assert record.metrics["samples_per_s"] > 0 and record.train_time_s > 0
    table = collate(sweep)
    assert list(table.replicas) == [1, 2, 4]


def start_the_requeued_job_now(job_id: str) -> None:
    """Slurm holds a requeued job for two minutes (its BeginTime): a test need not wait them out."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        state = subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%T %r"], capture_output=True, text=True,
                               timeout=10).stdout.split()
        if state == ["PENDING", "BeginTime"]:
            subprocess.run(["scontrol", "update", f"JobId={job_id}", "StartTime=now"], check=True, timeout=10)
            return
        time.sleep(0.5)


def test_a_signalled_job_is_requeued_and_continues_at_its_epoch(tmp_path):
    """Slurm warns a job with SIGUSR2 before its time limit (or on preemption): submitit requeues it,
    and the requeued job continues from its last saved epoch."""
    data = write_mnist(tmp_path / "mnist", train=512, test=64)
    sweep = tmp_path / "requeue"
    result = slurm_multirun(sweep, "task=cnn", "epochs=5", "batch_size=16", f"data.dir={data}",
                            "hydra.launcher.wait=false")
    assert result.returncode == 0, result.stderr
    job_id = read_job_ids(sweep)[0]["slurm_job_id"]
    progress = sweep / "0" / "state" / "progress.json"
    deadline = time.monotonic() + 180
    while not progress.exists():  # the first epoch is saved
        assert time.monotonic() < deadline, "the job saved no epoch"
        time.sleep(0.2)
    subprocess.run(["scancel", "--signal=USR2", job_id], check=True, timeout=10)
    start_the_requeued_job_now(job_id)
    record_path = sweep / "0" / "result.json"
    deadline = time.monotonic() + 300
    while not (record_path.exists() and read_record(record_path).status != "interrupted"):
        assert time.monotonic() < deadline, "the requeued job did not finish"
        time.sleep(1)
    record = read_record(record_path)
    assert record.status == "ok" and record.attempts == 2, record.error
    history = record.history
    assert all(len(history[k]) == 5 for k in ("train_loss", "test_accuracy", "epoch_time_s"))
    steps = history["loss_steps"]
    assert steps == sorted(set(steps)) and steps[-1] == 5 * 32  # continuous, 32 steps an epoch
    final_state(job_id)  # the job has its record a moment before Slurm sees it end
    runs = subprocess.run(["sacct", "-D", "-X", "-n", "-P", "-o", "State", "-j", job_id], capture_output=True,
                          text=True, timeout=10).stdout.split()
    assert runs[0] == "REQUEUED" and runs[-1] == "COMPLETED", runs  # one Slurm job, run twice
    print(f"\nrequeue: {record.attempts} attempts (Slurm: {' then '.join(runs)}), 5 epochs with a continuous "
          f"history, {record.train_time_s:.1f} s of training in all")
