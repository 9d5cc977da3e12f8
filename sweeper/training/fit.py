"""Training a Keras model with `fit`: the task's model, loss, metrics and data (NumPy arrays or a
tf.data.Dataset), the input pipeline, the record's curves and timings, the per-epoch state, and the
outcome. The course's tasks (tasks/softmax.py, tasks/cnn.py) and a user's train through `train`
(`from sweeper import train`).
"""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence, Union

import numpy as np

from sweeper.outcome import Outcome
from sweeper.status import Status
from sweeper.trial import Reporter
from sweeper.trial import status_of as trial_status
from sweeper.training import checkpoint, progress_line
from sweeper.training.curves import Curves, epoch_curves, epoch_values, history_of
from sweeper.training.tensorboard import keras_callbacks
from sweeper.training.tf import import_keras, import_tensorflow

if TYPE_CHECKING:
    import keras
    import tensorflow as tf

# A set of examples: (inputs, targets) as two arrays of equal length, or a tf.data.Dataset of single
# (input, target) examples of known length (not batched: `train` batches it with the job's batch_size).
Data = Union[tuple[np.ndarray, np.ndarray], "tf.data.Dataset"]
# A function of a batch (inputs, targets) -> (inputs, targets), mapped after batching (`images`).
Prepare = Callable[[Any, Any], tuple[Any, Any]]

TEST_BATCH = 500              # test examples per replica per evaluation step
# The loss and the metric the hand-written loops compute themselves (fused_loop.py, worker_loop.py:
# the course's classifiers); the course's tasks give `train` the same.
CROSS_ENTROPY = "sparse_categorical_crossentropy"
ACCURACY = "accuracy"


def examples(data: Data) -> int:
    """How many examples `data` holds; ValueError (one line) where that is not known."""
    if isinstance(data, (tuple, list)):
        inputs, targets = data
        if len(inputs) != len(targets):
            raise ValueError(f"{len(inputs)} inputs but {len(targets)} targets: give as many of each")
        return len(inputs)
    count = int(data.cardinality())
    if count < 0:  # tf.data's UNKNOWN (-2) or INFINITE (-1)
        raise ValueError("a tf.data.Dataset of unknown length: give one of known length, not batched, "
                         "not repeated (dataset.apply(tf.data.experimental.assert_cardinality(N)))")
    return count


