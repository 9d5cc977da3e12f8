"""Training a Keras task with `fit`: the input pipeline, the record's curves and timings, the
per-epoch state, and the outcome. The MNIST tasks (tasks/softmax.py, tasks/cnn.py) train through
`train` here.
"""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from sweeper.job.outcome import Outcome
from sweeper.job.status import Status
from sweeper.job.trial import Reporter
from sweeper.job.trial import status_of as trial_status
from sweeper.training import checkpoint, progress_line
from sweeper.training.curves import CURVES, EPOCH_CURVES as _EPOCH_CURVES, Curves
from sweeper.training.tensorboard import keras_callbacks
from sweeper.training.tf import import_keras, import_tensorflow

if TYPE_CHECKING:
    import keras
    import tensorflow as tf

    from tasks.mnist import Splits

TEST_BATCH = 500              # test images per replica per evaluation step


def dataset(images: np.ndarray, labels: np.ndarray, *, batch_size: int, input_shape: Sequence[int],
            shuffle_seed: int | None = None, skip_batches: int = 0) -> tf.data.Dataset:
    """Batches of (float32 images in [0, 1] shaped `input_shape`, int labels), repeated forever,
    from batch `skip_batches` on (a job that continues from its state sees the batches it would
    have seen without a stop: those of its next epoch, in that epoch's order).

    Use with `steps_per_epoch`: one iterator then serves every epoch. Measured here, a new
    iterator per epoch with tf.data's autotuning on stalled epochs for seconds while the old one
    was torn down; autotuning is off and the prefetch fixed, so nothing is torn down in `fit`.
    """
    import_tensorflow()  # started quietly: the import below finds it
    import tensorflow as tf

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


def make_recorder(steps_per_epoch: int, batch_size: int, samples: int,
              saved: dict[str, Any] | None, reporter: Reporter | None = None) -> keras.callbacks.Callback:
    import_keras()
    import keras  # started quietly above; imported by name for its types

    class Recorder(keras.callbacks.Callback):
        """Keeps the record's curves and timings (sweeper/training/curves.py) from Keras' logs
        in `counters`, which a restarted job takes back."""

        def __init__(self) -> None:
            super().__init__()
            self.curves = Curves(steps_per_epoch, batch_size, samples, saved)
            self.counters: dict[str, Any] = self.curves.counters

        def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
            self.fit_start = time.perf_counter()

        def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            self.curves.begin_epoch(epoch)
            self.epoch_start = time.perf_counter()
            self.epoch_test_s = 0.0

        def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
            assert logs is not None, "Keras gives its logs"
            if self.curves.step_end(batch + 1, logs["loss"]):
                self.model.stop_training = True  # diverged: the job ends after this step

        def on_test_begin(self, logs: dict[str, Any] | None = None) -> None:
            self.test_start = time.perf_counter()

        def on_test_end(self, logs: dict[str, Any] | None = None) -> None:
            self.epoch_test_s += time.perf_counter() - self.test_start

        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            assert logs is not None, "Keras gives its logs"
            end = time.perf_counter()
            metrics = {name: logs[key] for name, key in (("train_loss", "loss"), ("train_accuracy", "accuracy"),
                                                         ("test_loss", "val_loss"), ("test_accuracy", "val_accuracy"))}
            self.curves.end_epoch(metrics, end - self.epoch_start - self.epoch_test_s, self.epoch_test_s,
                                  end - self.fit_start)
            # A search's trial: the pruner may stop this job here.
            now = {name: self.counters[name][-1] for name in _EPOCH_CURVES}
            if reporter is not None and reporter.report(now, epoch + 1, last=epoch + 1 == self.params["epochs"]):
                self.model.stop_training = True

    return Recorder()



def job_callbacks(job_dir: Path | None, model: keras.Model, recorder: Any,
                  logging: dict[str, Any]) -> list[keras.callbacks.Callback]:
    """The Keras callbacks every MNIST job gets besides the record's own: per-epoch TensorBoard
    scalars and the training state saved at every epoch end (after the recorder's counters)."""
    callbacks = keras_callbacks(job_dir, logging.get("tensorboard", False))
    if job_dir is not None:
        callbacks.append(checkpoint.saver(job_dir, model, lambda: recorder.counters))
    return callbacks


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
          job_dir: Path | None = None, logging: dict[str, Any] | None = None,
          trial: Reporter | None = None, progress: str | None = None) -> tuple[Outcome, keras.Model]:
    """Train `make_model()` with Keras `fit`, evaluating on the test set after every epoch.

    A job that finds training state in `job_dir` (sweeper.checkpoint) continues from there.

    Under `strategy` (default: TensorFlow's default strategy) the model is built and compiled in
    its scope and each step takes `batch_size` images per replica. Returns the record's outcome
    and the trained model.
    """
    tf = import_tensorflow()
    keras = import_keras()
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
    recorder = make_recorder(steps, global_batch, train_count, saved, trial)
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
        callbacks=[recorder, *job_callbacks(job_dir, model, recorder, logging or {}),
                   progress_line.callback(progress, global_batch, train_count)],
        shuffle=False,  # the dataset shuffles itself
        verbose=0,  # the progress line shows the job's progress (progress_line.py)
    )
    elapsed = time.perf_counter() - start
    fit_time = (saved or {}).get("fit_time_s", 0.0) + elapsed  # every attempt's training
    return outcome(recorder.counters, model.count_params(), fit_time, train_count, test_count, trial), model


def outcome(counters: dict[str, Any], params: int, elapsed: float, train_count: int, test_count: int,
            reporter: Reporter | None = None) -> Outcome:
    """The record's outcome from the recorder's `counters` (a fused copy's: sweeper/training/fused_loop.py)."""
    history = {name: [float(v) for v in counters[name]] for name in CURVES}
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
    status = trial_status(Status.OK if finite else Status.DIVERGED, reporter)
    return Outcome(status=status, metrics=metrics, history=history, train_time_s=elapsed)
