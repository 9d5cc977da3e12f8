"""Sweeps that survive: skipping done jobs, `resume`, Ctrl-C, SIGKILL at random moments."""
from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from sweeper.sweep.collate import collate
from sweeper.job.record import read_record
from tests.conftest import ROOT, checkout_env, run_cli

pytestmark = pytest.mark.slow


def finished_jobs(sweep: Path) -> dict[str, tuple[str, str]]:
    """job -> (started, finished) of every finished record; each record must parse."""
    done = {}
    for path in sweep.glob("*/result.json"):
        record = read_record(path)
        if record.status in ("ok", "diverged"):
            done[path.parent.name] = (record.started, record.finished)
    return done


@pytest.fixture
def small_sweep(tmp_path):
    sweep = tmp_path / "sweep"
    result = run_cli("run.py", "-m", "lr=0.01,0.001", "steps=10,20", f"hydra.sweep.dir={sweep}")
    assert result.returncode == 0, result.stderr
    return sweep, result


def test_progress_lines_and_summary(small_sweep):
    sweep, result = small_sweep
    lines = [line for line in result.stdout.splitlines() if re.match(r"\[\d+/\d+\] ", line)]
    assert [line.split()[0] for line in lines] == ["[1/4]", "[2/4]", "[3/4]", "[4/4]"]
    assert lines[0].startswith("[1/4] lr=0.01 steps=10 -> ok final_loss=")
    assert result.stdout.strip().splitlines()[-1].startswith("sweep: 4 jobs: 4 ok in ")
    assert f"collate: python -m sweeper collate {sweep}" in result.stdout


def test_resume_runs_only_missing_and_unfinished_jobs(sweeper_cli, small_sweep):
    sweep, _ = small_sweep
    before = finished_jobs(sweep)
    (sweep / "1" / "result.json").unlink()
    record = json.loads((sweep / "2" / "result.json").read_text())
    (sweep / "2" / "result.json").write_text(json.dumps({**record, "status": "failed"}))
    result = sweeper_cli("resume", str(sweep))
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("-> skipped: done") == 2
    assert "sweep: 4 jobs: 2 ok, 2 skipped (done before)" in result.stdout
    after = finished_jobs(sweep)
    assert after["0"] == before["0"] and after["3"] == before["3"]  # not run again
    assert after["1"] != before["1"] and after["2"] != before["2"]
    assert [read_record(sweep / job / "result.json").attempts for job in "0123"] == [1, 2, 2, 1]
    assert (collate(sweep).status == "ok").all()


def test_a_different_configuration_in_the_same_directory_is_refused(small_sweep):
    sweep, _ = small_sweep
    snapshot = {p: p.read_bytes() for p in sweep.rglob("*") if p.is_file()}
    result = run_cli("run.py", "-m", "lr=0.5,0.001", "steps=10,20", f"hydra.sweep.dir={sweep}")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"error: {sweep} holds the records of other configurations in 2 job directories: 0 (lr: 0.01 -> 0.5), "
        "1 (lr: 0.01 -> 0.5): use a new hydra.sweep.dir, or delete those directories to run them again")
    assert {p: p.read_bytes() for p in sweep.rglob("*") if p.is_file()} == snapshot


def test_resume_refuses_changes_to_the_jobs(sweeper_cli, small_sweep):
    sweep, _ = small_sweep
    result = sweeper_cli("resume", str(sweep), "lr=0.3")
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error: resume refuses lr=0.3: only launcher settings")
    result = sweeper_cli("resume", str(sweep.parent))
    assert result.returncode == 2 and "multirun.yaml not found" in result.stderr


def test_failed_jobs_make_the_command_fail_after_all_ran(tmp_path):
    sweep = tmp_path / "sweep"
    result = run_cli("run.py", "-m", "steps=5,6", "optimizer._target_=keras.optimizers.NoSuch",
                     f"hydra.sweep.dir={sweep}")
    assert result.returncode == 1
    assert result.stdout.count("-> failed") == 2
    assert result.stderr.endswith(f"error: 2 jobs did not finish: {sweep / '0'} {sweep / '1'}; "
                                  f"finish them with: python -m sweeper resume {sweep}\n"), result.stderr


def _ctrl_c_when(command: list[str], ready) -> subprocess.CompletedProcess:
    """Run `command`; SIGINT its process group (a terminal's Ctrl-C) as soon as `ready()`."""
    process = subprocess.Popen(command, cwd=ROOT, env=checkout_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, start_new_session=True)
    while not ready() and process.poll() is None:
        time.sleep(0.005)
    os.killpg(process.pid, signal.SIGINT)
    out, err = process.communicate(timeout=120)
    return subprocess.CompletedProcess(command, process.returncode, out, err)


