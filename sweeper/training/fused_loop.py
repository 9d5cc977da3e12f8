"""The building blocks of fused training: N copies of one model, each with its own weights and its
own optimizer hyperparameters, trained as one computation on the same batches (horizontal fusion).

Each weight of the N copies is one variable with a leading copy axis, `[N, ...]`. The optimizer is the
jobs' own Keras optimizer (SGD, Adagrad, Adam: one family per group), with each hyperparameter
(its Keras name from the registry, sweeper/hparams.py: `learning_rate`, `momentum`, `beta_1`, ...)
replaced by an `[N, 1, ...]` tensor that broadcasts against that variable. So Keras' own
`update_step` does each copy's update, and no optimizer math is written here; tests/test_fused.py
checks it against lone Keras optimizers.

A copy whose loss stops being finite is dead from then on: `masked_apply` keeps its weights as
they were, so it cannot spoil the others (whose slices of every tensor are apart from its own).
"""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import hydra.utils
import numpy as np

from sweeper.outcome import Outcome
from sweeper.training import fit, progress_line
from sweeper.training.curves import Curves
from sweeper.training.fused_state import EPSILON, FUSED_ARGS, LEARNING_RATE, MOMENTUM, CopyStates
from sweeper.training.tensorboard import EpochScalars
from sweeper.training.tf import import_keras, import_tensorflow

if TYPE_CHECKING:
    import keras
    import tensorflow as tf




class Hyperparameter:
    """An optimizer hyperparameter held in variables, standing where Keras' optimizer has a Python
    float: one value per copy (shape [N, 1, ...], broadcasting against the copies' weights), or one
    value that a cached trace reuses for job after job (shape [], tasks/linear.py). Two of Keras' uses
    of the float are kept exact: `momentum != 0` (asked in Python: an SGD built with momentum slots
    answers yes, and a copy whose momentum is 0 then gets `m = -lr g; w += m`, plain gradient
    descent exactly), and `1 - beta_1`, which Keras computes in double precision before the cast
    (a float32 `1 - beta` can differ by one bit, and a chaotic run, such as Adam at lr 0.1 on
    exercise 1, then ends elsewhere)."""

    def __init__(self, shape: Sequence[int], name: str):
        tf = import_tensorflow()
        self.value = tf.Variable(tf.zeros(shape), trainable=False, name=name)
        self.complement = tf.Variable(tf.zeros(shape), trainable=False, name=f"one_minus_{name}")

    def assign(self, values: Any) -> Hyperparameter:
        values = np.broadcast_to(np.reshape(np.asarray(values, np.float64), self._copies()), self.value.shape)
        self.value.assign(values.astype(np.float32))
        self.complement.assign((1.0 - values).astype(np.float32))
        return self

    def _copies(self) -> list[int]:
        shape = list(self.value.shape)
        return shape[:1] + [1] * (len(shape) - 1) if shape else []

    def __ne__(self, other: object) -> bool:
        return True

    def __rsub__(self, other: float) -> tf.Tensor:
        return self.complement if other == 1 else other - self.value

    def __tf_tensor__(self, dtype: Any = None, name: str | None = None) -> tf.Tensor:
        tf = import_tensorflow()
        return tf.convert_to_tensor(self.value, dtype=dtype, name=name)


def optimizer_for(optimizers: Sequence[dict[str, Any]], variables: Sequence[tf.Variable]) -> keras.optimizers.Optimizer:
    """One Keras optimizer of the group's family that updates each copy of `variables` (all of one
    rank; leading axis: the copy) with that copy's hyperparameters. `optimizers`: the jobs'
    optimizer configs, in copy order, all of one `_target_`."""
    targets = {o["_target_"] for o in optimizers}
    if len(targets) != 1:
        raise ValueError(f"one optimizer family per fused group, not {sorted(targets)}")
    first = {k: v for k, v in optimizers[0].items() if k != "name"}
    momentums = [float(o.get(MOMENTUM, 0.0)) for o in optimizers]
    if any(momentums):
        first[MOMENTUM] = 0.5  # non-zero when built: SGD then keeps momentum slots
    optimizer = hydra.utils.instantiate(first)
    optimizer.build(list(variables))
    rank = len(variables[0].shape)
    copies = [len(optimizers)] + [1] * (rank - 1)  # [N, 1, ...]: broadcast by Keras' own arithmetic
    rate = Hyperparameter(copies, LEARNING_RATE).assign([float(o[LEARNING_RATE]) for o in optimizers])
    setattr(optimizer, LEARNING_RATE, lambda: rate.value)  # a callable: Keras' update_step gets it as learning_rate
    if any(momentums):
        setattr(optimizer, MOMENTUM, Hyperparameter(copies, MOMENTUM).assign(momentums))
    for name in (name for name in FUSED_ARGS if name not in (LEARNING_RATE, MOMENTUM)):
        values = [float(o[name]) for o in optimizers if name in o]
        if name == EPSILON and len(set(values)) == 1:
            setattr(optimizer, name, values[0])  # Keras' own float
        elif name == EPSILON and values:
            # Full-shaped (one variable only: `updaters`): Keras' `ops.add(x, eps)` takes an [N, 1]
            # tensor whose N equals a dimension of x for a bias, and adds it along the wrong axis
            # (keras 3.15).
            (variable,) = variables
            setattr(optimizer, name, Hyperparameter(variable.shape, name).assign(values))
        elif values:
            setattr(optimizer, name, Hyperparameter(copies, name).assign(values))
    return optimizer


