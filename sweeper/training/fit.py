"""Training a Keras task with `fit`: the input pipeline, the record's curves and timings, the
per-epoch state, and the outcome. The MNIST tasks (tasks/softmax.py, tasks/cnn.py) train through
`train` here.
"""
from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from sweeper.job import trial
from sweeper.job.outcome import Outcome
from sweeper.job.status import Status
from sweeper.training import checkpoint
from sweeper.training.tf import import_tensorflow

if TYPE_CHECKING:
    import keras
    import tensorflow as tf

    from tasks.mnist import Splits

TEST_BATCH = 500              # test images per replica per evaluation step
LOSS_POINTS_PER_EPOCH = 100   # history["loss"]: about this many points per epoch


_EPOCH_CURVES = ("train_loss", "train_accuracy", "test_loss", "test_accuracy")  # one value per epoch
_CURVES = ("loss", "loss_steps", "train_loss", "train_accuracy", "test_loss", "test_accuracy", "epoch_time_s")


def dataset(images: np.ndarray, labels: np.ndarray, *, batch_size: int, input_shape: Sequence[int],
            shuffle_seed: int | None = None, skip_batches: int = 0) -> tf.data.Dataset:
    """Batches of (float32 images in [0, 1] shaped `input_shape`, int labels), repeated forever,
    from batch `skip_batches` on (a job that continues from its state sees the batches it would
    have seen without a stop: those of its next epoch, in that epoch's order).

    Use with `steps_per_epoch`: one iterator then serves every epoch. Measured here, a new
    iterator per epoch with tf.data's autotuning on stalled epochs for seconds while the old one
    was torn down; autotuning is off and the prefetch fixed, so nothing is torn down in `fit`.
    """
    tf = import_tensorflow()

    def scale(x: tf.Tensor, y: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return tf.reshape(tf.cast(x, tf.float32) / 255.0, (-1, *input_shape)), y

    data = tf.data.Dataset.from_tensor_slices((images, labels))
    if shuffle_seed is not None:  # a new order every epoch, the same orders for the same seed
        data = data.shuffle(len(images), seed=shuffle_seed, reshuffle_each_iteration=True)
    data = data.batch(batch_size).repeat().skip(skip_batches).map(scale).prefetch(2)  # skipped: not scaled
    options = tf.data.Options()
    options.autotune.enabled = False
    options.deterministic = True
    return data.with_options(options)


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
            reporter = trial.current()  # a search's trial: the pruner may stop this job here
            now = {name: self.counters[name][-1] for name in _EPOCH_CURVES}
            if reporter is not None and reporter.report(now, epoch + 1, last=epoch + 1 == self.params["epochs"]):
                self.model.stop_training = True

    return Recorder()


def job_callbacks(job_dir: Path | None, model: keras.Model, recorder: Any,
                  logging: dict[str, Any]) -> list[keras.callbacks.Callback]:
    """The Keras callbacks every MNIST job gets besides the record's own: per-epoch TensorBoard
    scalars and the training state saved at every epoch end (after the recorder's counters)."""
    from sweeper.training.tensorboard import keras_callbacks

    callbacks = keras_callbacks(job_dir, logging.get("tensorboard", False))
    if job_dir is not None:
        callbacks.append(checkpoint.saver(job_dir, model, lambda: recorder.counters))
    return callbacks


def _verbosity() -> int:
    """Keras' progress bar on a terminal; one line per epoch in a log file (Slurm)."""
    return 1 if sys.stdout.isatty() else 2


def compiled(make_model: Callable[[], keras.Model], optimizer: dict[str, Any]) -> keras.Model:
    """`make_model()` compiled as every MNIST job's: the job's Keras optimizer (`optimizer`, its
    config), cross-entropy, accuracy. (A fused copy's state is saved from such a model too.)"""
    import hydra.utils

    model = make_model()
    model.compile(optimizer=hydra.utils.instantiate(optimizer), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def train(make_model: Callable[[], keras.Model], splits: Splits, *, optimizer: dict[str, Any], batch_size: int,
          epochs: int, seed: int, input_shape: Sequence[int], strategy: tf.distribute.Strategy | None = None,
          job_dir: Path | None = None, logging: dict[str, Any] | None = None) -> tuple[Outcome, keras.Model]:
    """Train `make_model()` with Keras `fit`, evaluating on the test set after every epoch.

    A job that finds training state in `job_dir` (sweeper.checkpoint) continues from there.

    Under `strategy` (default: TensorFlow's default strategy) the model is built and compiled in
    its scope and each step takes `batch_size` images per replica. Returns the record's outcome
    and the trained model.
    """
    tf = import_tensorflow()
    import keras

    keras.backend.clear_session()  # a sweep in one process: drop the previous job's model
    keras.utils.set_random_seed(seed)
    strategy = strategy or tf.distribute.get_strategy()
    replicas = strategy.num_replicas_in_sync
    global_batch = batch_size * replicas
    with strategy.scope():
        model = compiled(make_model, optimizer)
        done_epochs, saved = checkpoint.restore(job_dir, model)

    train_count, test_count = len(splits.train_labels), len(splits.test_labels)
    steps = math.ceil(train_count / global_batch)
    test_batch = TEST_BATCH * replicas
    recorder = _recorder(steps, global_batch, train_count, saved)
    start = time.perf_counter()
    model.fit(
        dataset(splits.train_images, splits.train_labels, batch_size=global_batch, input_shape=input_shape,
                shuffle_seed=seed, skip_batches=done_epochs * steps),
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
    return outcome(recorder.counters, model.count_params(), fit_time, train_count, test_count), model


def outcome(counters: dict[str, Any], params: int, elapsed: float, train_count: int, test_count: int) -> Outcome:
    """The record's outcome from the recorder's `counters` (a fused copy's: sweeper/training/fused_loop.py)."""
    history = {name: [float(v) for v in counters[name]] for name in _CURVES}
    history["loss_steps"] = [int(v) for v in history["loss_steps"]]
    finite = all(math.isfinite(v) for v in history["loss"] + history["train_loss"])
    metrics = {
        "test_accuracy": history["test_accuracy"][-1],
        "test_loss": history["test_loss"][-1],
        "train_loss": history["train_loss"][-1],
        "samples_per_s": counters["samples_seen"] / sum(history["epoch_time_s"]),
        "params": int(params),
        "train_samples": train_count,
        "test_samples": test_count,
        "test_time_s": counters["test_time_s"],
    }
    status = trial.status_of(Status.OK if finite else Status.DIVERGED, trial.current())
    return Outcome(status=status, metrics=metrics, history=history, train_time_s=elapsed)