@pytest.mark.parametrize("moment", ["importing", "composing", "listed"])
def test_ctrl_c_at_the_start_of_a_grid_is_one_line_and_exit_130(sweeper_cli, tmp_path, moment):
    sweep = tmp_path / "sweep"
    start = time.monotonic()
    ready = {"importing": lambda: time.monotonic() - start > 0.15, "composing": lambda: time.monotonic() - start > 1.0,
             "listed": (sweep / "jobs.json").exists}[moment]
    result = _ctrl_c_when([sys.executable, "run.py", "-m", "steps=10,20", "logging.tensorboard=false",
                           f"hydra.sweep.dir={sweep}"], ready)
    assert result.returncode == 130 and "Traceback" not in result.stdout + result.stderr, result.stdout + result.stderr
    last = result.stdout.strip().splitlines()[-1]
    if (sweep / "jobs.json").exists():  # resume finishes what the stop left
        assert last == f"interrupted; finish the sweep with: python -m sweeper resume {sweep}"
        assert sweeper_cli("resume", str(sweep)).returncode == 0 and (collate(sweep).status == "ok").all()
    else:
        assert last == "interrupted before any job was listed: nothing was started" and moment != "listed"


def test_ctrl_c_leaves_an_interrupted_record_and_resume_finishes(sweeper_cli, tmp_path):
    sweep = tmp_path / "sweep"
    command = [sys.executable, "run.py", "-m", "steps=10,150000", f"hydra.sweep.dir={sweep}"]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    for line in process.stdout:
        if line.startswith("[1/2]"):
            break
    time.sleep(0.5)  # job 1 is training now
    process.send_signal(signal.SIGINT)
    rest = process.stdout.read()
    assert process.wait(timeout=120) == 130
    assert f"interrupted; finish the sweep with: python -m sweeper resume {sweep}" in rest
    assert read_record(sweep / "1" / "result.json").status == "interrupted"
    result = sweeper_cli("resume", str(sweep))
    assert result.returncode == 0, result.stderr
    assert "sweep: 2 jobs: 1 ok, 1 skipped (done before)" in result.stdout
    assert (collate(sweep).status == "ok").all()


def _run_and_kill(command: list[str], rng: random.Random) -> bool:
    """Run a sweep and SIGKILL it at a random moment: after 0-3 more jobs finish, plus 0-0.4 s.

    Returns whether it was killed (it may finish first)."""
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                               start_new_session=True)
    wanted = rng.randint(0, 3)
    for line in process.stdout:
        if wanted == 0:
            break
        wanted -= bool(re.match(r"\[\d+/\d+\] .* -> ok", line))
    time.sleep(rng.uniform(0, 0.4))
    killed = process.poll() is None
    if killed:
        os.killpg(process.pid, signal.SIGKILL)  # the sweep and, under resume, its run.py
    process.wait()
    process.stdout.close()
    return killed


KILLS = 7  # SIGKILLs at random moments, each followed by a resume


def test_sigkill_at_random_moments_loses_no_finished_work(sweeper_cli, tmp_path):
    sweep = tmp_path / "sweep"
    grid = ["lr=0.02,0.01,0.005,0.002,0.001,0.0005", "steps=1000,2000,3000,4000,5000,6000,7000,8000,9000,10000"]
    rng = random.Random(20261125)
    done: dict[str, tuple[str, str]] = {}
    kills = 0
    for attempt in range(20):
        command = [sys.executable, "-m", "sweeper", "resume", str(sweep)] if attempt else \
            [sys.executable, "run.py", "-m", *grid, f"hydra.sweep.dir={sweep}"]
        kills += _run_and_kill(command, rng)
        now = finished_jobs(sweep)  # every record there parses
        assert all(now[job] == times for job, times in done.items()), "a finished job ran again"
        done = now
        if kills == KILLS:
            break
    result = sweeper_cli("resume", str(sweep))
    assert result.returncode == 0, result.stderr
    assert all(finished_jobs(sweep)[job] == times for job, times in done.items())
    table = collate(sweep)
    assert len(table) == 60 and (table.status == "ok").all()
    print(f"\nSIGKILL fault injection: {kills} kills survived; {len(done)} of 60 jobs were done before "
          f"the last resume, which ran the other {60 - len(done)}")
    assert kills == KILLS


def test_collation_while_records_are_replaced(small_sweep):
    sweep, _ = small_sweep
    (sweep / "9" / ".hydra").mkdir(parents=True)  # a job that has started, without a record yet
    record = (sweep / "0" / "result.json").read_text()
    stop = threading.Event()

    def rewrite() -> None:
        from sweeper.files import write_atomic
        while not stop.is_set():
            write_atomic(sweep / "0" / "result.json", record)

    writer = threading.Thread(target=rewrite)
    writer.start()
    try:
        for _ in range(30):
            statuses = collate(sweep).set_index("job").status
            assert statuses["0"] == "ok" and statuses["9"] == "missing"
    finally:
        stop.set()
        writer.join()
