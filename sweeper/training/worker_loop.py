"""`fit.train` over several workers: one Keras model trained data-parallel by every Slurm task of a
job under `tf.distribute.MultiWorkerMirroredStrategy` (sweeper/training/workers.py).

A hand-written loop rather than Keras `fit`: Keras 3's `fit` does not support
MultiWorkerMirroredStrategy (keras#20585, "Keras 3 does not work with MultiWorkerMirroredStrategy";
tf.distribute with Keras 3 failing on TF 2.16-2.18, tensorflow#72388). The loop keeps everything
else as `fit.train` has it: the task's own model and compiled Keras optimizer (whose `apply` in a
replica sums the replicas' gradients, as under `fit`), the same batches (fit.dataset, each global
batch split between the replicas), the record's curves from fit.py's recorder, the per-epoch state
(sweeper/training/checkpoint.py), TensorBoard and the progress line, all driven as Keras callbacks.

Every worker trains and restores the job's saved state; the chief (rank 0) alone evaluates, writes
the state, the logs and shows the progress line (the other workers' callbacks are the recorder's
alone, which stops them where the chief stops: the running loss is reduced over all workers). A
collective that fails (a worker lost, or silent past the timeout) ends the job with `WorkerLost`.
"""
from __future__ import annotations

import hashlib
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from sweeper.outcome import Outcome
from sweeper.training import checkpoint, fit, progress_line
from sweeper.training.tf import import_keras, import_tensorflow
from sweeper.training.workers import Workers, lost_worker

if TYPE_CHECKING:
    import keras
    import tensorflow as tf

    from sweeper.training.fit import Data


class WorkerLost(RuntimeError):
    """A collective failed: a worker died, or stayed silent past the timeout. One line: which."""


def train(make_model: Callable[[], keras.Model], train_data: Data, test_data: Data, *, optimizer: dict[str, Any],
          batch_size: int, epochs: int, seed: int, input_shape: Sequence[int], strategy: tf.distribute.Strategy,
          workers: Workers, job_dir: Path | None = None, logging: dict[str, Any] | None = None,
          progress: str | None = None) -> tuple[Outcome, keras.Model]:
    """Train the classifier `make_model()` (uint8 images shaped `input_shape`, integer labels: the
    loop computes cross-entropy and accuracy itself) on every worker with `batch_size` images per
    replica (the global batch: that times every worker's replicas), evaluating on the chief after
    every epoch. Returns the record's outcome (meaningful on the chief) and the trained model."""
    import_keras()  # TensorFlow and Keras started quietly; imported by name for their types
    import keras
    import tensorflow as tf
    keras.utils.set_random_seed(seed)
    global_batch = batch_size * strategy.num_replicas_in_sync
    with strategy.scope():
        model = fit.compiled(make_model, optimizer, fit.CROSS_ENTROPY, [fit.ACCURACY])
        done_epochs, saved = checkpoint.restore(job_dir, model)  # every worker: the chief's saved state
    chief = workers.rank == 0
    train_count, test_count = fit.examples(train_data), fit.examples(test_data)
    steps = math.ceil(train_count / global_batch)
    recorder = fit.make_recorder(steps, global_batch, train_count, saved)
    callbacks: list[keras.callbacks.Callback] = [recorder]
    if chief:
        callbacks += [*fit.job_callbacks(job_dir, model, recorder, logging or {}),
                      progress_line.callback(progress, global_batch, train_count)]
    hooks = keras.callbacks.CallbackList(callbacks, model=model, epochs=epochs, steps=steps, verbose=0)

    data = fit.dataset(train_data, batch_size=global_batch, prepare=fit.images(input_shape), shuffle_seed=seed,
                       skip_batches=done_epochs * steps)
    options = tf.data.Options()
    # Every worker reads every global batch and keeps its replicas' share of it, as one worker's
    # MirroredStrategy splits it between its replicas.
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    batches = iter(strategy.experimental_distribute_dataset(data.with_options(options)))
    train_step = _train_step(strategy, model, keras)
    evaluate = _evaluator(model, test_data, input_shape, keras) if chief else None

    start = time.perf_counter()
    hooks.on_train_begin()
    try:
        for epoch in range(done_epochs, epochs):
            hooks.on_epoch_begin(epoch)
            total = correct = count = 0.0
            for step in range(steps):
                loss_sum, hits, seen = (float(v) for v in train_step(next(batches)))
                total, correct, count = total + loss_sum, correct + hits, count + seen
                hooks.on_train_batch_end(step, {"loss": total / count})
                if model.stop_training:
                    break
            tested = {"val_loss": math.nan, "val_accuracy": math.nan}
            if evaluate is not None:
                hooks.on_test_begin()
                tested = evaluate()
                hooks.on_test_end()
            hooks.on_epoch_end(epoch, {"loss": total / count, "accuracy": correct / count, **tested})
            if model.stop_training:
                break
    except tf.errors.OpError as e:  # a collective gave up: a worker is gone
        raise WorkerLost(lost_worker(workers, e)) from e
    hooks.on_train_end()
    fit_time = recorder.curves.fit_time(time.perf_counter() - start)  # every attempt's (fit.train)
    return fit.outcome(recorder.counters, model.count_params(), fit_time, train_count, test_count), model


