"""Per job beyond training in a fused in-process grid (issue 21's run aim: at most 25 ms, at
least 150x below a job as its own process).

Runs `run.py -m experiment=ex1_adam` over 16 learning rates (256 jobs) in this process (TensorFlow
imported first, as benchmarks/hydra_share.py does), timing each job's Hydra `run_job`
(sweeper/launching/in_process.py); the records' `train_time_s` (a fused job's share of its group's
training) is the training, the rest of `run_job` is the per-job cost: Hydra's part (config, `.hydra/`
files, logging), the owner marker, the record, the index line, run.log, the `[k/N]` line. Then one
job as its own process (`python run.py ...`), timed side by side, and the ratio.
With --profile, cProfile over the grid: the 40 functions of most cumulative time.

With --baseline DIR, another checkout (its own .venv: e.g. a worktree of main) runs the same grid,
interleaved with this one's, so that before and after share the machine's load.

    python benchmarks/per_job.py [--lrs 16] [--rounds 2] [--alone 2] [--profile] [--baseline DIR]
"""
from __future__ import annotations

import argparse
import cProfile
import functools
import json
import pstats
import runpy
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_grid(root: Path, sweep: Path, lrs: int, profile: bool) -> dict[str, float]:
    """The grid in this process, with the code of checkout `root`: seconds in run_job in all,
    training in all (the records'), jobs."""
    sys.path.insert(0, str(root))
    import keras  # noqa: F401  (imported now: out of the first job's time)

    from sweeper.launching import in_process

    spent = {"run_job": 0.0}
    run_job = in_process.run_job

    @functools.wraps(run_job)
    def timed(*args, **kwargs):
        start = time.perf_counter()
        try:
            return run_job(*args, **kwargs)
        finally:
            spent["run_job"] += time.perf_counter() - start

    in_process.run_job = timed
    values = ",".join(f"{0.1 / 2 ** i:.6g}" for i in range(lrs))
    sys.argv = [str(root / "run.py"), "-m", "experiment=ex1_adam", f"lr={values}", f"hydra.sweep.dir={sweep}"]
    profiler = cProfile.Profile() if profile else None
    start = time.perf_counter()
    try:
        if profiler:
            profiler.enable()
        runpy.run_path(str(root / "run.py"), run_name="__main__")
    except SystemExit as e:
        if e.code:
            raise
    finally:
        if profiler:
            profiler.disable()
    sweep_s = time.perf_counter() - start
    records = [json.loads(p.read_text()) for p in sweep.glob("*/result.json")]
    if profiler:
        stats = pstats.Stats(profiler).sort_stats("cumulative")
        stats.print_stats(40)
        stats.print_callees("in_process.py:.*run_job|_run_and_record")
    return {"jobs": len(records), "sweep_s": sweep_s, "run_job_s": spent["run_job"],
            "train_s": sum(r["train_time_s"] or 0.0 for r in records),
            "ok": sum(r["status"] == "ok" for r in records)}


def alone(tmp: Path, i: int) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "run.py", "optimizer=adam", "lr=0.1", "beta1=0.9", "beta2=0.99",
                    f"hydra.run.dir={tmp}/alone{i}"], cwd=ROOT, check=True, capture_output=True)
    return time.perf_counter() - start


def grid(root: Path, python: str, sweep: Path, lrs: int, profile: bool) -> dict[str, float]:
    out = subprocess.run([python, __file__, "--lrs", str(lrs), "--child", str(root), str(sweep),
                          *(["--profile"] if profile else [])], cwd=root, check=True, capture_output=True, text=True)
    if profile:
        print(out.stdout.rsplit("\n", 2)[0])
    figures: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return figures


def show(name: str, figures: dict[str, float], one: float) -> float:
    jobs = figures["jobs"]
    rest_ms = 1000 * (figures["run_job_s"] - figures["train_s"]) / jobs
    print(f"{name}: {jobs:.0f} jobs ({figures['ok']:.0f} ok) in {figures['sweep_s']:.2f} s; per job: training "
          f"{1000 * figures['train_s'] / jobs:.1f} ms, beyond training {rest_ms:.1f} ms "
          f"({1000 * one / rest_ms:.0f}x below a job as its own process), whole sweep {1000 * figures['sweep_s'] / jobs:.1f} ms")
    return rest_ms


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lrs", type=int, default=16, help="learning rates: the grid is 16 times as many jobs")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--alone", type=int, default=2, help="single-job processes timed")
    parser.add_argument("--rounds", type=int, default=2, help="grids run (each beside the baseline's, if any)")
    parser.add_argument("--baseline", type=Path, help="another checkout (with its .venv) run the same way, interleaved")
    parser.add_argument("--child", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_grid(args.child[0], args.child[1], args.lrs, args.profile)))
        return
    trees = [("this checkout", ROOT, sys.executable)]
    if args.baseline:
        trees.insert(0, ("baseline", args.baseline.resolve(), str(args.baseline.resolve() / ".venv/bin/python")))
    with tempfile.TemporaryDirectory() as tmp:
        single = [alone(Path(tmp), i) for i in range(args.alone)]
        runs = [(name, grid(root, python, Path(tmp) / f"{name[0]}{r}", args.lrs, args.profile))
                for r in range(args.rounds) for name, root, python in trees]
    one = sum(single) / len(single)
    print(f"one job as its own process (python run.py ...): {one:.2f} s ({', '.join(f'{s:.2f}' for s in single)})")
    rest = {name: [show(name, figures, one) for n, figures in runs if n == name] for name, _, _ in trees}
    for name, values in rest.items():
        print(f"{name}: per job beyond training, best of {len(values)}: {min(values):.1f} ms, "
              f"{1000 * one / min(values):.0f}x below a job as its own process")


if __name__ == "__main__":
    main()
