"""What a sweep cost (issue 30): each job's `usage` in its record on every launcher, a Slurm job's
accounting beside it, `python -m sweeper cost`, `collate --cost`, the report's and the page's Cost."""
from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from sweeper.launching.accounting import out_of_memory, parse, read_file
from sweeper.serve.live import read_snapshot

from tests.conftest import ROOT, checkout_env, run_cli, write_user_task

# A task of the user's, without TensorFlow, that holds `mb` megabytes while it runs.
MODULE = '''\
from __future__ import annotations

import numpy as np


def run(*, mb: int) -> dict:
    block = np.ones(mb * 1024 * 1024 // 8)
    return {"held_mb": float(block.nbytes / 2 ** 20)}
'''
TASK = '''\
# @package _global_
mb: 0
task:
  name: hog
  objective: held_mb
  direction: maximize
  run:
    _target_: hog.run
    mb: ${mb}
'''


@pytest.fixture
def user_dir(tmp_path: Path) -> Path:
    return write_user_task(tmp_path, "hog", MODULE, TASK)


def _env(user_dir: Path) -> dict[str, str]:
    env = checkout_env()
    env["PYTHONPATH"] = f"{user_dir}:{ROOT}"
    return env


def hog_sweep(user_dir: Path, *args: str) -> subprocess.CompletedProcess:
    return run_cli(str(ROOT / "run.py"), "--config-dir", "conf", "-m", "task=hog", *args, cwd=user_dir,
                   env=_env(user_dir))


def cli(user_dir: Path, *args: str) -> subprocess.CompletedProcess:
    return run_cli("-m", "sweeper", *args, cwd=user_dir, env=_env(user_dir))


def usage_of(sweep: Path) -> dict[str, dict]:
    return {path.parent.name: json.loads(path.read_text())["usage"] for path in sweep.glob("*/result.json")}


# sacct -D -P --units=M: a job requeued once (its first attempt's steps, then the second's), a job whose
# task went over its 200 MB (killed by the accounting's sampling: FAILED), and pending array tasks.
SACCT = """\
690|REQUEUED|00:00:06|00:07.243||1|billing=1,cpu=1,mem=8192M,node=1|8192M|02:00:00|1|2026-12-07T01:53:33|2026-12-07T01:53:34|2026-12-07T01:53:40
690.batch|CANCELLED|00:00:06|00:00.003|12.5M|1|cpu=1,mem=8192M,node=1|||1|2026-12-07T01:53:34|2026-12-07T01:53:34|2026-12-07T01:53:40
690.0|FAILED|00:00:07|00:07.240|600.25M|1|cpu=1,mem=8192M,node=1|||1|2026-12-07T01:53:34|2026-12-07T01:53:34|2026-12-07T01:53:41
690|COMPLETED|1-00:00:09|01:00:11.047||2|billing=2,cpu=2,gres/gpu=1,mem=8192M,node=1|8192M|1-12:00:00|1|2026-12-07T01:53:41|2026-12-07T01:53:42|2026-12-08T01:53:51
690.0|COMPLETED|00:00:09|00:11.031|0.62G|2|cpu=2,mem=8192M,node=1|||1|2026-12-07T01:53:42|2026-12-07T01:53:42|2026-12-07T01:53:51
693|FAILED|00:00:01|00:00.002||1|billing=1,cpu=1,mem=200M,node=1|200M|UNLIMITED|1|2026-12-07T02:18:26|2026-12-07T02:18:26|2026-12-07T02:18:27
693.batch|CANCELLED by 0|00:00:01|00:00.002|303.17M|1|cpu=1,mem=200M,node=1|||1|2026-12-07T02:18:26|2026-12-07T02:18:26|2026-12-07T02:18:27
700_[3-5]|PENDING|00:00:00|00:00:00||1|billing=1,cpu=1,mem=8192M,node=1|8192M|02:00:00|1|2026-12-07T02:18:26|Unknown|Unknown
"""


