"""A big grid's start and run (issue 21, the start half): `python run.py -m task=linear optimizer=adam
lr=<N/1000 values> beta1=<10> beta2=<10> epsilon=<10> steps=10` at 1k, 10k and 100k jobs.

Each size runs the sweep as a subprocess (benchmarks/scale_start.py --child) that stops at the
first job's start, and prints: seconds from the process's launch (Python's and Hydra's start
included) to the job list written (jobs.json's mtime) and to the first job started (TensorFlow's
import included: the grid fuses, which imports the task), and the sweep process's peak RSS
(ru_maxrss, TensorFlow's ~550 MB included). Then the per-job time of the fused in-process grid:
the first --run jobs (default 512) of the largest grid run for real (the whole 100,000 would take
hours), per job from the records' times of its second half (fused groups' training included;
benchmarks/ex1_grid.py and benchmarks/hydra_share.py give what of it is beyond training).
With --slurm, the largest grid packed into Slurm tasks (hydra.launcher.jobs_per_task) submitted
held (sbatch --hold), timed, and every array it submitted cancelled. Last, the growth exponent of
each time from the smallest size to the largest (log time ratio / log jobs ratio).

    python benchmarks/scale_start.py [--sizes 1000,10000,100000] [--run 512] [--slurm [--jobs-per-task 1000]]
"""
from __future__ import annotations

import argparse
import json
import math
import os
import resource
import runpy
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


class FirstJob(KeyboardInterrupt):
    """Raised by the first job, to stop the sweep there (as Ctrl-C does: nothing catches it)."""


