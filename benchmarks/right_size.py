"""Right-sized requests on a busy cluster (`make slurm-up` first): the same 9-job grid as asked (the
launcher's defaults, 8 GB and 2 h a job) and right-sized (`hydra.launcher.right_size=true`), each
behind a two-node job that waits for a node another job holds.

Each way, in its own sweep folder: a first run of 3 of the grid's jobs (nothing else running: what
right-sizing measures), then a holder (`sbatch --nodelist=vm -c 2 --time=30 --wrap 'sleep 90'`) and a
two-node job that needs both nodes whole (submitted next, so it is first in line: the backfill
scheduler may start a later job only where that job's time limit ends before the two-node job's
planned start, the holder's time limit), then the whole grid into the same folder: its 6 new jobs
as asked, or right-sized from the first 3. Prints each new job's queue wait (sacct's Submit to
Start), the grid's makespan (the command's start to its end), the two-node job's start (backfill
must not delay it), and the core-hours asked (time limit x CPUs) against used (elapsed x CPUs) over
all of the folder's Slurm jobs. The backfill scheduler should look often (`bf_interval=5`, as
scripts/slurm-up.sh sets it); with Slurm's 30 s default the right-sized jobs start later.

Run: python benchmarks/right_size.py   (about 6 minutes)
"""
from __future__ import annotations

import dataclasses
import datetime
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sweeper.launching.accounting import seconds  # noqa: E402  (after the path above)
from sweeper.launching.slurm_queries import ENDED  # noqa: E402
from sweeper.job.manifest import read_manifest  # noqa: E402

FIRST = "lr=0.001,0.002,0.003"
GRID = "lr=0.001,0.002,0.003,0.004,0.005,0.006,0.007,0.008,0.009"
HOLD_S = 90


def sweep(folder: Path, grid: str, right_size: bool) -> tuple[float, str]:
    """Run the grid into the folder; its wall time and output."""
    start = time.time()
    done = subprocess.run([sys.executable, "run.py", "-m", "task=linear", grid, "hydra/launcher=slurm",
                           f"hydra.sweep.dir={folder}", f"hydra.launcher.right_size={str(right_size).lower()}"],
                          cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"error: the sweep into {folder} failed:\n{done.stdout}{done.stderr}")
    return time.time() - start, done.stdout


def sbatch(*args: str) -> str:
    done = subprocess.run(["sbatch", "--parsable", "--output=/dev/null", *args], check=True, capture_output=True,
                          text=True)
    return done.stdout.strip()


def sacct(job_ids: list[str], fields: str) -> list[dict[str, str]]:
    names = fields.split(",")
    out = subprocess.run(["sacct", "-X", "-n", "-P", "-o", fields, "-j", ",".join(job_ids)],
                         check=True, capture_output=True, text=True).stdout
    return [dict(zip(names, line.split("|"))) for line in out.splitlines() if line.count("|") == len(names) - 1]


def state(job_id: str) -> str:
    rows = sacct([job_id], "JobID,State")
    return rows[0]["State"].split()[0] if rows else "UNKNOWN"


def wait_for(job_id: str, states: frozenset[str], limit_s: float = 300) -> None:
    deadline = time.monotonic() + limit_s
    while state(job_id) not in states:
        if time.monotonic() > deadline:
            sys.exit(f"error: Slurm job {job_id} did not reach {sorted(states)} in {limit_s:.0f} s")
        time.sleep(1)


def when(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text)


def slurm_ids(folder: Path, nums: range | None = None) -> list[str]:
    listed = read_manifest(folder)
    assert listed is not None
    return [slurm_id for job in listed.jobs if nums is None or job.num in nums for slurm_id in job.scheduler_job_ids]


@dataclasses.dataclass
class Way:
    name: str
    waits: list[float]          # the grid's new jobs' queue waits, s
    wall: float                 # the grid's makespan, s
    lines: list[str]            # the sweep's right-sized and resubmitted lines
    asked: float                # core-hours asked (time limit x CPUs), the folder's every Slurm job
    used: float                 # core-hours used (elapsed x CPUs)
    requests: list[tuple[str, str]]  # (ReqMem, Timelimit) of those jobs
    two_node_wait: float        # the two-node job's Submit to Start
    two_node_after_holder: float  # its Start after the holder's


def one_way(base: Path, right_size: bool) -> Way:
    """The grid behind the two-node job, as asked or right-sized."""
    folder = base / ("right_sized" if right_size else "as_asked")
    sweep(folder, FIRST, right_size)
    holder = sbatch("--nodelist=vm", "-c", "2", "--time=30", "-J", "holder", "--wrap", f"sleep {HOLD_S}")
    wait_for(holder, frozenset({"RUNNING"}))
    two_node = sbatch("-N", "2", "--ntasks-per-node=1", "-c", "2", "--time=10", "-J", "two-node", "--wrap", "sleep 30")
    try:
        wall, output = sweep(folder, GRID, right_size)
        wait_for(two_node, ENDED | {"RUNNING"})
    finally:
        if right_size:  # the last way: nothing waits for them
            subprocess.run(["scancel", holder, two_node], check=False)
    wait_for(two_node, ENDED)
    jobs = sacct(slurm_ids(folder, range(3, 9)), "JobID,Submit,Start,End")
    every = sacct(slurm_ids(folder), "JobID,Elapsed,Timelimit,AllocCPUS,ReqMem")
    [holder_row] = sacct([holder], "JobID,Start")
    [pair] = sacct([two_node], "JobID,Submit,Start")
    return Way(
        name="right-sized" if right_size else "as asked",
        waits=[(when(job["Start"]) - when(job["Submit"])).total_seconds() for job in jobs], wall=wall,
        lines=[line for line in output.splitlines() if line.startswith(("right-sized", "resubmitted"))],
        asked=sum((seconds(job["Timelimit"]) or 0) * int(job["AllocCPUS"]) for job in every) / 3600,
        used=sum((seconds(job["Elapsed"]) or 0) * int(job["AllocCPUS"]) for job in every) / 3600,
        requests=sorted({(job["ReqMem"], job["Timelimit"]) for job in every}),
        two_node_wait=(when(pair["Start"]) - when(pair["Submit"])).total_seconds(),
        two_node_after_holder=(when(pair["Start"]) - when(holder_row["Start"])).total_seconds())


def main() -> None:
    config = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True).stdout
    interval = re.search(r"bf_interval=(\d+)", config)
    print(f"backfill: {'bf_interval=' + interval.group(1) if interval else 'bf_interval=30 (the default)'}")
    if subprocess.run(["squeue", "-h"], capture_output=True, text=True).stdout.strip():
        print("note: other jobs are queued or running: the figures are not this benchmark's alone")
    with tempfile.TemporaryDirectory(prefix="right_size_") as base:
        ways = [one_way(Path(base), right_size) for right_size in (False, True)]
    for way in ways:
        print(f"\n{way.name}: requests (memory, time limit) {way.requests}")
        for line in way.lines:
            print(f"  {line}")
        print(f"  queue wait of the 6 new jobs: {', '.join(f'{w:.0f}' for w in way.waits)} s "
              f"(mean {sum(way.waits) / len(way.waits):.0f} s)")
        print(f"  the grid's makespan: {way.wall:.0f} s")
        print(f"  the two-node job: waited {way.two_node_wait:.0f} s, started {way.two_node_after_holder:.0f} s "
              f"after the holder (which ran {HOLD_S} s)")
        print(f"  core-hours asked {way.asked:.3f}, used {way.used:.4f} ({way.used / way.asked:.1%})")


if __name__ == "__main__":
    main()