def updaters(optimizers: Sequence[dict[str, Any]],
             variables: Sequence[tf.Variable]) -> list[tuple[keras.optimizers.Optimizer, list[tf.Variable]]]:
    """(optimizer, its variables) pairs that update `variables` (all of one rank): one optimizer for
    all, or one each where the copies' epsilons differ (see `optimizer_for`)."""
    if len({o.get(EPSILON) for o in optimizers}) == 1:
        return [(optimizer_for(optimizers, variables), list(variables))]
    return [(optimizer_for(optimizers, [v]), [v]) for v in variables]


def masked_apply(optimizer: keras.optimizers.Optimizer, gradients: Sequence[tf.Tensor],
                 variables: Sequence[tf.Variable], alive: tf.Tensor,
                 apply: Callable[[list[tf.Tensor], list[tf.Variable]], None] | None = None) -> None:
    """One optimizer step on every copy; the copies not `alive` ([N] bool) keep their weights: their
    rows are put back, and while every copy lives nothing is copied (a select over every weight
    cost the CNN a third of its step here). `apply(gradients, variables)`: the step itself, by
    default `optimizer.apply`."""
    import_tensorflow()  # started quietly: the import below finds it
    import tensorflow as tf
    dead = tf.where(tf.logical_not(alive))[:, 0]
    kept = [tf.gather(v, dead) for v in variables]
    (apply or optimizer.apply)(list(gradients), list(variables))

    def put_back() -> tf.Tensor:
        for variable, rows in zip(variables, kept):
            variable.scatter_update(tf.IndexedSlices(rows, dead))
        return tf.constant(True)

    tf.cond(tf.reduce_any(tf.logical_not(alive)), put_back, lambda: tf.constant(False))


# ---- Keras tasks on MNIST: `fit.train` for N copies at once -------------------------------------

# (per-copy weights [N, *shape] each, x, training, seed) -> every copy's logits [N, B, C]. `seed`: the
# step's seed for random draws ([2] int64; None when not training), for stateless ops such as
# tf.nn.experimental.stateless_dropout: the job's seed and the step, so that a group continued
# from its saved state (which holds the step) draws what it would have drawn without the stop.
Forward = Callable[[list["tf.Tensor"], "tf.Tensor", bool, "tf.Tensor | None"], "tf.Tensor"]


