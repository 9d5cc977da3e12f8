"""A CNN grid with successive halving (hparams_search=ex3_40epochs_asha) against the same grid
without pruning (the grid sweeper): epochs trained by each, their ratio, the wall time, and whether
both pick the same best configuration.

The grid: lr 1e-3 ... 1e-6 (the small ones hopeless in a few epochs) x batch_size 32, 64, on the
first TRAIN images of MNIST, EPOCHS epochs (8, or the first argument). The pruned search uses the
preset's settings: successive halving from epoch 1, reduction factor 3, the grid in a seeded order,
one trial after the other. Run: MNIST_DIR=... python benchmarks/asha_grid.py [EPOCHS]
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TRAIN, TEST = 3000, 1000
EPOCHS = int(sys.argv[1]) if len(sys.argv) > 1 else 8
GRID = ["lr=1e-3,1e-4,1e-5,1e-6", "batch_size=32,64"]
SIZES = [f"epochs={EPOCHS}", f"data.train_samples={TRAIN}", f"data.test_samples={TEST}", "logging.tensorboard=false"]


def run(sweep: Path, *args: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "run.py", "-m", *args, *GRID, *SIZES, f"hydra.sweep.dir={sweep}"], cwd=ROOT,
                   check=True, capture_output=True)
    return time.perf_counter() - start


def results(sweep: Path) -> dict[tuple[float, int], tuple[str, int, float, float, int]]:
    """(lr, batch_size) -> (status, epochs trained, last test accuracy, training seconds, job number)."""
    found = {}
    for path in sweep.glob("*/result.json"):
        record = json.loads(path.read_text())
        curve = record["history"]["test_accuracy"]
        found[(record["hparams"]["lr"], record["hparams"]["batch_size"])] = (
            record["status"], len(curve), curve[-1], record["train_time_s"], int(path.parent.name))
    return found


def best(found: dict) -> tuple[float, int]:
    """The configuration with the best final accuracy among those that trained every epoch."""
    return max((accuracy, config) for config, (status, _, accuracy, *_) in found.items() if status == "ok")[1]


def main() -> None:
    if not os.environ.get("MNIST_DIR"):
        sys.exit("set MNIST_DIR to the MNIST files")
    with tempfile.TemporaryDirectory() as tmp:
        grid_s = run(Path(tmp) / "grid", "task=cnn", "optimizer=adam")
        asha_s = run(Path(tmp) / "asha", "hparams_search=ex3_40epochs_asha")
        grid, asha = results(Path(tmp) / "grid"), results(Path(tmp) / "asha")
    assert grid.keys() == asha.keys(), "both ran the same grid"
    print(f"CNN grid of {len(grid)} configurations, {EPOCHS} epochs on {TRAIN} images (test {TEST}):")
    print("lr        batch  grid: epochs acc    asha: trial status  epochs acc")
    for config in sorted(grid, key=lambda c: (-c[0], c[1])):
        g, a = grid[config], asha[config]
        print(f"{config[0]:<9g} {config[1]:<6} {g[1]:>6} {g[2]:.3f}       {a[4]:>5} {a[0]:<7} {a[1]:>6} {a[2]:.3f}")
    grid_epochs = sum(row[1] for row in grid.values())
    asha_epochs = sum(row[1] for row in asha.values())
    print(f"epochs trained: grid {grid_epochs}, successive halving {asha_epochs}, "
          f"ratio {asha_epochs / grid_epochs:.2f}")
    grid_train, asha_train = sum(row[3] for row in grid.values()), sum(row[3] for row in asha.values())
    print(f"training time (the records' train_time_s): grid {grid_train:.0f} s, successive halving "
          f"{asha_train:.0f} s, ratio {asha_train / grid_train:.2f}")
    print(f"wall time: grid {grid_s:.0f} s, successive halving {asha_s:.0f} s, ratio {asha_s / grid_s:.2f}")
    same = best(grid) == best(asha)
    print(f"best configuration: grid lr={best(grid)[0]:g} batch_size={best(grid)[1]}, successive halving "
          f"lr={best(asha)[0]:g} batch_size={best(asha)[1]}: {'the same' if same else 'DIFFERENT'}")


if __name__ == "__main__":
    main()
