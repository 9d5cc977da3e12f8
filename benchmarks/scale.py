"""Reading a sweep back at 1,000, 10,000 and 100,000 jobs: collate, report, resume's planning and
status, each timed with its peak memory, and the growth exponent of each from the smallest size
to the largest (1: time grows as the jobs do). First it runs the start half at the same sizes
(benchmarks/scale_start.py: the job list, the first job, peak memory, per-job overhead, and with
--slurm the packed submission), unless --read-only.

For each size, writes a synthetic linear Adam sweep into a temporary folder (tests/synthetic.py: its
job list, and each job's record written through write_record, so indexed as a real job's would be;
1% of the jobs not started, some diverged). Each step then runs in a fresh process, as the command
would, and its peak resident memory is that process's (ru_maxrss). `rebuild` is collate with the
sweep's index deleted: what the first read of a sweep without one costs (it writes the index anew).

Run: python benchmarks/scale.py [--sizes 1000,10000,100000] [--steps 1000] [--dir DIR] [--slurm] [--read-only]
(--dir: write the sweeps into DIR/<jobs> and keep them; a sweep already there is read again, not rewritten.)
(100,000 records of 1,000 loss values are 2.7 GB on disk: see `df -h /tmp`.)
"""
from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sweeper.job import index  # noqa: E402
from tests import synthetic  # noqa: E402

STEPS = ("collate", "report", "resume", "status", "rebuild")
NOT_STARTED = 0.01


def grid(jobs: int) -> list[dict[str, float]]:
    """`jobs` combinations of lr x beta1 x beta2 x epsilon (an lr for every 1,000 jobs)."""
    lrs = [round(0.3 * 0.9 ** i, 8) for i in range(max(1, math.ceil(jobs / 1000)))]
    values = itertools.product(lrs, [0.5 + 0.05 * i for i in range(10)], [0.9 + 0.0099 * i for i in range(10)],
                               [10.0 ** -e for e in range(4, 14)])
    return [dict(zip(("lr", "beta1", "beta2", "epsilon"), combination)) for combination in itertools.islice(values, jobs)]


def write_sweep(sweep: Path, jobs: int, steps: int) -> None:
    planned = grid(jobs)
    synthetic.write_job_list(sweep, "linear", "adam", planned, steps=steps)
    for number, hparams in enumerate(planned[:jobs - int(jobs * NOT_STARTED)]):
        diverge = 30 + number % 50 if hparams["lr"] > 0.2 and hparams["beta2"] < 0.92 else None
        synthetic.linear_job(sweep / str(number), "adam", diverge_at=diverge, steps=steps, **hparams)


def run_step(step: str, sweep: Path) -> None:
    """One step, in this process (a child of main's): prints its seconds as JSON."""
    from sweeper.__main__ import main
    from sweeper.status import NEEDS_RERUN
    from sweeper.sweep.jobs import read_sweep

    if step == "rebuild":
        shutil.rmtree(sweep / index.INDEX_DIR, ignore_errors=True)
    start = time.perf_counter()
    with open(os.devnull, "w") as devnull:
        sys.stdout = devnull
        if step == "resume":  # what `resume` decides before it launches the sweep again
            jobs = [job for job in read_sweep(sweep).jobs if job.sweep == sweep]
            rerun = [job for job in jobs if job.status in NEEDS_RERUN]
            assert rerun, "the jobs not started run again"
        else:
            code = main(["collate" if step == "rebuild" else step, str(sweep)])
            assert code == 0, f"{step} failed"
        sys.stdout = sys.__stdout__
    print(json.dumps({"seconds": time.perf_counter() - start}))


def measure(step: str, sweep: Path) -> tuple[float, float, float]:
    """(seconds, CPU seconds, peak resident MiB) of one step in a fresh process. The CPU seconds
    are the whole process's (start-up and imports too); on a shared machine they vary less."""
    child = subprocess.Popen([sys.executable, __file__, "--step", step, str(sweep)], stdout=subprocess.PIPE, text=True,
                             cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    out = child.stdout.read() if child.stdout else ""
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"{step} of {sweep} failed")
    return json.loads(out.strip().splitlines()[-1])["seconds"], usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000", help="job counts, comma separated")
    parser.add_argument("--steps", type=int, default=1000, help="loss values per record (1,000: 27 kB records)")
    parser.add_argument("--dir", type=Path, help="keep the sweeps here (and reuse those already here)")
    parser.add_argument("--step", nargs=2, metavar=("STEP", "SWEEP"), help=argparse.SUPPRESS)
    parser.add_argument("--slurm", action="store_true", help="the start half submits the largest grid to Slurm too")
    parser.add_argument("--read-only", action="store_true", help="the read-back half only")
    args = parser.parse_args()
    if args.step:
        run_step(args.step[0], Path(args.step[1]))
        return
    if not args.read_only:
        print("the start half (benchmarks/scale_start.py):", flush=True)
        start_half = [sys.executable, str(ROOT / "benchmarks" / "scale_start.py"), "--sizes", args.sizes]
        subprocess.run(start_half + (["--slurm"] if args.slurm else []), check=True)
        print("the read-back half:", flush=True)
    sizes = [int(size) for size in args.sizes.split(",")]
    results: dict[int, dict[str, tuple[float, float, float]]] = {}
    for jobs in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            sweep = (args.dir or Path(tmp)) / str(jobs)
            start = time.perf_counter()
            if not (sweep / "jobs.json").exists():
                shutil.rmtree(sweep, ignore_errors=True)
                write_sweep(sweep, jobs, args.steps)
            size = sum(entry.stat().st_size for entry in sweep.glob("*/result.json")) / 2**20
            print(f"{jobs} jobs: the sweep written in {time.perf_counter() - start:.0f} s ({size:.0f} MiB of records)",
                  flush=True)
            results[jobs] = {step: measure(step, sweep) for step in STEPS}
            for step, (seconds, cpu, mib) in results[jobs].items():
                print(f"  {step:8} {seconds:7.2f} s  (process CPU {cpu:6.2f} s)  {mib:6.0f} MiB", flush=True)
    if len(sizes) > 1:
        small, large = sizes[0], sizes[-1]
        print(f"growth exponent, {small} to {large} jobs (log time ratio / log jobs ratio), of the step's seconds:")
        for step in STEPS:
            ratio = results[large][step][0] / results[small][step][0]
            print(f"  {step:8} {math.log(ratio) / math.log(large / small):.2f}")


if __name__ == "__main__":
    main()
