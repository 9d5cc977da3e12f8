"""The course CNN's training throughput: the framework (`run.py task=cnn`) against plain Keras.

Trains the CNN on the same fixed subset (the first 6,000 MNIST images) at batch 16 and batch 256,
alternating, each run in a fresh process:
- framework: `python run.py task=cnn ...`, epoch times from its record (history.epoch_time_s:
  training alone, the test evaluation after each epoch excluded);
- plain: a Keras script calling `model.fit` on NumPy arrays, as the course did;
- autotune: plain Keras on a tf.data pipeline with autotuning on and a new iterator per epoch,
  the set-up in which epochs stalled;
- pipeline: plain Keras on the framework's own pipeline (sweeper/training/fit.py: one repeated iterator,
  no autotuning), timed like plain and autotune.
The first (tracing) epoch of every run is left out; stalls between epochs are in. Prints
samples/s, the achieved GFLOP/s as a share of a float32 matmul measured in the same run, the
slowest/median epoch, for the plain runners the largest epoch-boundary delay (the first step of
an epoch beyond the epoch's median step, plus the time after its last step: a stall shows
there), and last:
`framework/plain samples-per-second ratio: R` (the smaller of the two batch sizes' ratios).

Run: MNIST_DIR=../shared/datasets/mnist python benchmarks/cnn_epoch.py [--rounds 2] [--epochs 4]
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
RUNNERS = ("framework", "plain", "autotune", "pipeline")


def training_flop_per_sample() -> float:
    """Multiply-adds of the course CNN's forward pass, x2 for FLOP, x3 for forward + backward."""
    conv1 = 28 * 28 * 32 * (5 * 5 * 1)
    conv2 = 14 * 14 * 64 * (5 * 5 * 32)
    dense = 7 * 7 * 64 * 1024 + 1024 * 10
    return 3 * 2 * (conv1 + conv2 + dense)


