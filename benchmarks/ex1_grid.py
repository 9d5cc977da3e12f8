"""The 64-job ex1_adam grid in one multirun against the same jobs as separate processes.

Prints the per-job cost of each, side by side, and their ratio; and the grid's per-job cost
without TensorBoard logs (logging.tensorboard=false), for what they add. Run: python benchmarks/ex1_grid.py
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = [("0.1", "0.8", "0.8"), ("0.01", "0.9", "0.99"), ("0.001", "0.95", "0.9"), ("0.0001", "0.99", "0.95")]


def timed(*args: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "run.py", *args], cwd=ROOT, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        grid = timed("-m", "experiment=ex1_adam", f"hydra.sweep.dir={tmp}/grid")
        one = timed("-m", "experiment=ex1_adam", "lr=0.1", "beta1=0.8", "beta2=0.8", f"hydra.sweep.dir={tmp}/one")
        quiet = timed("-m", "experiment=ex1_adam", "logging.tensorboard=false", f"hydra.sweep.dir={tmp}/quiet")
        quiet_one = timed("-m", "experiment=ex1_adam", "lr=0.1", "beta1=0.8", "beta2=0.8",
                          "logging.tensorboard=false", f"hydra.sweep.dir={tmp}/quiet_one")
        alone = [timed("optimizer=adam", f"lr={lr}", f"beta1={b1}", f"beta2={b2}", f"hydra.run.dir={tmp}/alone{i}")
                 for i, (lr, b1, b2) in enumerate(SAMPLE)]
    records = 64
    in_process = (grid - one) / (records - 1)
    separate = sum(alone) / len(alone)
    print(f"one multirun of {records} jobs: {grid:.2f} s in all, one-time start {one:.2f} s (a 1-job multirun)")
    print(f"in-process grid, per job beyond the start: {in_process:.3f} s")
    print(f"in-process grid, per job including the start: {grid / records:.3f} s")
    print(f"separate `python run.py` processes, per job ({len(alone)} sampled): {separate:.3f} s")
    print(f"separate/in-process per-job cost ratio: {separate / in_process:.1f}")
    without = (quiet - quiet_one) / (records - 1)
    print(f"in-process grid without TensorBoard logs, per job beyond the start: {without:.3f} s "
          f"(the logs add {1000 * (in_process - without):.0f} ms a job)")


if __name__ == "__main__":
    main()
