"""Right-sized requests on the real Slurm cluster (`hydra.launcher.right_size`, issue 30): a group's
later jobs ask for what its first ones used, a job that then runs out of memory runs again as
asked, and with the setting off every job asks for what was set."""
from __future__ import annotations

import json
import math
import re
import subprocess
from pathlib import Path

import pytest

from sweeper.job.record import read_record
from sweeper.status import Status
from sweeper.launching.right_size import Measured, sized
from sweeper.job import manifest
from tests.conftest import ROOT, checkout_env, run_cli, write_user_task

# A user's task that holds `size_mb` of memory (written, so resident) long enough for Slurm's
# sampling (every second) to see it.
MODULE = '''\
import time

from sweeper import Outcome


def run(*, size_mb: int = 0, seed: int = 0) -> Outcome:
    held = b"x" * (size_mb * 1024 * 1024)
    time.sleep(2.5)
    return Outcome(status="ok", metrics={"score": float(len(held) + seed)}, history={}, train_time_s=2.5)
'''
TASK = '''\
# @package _global_
size_mb: 0
hparams:
  size_mb: {ge: 0, le: 100000, help: "memory the job holds"}
task:
  name: hog
  objective: score
  direction: maximize
  run:
    _target_: hog.run
    size_mb: ${size_mb}
    seed: ${seed}
'''
ASKED = ("hydra.launcher.mem_gb=4", "hydra.launcher.timeout_min=30")


@pytest.fixture
def user_dir(tmp_path: Path) -> Path:
    return write_user_task(tmp_path, "hog", MODULE, TASK)


