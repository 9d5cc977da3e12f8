"""One owner per job directory (sweeper/job/owner.py): a marker `.owner` made with an exclusive
create; a live owner keeps the directory, a stale one (its process gone, or this very Slurm job
requeued) is taken over, an owner on another host is left alone, and of runs racing for one
directory exactly one takes it. The markers are written as owner.py writes them."""
from __future__ import annotations

import dataclasses
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sweeper.job import owner
from tests.conftest import ROOT, checkout_env

OTHER_HOST = "node-elsewhere-" + socket.gethostname()


def write_marker(job_dir: Path, host: str, pid: int, slurm_job_id: str | None = None) -> owner.Owner:
    """A marker as owner.take writes it (json of the Owner, one line)."""
    mark = owner.Owner(host, pid, "2026-01-01T00:00:00+00:00", slurm_job_id, "slurm" if slurm_job_id else None)
    job_dir.mkdir(parents=True, exist_ok=True)
    (job_dir / owner.OWNER_NAME).write_text(json.dumps(dataclasses.asdict(mark)) + "\n")
    return mark


def dead_pid() -> int:
    """The id of a process of this host that has ended (and been reaped)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


@pytest.fixture
def not_in_slurm(monkeypatch):
    for name in ("SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID"):
        monkeypatch.delenv(name, raising=False)


def test_an_owner_on_another_host_keeps_its_directory(tmp_path, not_in_slurm):
    """Nothing here can tell whether a process on another host runs: it is taken to."""
    mark = write_marker(tmp_path, OTHER_HOST, dead_pid())  # that pid means nothing on this host
    before = (tmp_path / owner.OWNER_NAME).read_text()
    assert owner.is_alive(mark)
    assert owner.take(tmp_path) == mark
    assert (tmp_path / owner.OWNER_NAME).read_text() == before
    owner.give_back(tmp_path)  # not ours: kept
    assert (tmp_path / owner.OWNER_NAME).read_text() == before


def test_a_dead_owner_on_this_host_is_taken_over(tmp_path, not_in_slurm):
    write_marker(tmp_path, socket.gethostname(), dead_pid())
    assert owner.take(tmp_path) is None
    assert (owner.read_owner(tmp_path).host, owner.read_owner(tmp_path).pid) == (socket.gethostname(), os.getpid())
    assert [p.name for p in tmp_path.iterdir()] == [owner.OWNER_NAME]  # no stale marker left behind
    owner.give_back(tmp_path)
    assert not (tmp_path / owner.OWNER_NAME).exists()


@pytest.mark.parametrize("env, slurm_id", [
    ({"SLURM_JOB_ID": "555"}, "555"),
    ({"SLURM_ARRAY_JOB_ID": "77", "SLURM_ARRAY_TASK_ID": "3", "SLURM_JOB_ID": "78"}, "77_3"),
])
def test_the_marker_of_this_slurm_job_before_its_requeue_is_stale(tmp_path, monkeypatch, not_in_slurm, env, slurm_id):
    """Requeued, the job starts again, maybe on another node: its old process is gone, whatever
    the host says, and its marker is taken over."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    mark = write_marker(tmp_path, OTHER_HOST, os.getppid(), slurm_job_id=slurm_id)  # a live pid, another host
    assert not owner.is_alive(mark)
    assert owner.take(tmp_path) is None
    taken = owner.read_owner(tmp_path)
    assert (taken.host, taken.pid, taken.scheduler_job_id) == (socket.gethostname(), os.getpid(), slurm_id)
    assert str(taken) == f"pid {os.getpid()} on {socket.gethostname()}, Slurm job {slurm_id}"


def test_a_marker_written_before_owners_named_their_scheduler_is_a_slurm_jobs(tmp_path):
    (tmp_path / owner.OWNER_NAME).write_text(json.dumps({"host": OTHER_HOST, "pid": 4242, "started": "2026-01-01T00:00:00+00:00",
                                                         "slurm_job_id": "55_1"}) + "\n")
    found = owner.read_owner(tmp_path)
    assert (found.scheduler, found.scheduler_job_id, str(found)) == ("slurm", "55_1", f"pid 4242 on {OTHER_HOST}, Slurm job 55_1")


