"""One status type (sweeper/status.py): the rules of decide(), and one status per job for
collate, `python -m sweeper status` and the summary at a sweep's end."""
from __future__ import annotations

import json
import os
import socket

import pytest

from sweeper.job import owner
from sweeper.status import FINISHED, NEEDS_RERUN, Status, decide, summary
from sweeper.launching.backend import SLURM
from sweeper.sweep import progress
from sweeper.sweep.collate import collate
from tests import synthetic


def test_what_decides_a_job_status():
    """The rules of decide(): a record, Slurm's state, a live owner, a search's failed trial."""
    assert decide(Status.OK) == Status.OK and decide(Status.INTERRUPTED, scheduled=SLURM.status_of("PENDING")) == Status.PENDING
    assert decide(Status.FAILED, scheduled=SLURM.status_of("RUNNING")) == Status.FAILED  # a record of failure is final
    assert decide(corrupt=True) == Status.CORRUPT
    assert decide(scheduled=SLURM.status_of("CANCELLED by 0")) == Status.CANCELLED and decide(scheduled=SLURM.status_of("COMPLETED")) == Status.MISSING
    assert decide(owner_alive=True) == Status.RUNNING
    assert decide(started=False) == Status.NOT_STARTED and decide() == Status.MISSING
    # A search's trial marked failed on resume (killed with its search): failed, unless it has a record.
    assert decide(trial_failed=True) == Status.FAILED and decide(started=False, trial_failed=True) == Status.FAILED
    assert decide(Status.OK, trial_failed=True) == Status.OK and decide(owner_alive=True, trial_failed=True) == Status.RUNNING
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

