"""Run `run.py` with its arguments and print, as one JSON line last, the seconds spent in Hydra's
per-job work: inside Hydra's `run_job` but outside the task function (its config copies, the
`.hydra/` files, logging set-up), and the number of jobs. benchmarks/fused.py runs a fused sweep so,
to show how much of a fused job's cost is Hydra's own.

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

    import sweeper

    # Hydra loads its launcher plugins anew (their `from hydra.core.utils import run_job` then gets this).
    hydra.core.utils.run_job = timed("run_job", hydra.core.utils.run_job)
    sweeper.run_job = timed("task", sweeper.run_job)  # what run.py's task function calls
    sys.argv = [str(ROOT / "run.py"), *sys.argv[1:]]
    try:
        runpy.run_path(str(ROOT / "run.py"), run_name="__main__")
    except SystemExit as e:
        if e.code:
            raise
    hydra_s = seconds["run_job"] - seconds["task"]
    print(json.dumps({"jobs": seconds["jobs"], "hydra_s": hydra_s, "task_s": seconds["task"]}))


if __name__ == "__main__":
    main()
