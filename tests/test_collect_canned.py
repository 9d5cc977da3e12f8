"""The waiting Slurm launcher's collect() on canned Slurm answers and a fake clock: a result that
comes after its job ended (the grace timer), a job Slurm no longer knows (the lost timer), and the
tasks of an earlier submission still holding jobs (_alive_tasks). The clock is the module's `time`
replaced, as submitit's own tests fast-forward theirs: sleeping moves it on, nothing waits."""
from __future__ import annotations

import pickle
from pathlib import Path
from typing import Callable

import pytest
from hydra.core.utils import JobReturn, JobStatus
from submitit.slurm.slurm import SlurmJob

from sweeper.job.context import RunContext
from sweeper.job.planned import PlannedJob
from sweeper.launching import collect as collecting
from sweeper.launching.collect import _LOST_AFTER_S, _RESULT_GRACE_S, JobEndedWithoutResult, SubmittedTask, collect
from sweeper.launching.slurm import _alive_tasks
from tests import synthetic
from tests.fake_slurm import slurm  # noqa: F401  (the fake Slurm commands)


class FakeClock:
    """Stands for the `time` module in sweeper.launching.collect: monotonic() and time() read it,
    sleep() moves it on and then calls each `at` action whose moment has come."""

    def __init__(self, start: float = 1000.0):
        self.start = self.now = start
        self.actions: list[tuple[float, Callable[[], None]]] = []

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        for moment, action in [a for a in self.actions if a[0] <= self.elapsed]:
            self.actions.remove((moment, action))
            action()

    def at(self, elapsed: float, action: Callable[[], None]) -> None:
        self.actions.append((elapsed, action))

    @property
    def elapsed(self) -> float:
        return self.now - self.start


