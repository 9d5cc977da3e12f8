"""MNIST for exercises 2 and 3: the IDX files, the input pipeline, and training with Keras `fit`.

The tasks (softmax.py, cnn.py) each give a model; this module does the rest the same way for both.
Loading needs NumPy only, and comes first: a data error is reported before TensorFlow starts.
"""
from __future__ import annotations

import functools
import gzip
import math
import sys
import time
import zlib
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Callable, NamedTuple, Sequence

import numpy as np

from sweeper import checkpoint
from sweeper.outcome import Outcome

if TYPE_CHECKING:
    import keras
    import tensorflow as tf

FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
FIX = "set data.dir=DIR or MNIST_DIR to a directory holding the four MNIST IDX files (raw or .gz)"
IMAGE_SHAPE = (28, 28)
CLASSES = 10
TEST_BATCH = 500              # test images per replica per evaluation step
LOSS_POINTS_PER_EPOCH = 100   # history["loss"]: about this many points per epoch


class DataError(ValueError):
    """MNIST cannot be read; the message is one line naming the file or the cause, and the fix."""


class Splits(NamedTuple):
    """MNIST as NumPy arrays: uint8 images (N, 28, 28) and uint8 labels (N,)."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray


# ---- IDX files -------------------------------------------------------------------------------

def _read_bytes(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path) as f:
                return f.read()
        return path.read_bytes()
    except (OSError, EOFError, zlib.error) as e:  # gzip.BadGzipFile is an OSError
        reason = "truncated" if isinstance(e, EOFError) else str(e).strip() or type(e).__name__
        raise DataError(f"{path}: cannot be read ({reason}): {FIX}") from None


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """An IDX file of unsigned bytes with `ndim` dimensions (raw or gzip) as a uint8 array.

    Checks the magic number (0x0000 08 ndim), that the data is exactly as long as the dimensions
    say, and raises DataError naming the file otherwise.
    """
    raw = _read_bytes(path)
    header = 4 + 4 * ndim
    expected_magic = 0x0800 | ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated: {len(raw)} bytes, shorter than an IDX header: {FIX}")
    magic = int.from_bytes(raw[:4], "big")
    if magic != expected_magic:
        raise DataError(f"{path}: wrong magic number 0x{magic:08x}, expected 0x{expected_magic:08x} "
                        f"(unsigned bytes, {ndim} dimensions): {FIX}")
    dims = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    size = math.prod(dims)
    if len(raw) - header != size:
        problem = "truncated" if len(raw) - header < size else "too long"
        raise DataError(f"{path}: {problem}: {len(raw) - header} data bytes for dimensions "
                        f"{'x'.join(map(str, dims))} ({size} bytes): {FIX}")
    return np.frombuffer(raw, np.uint8, offset=header).reshape(dims)


def _find(directory: Path, name: str) -> Path:
    for candidate in (directory / name, directory / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    raise DataError(f"{directory / name}(.gz): no such file: {FIX}")


def _pair(directory: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    images_path = _find(directory, FILES[f"{split}_images"])
    labels_path = _find(directory, FILES[f"{split}_labels"])
    images, labels = read_idx(images_path, 3), read_idx(labels_path, 1)
    if images.shape[1:] != IMAGE_SHAPE:
        raise DataError(f"{images_path}: images are {images.shape[1]}x{images.shape[2]}, not 28x28: {FIX}")
    if len(images) != len(labels):
        raise DataError(f"{images_path} has {len(images)} images but {labels_path} has "
                        f"{len(labels)} labels: {FIX}")
    if labels.size and labels.max() >= CLASSES:
        raise DataError(f"{labels_path}: a label is {labels.max()}, not a digit 0-9: {FIX}")
    return images, labels


@functools.cache
def _load_directory(directory: Path) -> Splits:
    if not directory.is_dir():
        problem = "not a directory" if directory.exists() else "no such directory"
        raise DataError(f"{directory}: {problem}: {FIX}")
    return Splits(*_pair(directory, "train"), *_pair(directory, "test"))


@functools.cache
def _load_keras() -> Splits:
    """The Keras copy, downloaded once into ~/.keras/datasets (or $KERAS_HOME)."""
    import keras

    try:
        (train_images, train_labels), (test_images, test_labels) = keras.datasets.mnist.load_data()
    except Exception as e:  # Keras raises a bare Exception for a failed download
        lines = [line.strip() for line in str(e).splitlines() if line.strip()]
        raise DataError(f"no data.dir and the download failed ({lines[-1] if lines else type(e).__name__}): "
                        f"{FIX}") from None
    return Splits(train_images, train_labels, test_images, test_labels)


def _first(count: int | None, images: np.ndarray, labels: np.ndarray, key: str) -> tuple[np.ndarray, np.ndarray]:
    if count is None:
        return images, labels
    if not 0 < count <= len(images):
        raise DataError(f"data.{key}={count} is invalid: this set has {len(images)} images; "
                        f"give 1..{len(images)} or null for all")
    return images[:count], labels[:count]


def load(dir: str | None = None, train_samples: int | None = None, test_samples: int | None = None) -> Splits:
    """MNIST from `dir` (the four IDX files, raw or .gz), or from Keras when `dir` is null.

    The keyword arguments are the config's `data` node. Files are read once per process (an
    in-process sweep shares them); `train_samples`/`test_samples` take the first N of each set.
    """
    splits = _load_directory(Path(dir).expanduser().resolve()) if dir else _load_keras()
    train = _first(train_samples, splits.train_images, splits.train_labels, "train_samples")
    test = _first(test_samples, splits.test_images, splits.test_labels, "test_samples")
    return Splits(*train, *test)


def tensorflow() -> ModuleType:
    """TensorFlow, its own logger set to errors only: it would print INFO lines for each all-reduce
    under MirroredStrategy and, in an in-process sweep, a retracing warning for each new model;
    absl's too (an INFO line for each checkpoint of mirrored variables)."""
    import logging

    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    logging.getLogger("absl").setLevel(logging.WARNING)
    return tf


