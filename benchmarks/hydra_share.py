"""Run `run.py` with its arguments, TensorFlow imported first, and print, as one JSON line last, the
number of jobs and the seconds of the whole sweep (after the import), of Hydra's `run_job` (each
job's run in an in-process sweep: sweeper/launching/in_process.py's, Hydra's elsewhere), of the task function within it, and the difference: Hydra's own
per-job work (its config copies, the `.hydra/` files, logging set-up). benchmarks/fused.py times
sweeps so: the seconds of importing TensorFlow, which vary by a second from run to run, stay out.

Run: python benchmarks/hydra_share.py -m experiment=ex1_adam hydra.sweep.dir=/tmp/x
"""
from __future__ import annotations

import functools
import json
import runpy
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
seconds = {"run_job": 0.0, "task": 0.0, "jobs": 0}


def timed(key: str, function):
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            seconds[key] += time.perf_counter() - start
            seconds["jobs"] += key == "run_job"
    return wrapper


def main() -> None:
    sys.path.insert(0, str(ROOT))
    import hydra.core.utils
    import keras  # noqa: F401  (imported now: out of the first job's time)

    import sweeper.run
    from sweeper.launching import in_process

    # Hydra loads its launcher plugins anew (their `from hydra.core.utils import run_job` then gets this).
    hydra.core.utils.run_job = timed("run_job", hydra.core.utils.run_job)
    in_process.run_job = timed("run_job", in_process.run_job)  # the grid's in-process jobs: Hydra's, with fewer copies
    sweeper.run.run_job = timed("task", sweeper.run.run_job)  # what the entry's task function calls (sweeper/run.py)
    sys.argv = [str(ROOT / "run.py"), *sys.argv[1:]]
    start = time.perf_counter()
    try:
        runpy.run_path(str(ROOT / "run.py"), run_name="__main__")
    except SystemExit as e:
        if e.code:
            raise
    seconds["sweep"] = time.perf_counter() - start
    hydra_s = seconds["run_job"] - seconds["task"]
    print(json.dumps({"jobs": seconds["jobs"], "sweep_s": seconds["sweep"], "run_job_s": seconds["run_job"],
                      "hydra_s": hydra_s, "task_s": seconds["task"]}))


if __name__ == "__main__":
    main()
