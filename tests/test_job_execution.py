"""A job run without Hydra's state (sweeper/job/execute.py): specifications run one after the
other in one process, each writing its record; a directory a live run owns is skipped."""
from __future__ import annotations

import json
import socket
import subprocess
import sys

from sweeper.job import owner
from sweeper.job.context import JobCounter, RunContext
from sweeper.job.execute import execute
from sweeper.job.fingerprint import fingerprint
from sweeper.job.planned import PlannedJob
from sweeper.job.record import read_record
from sweeper.sweep.collate import collate


def _spec(compose_cfg, job_dir, *overrides: str) -> PlannedJob:
    cfg = compose_cfg(*overrides, "logging.tensorboard=false")
    return PlannedJob(num=0, directory=job_dir, dir=job_dir.name, overrides=list(overrides),
                      fingerprint=fingerprint(cfg), config=cfg)


def test_jobs_run_in_one_process_without_hydra(compose_cfg, tmp_path):
    """The second layer runs specifications one after the other, each writing its own record."""
    specs = [_spec(compose_cfg, tmp_path / str(n), "optimizer=adam", f"lr={lr}", "steps=30")
             for n, lr in enumerate((0.1, 0.01))]
    records = [execute(spec, RunContext()) for spec in specs]
    assert [r.hparams["lr"] for r in records] == [0.1, 0.01]
    for spec, record in zip(specs, records):
        assert read_record(spec.directory / "result.json") == record
        assert record.schema_version == 2 and record.direction == "minimize" and record.status == "ok"
        assert not (spec.directory / owner.OWNER_NAME).exists()  # given back
    assert execute(specs[0], RunContext()).finished == records[0].finished  # done: kept, not run again


def test_a_live_owner_keeps_its_directory_and_a_stale_one_is_taken_over(compose_cfg, tmp_path, capsys):
    spec = _spec(compose_cfg, tmp_path / "0", "steps=30")
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        spec.directory.mkdir()
        mark = {"host": socket.gethostname(), "pid": sleeper.pid, "started": "2026-01-01T00:00:00+00:00"}
        (spec.directory / owner.OWNER_NAME).write_text(json.dumps(mark))
        assert execute(spec, RunContext()) is None
        assert f"-> skipped: running (pid {sleeper.pid} on {socket.gethostname()})" in capsys.readouterr().out
        assert not (spec.directory / "result.json").exists()
        assert collate(tmp_path).set_index("job").loc["0", "status"] == "running"
    finally:
        sleeper.kill()
        sleeper.wait()
    assert execute(spec, RunContext()).status == "ok"  # its owner is gone: taken over
    assert not (spec.directory / owner.OWNER_NAME).exists()



def test_the_run_context_counts_each_job_once(compose_cfg, tmp_path, capsys):
    """The context handed to `execute` carries the sweep's counter: each job's line (run, or
    skipped as done) is counted once; reading the prefix moves nothing."""
    jobs = [_spec(compose_cfg, tmp_path / str(n), f"lr={lr}", "steps=20") for n, lr in enumerate((0.1, 0.01))]
    context = RunContext(progress=JobCounter(3))
    for job in [*jobs, jobs[0]]:
        execute(job, context)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(" ", 1)[0] for line in lines] == ["[1/3]", "[2/3]", "[3/3]"]
    assert lines[2].endswith(f"-> skipped: done ({jobs[0].directory})")
    assert context.progress is not None and context.progress.prefix() == context.progress.prefix() == "[3/3] "


def test_a_task_gets_only_the_optional_arguments_it_takes():
    """`trial` and `progress` go to a task that takes them, and have a value: a task written
    without them (a user's own) is called as before."""
    from sweeper.outcome import offered

    def plain(*, optimizer: dict, job_dir: object = None) -> None: ...

    def full(*, optimizer: dict, job_dir: object = None, trial: object = None, progress: str | None = None) -> None: ...

    assert offered(plain, trial="reporter", progress="lr=0.1") == {}
    assert offered(full, trial=None, progress="lr=0.1") == {"progress": "lr=0.1"}
