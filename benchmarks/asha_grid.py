"""A CNN grid with successive halving (hparams_search=ex3_40epochs_asha) against the same grid
without pruning (the grid sweeper): epochs trained by each, their ratio, the wall time, and whether
both pick the same best configuration.

The grid: 7 learning rates at batch 32, from good to hopeless (1e-2 does not learn or learns
erratically, 3e-6 and 1e-6 too slowly), on the first TRAIN images of MNIST, EPOCHS epochs (8, or
the first argument), training seed SEED (0, or the second argument). The learning rates are half a
decade apart where their curves stay apart (below 1e-4) and a decade apart near the best: there
3e-4 and 1e-3 end within 0.5 points of each other, as do lr 1e-3 at batch 32, 128 and 256, and which
of them is best flips between training seeds; a grid with such a tie at the top measures the coin,
not the pruner. The pruned search uses the preset's settings: successive halving from epoch 1,
reduction factor 3, the grid in a seeded order, one trial after the other.

A sequential successive-halving run depends on the order of its trials (the first trials, having
nobody to lose to, go on), so after the two runs the preset's pruner (Optuna's, made from the
composed preset) is replayed on the grid's per-epoch curves in ORDERS random orders: the spread of
the epoch ratio, and in how many orders the best is the grid's. The replay takes each job's curve
from the grid (a job of the search trains as its grid twin until it is stopped, but alone, not
fused: the curves differ within the run-to-run spread), and is checked against the run's own order.
Run: MNIST_DIR=... python benchmarks/asha_grid.py [EPOCHS [SEED]]
"""
from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
TRAIN, TEST = 3000, 1000
EPOCHS = int(sys.argv[1]) if len(sys.argv) > 1 else 8
SEED = int(sys.argv[2]) if len(sys.argv) > 2 else 0
GRID = ["lr=1e-2,1e-3,1e-4,3e-5,1e-5,3e-6,1e-6", "batch_size=32"]
SIZES = [f"epochs={EPOCHS}", f"seed={SEED}", f"data.train_samples={TRAIN}", f"data.test_samples={TEST}",
         "logging.tensorboard=false"]
ORDERS = 100  # random trial orders replayed
Config = tuple[float, int]  # (lr, batch_size)


def run(sweep: Path, *args: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "run.py", "-m", *args, *GRID, *SIZES, f"hydra.sweep.dir={sweep}"], cwd=ROOT,
                   check=True, capture_output=True)
    return time.perf_counter() - start


def results(sweep: Path) -> dict[Config, tuple[str, int, float, float, int, list[float]]]:
    """(lr, batch_size) -> (status, epochs trained, last test accuracy, training seconds, job number, curve)."""
    found = {}
    for path in sweep.glob("*/result.json"):
        record = json.loads(path.read_text())
        curve = record["history"]["test_accuracy"]
        found[(record["hparams"]["lr"], record["hparams"]["batch_size"])] = (
            record["status"], len(curve), curve[-1], record["train_time_s"], int(path.parent.name), curve)
    return found


def best(found: dict) -> Config:
    """The configuration with the best final accuracy among those that trained every epoch."""
    return max((accuracy, config) for config, (status, _, accuracy, *_) in found.items() if status == "ok")[1]


def preset_pruner() -> Callable[[], Any]:
    """A maker of the preset's pruner, as the sweeper makes it (its composed hydra.sweeper.pruner)."""
    import hydra.utils
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        settings = compose("config", ["hparams_search=ex3_40epochs_asha"], return_hydra_config=True).hydra.sweeper.pruner
    return lambda: hydra.utils.instantiate(settings)


def replay(curves: dict[Config, list[float]], order: list[Config], make_pruner: Callable[[], Any]) -> tuple[int, Config]:
    """Trials in `order` report their grid curve epoch by epoch to a study with the pruner, as the
    jobs do (sweeper/trial.py: the last epoch is reported, never pruned): epochs trained, best."""
    import optuna

    study = optuna.create_study(direction="maximize", pruner=make_pruner())
    trained, finished = 0, {}
    for config in order:
        trial, curve = study.ask(), curves[config]
        for epoch, accuracy in enumerate(curve, 1):
            trial.report(accuracy, epoch)
            trained += 1
            if epoch < len(curve) and trial.should_prune():
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                break
        else:
            study.tell(trial, curve[-1])
            finished[config] = curve[-1]
    return trained, max((accuracy, config) for config, accuracy in finished.items())[1]


def print_replays(grid: dict, asha: dict) -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    make_pruner, curves = preset_pruner(), {config: row[5] for config, row in grid.items()}
    total = sum(len(curve) for curve in curves.values())
    own_order = sorted(asha, key=lambda config: asha[config][4])
    trained, chosen = replay(curves, own_order, make_pruner)
    print(f"replayed on the grid's curves in the run's own order: {trained} epochs (the run: "
          f"{sum(row[1] for row in asha.values())}), best lr={chosen[0]:g} batch_size={chosen[1]}")
    ratios, same = [], 0
    for seed in range(ORDERS):
        order = sorted(curves)
        random.Random(seed).shuffle(order)
        trained, chosen = replay(curves, order, make_pruner)
        ratios.append(trained / total)
        same += chosen == best(grid)
    ratios.sort()
    print(f"replayed in {ORDERS} random orders: epoch ratio median {statistics.median(ratios):.2f}, "
          f"90th percentile {ratios[int(0.9 * ORDERS) - 1]:.2f}, max {ratios[-1]:.2f}; "
          f"the grid's best in {same} of {ORDERS}")


def main() -> None:
    if not os.environ.get("MNIST_DIR"):
        sys.exit("set MNIST_DIR to the MNIST files")
    with tempfile.TemporaryDirectory() as tmp:
        grid_s = run(Path(tmp) / "grid", "task=cnn", "optimizer=adam")
        asha_s = run(Path(tmp) / "asha", "hparams_search=ex3_40epochs_asha")
        grid, asha = results(Path(tmp) / "grid"), results(Path(tmp) / "asha")
    assert grid.keys() == asha.keys(), "both ran the same grid"
    print(f"CNN grid of {len(grid)} configurations, {EPOCHS} epochs on {TRAIN} images (test {TEST}), seed {SEED}:")
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
    print_replays(grid, asha)


if __name__ == "__main__":
    main()
