"""Many small jobs on the real Slurm cluster (`make slurm-up`): packed tasks, jobs at once inside a
task, and no job submitted twice. The 64-job comparison with timings is benchmarks/packing.py."""
from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from sweeper.job.owner import OWNER_NAME, read_owner_file
from sweeper.job.record import read_record
from sweeper.job import manifest
from tests.cluster import final_state, slurm_multirun, status, status_rows

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

GRID = ("optimizer=adam", "lr=0.1,0.01,0.001,0.0001", "beta1=0.8,0.9")  # 8 jobs of ex1_adam's grid


def entries(sweep: Path) -> dict[int, manifest.ListedJob]:
    return {job.num: job for job in manifest.read_manifest(sweep).jobs}


def hydra_files(job_dir: Path) -> dict[str, object]:
    """A job's `.hydra/` files, less what names where and how it was launched (its sweep directory,
    its Slurm id, the launcher's settings): those differ between two launches of the same job."""
    files = {name: yaml.safe_load((job_dir / ".hydra" / name).read_text())
             for name in ("config.yaml", "overrides.yaml", "hydra.yaml")}
    hydra = files["hydra.yaml"]["hydra"]
    for key in ("launcher", "sweep", "run"):
        hydra.pop(key)
    hydra["overrides"].pop("hydra")
    hydra["job"].pop("id")
    hydra["runtime"].pop("output_dir")
    return files


def test_packed_jobs_match_unpacked_jobs_and_run_two_at_once(tmp_path):
    unpacked, packed = tmp_path / "unpacked", tmp_path / "packed"
    result = slurm_multirun(unpacked, *GRID)
    assert result.returncode == 0, result.stderr
    # One task of 8 jobs, two at a time (a CPU each).
    result = slurm_multirun(packed, *GRID, "hydra.launcher.jobs_per_task=8", "hydra.launcher.jobs_in_parallel=2",
                            "hydra.launcher.cpus_per_task=2")
    assert result.returncode == 0, result.stderr
    assert "8 jobs: 8 ok" in result.stdout
    tasks = {entry.scheduler_job_id for entry in entries(packed).values()}
    assert len(tasks) == 1 and {e.packed_task for e in entries(packed).values()} == tasks
    assert len({entry.scheduler_job_id for entry in entries(unpacked).values()}) == 8
    spans = []
    for num, entry in entries(packed).items():
        mine, theirs = read_record(packed / entry.dir / "result.json"), read_record(unpacked / entry.dir / "result.json")
        assert (mine.status, mine.overrides, mine.fingerprint, mine.hparams, mine.attempts) == \
            (theirs.status, theirs.overrides, theirs.fingerprint, theirs.hparams, 1)
        assert mine.metrics == pytest.approx(theirs.metrics, rel=1e-5)
        assert hydra_files(packed / entry.dir) == hydra_files(unpacked / entry.dir)
        slurm = mine.environment  # one task: a plain Slurm job, not an array
        assert slurm.get("SLURM_ARRAY_JOB_ID", slurm["SLURM_JOB_ID"]) == entry.scheduler_job_id.split("_")[0]
        assert f"lr={mine.hparams['lr']:g}" in (packed / entry.dir / "run.log").read_text()  # its own log
        spans.append((mine.started, mine.finished))
    spans.sort()
    # Two workers: some job starts before the one started before it has finished.
    assert any(later[0] < earlier[1] for earlier, later in zip(spans, spans[1:])), spans


def test_a_job_that_raises_fails_alone_and_its_task_goes_on(tmp_path):
    sweep = tmp_path / "raises"
    result = slurm_multirun(sweep, "optimizer._target_=keras.optimizers.NoSuch,keras.optimizers.SGD", "steps=10",
                            "hydra.launcher.jobs_per_task=2")
    assert result.returncode != 0  # the sweep says a job failed
    listed = entries(sweep)
    assert listed[0].scheduler_job_id == listed[1].scheduler_job_id  # one task
    assert read_record(sweep / "0" / "result.json").status == "failed"
    assert "NoSuch" in read_record(sweep / "0" / "result.json").error
    assert read_record(sweep / "1" / "result.json").status == "ok"
    assert final_state(listed[0].scheduler_job_id) == "COMPLETED"