def images(input_shape: Sequence[int]) -> Prepare:
    """A batch of uint8 images as float32 in [0, 1] shaped `input_shape` (the course's MNIST)."""
    import_tensorflow()  # started quietly: the import below finds it
    import tensorflow as tf

    def scale(x: tf.Tensor, y: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return tf.reshape(tf.cast(x, tf.float32) / 255.0, (-1, *input_shape)), y

    return scale


def dataset(data: Data, *, batch_size: int, prepare: Prepare | None = None, shuffle_seed: int | None = None,
            skip_batches: int = 0) -> tf.data.Dataset:
    """Batches of `data`, each mapped by `prepare`, repeated forever, from batch `skip_batches` on
    (a job that continues from its state sees the batches it would have seen without a stop: those
    of its next epoch, in that epoch's order).

    Use with `steps_per_epoch`: one iterator then serves every epoch. Measured here, a new
    iterator per epoch with tf.data's autotuning on stalled epochs for seconds while the old one
    was torn down; autotuning is off and the prefetch fixed, so nothing is torn down in `fit`.

    Every iterator of the dataset gives the same batches: the shuffle is made inside a one-element
    `flat_map`, so each iterator makes its own shuffle and its seed generator, which a shuffle
    made once shares between its iterators (each new one starting at the next epoch's order).
    Keras' `fit` under a tf.distribute strategy (`gpus=N`, or any strategy on a GPU machine) takes
    one batch from an iterator of its own before training (`_maybe_symbolic_build`, Keras 3.15):
    with a shared generator its training then began at the second epoch's order, and 2 replicas
    did not match one device (first loss 2.3067 against 2.2949 on a cnn's first batch).
    """
    import_tensorflow()  # started quietly: the import below finds it
    import tensorflow as tf

    count = examples(data)  # here: inside `flat_map` a dataset's length is a symbolic tensor
    source = data if isinstance(data, tf.data.Dataset) else tf.data.Dataset.from_tensor_slices(tuple(data))

    def epochs(_: tf.Tensor) -> tf.data.Dataset:
        shuffled = source
        if shuffle_seed is not None:  # a new order every epoch, the same orders for the same seed
            shuffled = source.shuffle(count, seed=shuffle_seed, reshuffle_each_iteration=True)
        return shuffled.batch(batch_size).repeat()

    source = tf.data.Dataset.from_tensors(0).flat_map(epochs).skip(skip_batches)
    if prepare is not None:
        source = source.map(prepare)  # after the skip: skipped batches are not prepared
    options = tf.data.Options()
    options.autotune.enabled = False
    options.deterministic = True
    return source.prefetch(2).with_options(options)


def replicated(strategy: tf.distribute.Strategy, batches: tf.data.Dataset) -> Any:
    """`batches` (global batches) as `fit` takes them under `strategy`: as they are (Keras splits each
    between the replicas), or, where the replicas are logical CPUs of this process (`devices=cpu`,
    `gpus=1` too), read by each replica itself: its share of every global batch, the rows Keras'
    split gives it (ceil(n / N) consecutive rows each: the last replicas of a short batch may get
    fewer, or none).

    Why: Keras' split copies each batch to the devices through a generator dataset per device, which
    tf.data cannot optimise, and says so at every job (`W0000 ... Input of GeneratorDatasetOp::Dataset
    will not be optimized`); on logical CPUs nothing needs copying. Each replica reads the whole
    pipeline (its shuffle holds the whole training set: N copies of it in memory)."""
    import_tensorflow()  # started quietly: the import below finds it
    import tensorflow as tf

    if not (isinstance(strategy, tf.distribute.MirroredStrategy)
            and all("CPU" in name for name in strategy.extended.worker_devices)):
        return batches
    replicas = strategy.num_replicas_in_sync

    def share(context: tf.distribute.InputContext) -> tf.data.Dataset:
        replica = context.input_pipeline_id

        def rows(*batch: tf.Tensor) -> Any:
            part = (tf.shape(tf.nest.flatten(batch)[0])[0] + replicas - 1) // replicas
            return tf.nest.map_structure(lambda tensor: tensor[replica * part:(replica + 1) * part], batch)

        return batches.map(rows)

    options = tf.distribute.InputOptions(experimental_replication_mode=tf.distribute.InputReplicationMode.PER_REPLICA,
                                         experimental_fetch_to_device=False)
    return strategy.distribute_datasets_from_function(share, options)


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
            now = epoch_values(logs)  # train_loss, train_<metric>, test_loss, test_<metric>
            self.curves.end_epoch(now, end - self.epoch_start - self.epoch_test_s, self.epoch_test_s,
                                  end - self.fit_start)
            # A search's trial: the pruner may stop this job here.
            if reporter is not None and reporter.report(now, epoch + 1, last=epoch + 1 == self.params["epochs"]):
                self.model.stop_training = True

    return Recorder()



def job_callbacks(job_dir: Path | None, model: keras.Model, recorder: Any,
                  logging: dict[str, Any]) -> list[keras.callbacks.Callback]:
    """The Keras callbacks every Keras job gets besides the record's own: per-epoch TensorBoard
    scalars and the training state saved at every epoch end (after the recorder's counters)."""
    callbacks = keras_callbacks(job_dir, logging.get("tensorboard", False))
    if job_dir is not None:
        callbacks.append(checkpoint.saver(job_dir, model, lambda: recorder.counters))
    return callbacks


def compiled(make_model: Callable[[], keras.Model], optimizer: dict[str, Any], loss: Any,
             metrics: Sequence[Any]) -> keras.Model:
    """`make_model()` compiled with the job's Keras optimizer (`optimizer`, its config) and the
    task's `loss` and `metrics` (anything Keras' `compile` takes). (A fused copy's state is saved
    from such a model too.)"""
    import hydra.utils

    model = make_model()
    model.compile(optimizer=hydra.utils.instantiate(optimizer), loss=loss, metrics=list(metrics))
    return model


def train(make_model: Callable[[], keras.Model], train_data: Data, test_data: Data, *, optimizer: dict[str, Any],
          loss: Any, metrics: Sequence[Any], batch_size: int, epochs: int, seed: int,
          prepare: Prepare | None = None, strategy: tf.distribute.Strategy | None = None,
          job_dir: Path | None = None, logging: dict[str, Any] | None = None,
          trial: Reporter | None = None, progress: str | None = None) -> tuple[Outcome, keras.Model]:
    """Train `make_model()` with Keras `fit` on `train_data`, evaluating on `test_data` after every epoch.

    `make_model`: a function returning a new, uncompiled Keras model (built here after the seed is
    set, in the strategy's scope). `optimizer`: the job's optimizer config (the task's `optimizer`
    argument). `loss`, `metrics`: what Keras' `compile` takes (`"mse"`, `["mae"]`, Keras objects);
    the record's curves are named after them: train_loss, train_<metric>, test_loss,
    test_<metric> per epoch, and the loss every few steps (`loss`, `loss_steps`). `train_data`,
    `test_data`: `Data`, shuffled with `seed` every epoch (the training set) and batched with
    `batch_size` per replica, each batch mapped by `prepare` where given. `job_dir`, `logging`,
    `trial`, `progress`: the task's own framework arguments, passed on: a job that finds training
    state in `job_dir` (sweeper/training/checkpoint.py) continues from there, and saves its own
    every epoch.

    Returns the record's outcome (status ok, or diverged where the loss stopped being finite, or
    pruned; its metrics: the test set's last metrics, test_loss, train_loss, samples_per_s,
    params, train_samples, test_samples, test_time_s) and the trained model.
    """
    tf = import_tensorflow()
    keras = import_keras()
    train_count, test_count = examples(train_data), examples(test_data)
    keras.backend.clear_session()  # a sweep in one process: drop the previous job's model
    keras.utils.set_random_seed(seed)
    strategy = strategy or tf.distribute.get_strategy()
    replicas = strategy.num_replicas_in_sync
    global_batch = batch_size * replicas
    with strategy.scope():
        model = compiled(make_model, optimizer, loss, metrics)
        done_epochs, saved = checkpoint.restore(job_dir, model)

    steps = math.ceil(train_count / global_batch)
    test_batch = TEST_BATCH * replicas
    recorder = make_recorder(steps, global_batch, train_count, saved, trial)
    start = time.perf_counter()
    model.fit(
        replicated(strategy, dataset(train_data, batch_size=global_batch, prepare=prepare, shuffle_seed=seed,
                                     skip_batches=done_epochs * steps)),
        epochs=epochs,
        initial_epoch=done_epochs,
        steps_per_epoch=steps,
        validation_data=replicated(strategy, dataset(test_data, batch_size=test_batch, prepare=prepare)),
        validation_steps=math.ceil(test_count / test_batch),
        callbacks=[recorder, *job_callbacks(job_dir, model, recorder, logging or {}),
                   progress_line.callback(progress, global_batch, train_count)],
        shuffle=False,  # the dataset shuffles itself
        verbose=0,  # the progress line shows the job's progress (progress_line.py)
    )
    # Every attempt's training. Not `saved["fit_time_s"]`: `saved` is the recorder's counters,
    # which hold this attempt's time too by now (a resumed job counted it twice).
    fit_time = recorder.curves.fit_time(time.perf_counter() - start)
    return outcome(recorder.counters, model.count_params(), fit_time, train_count, test_count, trial), model


def outcome(counters: dict[str, Any], params: int, elapsed: float, train_count: int, test_count: int,
            reporter: Reporter | None = None) -> Outcome:
    """The record's outcome from the recorder's `counters` (a fused copy's: sweeper/training/fused_loop.py)."""
    history = history_of(counters)
    finite = all(math.isfinite(v) for v in history["loss"] + history["train_loss"])
    last = {name: history[name][-1] for name in epoch_curves(counters)}
    tested = [name for name in last if name.startswith("test_") and name != "test_loss"]
    metrics = {
        **{name: last[name] for name in tested},  # the task's metrics on the test set first
        "test_loss": last["test_loss"],
        "train_loss": last["train_loss"],
        "samples_per_s": counters["samples_seen"] / sum(history["epoch_time_s"]),
        "params": int(params),
        "train_samples": train_count,
        "test_samples": test_count,
        "test_time_s": counters["test_time_s"],
    }
    status = trial_status(Status.OK if finite else Status.DIVERGED, reporter)
    return Outcome(status=status, metrics=metrics, history=history, train_time_s=elapsed)