def sweep(user_dir: Path, out: Path, *overrides: str) -> subprocess.CompletedProcess:
    env = checkout_env()
    env["PYTHONPATH"] = f"{user_dir}:{ROOT}"
    done = run_cli(str(ROOT / "run.py"), "-m", "--config-dir", "conf", "task=hog", "hydra/launcher=slurm",
                   f"hydra.sweep.dir={out}", *ASKED, *overrides, cwd=user_dir, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def asked(slurm_id: str) -> tuple[str, str, str]:
    """What Slurm says the job asked for (ReqMem, Timelimit) and how it ended."""
    out = subprocess.run(["sacct", "-X", "-n", "-P", "-o", "ReqMem,Timelimit,State", "-j", slurm_id],
                         capture_output=True, text=True, timeout=10).stdout
    mem, limit, state = out.strip().split("|")
    return mem, limit, state.split()[0]


def submitted_as(out: Path) -> dict[int, list[str]]:
    """Job number -> every Slurm id it was submitted as."""
    listed = manifest.read_manifest(out)
    assert listed is not None
    return {job.num: job.scheduler_job_ids for job in listed.jobs}


def sizing(out: Path, num: int) -> list[str]:
    return [entry["sizing"] for entry in json.loads((out / str(num) / "accounting.json").read_text()).values()]


def test_the_margins_and_floors_and_never_more_than_asked():
    asked = {"mem_gb": 8, "timeout_min": 120, "cpus_per_task": 2, "signal_delay_s": 120, "tasks_per_node": 1}
    assert sized(asked, Measured(jobs=2, peak_mb=600, longest_s=10)) is None  # too few finished yet
    small = sized(asked, Measured(jobs=3, peak_mb=600, longest_s=10))
    assert small == {**asked, "mem_gb": 1, "timeout_min": 5}  # the floors; CPUs as asked
    assert sized(asked, Measured(jobs=3, peak_mb=3000, longest_s=1000)) == {**asked, "mem_gb": 5, "timeout_min": 34}
    two = sized({**asked, "tasks_per_node": 2}, Measured(jobs=3, peak_mb=2000, longest_s=10))
    assert two is not None and two["mem_gb"] == 6  # a node holds two such tasks
    assert sized(asked, Measured(jobs=3, peak_mb=9000, longest_s=7200)) is None  # never more than asked
    unknown = sized(asked, Measured(jobs=3, peak_mb=None, longest_s=10))
    assert unknown is not None and unknown["mem_gb"] == 8  # a peak not known: memory as asked
    short = sized({**asked, "timeout_min": 3, "signal_delay_s": 90}, Measured(jobs=3, peak_mb=600, longest_s=10))
    assert short is not None and (short["timeout_min"], short["signal_delay_s"]) == (3, 90)


def _sized_to(stdout: str) -> int:
    """The GB jobs 3-4 were right-sized to, checked against the peak their line gives: max(1, ceil(1.5 x peak))."""
    line = re.search(r"^right-sized jobs 3-4 \(hog, 1 CPU\): 4 GB -> (\d+) GB, 30 min -> 5 min, from 3 finished jobs "
                     r"\(peak (0\.\d+) GB, longest \d+ s\)$", stdout, re.M)
    assert line, stdout
    sized, peak = int(line.group(1)), float(line.group(2))
    assert sized in {max(1, math.ceil(1.5 * (peak + d))) for d in (-0.0005, 0.0005)}, line.group(0)  # 3 digits shown
    return sized


@pytest.mark.slurm
@pytest.mark.slow
def test_later_jobs_ask_for_what_the_first_used_and_one_out_of_memory_runs_again_as_asked(user_dir, tmp_path,
                                                                                          sweeper_cli):
    out = tmp_path / "sized"
    # Jobs 0-2 go first as asked; 3 and 4 are right-sized to 1 or 2 GB (1.5 x the peak of a process
    # that holds nothing, a little under or over 0.67 GB as the machine goes), where job 4 holds 2.5 GB.
    done = sweep(user_dir, out, "size_mb=0,0,0,0,2500", "hydra.launcher.right_size=true")
    assert "right_size: jobs 0-2 (hog, 1 CPU) first, as asked (4 GB, 30 min); then 2 jobs more" in done.stdout
    sized = _sized_to(done.stdout)
    assert re.search(r"^resubmitted job 4 \(task=hog size_mb=2500\) as asked \(4 GB, 30 min\): its right-sized "
                     r"Slurm job \d+_1 ran out of memory$", done.stdout, re.M), done.stdout
    assert re.findall(r"^\[(\d)/5\]", done.stdout, re.M) == ["1", "2", "3", "4", "5"]  # one line a job
    ids = submitted_as(out)
    assert {num: [asked(slurm_id) for slurm_id in ids[num]] for num in (0, 3, 4)} == {
        0: [("4G", "00:30:00", "COMPLETED")],
        3: [(f"{sized}G", "00:05:00", "COMPLETED")],
        4: [(f"{sized}G", "00:05:00", "FAILED"), ("4G", "00:30:00", "COMPLETED")]}  # killed over its right size
    assert all(read_record(out / str(num) / "result.json").status == Status.OK for num in range(5))
    assert (sizing(out, 0), sizing(out, 3), sizing(out, 4)) == (["as asked"], ["right-sized"],
                                                                ["right-sized", "resubmitted"])
    cost = sweeper_cli("cost", str(out))
    rows = {cells[0]: cells for line in cost.stdout.splitlines() if line.startswith("| ")
            for cells in [[cell.strip() for cell in line.strip("|").split("|")]]}
    assert rows["task"][-3:] == ["out of memory", "right-sized", "resubmitted"]
    assert rows["total"][-3:] == ["1", "2", "1"]


@pytest.mark.slurm
@pytest.mark.slow
def test_off_every_job_asks_as_set_and_on_a_later_run_sizes_from_it(user_dir, tmp_path):
    out = tmp_path / "grid"
    first = sweep(user_dir, out, "seed=1,2,3")  # right_size off: the default
    assert "right" not in first.stdout
    assert {asked(ids[0])[:2] for ids in submitted_as(out).values()} == {("4G", "00:30:00")}
    assert sizing(out, 0) == ["as asked"]
    # The grid run again, larger, into the same folder: its new jobs are sized from the first run's.
    again = sweep(user_dir, out, "seed=1,2,3,4,5", "hydra.launcher.right_size=true")
    assert "first, as asked" not in again.stdout  # three jobs of this request finished before: no probe
    sized = _sized_to(again.stdout)
    ids = submitted_as(out)
    assert [asked(ids[num][-1])[:2] for num in (3, 4)] == [(f"{sized}G", "00:05:00")] * 2