class _Copies:
    """The record's curves of every copy, each kept by its own `Curves` as a lone job's are
    (sweeper/training/curves.py), from what Keras would log for it alone: its running means in
    float32, and a copy stopped at the step where its running loss is not finite."""

    def __init__(self, copies: int, steps_per_epoch: int, batch_size: int, samples: int,
                 saved: Sequence[dict[str, Any] | None] | None = None):
        """`saved`: each copy's counters from its saved state (None: a fresh start)."""
        self.curves = [Curves(steps_per_epoch, batch_size, samples, counters)
                       for counters in (saved or [None] * copies)]
        self.counters = [curves.counters for curves in self.curves]
        self.alive = np.ones(copies, bool)

    def begin_epoch(self, epoch: int) -> None:
        n = len(self.curves)
        self.in_epoch = self.alive.copy()  # the copies that train this epoch (and are evaluated at its end)
        self.total, self.count, self.correct = (np.zeros(n, np.float32) for _ in range(3))
        for curves in self.curves:
            curves.begin_epoch(epoch)

    def batch_end(self, step: int, batch: int, losses: np.ndarray, correct: np.ndarray) -> None:
        """After training step `step` (1-based in the epoch) of `batch` images: each live copy's
        mean loss and number of correct predictions on it."""
        live = self.alive  # a copy stopped before this step counts no more (Keras' epoch ended there)
        with np.errstate(over="ignore", invalid="ignore"):  # a diverging copy overflows, as in Keras
            self.total = np.where(live, self.total + (losses * np.float32(batch)).astype(np.float32), self.total)
        self.count = np.where(live, self.count + np.float32(batch), self.count).astype(np.float32)
        self.correct = np.where(live, self.correct + correct.astype(np.float32), self.correct)
        with np.errstate(divide="ignore", invalid="ignore"):  # a diverged copy's inf and NaN, as Keras has them
            running = self.total / self.count
        for i in np.flatnonzero(self.alive):
            if self.curves[i].step_end(step, float(running[i])):
                self.alive[i] = False  # diverged: the job ends after this step

    def running(self, which: np.ndarray) -> np.ndarray:
        """The running mean loss this epoch of the copies `which` (a mask or indices), as Keras has it."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.asarray(self.total[which] / self.count[which])

    def end_epoch(self, train_s: float, test_s: float, fit_s: float, test_loss: np.ndarray,
                  test_accuracy: np.ndarray) -> None:
        """Group times: each copy of the epoch gets its share (the group's time / N)."""
        n = len(self.curves)
        for i in np.flatnonzero(self.in_epoch):
            metrics = {"train_loss": self.total[i] / self.count[i], "train_accuracy": self.correct[i] / self.count[i],
                       "test_loss": test_loss[i], "test_accuracy": test_accuracy[i]}
            self.curves[i].end_epoch(metrics, train_s / n, test_s / n, fit_s / n)


def train(make_model: Callable[[], keras.Model], forward: Forward, train_data: fit.Data, test_data: fit.Data, *,
          optimizers: Sequence[dict[str, Any]], batch_size: int, epochs: int, seed: int,
          input_shape: Sequence[int], job_dirs: Sequence[Path] | None = None,
          logging: dict[str, Any] | None = None, progress: str | None = None) -> list[Outcome]:
    """`fit.train` of the classifier `make_model()` (uint8 images shaped `input_shape`, integer
    labels, cross-entropy and accuracy: the course's tasks) for each of `optimizers`, as one
    computation: the same batches
    in the same order, each weight's copies one [N, ...] variable, `forward` computing every copy's
    logits at once, one optimizer step for all (`optimizer_for`), the copies' records kept as
    fit.py's Recorder keeps one job's. Each outcome is the one `fit.train` gives alone, within float
    tolerance (tests/test_fused.py); `train_time_s` and the epoch times are the group's / N.

    A hand-written loop rather than Keras `fit`: `fit` keeps one loss and one set of metrics per
    model, and a copy that diverges must stop counting while the others go on.

    With `job_dirs` (one per copy) each copy's state is saved at every epoch end in its job's
    directory as a lone job's, and a group whose copies saved state continues from it
    (sweeper/training/fused_state.py); with `logging.tensorboard`, each copy gets Keras' per-epoch
    TensorBoard scalars there (sweeper/training/tensorboard.py).
    """
    import_keras()  # TensorFlow and Keras started quietly; imported by name for their types
    import keras
    import tensorflow as tf
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)  # as fit.train: the same first weights, the same batches
    lone = make_model()
    n = len(optimizers)
    # One [N, size] variable per weight of the model: all of rank 2, so that one optimizer with
    # [N, 1] hyperparameters updates them all; the forward pass sees them [N, *shape] (a reshape
    # copies nothing, where slicing one [N, P] variable would copy every weight every step).
    shapes = [w.shape for w in lone.get_weights()]
    weights = [tf.Variable(np.stack([w.ravel()] * n), name=f"copies_{i}") for i, w in enumerate(lone.get_weights())]
    updating = updaters(optimizers, weights)
    states = CopyStates(make_model, optimizers, job_dirs, weights, updating) if job_dirs else None
    done, saved = states.restore() if states else (0, None)
    scalars = None
    if job_dirs and (logging or {}).get("tensorboard", False):
        scalars = EpochScalars(job_dirs, [float(o[LEARNING_RATE]) for o in optimizers])

    def outputs(x: tf.Tensor, training: bool) -> tf.Tensor:  # [N, B, C]: every copy's logits
        step_seed = None
        if training:  # the step's draws: the job's seed and the step (the iteration count the state saves)
            step_seed = tf.stack([tf.constant(seed, tf.int64), tf.cast(updating[0][0].iterations, tf.int64)])
        return forward([tf.reshape(w, [n, *shape]) for w, shape in zip(weights, shapes)], x, training, step_seed)

    def scores(logits: tf.Tensor, y: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Each copy's mean loss and correct count: Keras' sparse cross-entropy from the logits (what
        Keras uses for a softmax output) and its accuracy, from the softmax's argmax."""
        labels = tf.broadcast_to(tf.cast(y, tf.int64), tf.shape(logits)[:2])
        loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True), axis=1)
        hits = tf.equal(tf.argmax(tf.nn.softmax(logits), axis=-1), labels)
        return loss, tf.reduce_sum(tf.cast(hits, tf.float32), axis=1)

    # The optimizer step alone under XLA, which fuses Keras' elementwise update (Adam: about ten
    # passes over every weight of N copies) into one loop: 4x faster here. Not the whole step (as
    # Keras' `fit` does for these models): on this CPU XLA's grouped convolution was 5x slower.
    compiled = {id(optimizer): tf.function(optimizer.apply, jit_compile=True) for optimizer, _ in updating}

    @tf.function
    def train_step(x: tf.Tensor, y: tf.Tensor, alive: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        with tf.GradientTape() as tape:
            loss, correct = scores(outputs(x, True), y)
            total = tf.reduce_sum(tf.where(alive, loss, 0.0))  # a dead copy adds nothing
        gradients = dict(zip(map(id, weights), tape.gradient(total, weights)))
        for optimizer, variables in updating:
            masked_apply(optimizer, [gradients[id(v)] for v in variables], variables, alive,
                         compiled[id(optimizer)])
        return loss, correct

    @tf.function
    def test_step(x: tf.Tensor, y: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return scores(outputs(x, False), y)

    train_count, test_count = fit.examples(train_data), fit.examples(test_data)
    steps = math.ceil(train_count / batch_size)
    prepare = fit.images(input_shape)
    batches = iter(fit.dataset(train_data, batch_size=batch_size, prepare=prepare, shuffle_seed=seed,
                               skip_batches=done * steps))
    test_batches = fit.dataset(test_data, batch_size=fit.TEST_BATCH,
                               prepare=prepare).take(math.ceil(test_count / fit.TEST_BATCH))
    copies = _Copies(n, steps, batch_size, train_count, saved)
    shown = progress_line.callback(progress, batch_size, train_count)  # one line for the group, driven here
    shown.set_params({"epochs": epochs, "steps": steps})
    shown.on_train_begin()
    start = time.perf_counter()
    for epoch in range(done, epochs):
        if not copies.alive.any():
            break
        copies.begin_epoch(epoch)
        shown.on_epoch_begin(epoch)
        epoch_start = time.perf_counter()
        for step in range(1, steps + 1):
            x, y = next(batches)
            loss, correct = train_step(x, y, tf.constant(copies.alive))
            live = copies.alive.copy()  # the copies that trained this step
            copies.batch_end(step, int(y.shape[0]), loss.numpy(), correct.numpy())
            shown.on_train_batch_end(step - 1, {"loss": copies.running(live)})
            if not copies.alive.any():
                break
        train_s = time.perf_counter() - epoch_start
        shown.on_test_begin()
        test_loss, test_accuracy = _evaluate(test_step, test_batches, n)
        shown.on_test_end()
        copies.end_epoch(train_s, time.perf_counter() - epoch_start - train_s, time.perf_counter() - start,
                         test_loss, test_accuracy)
        trained = np.flatnonzero(copies.in_epoch)
        shown.on_epoch_end(epoch, {"loss": copies.running(trained), "val_accuracy": test_accuracy[trained]})
        if scalars:  # before the state, as Keras' callbacks are ordered for a lone job (fit.job_callbacks)
            scalars.write(epoch, trained, copies.counters, int(updating[0][0].iterations.numpy()))
        if states:
            states.save(epoch + 1, trained, copies.counters)
    shown.on_train_end()
    if scalars:
        scalars.close()
    elapsed = time.perf_counter() - start
    params = lone.count_params()
    outcomes = [fit.outcome(curves.counters, params, curves.fit_time(elapsed / n), train_count, test_count)
                for curves in copies.curves]
    for outcome in outcomes:
        outcome.fused = n
    return outcomes


def _evaluate(test_step: Callable[[tf.Tensor, tf.Tensor], tuple[tf.Tensor, tf.Tensor]], test_data: Any, copies: int) -> tuple[np.ndarray, np.ndarray]:
    """Each copy's test loss and accuracy: Keras' running means over the batches, in float32."""
    total, hits, count = np.zeros(copies, np.float32), np.zeros(copies, np.float32), np.float32(0)
    for x, y in test_data:
        loss, correct = test_step(x, y)
        total = total + (loss.numpy() * np.float32(y.shape[0])).astype(np.float32)
        hits = hits + correct.numpy()
        count = np.float32(count + np.float32(y.shape[0]))
    return total / count, hits / count