@pytest.fixture
def clock(monkeypatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(collecting, "time", fake)
    return fake


def one_task(tmp_path: Path, job_id: str = "80_0") -> tuple[list[PlannedJob], list[SubmittedTask]]:
    todo = [PlannedJob(0, tmp_path / "0", "0", ["lr=0.1"], "f", None, resources={})]
    return todo, [SubmittedTask([0], SlurmJob(tmp_path / ".submitit" / "%j", job_id), packed=False)]


def write_result(job: SlurmJob, returned: JobReturn) -> None:
    """The result file a submitit task writes when its function returns."""
    job.paths.result_pickle.parent.mkdir(parents=True, exist_ok=True)
    with job.paths.result_pickle.open("wb") as f:
        pickle.dump(("success", returned), f)


def test_an_ended_job_whose_result_never_comes_fails_after_the_grace_time(slurm, clock, tmp_path, capsys):
    slurm.command("sacct", "80_0|CANCELLED by 0\n")
    todo, tasks = one_task(tmp_path)
    [returned] = collect(todo, tasks, RunContext())
    assert returned.status == JobStatus.FAILED and isinstance(returned._return_value, JobEndedWithoutResult)
    log = tasks[0].job.paths.stderr
    assert str(returned._return_value) == f"Slurm job 80_0 ended CANCELLED without a result (its log: {log})"
    # Given up at the first state query after the grace time (states are asked every 2 s), not before.
    assert _RESULT_GRACE_S < clock.elapsed <= _RESULT_GRACE_S + collecting._STATE_EVERY_S + collecting._POLL_S
    assert f"lr=0.1 -> Slurm job 80_0 ended CANCELLED without a result (its log: {log})" in capsys.readouterr().out


def test_a_result_that_comes_within_the_grace_time_is_the_jobs(slurm, clock, tmp_path, capsys):
    slurm.command("sacct", "80_0|COMPLETED\n")
    todo, tasks = one_task(tmp_path)
    ok = JobReturn(overrides=["lr=0.1"], status=JobStatus.COMPLETED, _return_value=0.25)
    clock.at(_RESULT_GRACE_S - 1, lambda: write_result(tasks[0].job, ok))  # late, through a network file system
    [returned] = collect(todo, tasks, RunContext())
    assert returned.status == JobStatus.COMPLETED and returned.return_value == 0.25
    assert clock.elapsed < _RESULT_GRACE_S
    assert "without a result" not in capsys.readouterr().out


def test_a_job_slurm_no_longer_knows_is_given_up_after_the_lost_time(slurm, clock, tmp_path):
    slurm.command("sacct", "")   # the cluster answers, and knows no such job
    slurm.command("squeue", "")
    todo, tasks = one_task(tmp_path)
    [returned] = collect(todo, tasks, RunContext())
    assert returned.status == JobStatus.FAILED
    assert str(returned._return_value).startswith("Slurm job 80_0 ended (Slurm no longer knows it) without a result")
    assert _LOST_AFTER_S < clock.elapsed <= _LOST_AFTER_S + collecting._STATE_EVERY_S + collecting._POLL_S


def test_the_lost_timer_starts_again_when_slurm_knows_the_job_again(slurm, clock, tmp_path):
    slurm.command("sacct", "")
    slurm.command("squeue", "")
    clock.at(20, lambda: slurm.command("sacct", "80_0|PENDING\n"))  # accounting caught up: it is there
    clock.at(25, lambda: slurm.command("sacct", ""))                # and gone again
    todo, tasks = one_task(tmp_path)
    [returned] = collect(todo, tasks, RunContext())
    assert returned.status == JobStatus.FAILED and "Slurm no longer knows it" in str(returned._return_value)
    # Not 30 s after it was first unknown, but 30 s after the query that found it gone again.
    query = collecting._STATE_EVERY_S
    assert 25 + _LOST_AFTER_S < clock.elapsed <= 25 + query + _LOST_AFTER_S + query + collecting._POLL_S


def test_a_running_job_is_waited_for_past_both_timers(slurm, clock, tmp_path):
    slurm.command("sacct", "80_0|RUNNING\n")
    todo, tasks = one_task(tmp_path)
    done = JobReturn(overrides=["lr=0.1"], status=JobStatus.COMPLETED, _return_value=0.5)
    clock.at(10 * _LOST_AFTER_S, lambda: write_result(tasks[0].job, done))
    [returned] = collect(todo, tasks, RunContext())
    assert returned.return_value == 0.5 and clock.elapsed >= 10 * _LOST_AFTER_S


def test_a_slurm_that_does_not_answer_gives_up_no_job(slurm, clock, tmp_path):
    """No answer at all (no sacct, no squeue) is not "no such job": the job is waited for."""
    todo, tasks = one_task(tmp_path)
    done = JobReturn(overrides=["lr=0.1"], status=JobStatus.COMPLETED, _return_value=1.0)
    clock.at(3 * _LOST_AFTER_S, lambda: write_result(tasks[0].job, done))
    [returned] = collect(todo, tasks, RunContext())
    assert returned.return_value == 1.0


# ---------------------------------------------------------------------------------------------
# _alive_tasks: what an earlier submission still holds


def submitted_sweep(sweep: Path, ids: list[str | None], packed: list[str | None] | None = None) -> list[PlannedJob]:
    """A sweep of len(ids) jobs whose job list records each job's Slurm job id (None: never submitted)."""
    from sweeper.job import manifest

    synthetic.write_job_list(sweep, "linear", "gd", [{"lr": 0.1 * (n + 1)} for n in range(len(ids))])
    listed = manifest.read_manifest(sweep)
    for entry, job_id, task in zip(listed.jobs, ids, packed or [None] * len(ids)):
        entry.scheduler, entry.scheduler_job_id, entry.packed_task = job_id and "slurm", job_id, task
    (sweep / manifest.MANIFEST_NAME).unlink()
    manifest.claim(sweep, listed)
    return [PlannedJob(e.num, sweep / e.dir, e.dir, e.overrides, e.fingerprint, None,
                       resources={"submitit_folder": str(sweep / ".submitit" / "%j")})
            for e in listed.jobs]


def test_alive_tasks_are_the_pending_and_running_jobs_of_an_earlier_submission(slurm, tmp_path):
    slurm.command("sacct", "90_0|RUNNING\n90_1|PENDING\n90_2|COMPLETED\n90_3|CANCELLED by 0\n")
    todo = submitted_sweep(tmp_path, ["90_0", "90_1", "90_2", "90_3", None])
    synthetic.linear_job(tmp_path / "2", "gd", lr=0.3)  # finished: its record is there
    alive = _alive_tasks(todo, tmp_path)
    assert [(t.job.job_id, t.positions, t.packed) for t in alive] == [("90_0", [0], False), ("90_1", [1], False)]
    assert all(isinstance(t.job, SlurmJob) for t in alive)


def test_alive_tasks_group_a_packed_tasks_jobs(slurm, tmp_path):
    slurm.command("sacct", "91_0|RUNNING\n91_1|COMPLETED\n")
    todo = submitted_sweep(tmp_path, ["91_0", "91_0", "91_0", "91_1"], packed=["91_0", "91_0", "91_0", "91_1"])
    alive = _alive_tasks(todo[1:], tmp_path)  # the launch asks about three of them
    assert [(t.job.job_id, t.positions, t.packed) for t in alive] == [("91_0", [0, 1], True)]


def test_no_alive_tasks_without_recorded_ids_or_with_a_damaged_job_list(slurm, tmp_path):
    slurm.command("sacct", code=1, stderr="sacct must not be asked: no job was submitted\n")
    todo = submitted_sweep(tmp_path, [None, None])
    assert _alive_tasks(todo, tmp_path) == []
    assert not (Path(slurm.log).exists())
    (tmp_path / "jobs.json").write_text('{"sweeper": "CheckedSweeper", "jobs": [')
    assert _alive_tasks(todo, tmp_path) == []


def test_no_alive_tasks_when_slurm_does_not_answer(slurm, tmp_path):
    """Not asked, not known: a job with no record and no Slurm state needs running again."""
    todo = submitted_sweep(tmp_path, ["92_0"])
    assert _alive_tasks(todo, tmp_path) == []
