"""Fused sweeps against the same jobs one at a time, side by side in one run (docs/fused.md; the figures: benchmarks/RESULTS.md).

1. The 64-job ex1_adam grid, fused and with hydra.sweeper.fuse=false: the per-job cost beyond
   start-up, (the grid's seconds - a 2-job multirun's of the same mode, after the import) / 62 (a
   fused group traces its loop once, as a lone job's loop is traced once, so start-up is measured
   with a group), timed by benchmarks/hydra_share.py, the median of three interleaved runs, with
   how much of a fused job's cost is Hydra's own per-job work (the floor fusion cannot lower).
   Aim: at least 5x less fused.
2. The 24-job ex2_momentum grid on the full MNIST, fused and not: wall time. Aim: 4x less fused.
3. Four learning rates of the course CNN at batch 16 on the first --cnn-images MNIST images
   (the median of three epochs after a first, tracing one), fused (tasks.cnn.run_fused) and one after another
   (tasks.cnn.run): samples per second of the four jobs together, and the achieved GFLOP/s as a
   share of a float32 matmul measured in the same run. Aim: 1.5x the samples/s fused.
The ratios are printed last.

Run: MNIST_DIR=../shared/datasets/mnist python benchmarks/fused.py [--skip-ex2] [--cnn-images 3000]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.cnn_epoch import matmul_gflops, training_flop_per_sample  # noqa: E402

CNN_LRS = (1e-3, 3e-4, 1e-4, 3e-5)


def timed(*args: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "run.py", *args], cwd=ROOT, check=True, capture_output=True)
    return time.perf_counter() - start


def hydra_share(*args: str) -> dict:
    """Run the sweep under benchmarks/hydra_share.py: its seconds in Hydra's own per-job work."""
    done = subprocess.run([sys.executable, "benchmarks/hydra_share.py", *args], cwd=ROOT, check=True,
                          capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def ex1(tmp: str, repeats: int = 3) -> tuple[float, float]:
    """Per-job seconds beyond start-up, fused and one at a time: (the 64-job grid's seconds - a 2-job
    multirun's of the same mode) / 62, the median of `repeats` runs of each, interleaved, each
    timed after TensorFlow's import (which varies by a second) by benchmarks/hydra_share.py."""
    two = ["experiment=ex1_adam", "lr=0.1", "beta1=0.8", "beta2=0.8,0.9"]
    modes = {"fused": [], "one at a time": ["hydra.sweeper.fuse=false"]}
    per_job: dict[str, list[float]] = {mode: [] for mode in modes}
    shares = []
    for repeat in range(repeats):
        for mode, switch in modes.items():
            name = f"{tmp}/ex1_{repeat}_{len(switch)}"
            small = hydra_share("-m", *two, *switch, f"hydra.sweep.dir={name}_two")
            grid = hydra_share("-m", "experiment=ex1_adam", *switch, f"hydra.sweep.dir={name}_grid")
            per_job[mode].append((grid["sweep_s"] - small["sweep_s"]) / (grid["jobs"] - small["jobs"]))
            if not switch:
                shares.append(grid["hydra_s"] / grid["jobs"])
    per_fused, per_apart = (statistics.median(per_job[mode]) for mode in modes)
    for mode, values in per_job.items():
        print(f"ex1_adam per job beyond start-up, {mode}: {', '.join(f'{1000 * v:.0f}' for v in values)} ms")
    print(f"ex1_adam per job beyond start-up (medians): fused {1000 * per_fused:.0f} ms, one at a time "
          f"{1000 * per_apart:.0f} ms; of a fused job's, Hydra's own work (in its run_job, outside the task "
          f"function) {1000 * statistics.median(shares):.0f} ms")
    return per_fused, per_apart


def ex2(tmp: str) -> tuple[float, float]:
    """Wall seconds of the 24-job grid on the full MNIST: fused, one at a time."""
    fused = timed("-m", "experiment=ex2_momentum", f"hydra.sweep.dir={tmp}/ex2_fused")
    apart = timed("-m", "experiment=ex2_momentum", "hydra.sweeper.fuse=false", f"hydra.sweep.dir={tmp}/ex2_apart")
    print(f"ex2_momentum, 24 jobs on 60,000 images: fused {fused:.1f} s, one at a time {apart:.1f} s")
    return fused, apart


def cnn(images: int) -> tuple[float, float]:
    """Samples/s of four CNN jobs at batch 16 (the median epoch after the first, which traces):
    fused, one after another."""
    from tasks import cnn as task
    from tasks import mnist

    data = mnist.load(dir=os.environ.get("MNIST_DIR"), train_samples=images, test_samples=500)
    optimizers = [{"_target_": "keras.optimizers.Adam", "name": "adam", "learning_rate": lr, "beta_1": 0.9,
                   "beta_2": 0.999, "epsilon": 1e-7} for lr in CNN_LRS]
    settings = {"data": data, "batch_size": 16, "epochs": 4, "seed": 0}

    def epoch_s(outcome) -> float:  # the median of the epochs after the first: one slow epoch is noise
        return statistics.median(outcome.history["epoch_time_s"][1:])

    together = task.run_fused(optimizers=optimizers, **settings)
    fused_s = epoch_s(together[0]) * len(optimizers)  # a copy's epoch times are the group's / N
    apart_s = sum(epoch_s(task.run(optimizer=o, **settings)) for o in optimizers)
    samples = len(optimizers) * images
    fused, apart = samples / fused_s, samples / apart_s
    peak = matmul_gflops()
    flop = training_flop_per_sample()
    print(f"CNN, {len(optimizers)} learning rates at batch 16 on {images} images: fused {fused:.0f} samples/s "
          f"({fused * flop / 1e9 / peak:.0%} of the matmul peak), one after another {apart:.0f} samples/s "
          f"({apart * flop / 1e9 / peak:.0%}); float32 matmul peak {peak:.0f} GFLOP/s")
    return fused, apart


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-ex2", action="store_true", help="leave out the 24-job MNIST grid (minutes)")
    parser.add_argument("--cnn-images", type=int, default=3000)
    args = parser.parse_args()
    if not os.environ.get("MNIST_DIR"):
        sys.exit("error: set MNIST_DIR to the MNIST files (ex2 and the CNN train on them)")
    ratios = []
    with tempfile.TemporaryDirectory() as tmp:
        per_fused, per_apart = ex1(tmp)
        ratios.append(f"ex1_adam per-job cost beyond start-up, one at a time/fused: "
                      f"{per_apart / per_fused:.1f}x (aim 5x)")
        if not args.skip_ex2:
            fused, apart = ex2(tmp)
            ratios.append(f"ex2_momentum wall time, one at a time/fused: {apart / fused:.1f}x (aim 4x)")
    fused, apart = cnn(args.cnn_images)
    ratios.append(f"CNN batch 16 samples/s, fused/one after another: {fused / apart:.2f}x (aim 1.5x)")
    print("\n".join(ratios))


if __name__ == "__main__":
    main()