def checksum(model: keras.Model) -> str:
    """The sha256 of the model's weights, bytes as they are: equal on workers that hold equal weights."""
    digest = hashlib.sha256()
    for weight in model.get_weights():
        digest.update(weight.tobytes())
    return digest.hexdigest()[:16]


def _train_step(strategy: tf.distribute.Strategy, model: keras.Model,
                keras: Any) -> Callable[[Any], list[tf.Tensor]]:
    """One step on every replica: the loss averaged over the global batch (so that the optimizer's
    sum of the replicas' gradients is the global batch's mean gradient, as under `fit`), then the
    global batch's summed loss, correct predictions and images, reduced over every worker."""
    import_tensorflow()  # started quietly: the import below finds it
    import tensorflow as tf

    def replica_step(x: tf.Tensor, y: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        with tf.GradientTape() as tape:
            probabilities = model(x, training=True)
            losses = keras.losses.sparse_categorical_crossentropy(y, probabilities)
            loss = tf.nn.compute_average_loss(losses)
        variables = model.trainable_variables
        model.optimizer.apply(tape.gradient(loss, variables), variables)
        hits = tf.equal(tf.argmax(probabilities, axis=-1), tf.cast(y, tf.int64))
        return tf.reduce_sum(losses), tf.reduce_sum(tf.cast(hits, tf.float32)), tf.cast(tf.size(y), tf.float32)

    @tf.function
    def step(batch: Any) -> list[tf.Tensor]:
        sums = strategy.run(replica_step, args=batch)
        return [strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None) for value in sums]

    return step  # type: ignore[no-any-return]  # tf.function: untyped


def _evaluator(model: keras.Model, test_data: Data, input_shape: Sequence[int], keras: Any) -> Callable[[], dict[str, float]]:
    """The chief's test loss and accuracy over the whole test set, on its own (the weights are
    every worker's): Keras' `val_loss` and `val_accuracy`."""
    import_tensorflow()  # started quietly: the import below finds it
    import tensorflow as tf
    count = fit.examples(test_data)
    data = fit.dataset(test_data, batch_size=fit.TEST_BATCH,
                       prepare=fit.images(input_shape)).take(math.ceil(count / fit.TEST_BATCH))

    @tf.function
    def sums(x: tf.Tensor, y: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        probabilities = model(x, training=False)
        hits = tf.equal(tf.argmax(probabilities, axis=-1), tf.cast(y, tf.int64))
        return (tf.reduce_sum(keras.losses.sparse_categorical_crossentropy(y, probabilities)),
                tf.reduce_sum(tf.cast(hits, tf.float32)))

    def evaluate() -> dict[str, float]:
        loss = hits = 0.0
        for x, y in data:
            batch_loss, batch_hits = sums(x, y)
            loss, hits = loss + float(batch_loss), hits + float(batch_hits)
        return {"val_loss": loss / count, "val_accuracy": hits / count}

    return evaluate