def matmul_gflops(n: int = 2048, repeats: int = 10) -> float:
    """float32 matmul GFLOP/s of this CPU with TensorFlow's default threads, best of `repeats`."""
    code = f"""
import time, tensorflow as tf
a, b = tf.random.uniform(({n}, {n})), tf.random.uniform(({n}, {n}))
(a @ b).numpy()
times = []
for _ in range({repeats}):
    start = time.perf_counter()
    (a @ b).numpy()
    times.append(time.perf_counter() - start)
print(2 * {n} ** 3 / min(times) / 1e9)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.split()[-1])


def run_framework(batch: int, epochs: int, samples: int, data: str, workdir: Path) -> list[float]:
    run_dir = workdir / f"framework-{batch}-{time.monotonic_ns()}"
    subprocess.run([sys.executable, "run.py", "task=cnn", f"batch_size={batch}", f"epochs={epochs}",
                    f"data.dir={data}", f"data.train_samples={samples}", "data.test_samples=500",
                    f"hydra.run.dir={run_dir}"], cwd=ROOT, check=True, capture_output=True)
    record = json.loads((run_dir / "result.json").read_text())
    if record["status"] != "ok":
        raise SystemExit(f"framework run failed: {record['error']}")
    return record["history"]["epoch_time_s"]


def run_plain(runner: str, batch: int, epochs: int, samples: int, data: str) -> dict[str, list[float]]:
    out = subprocess.run([sys.executable, __file__, "--child", runner, "--batch", str(batch), "--epochs", str(epochs),
                          "--samples", str(samples), "--data", data], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def child(runner: str, batch: int, epochs: int, samples: int, data: str) -> None:
    """One plain Keras run; prints its epoch times and epoch-boundary delays as JSON."""
    import keras
    import tensorflow as tf

    from sweeper.training import fit
    from tasks import cnn, mnist

    splits = mnist.load(data, train_samples=samples)
    x = (splits.train_images.astype("float32") / 255.0).reshape(-1, 28, 28, 1)
    y = splits.train_labels
    keras.utils.set_random_seed(0)
    model = cnn.make_model()  # the same layers, plain Keras
    model.compile(optimizer=keras.optimizers.Adam(1e-4), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    timings: dict[str, list[float]] = {"epoch_time_s": [], "boundary_delay_s": []}

    class Timer(keras.callbacks.Callback):
        """Epoch times, and the delay at the epoch's boundaries: how much longer its first step took
        than its median step, plus the time from its last step to its end (a new iterator is
        made, and the old one torn down, at one of the two)."""

        def on_epoch_begin(self, epoch, logs=None):
            self.marks = [time.perf_counter()]

        def on_train_batch_end(self, batch, logs=None):
            self.marks.append(time.perf_counter())

        def on_epoch_end(self, epoch, logs=None):
            end = time.perf_counter()
            steps = [b - a for a, b in zip(self.marks, self.marks[1:])]
            timings["epoch_time_s"].append(end - self.marks[0])
            timings["boundary_delay_s"].append(steps[0] - statistics.median(steps) + end - self.marks[-1])

    if runner == "plain":  # the course's way: NumPy arrays straight into fit
        model.fit(x, y, batch_size=batch, epochs=epochs, shuffle=True, verbose=0, callbacks=[Timer()])
    elif runner == "autotune":  # tf.data as commonly written: autotuned prefetch, a new iterator per epoch
        data_set = (tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=0).batch(batch)
                    .prefetch(tf.data.AUTOTUNE))
        model.fit(data_set, epochs=epochs, verbose=0, callbacks=[Timer()])
    else:  # the framework's pipeline (sweeper/training/fit.py), in plain Keras: one iterator for all epochs
        data_set = fit.dataset((splits.train_images, y), batch_size=batch, prepare=fit.images(cnn.INPUT_SHAPE),
                               shuffle_seed=0)
        model.fit(data_set, epochs=epochs, steps_per_epoch=-(-len(y) // batch), verbose=0, callbacks=[Timer()])
    print(json.dumps(timings))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=os.environ.get("MNIST_DIR"), help="MNIST directory (default: $MNIST_DIR)")
    parser.add_argument("--samples", type=int, default=6000)
    parser.add_argument("--epochs", type=int, default=4, help="per run; the first is left out")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[16, 256])
    parser.add_argument("--runners", nargs="+", choices=RUNNERS, default=list(RUNNERS))
    parser.add_argument("--child", choices=RUNNERS[1:], help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not args.data:
        raise SystemExit("error: no MNIST directory: set MNIST_DIR or pass --data DIR")
    if args.child:
        return child(args.child, args.batch, args.epochs, args.samples, args.data)
    if args.epochs < 2 or "framework" not in args.runners or "plain" not in args.runners:
        raise SystemExit("error: need --epochs >= 2 and the framework and plain runners")

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    load_before = os.getloadavg()
    started = time.perf_counter()
    peaks = [matmul_gflops()]
    epochs: dict[tuple[str, int], list[float]] = {}  # (runner, batch) -> epoch times after the first
    boundary: dict[tuple[str, int], list[float]] = {}  # (runner, batch) -> epoch-boundary delays after the first
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.rounds):
            for batch in args.batch_sizes:
                order = args.runners if round_ % 2 == 0 else args.runners[::-1]  # alternate who goes first
                for runner in order:
                    if runner == "framework":
                        times = run_framework(batch, args.epochs, args.samples, args.data, Path(tmp))
                        delays = []
                    else:
                        timings = run_plain(runner, batch, args.epochs, args.samples, args.data)
                        times, delays = timings["epoch_time_s"], timings["boundary_delay_s"]
                    epochs.setdefault((runner, batch), []).extend(times[1:])
                    boundary.setdefault((runner, batch), []).extend(delays[1:])
                    print(f"round {round_ + 1} batch {batch:>4} {runner:<9} epochs (s): "
                          + " ".join(f"{t:.2f}" for t in times), flush=True)
            peaks.append(matmul_gflops())
    peak = max(peaks)
    flop = training_flop_per_sample()
    print(f"\nCNN training cost: {flop / 1e6:.1f} MFLOP per sample; float32 matmul (2048x2048): {peak:.0f} GFLOP/s "
          f"(best of {len(peaks)} measurements: {', '.join(f'{p:.0f}' for p in peaks)})")
    print(f"{args.samples} images, {args.epochs} epochs per run (first left out), {args.rounds} rounds; "
          f"load average {load_before[0]:.2f} before, {os.getloadavg()[0]:.2f} after; "
          f"{time.perf_counter() - started:.0f} s in all")
    print(f"{'batch':>5}  {'runner':<9} {'samples/s':>9} {'GFLOP/s':>8} {'of matmul':>9} {'slowest/median epoch':>21} "
          f"{'epoch-boundary delay (s, max)':>30}")
    rates: dict[tuple[str, int], float] = {}
    for (runner, batch), times in sorted(epochs.items(), key=lambda kv: (kv[0][1], RUNNERS.index(kv[0][0]))):
        rate = args.samples * len(times) / sum(times)
        rates[runner, batch] = rate
        print(f"{batch:>5}  {runner:<9} {rate:>9.0f} {rate * flop / 1e9:>8.1f} {rate * flop / 1e9 / peak:>9.0%} "
              f"{max(times) / statistics.median(times):>21.2f} "
              + (f"{max(boundary[runner, batch]):>30.3f}" if boundary[runner, batch] else f"{'-':>30}"))
    ratios = {batch: rates["framework", batch] / rates["plain", batch] for batch in args.batch_sizes}
    for batch, ratio in ratios.items():
        print(f"batch {batch}: framework/plain {ratio:.3f}")
    print(f"framework/plain samples-per-second ratio: {min(ratios.values()):.3f}")


if __name__ == "__main__":
    main()