def test_another_slurm_jobs_marker_on_another_host_is_kept(tmp_path, monkeypatch, not_in_slurm):
    """A Slurm job that Slurm does not say has ended (here one it does not know, or no Slurm at all):
    kept. One that Slurm says ended is stale: tests/test_slurm.py, on the cluster."""
    monkeypatch.setenv("SLURM_JOB_ID", "555")
    mark = write_marker(tmp_path, OTHER_HOST, 4242, slurm_job_id="987654321")
    assert owner.take(tmp_path) == mark


def test_a_stale_marker_taken_over_by_another_run_in_between_is_put_back(tmp_path, monkeypatch, not_in_slurm):
    """The race: this run finds a stale marker; before it moves it aside another run takes the
    directory over. The marker moved aside is then the other run's: put back, and it owns the directory."""
    stale = write_marker(tmp_path, socket.gethostname(), dead_pid())
    other = owner.Owner(OTHER_HOST, 4242, "2026-01-01T00:00:01+00:00")
    real_is_alive = owner.is_alive

    def is_alive_while_another_run_takes_over(found: owner.Owner) -> bool:
        if found == stale:  # between this run's read and its rename, the other run replaces the marker
            (tmp_path / owner.OWNER_NAME).write_text(json.dumps(dataclasses.asdict(other)) + "\n")
        return real_is_alive(found)

    monkeypatch.setattr(owner, "is_alive", is_alive_while_another_run_takes_over)
    assert owner.take(tmp_path) == other
    assert owner.read_owner(tmp_path) == other
    assert [p.name for p in tmp_path.iterdir()] == [owner.OWNER_NAME]


def test_a_stale_marker_removed_by_another_run_first_is_created_again(tmp_path, monkeypatch, not_in_slurm):
    """The race the other way: the other run moved the stale marker away first (and has not made
    its own yet): this run's rename finds nothing, and it creates the marker itself."""
    stale = write_marker(tmp_path, socket.gethostname(), dead_pid())
    real_is_alive = owner.is_alive

    def is_alive_while_another_run_removes_it(found: owner.Owner) -> bool:
        if found == stale:
            (tmp_path / owner.OWNER_NAME).unlink()
        return real_is_alive(found)

    monkeypatch.setattr(owner, "is_alive", is_alive_while_another_run_removes_it)
    assert owner.take(tmp_path) is None
    assert owner.read_owner(tmp_path).pid == os.getpid()
    assert [p.name for p in tmp_path.iterdir()] == [owner.OWNER_NAME]


RACER = """
import os, sys, time
from pathlib import Path
from sweeper.job import owner
job_dir, go, done = map(Path, sys.argv[1:4])
while not go.exists():
    time.sleep(0.005)
print("took" if owner.take(job_dir) is None else "refused", flush=True)
while not done.exists():  # alive until every racer has answered: a winner's marker stays live
    time.sleep(0.01)
"""


@pytest.mark.slow
def test_of_runs_racing_for_a_stale_directory_exactly_one_takes_it(tmp_path, not_in_slurm):
    job_dir = tmp_path / "0"
    write_marker(job_dir, socket.gethostname(), dead_pid())
    go, done = tmp_path / "go", tmp_path / "done"
    racers = [subprocess.Popen([sys.executable, "-c", RACER, str(job_dir), str(go), str(done)], cwd=ROOT,
                               env=checkout_env(), stdout=subprocess.PIPE, text=True) for _ in range(6)]
    try:
        time.sleep(1.0)  # each has imported owner.py and waits
        go.touch()
        answers = [racer.stdout.readline().strip() for racer in racers]
    finally:
        done.touch()
        for racer in racers:
            racer.communicate(timeout=30)
    assert sorted(answers) == ["refused"] * 5 + ["took"]
    winner = racers[answers.index("took")].pid
    assert owner.read_owner(job_dir).pid == winner
    assert sorted(p.name for p in job_dir.iterdir()) == [owner.OWNER_NAME]