def test_accounting_reads_every_attempt_its_steps_peak_and_a_task_killed_over_its_memory():
    found = parse(SACCT)
    assert sorted(found) == ["690", "693"]  # pending array tasks used nothing yet
    first, second = found["690"]
    assert (first["state"], first["elapsed_s"], first["cpu_s"], first["max_rss_mb"]) == ("REQUEUED", 6.0, 7.243, 600.2)
    assert (second["elapsed_s"], second["cpu_s"], second["cpus"], second["gpus"]) == (86409.0, 3611.047, 2, 1)
    assert (second["max_rss_mb"], second["mem_mb"], second["time_limit_s"]) == (634.9, 8192.0, 129600.0)
    assert not first["out_of_memory"] and not second["out_of_memory"]
    killed = found["693"][0]
    assert (killed["state"], killed["max_rss_mb"], killed["mem_mb"], killed["time_limit_s"]) == ("FAILED", 303.2, 200.0, None)
    assert killed["out_of_memory"] and out_of_memory({**killed, "state": "OUT_OF_MEMORY", "max_rss_mb": None})


@pytest.mark.slow
def test_each_job_run_in_process_records_its_own_peak_its_cpu_time_and_what_cost_adds_up(user_dir, tmp_path):
    """The peak restarts at each job: a job holding 300 MB, then one holding none, in one process."""
    sweep = tmp_path / "hogs"
    done = hog_sweep(user_dir, "mb=300,0", "logging.tensorboard=false", f"hydra.sweep.dir={sweep}")
    assert done.returncode == 0, done.stdout + done.stderr
    used = usage_of(sweep)
    for usage in used.values():
        assert usage["peak_scope"] == "job" and usage["cpus"] == len(os.sched_getaffinity(0)) and usage["gpus"] == 0
        assert usage["wall_s"] > 0 and usage["cpu_s"] >= 0
    assert used["0"]["cpu_s"] > 0.05  # filling 300 MB takes CPU; a job of nothing may take less than a clock tick
    assert used["0"]["peak_rss_mb"] - used["1"]["peak_rss_mb"] > 250, used
    assert used["1"]["peak_rss_mb"] > 30  # what the process held before the job counts: Python, NumPy, Hydra

    cost = cli(user_dir, "cost", str(sweep))
    assert cost.returncode == 0, cost.stdout + cost.stderr
    core_h = sum(u["wall_s"] * u["cpus"] for u in used.values()) / 3600
    assert cost.stdout.startswith(f"cost of {sweep}: 2 jobs of 2 ran, {core_h:.3g} core-h and 0 GPU-h over 2 attempts")
    assert f"on {os.uname().nodename}: {len(os.sched_getaffinity(0))} CPU, 0 GPU" in cost.stdout
    assert (sweep / "cost.md").read_text() == cost.stdout.split("\nwrote ")[0]

    collated = cli(user_dir, "collate", str(sweep), "--cost")
    assert collated.returncode == 0, collated.stderr
    table = pd.read_csv(sweep / "results.csv").set_index("job")
    for job, usage in used.items():
        assert table.loc[int(job), "cost.core_h"] == pytest.approx(usage["wall_s"] * usage["cpus"] / 3600, abs=1e-6)
        assert table.loc[int(job), "cost.peak_mb"] == usage["peak_rss_mb"]

    report = cli(user_dir, "report", str(sweep))
    assert report.returncode == 0, report.stderr
    text = (sweep / "report" / "report.md").read_text()
    assert f"## Cost\n\ncost of {sweep}: 2 jobs of 2 ran" in text
    page = read_snapshot(sweep, [sweep]).overview["cost"]
    assert page["headline"].startswith(f"cost of {sweep}: 2 jobs of 2 ran")
    assert page["table"]["columns"][:4] == ["task", "resources", "jobs run", "attempts"]


@pytest.mark.slow
def test_a_job_of_the_local_launcher_records_what_its_own_process_used(user_dir, tmp_path):
    sweep = tmp_path / "local"
    done = hog_sweep(user_dir, "mb=200", "hydra/launcher=local", "logging.tensorboard=false", f"hydra.sweep.dir={sweep}")
    assert done.returncode == 0, done.stdout + done.stderr
    usage = usage_of(sweep)["0"]
    assert usage["peak_scope"] == "job" and usage["peak_rss_mb"] > 200 and usage["cpu_s"] > 0.05
    assert 0 < usage["wall_s"] < 60