def _gone(sweep: Path) -> None:
    """Wait until no process of a cancelled task holds a job directory: Slurm says CANCELLED at once,
    and kills the task's processes up to KillWait (5 s) later; a resume before then finds the
    interrupted job's directory still owned by a live process, and leaves it."""
    deadline = time.monotonic() + 30
    while any(owner is not None and _alive(owner.pid)
              for owner in (read_owner_file(path) for path in sweep.glob(f"*/{OWNER_NAME}"))):
        assert time.monotonic() < deadline, "the cancelled task's processes live on"
        time.sleep(0.2)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def test_a_task_cancelled_half_way_then_status_then_resume(sweeper_cli, status, tmp_path):
    sweep = tmp_path / "cancel"
    lrs = "lr=0.001,0.002,0.003,0.004,0.005,0.006"
    # Unfused, so that the task's jobs finish one by one (fused, they would finish together).
    # 120000 steps: about 2.5 s a job, so that the task is cancelled well before its last job.
    result = slurm_multirun(sweep, lrs, "steps=120000", "hydra.launcher.jobs_per_task=6", "hydra.launcher.wait=false",
                            "hydra.sweeper.fuse=false")
    assert result.returncode == 0, result.stderr
    task = entries(sweep)[0].scheduler_job_id
    seen: set[str] = set()
    deadline = time.monotonic() + 240
    while not all((sweep / str(n) / "result.json").exists() for n in (0, 1)):
        assert time.monotonic() < deadline, "the task finished no job"
        rows = status_rows(status(sweep).stdout)
        seen |= {row[2] for row in rows.values()}
        assert {row[0] for row in rows.values()} == {task}   # each job shows its task's Slurm id
        time.sleep(0.5)
    rows = status_rows(status(sweep).stdout)
    seen |= {row[2] for row in rows.values()}
    subprocess.run(["scancel", task], check=True, timeout=10)
    assert {"waiting", "running"} <= seen, seen  # the later jobs wait their turn while one runs
    final_state(task)
    _gone(sweep)
    rows = status_rows(status(sweep).stdout)
    finished = [num for num in range(6) if (sweep / str(num) / "result.json").exists()]
    assert 2 <= len(finished) < 6
    for num in range(6):
        assert rows[str(num)][2] == ("ok" if num in finished else "cancelled"), rows
    before = {num: (sweep / str(num) / "result.json").read_bytes() for num in finished}

    again = sweeper_cli("resume", str(sweep), "hydra.launcher.wait=true")
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    left = 6 - len(finished)
    assert f"to run again: {left} job{'s' if left > 1 else ''}: {left} cancelled" in again.stdout
    listed = entries(sweep)
    for num in range(6):
        if num in finished:
            assert (sweep / str(num) / "result.json").read_bytes() == before[num]
            assert listed[num].scheduler_job_ids == [task]
        else:
            assert read_record(sweep / str(num) / "result.json").status == "ok"
            assert listed[num].scheduler_job_ids[0] == task and listed[num].scheduler_job_id != task


def test_a_sweep_resumed_at_once_submits_nothing_twice(sweeper_cli, tmp_path):
    sweep = tmp_path / "twice"
    command = ("steps=5,10,15,20", "hydra.launcher.jobs_per_task=2", "hydra.launcher.wait=false")
    result = slurm_multirun(sweep, *command)
    assert result.returncode == 0, result.stderr
    again = sweeper_cli("resume", str(sweep))  # at once: both tasks pending or running
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "nothing to resume" in again.stdout or "not submitted again" in again.stdout, again.stdout
    # The same sweep run again, waiting: its jobs still in Slurm are waited for, not submitted.
    same = slurm_multirun(sweep, *command[:-1])
    assert same.returncode == 0, same.stderr
    assert "jobs are still pending or running in Slurm" in same.stdout and "not submitted again" in same.stdout
    listed = entries(sweep)
    tasks = sorted({entry.scheduler_job_id for entry in listed.values()})
    assert len(tasks) == 2 and all(entry.scheduler_job_ids == [entry.scheduler_job_id] for entry in listed.values())
    for num, entry in listed.items():
        assert read_record(sweep / entry.dir / "result.json").attempts == 1
    for task in tasks:
        final_state(task)
        runs = subprocess.run(["sacct", "-D", "-X", "-n", "-P", "-o", "State", "-j", task], capture_output=True,
                              text=True, timeout=10).stdout.split()
        assert runs == ["COMPLETED"], runs  # Slurm ran each task once


def test_a_request_no_node_can_satisfy_is_one_line_before_submitting(tmp_path):
    sweep = tmp_path / "impossible"
    # gpus=1 with the default 4 CPUs per GPU, on the cluster's 2-CPU node.
    result = slurm_multirun(sweep, "task=cnn", "gpus=1", "devices=cpu", "data.train_samples=64", "data.test_samples=32")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("error: job 0 (task=cnn gpus=1 ") and "asks for 4 CPUs, 8 GB, 1 GPU per task" in line
    assert "have at most 2 CPUs" in line and "lower hydra.launcher.cpus_per_gpu (now 4 CPUs per GPU)" in line
    assert not [entry for entry in entries(sweep).values() if entry.scheduler_job_id]  # nothing submitted
