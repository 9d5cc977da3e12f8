"""Peak memory of an in-process grid of many fused groups (issue 29): `python run.py -m task=linear
optimizer=adam steps=<G values> lr=<N/G values> logging.tensorboard=false`, N jobs in G fused
groups (the jobs of one `steps` value fuse; `steps` is the outer axis, so a batch of 256 jobs holds
whole groups but at its edges).

Runs the grid as a subprocess and prints its peak RSS (ru_maxrss, TensorFlow's ~550 MB included),
its wall time, and how many jobs ran.

    python benchmarks/memory_grid.py [--jobs 10000] [--groups 100] [--max-steps 100]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def grid(jobs: int, groups: int, max_steps: int) -> list[str]:
    """N jobs in G groups: G distinct `steps` values (spread over 1..max_steps; 1..G where G is
    larger), N/G learning rates each."""
    if jobs % groups:
        raise SystemExit(f"--jobs {jobs} is not a multiple of --groups {groups}")
    steps = [1 + (i * max_steps) // groups for i in range(groups)] if groups <= max_steps else list(range(1, groups + 1))
    rates = [f"{0.001 * (i + 1):.6g}" for i in range(jobs // groups)]
    return ["task=linear", "optimizer=adam", f"steps={','.join(map(str, steps))}", f"lr={','.join(rates)}",
            "logging.tensorboard=false"]


def peak_rss(jobs: int, groups: int, max_steps: int) -> tuple[float, float, int]:
    """Run the grid in a fresh process: its peak RSS in MB, its wall time in s, the jobs it ran."""
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        with open(Path(tmp, "stderr"), "w+") as err:
            child = subprocess.Popen([sys.executable, "run.py", "-m", *grid(jobs, groups, max_steps),
                                      f"hydra.sweep.dir={tmp}/sweep"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err)
            _, status, usage = os.wait4(child.pid, 0)  # this child's own peak, not any other's
            child.returncode = os.waitstatus_to_exitcode(status)
            seconds = time.perf_counter() - start
            if child.returncode != 0:
                err.seek(0)
                raise SystemExit(err.read()[-2000:])
        ran = sum(1 for _ in Path(tmp, "sweep").glob("*/result.json"))
    return usage.ru_maxrss / 1024, seconds, ran


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--groups", type=int, default=100)
    parser.add_argument("--max-steps", type=int, default=100, help="the largest `steps` value")
    args = parser.parse_args()
    rss, seconds, ran = peak_rss(args.jobs, args.groups, args.max_steps)
    print(f"{ran} jobs in {args.groups} fused groups: peak RSS {rss:.0f} MB, {seconds:.0f} s wall time")


if __name__ == "__main__":
    main()