def grid(jobs: int) -> list[str]:
    """The issue's grid, 10x10x10 over the betas and epsilon, with jobs/1000 learning rates (the
    last axes shrink below 1,000 jobs)."""
    if jobs % 1000 == 0:
        axes = {"lr": jobs // 1000, "beta1": 10, "beta2": 10, "epsilon": 10}
    else:
        axes = {"lr": max(1, jobs // 100), "beta1": 10, "beta2": 10, "epsilon": 1}
    values = {"lr": lambda i: f"{0.0001 * (i + 1):.6g}", "beta1": lambda i: f"{0.5 + 0.04 * i:.4g}",
              "beta2": lambda i: f"{0.9 + 0.009 * i:.4g}", "epsilon": lambda i: f"{1e-8 * (i + 1):.3g}"}
    return ["task=linear", "optimizer=adam", "steps=10",
            *(f"{key}={','.join(values[key](i) for i in range(n))}" for key, n in axes.items())]


def child(start: float, sweep: str, overrides: list[str]) -> None:
    """Run the sweep in this process up to its first job; print the seconds since `start` (when the
    parent started this process) and the peak RSS as JSON."""
    sys.path.insert(0, str(ROOT))
    import sweeper.job.entry

    first_s: list[float] = []

    def first(cfg: object) -> float:
        first_s.append(time.time() - start)
        raise FirstJob

    sweeper.job.entry.run_job = first  # what run.py's task function imports and calls for each job
    sys.argv = [str(ROOT / "run.py"), "-m", *overrides, f"hydra.sweep.dir={sweep}"]
    try:
        runpy.run_path(str(ROOT / "run.py"), run_name="__main__")
    except (SystemExit, KeyboardInterrupt):  # the sweep says `interrupted` and exits 130
        pass
    listed = Path(sweep) / "jobs.json"
    print(json.dumps({"first_job_s": first_s[0] if first_s else None, "job_list_s": listed.stat().st_mtime - start if listed.exists() else None,
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def start_figures(jobs: int, tmp: Path) -> dict[str, float]:
    out = subprocess.run([sys.executable, __file__, "--child", str(time.time()), str(tmp / f"start{jobs}"),
                          *grid(jobs)], cwd=ROOT, capture_output=True, text=True)
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise SystemExit(f"the {jobs}-job sweep printed no figures: {out.stderr[-2000:]}")
    return json.loads(lines[-1])


def per_job_seconds(jobs: int, first: int, tmp: Path) -> float:
    """Seconds a job of the `jobs`-job grid, fused, in process, for real: its first `first` jobs run,
    and the time between the records of job first/2 and job first, over the jobs between (the
    start, planning included, left out; the fused groups' training in)."""
    sweep = tmp / "run"
    process = subprocess.Popen([sys.executable, "run.py", "-m", *grid(jobs), f"hydra.sweep.dir={sweep}",
                                "logging.tensorboard=false"], cwd=ROOT, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    records = [sweep / str(num) / "result.json" for num in range(first)]
    while process.poll() is None and not records[-1].exists():
        time.sleep(0.2)
    process.terminate()
    process.wait()
    half = max(path.stat().st_mtime for path in records[:first // 2])
    return (max(path.stat().st_mtime for path in records) - half) / (first - first // 2)


def slurm_seconds(jobs: int, per_task: int, tmp: Path) -> tuple[float, int]:
    """Seconds to submit the grid packed `per_task` jobs a Slurm task, held; then every array cancelled."""
    sys.path.insert(0, str(ROOT))
    from sweeper.job.manifest import read_manifest

    sweep = tmp / "slurm"
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "run.py", "-m", *grid(jobs), "hydra/launcher=slurm",
                          f"hydra.launcher.jobs_per_task={per_task}", "hydra.launcher.wait=false",
                          "+hydra.launcher.additional_parameters.hold=true", f"hydra.sweep.dir={sweep}"],
                         cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    listed = read_manifest(sweep)
    arrays = sorted({job.scheduler_job_id.split("_")[0] for job in (listed.jobs if listed else []) if job.scheduler_job_id})
    if arrays:
        subprocess.run(["scancel", *arrays], check=False)
    if out.returncode:
        raise SystemExit(f"the Slurm submission failed: {out.stderr[-2000:]}")
    return seconds, len(arrays)


def exponent(small: tuple[int, float], large: tuple[int, float]) -> float:
    return math.log(large[1] / small[1]) / math.log(large[0] / small[0])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--run", type=int, default=512, help="jobs of the largest grid run for real")
    parser.add_argument("--slurm", action="store_true")
    parser.add_argument("--jobs-per-task", type=int, default=1000)
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    figures = {}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for jobs in sizes:
            figures[jobs] = start_figures(jobs, tmp)
            f = figures[jobs]
            print(f"{jobs:>7} jobs: job list written {f['job_list_s']:.1f} s, first job started {f['first_job_s']:.1f} s, "
                  f"peak RSS {f['peak_rss_mb']:.0f} MB", flush=True)
        if args.run:
            per_job = per_job_seconds(sizes[-1], args.run, tmp)
            print(f"fused in-process grid of {sizes[-1]} jobs, per job (its first {args.run} jobs run; from the "
                  f"record of job {args.run // 2} to job {args.run - 1}'s; steps=10, no TensorBoard logs): "
                  f"{1000 * per_job:.0f} ms", flush=True)
        if args.slurm:
            seconds, arrays = slurm_seconds(sizes[-1], args.jobs_per_task, tmp)
            print(f"Slurm: {sizes[-1]} jobs packed {args.jobs_per_task} a task submitted held in {seconds:.1f} s "
                  f"as {arrays} arrays (then cancelled)", flush=True)
    pairs = [(sizes[0], sizes[-1])] + ([(sizes[-2], sizes[-1])] if len(sizes) > 2 else [])
    for small, large in pairs if len(sizes) > 1 else []:
        for key, name in (("job_list_s", "job list written"), ("first_job_s", "first job started"),
                          ("peak_rss_mb", "peak RSS")):
            print(f"growth exponent {small} -> {large} jobs, {name}: "
                  f"{exponent((small, figures[small][key]), (large, figures[large][key])):.2f}")

if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        os.chdir(ROOT)
        child(float(sys.argv[2]), sys.argv[3], sys.argv[4:])
    else:
        main()