# ---- Input pipeline --------------------------------------------------------------------------

def dataset(images: np.ndarray, labels: np.ndarray, *, batch_size: int, input_shape: Sequence[int],
            shuffle_seed: int | None = None) -> tf.data.Dataset:
    """Batches of (float32 images in [0, 1] shaped `input_shape`, int labels), repeated forever.

    Use with `steps_per_epoch`: one iterator then serves every epoch. Measured here, a new
    iterator per epoch with tf.data's autotuning on stalled epochs for seconds while the old one
    was torn down; autotuning is off and the prefetch fixed, so nothing is torn down in `fit`.
    """
    import tensorflow as tf

    def scale(x: tf.Tensor, y: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return tf.reshape(tf.cast(x, tf.float32) / 255.0, (-1, *input_shape)), y

    data = tf.data.Dataset.from_tensor_slices((images, labels))
    if shuffle_seed is not None:  # a new order every epoch, the same orders for the same seed
        data = data.shuffle(len(images), seed=shuffle_seed, reshuffle_each_iteration=True)
    data = data.batch(batch_size).map(scale).repeat().prefetch(2)
    options = tf.data.Options()
    options.autotune.enabled = False
    options.deterministic = True
    return data.with_options(options)


# ---- Training --------------------------------------------------------------------------------

_CURVES = ("loss", "loss_steps", "train_loss", "train_accuracy", "test_loss", "test_accuracy", "epoch_time_s")


def _recorder(steps_per_epoch: int, batch_size: int, samples: int,
              saved: dict[str, Any] | None) -> keras.callbacks.Callback:
    import keras

    every = max(1, steps_per_epoch // LOSS_POINTS_PER_EPOCH)

    class Recorder(keras.callbacks.Callback):
        """Keeps the record's curves and timings in `counters`, which a restarted job takes back.

        loss: the mean training loss over each stretch of `every` steps, from Keras's running
        mean (reset every epoch), at the steps in loss_steps (1-based, counted across epochs).
        A non-finite loss stops training there (the job is then `diverged`).
        epoch_time_s: training alone; the test evaluation inside each epoch is timed apart.
        fit_time_s: the time in `fit` up to the last finished epoch, over every attempt.
        """

        def __init__(self) -> None:
            super().__init__()
            fresh = {**{name: [] for name in _CURVES}, "test_time_s": 0.0, "samples_seen": 0, "fit_time_s": 0.0}
            self.counters: dict[str, Any] = saved or fresh

        def on_train_begin(self, logs: dict | None = None) -> None:
            self.fit_start = time.perf_counter()
            self.fit_time_before = self.counters["fit_time_s"]

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self.epoch = epoch
            self.epoch_start = time.perf_counter()
            self.epoch_test_s = 0.0
            self.mark = (0, 0.0)  # (samples so far this epoch, their summed loss) at the last point

        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            if not math.isfinite(logs["loss"]):
                self.model.stop_training = True  # diverged: the job ends after this step
            step = batch + 1
            seen = min(step * batch_size, samples)  # the last batch of an epoch may be short
            if step % every and step != steps_per_epoch and not self.model.stop_training:
                return
            total = logs["loss"] * seen  # Keras's loss is the running mean, weighted by batch size
            self.counters["loss"].append((total - self.mark[1]) / (seen - self.mark[0]))
            self.counters["loss_steps"].append(self.epoch * steps_per_epoch + step)
            self.mark = (seen, total)
            self.counters["samples_seen"] = self.epoch * samples + seen

        def on_test_begin(self, logs: dict | None = None) -> None:
            self.test_start = time.perf_counter()

        def on_test_end(self, logs: dict | None = None) -> None:
            self.epoch_test_s += time.perf_counter() - self.test_start

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            self.counters["epoch_time_s"].append(time.perf_counter() - self.epoch_start - self.epoch_test_s)
            for name, key in (("train_loss", "loss"), ("train_accuracy", "accuracy"),
                              ("test_loss", "val_loss"), ("test_accuracy", "val_accuracy")):
                self.counters[name].append(float(logs[key]))
            self.counters["test_time_s"] += self.epoch_test_s
            self.counters["fit_time_s"] = self.fit_time_before + time.perf_counter() - self.fit_start

    return Recorder()


def job_callbacks(job_dir: Path | None, model: keras.Model, recorder: Any,
                  logging: dict[str, Any]) -> list[keras.callbacks.Callback]:
    """The Keras callbacks every MNIST job gets besides the record's own: per-epoch TensorBoard
    scalars and the training state saved at every epoch end (after the recorder's counters)."""
    from sweeper import checkpoint
    from sweeper.tensorboard import keras_callbacks

    callbacks = keras_callbacks(job_dir, logging.get("tensorboard", False))
    if job_dir is not None:
        callbacks.append(checkpoint.saver(job_dir, model, lambda: recorder.counters))
    return callbacks


def _verbosity() -> int:
    """Keras' progress bar on a terminal; one line per epoch in a log file (Slurm)."""
    return 1 if sys.stdout.isatty() else 2


def train(make_model: Callable[[], keras.Model], splits: Splits, *, optimizer: dict[str, Any], batch_size: int,
          epochs: int, seed: int, input_shape: Sequence[int], strategy: tf.distribute.Strategy | None = None,
          job_dir: Path | None = None, logging: dict[str, Any] | None = None) -> tuple[Outcome, keras.Model]:
    """Train `make_model()` with Keras `fit`, evaluating on the test set after every epoch.

    A job that finds training state in `job_dir` (sweeper.checkpoint) continues from there.

    Under `strategy` (default: TensorFlow's default strategy) the model is built and compiled in
    its scope and each step takes `batch_size` images per replica. Returns the record's outcome
    and the trained model.
    """
    import hydra.utils
    import keras

    tf = tensorflow()
    keras.backend.clear_session()  # a sweep in one process: drop the previous job's model
    keras.utils.set_random_seed(seed)
    strategy = strategy or tf.distribute.get_strategy()
    replicas = strategy.num_replicas_in_sync
    global_batch = batch_size * replicas
    with strategy.scope():
        model = make_model()
        settings = {k: v for k, v in optimizer.items() if k not in ("_target_", "name")}
        model.compile(optimizer=hydra.utils.get_class(optimizer["_target_"])(**settings),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        done_epochs, saved = checkpoint.restore(job_dir, model)

    train_count, test_count = len(splits.train_labels), len(splits.test_labels)
    steps = math.ceil(train_count / global_batch)
    test_batch = TEST_BATCH * replicas
    recorder = _recorder(steps, global_batch, train_count, saved)
    start = time.perf_counter()
    model.fit(
        dataset(splits.train_images, splits.train_labels, batch_size=global_batch, input_shape=input_shape,
                shuffle_seed=seed),
        epochs=epochs,
        initial_epoch=done_epochs,
        steps_per_epoch=steps,
        validation_data=dataset(splits.test_images, splits.test_labels, batch_size=test_batch,
                                input_shape=input_shape),
        validation_steps=math.ceil(test_count / test_batch),
        callbacks=[recorder, *job_callbacks(job_dir, model, recorder, logging or {})],
        shuffle=False,  # the dataset shuffles itself
        verbose=_verbosity(),
    )
    elapsed = time.perf_counter() - start
    fit_time = (saved or {}).get("fit_time_s", 0.0) + elapsed  # every attempt's training
    return _outcome(recorder, model, fit_time, train_count, test_count), model


def _outcome(recorder: Any, model: keras.Model, elapsed: float, train_count: int, test_count: int) -> Outcome:
    history = {name: [float(v) for v in recorder.counters[name]] for name in _CURVES}
    history["loss_steps"] = [int(v) for v in history["loss_steps"]]
    finite = all(math.isfinite(v) for v in history["loss"] + history["train_loss"])
    counters = recorder.counters
    metrics = {
        "test_accuracy": history["test_accuracy"][-1],
        "test_loss": history["test_loss"][-1],
        "train_loss": history["train_loss"][-1],
        "samples_per_s": counters["samples_seen"] / sum(history["epoch_time_s"]),
        "params": int(model.count_params()),
        "train_samples": train_count,
        "test_samples": test_count,
        "test_time_s": counters["test_time_s"],
    }
    return Outcome(status="ok" if finite else "diverged", metrics=metrics, history=history, train_time_s=elapsed)