@pytest.mark.slow
def test_a_fused_group_shares_what_it_used_and_a_partial_sweep_estimates_the_rest(tmp_path):
    sweep = tmp_path / "fused"
    done = run_cli(str(ROOT / "run.py"), "-m", "optimizer=adam", "lr=0.1,0.01,0.001", "steps=50",
                   f"hydra.sweep.dir={sweep}")
    assert done.returncode == 0, done.stdout + done.stderr
    used = usage_of(sweep)
    assert {u["shared_by"] for u in used.values()} == {3} and len({u["wall_s"] for u in used.values()}) == 1
    (sweep / "2" / "result.json").unlink()  # as if it had not run yet
    cost = run_cli("-m", "sweeper", "cost", str(sweep))
    assert cost.returncode == 0, cost.stderr
    assert cost.stdout.startswith(f"cost of {sweep}: 2 jobs of 3 ran")
    assert "- fused jobs are costed by their share of what their task or group used" in cost.stdout
    assert "- still to run: 1 job, about " in cost.stdout and "(the mean of the finished jobs of their task)" in cost.stdout


@pytest.mark.slurm
@pytest.mark.slow
def test_a_slurm_sweep_keeps_each_jobs_accounting_and_cost_agrees_with_sacct(tmp_path):
    """Three jobs, two packed into one Slurm task: every job's accounting is what sacct says of its
    task, and the sweep's core-hours are what sacct's own figures give."""
    sweep = tmp_path / "costed"
    done = run_cli(str(ROOT / "run.py"), "-m", "hydra/launcher=slurm", "hydra.launcher.jobs_per_task=2",
                   "optimizer=adam", "lr=0.1,0.01,0.001", "steps=50", "hydra.sweeper.fuse=false",
                   f"hydra.sweep.dir={sweep}")
    assert done.returncode == 0, done.stdout + done.stderr
    listed = {row["num"]: row for row in json.loads((sweep / "jobs.json").read_text())["jobs"]}
    tasks = {}
    for num, row in listed.items():
        file = read_file(sweep / row["dir"])
        assert list(file) == [row["scheduler_job_id"]], file
        tasks.setdefault(row["scheduler_job_id"], []).append(num)
    assert sorted(len(nums) for nums in tasks.values()) == [1, 2]
    array = next(iter(tasks)).split("_")[0]
    out = subprocess.run(["sacct", "-X", "-D", "-n", "-P", "-o", "JobID,ElapsedRaw,AllocCPUS,State", "-j", array],
                         capture_output=True, text=True, timeout=10, check=True).stdout
    bar = {}
    for line in out.splitlines():
        job_id, elapsed, cpus, state = line.split("|")
        bar[job_id] = (int(elapsed), int(cpus), state.split()[0])
    assert sorted(bar) == sorted(tasks)
    for slurm_id, nums in tasks.items():
        entry = read_file(sweep / listed[nums[0]]["dir"])[slurm_id]
        (attempt,) = entry["attempts"]
        assert entry["packed_jobs"] == len(nums)
        assert (round(attempt["elapsed_s"]), attempt["cpus"], attempt["state"]) == bar[slurm_id]
        assert attempt["max_rss_mb"] and attempt["max_rss_mb"] > 100  # TensorFlow's, sampled every second

    collated = run_cli("-m", "sweeper", "collate", str(sweep), "--cost")
    assert collated.returncode == 0, collated.stderr
    table = pd.read_csv(sweep / "results.csv")
    expected = sum(elapsed * cpus for elapsed, cpus, _ in bar.values()) / 3600
    assert table["cost.core_h"].sum() == pytest.approx(expected, rel=0.02)
    packed = [nums for nums in tasks.values() if len(nums) == 2][0]
    shares = table.set_index("job").loc[packed, "cost.wall_s"]
    packed_id = next(i for i, nums in tasks.items() if nums == packed)
    assert shares.sum() == pytest.approx(bar[packed_id][0], rel=0.02)  # the two shares make up the task

    cost = run_cli("-m", "sweeper", "cost", str(sweep))
    assert cost.returncode == 0, cost.stderr
    said = re.match(rf"cost of {re.escape(str(sweep))}: 3 jobs of 3 ran, ([\d.e-]+) core-h and 0 GPU-h over 3 attempts",
                    cost.stdout)
    assert said and float(said.group(1)) == pytest.approx(expected, rel=0.02), cost.stdout
    assert "Slurm: 1 CPU, 0 GPU, 8 GB a node, 2 h" in cost.stdout
    assert "- linear: asked 8 GB, used at most " in cost.stdout and "asked 2 h, the longest job took " in cost.stdout
    assert "- packed jobs are costed by their share of what their task or group used" in cost.stdout
