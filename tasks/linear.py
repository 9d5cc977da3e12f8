"""Exercise 1: fit y = W x + b to four points by full-batch gradient descent.

The whole loop runs in one tf.function, traced once per optimizer and reused by every job of an
in-process sweep: the hyperparameters live in variables, not in the trace.
"""
from __future__ import annotations

import functools
import time
from pathlib import Path
from typing import Any

import hydra.utils

from sweeper.job import trial
from sweeper.job.outcome import Outcome
from sweeper.training.tf import import_tensorflow

tf = import_tensorflow()

X = [1.0, 2.0, 3.0, 4.0]
Y = [0.0, -1.0, -2.0, -3.0]
W0, B0 = 0.3, -0.3
STRETCHES = 10  # a search's trial hears the loss this many times (pruning); else one call trains all


class _NonZero:
    """SGD's momentum held in a variable. Keras asks `momentum != 0` in Python, inside the trace;
    the SGD cached here was built with momentum slots, so the answer is always yes."""

    def __init__(self, variable: tf.Variable):
        self.variable = variable

    def __ne__(self, other: object) -> bool:
        return True

    def __tf_tensor__(self, dtype=None, name=None) -> tf.Tensor:
        return tf.convert_to_tensor(self.variable, dtype=dtype, name=name)


@functools.cache
def _params() -> tuple[tf.Variable, tf.Variable]:
    return tf.Variable(W0, name="W"), tf.Variable(B0, name="b")


def _loss(w: tf.Variable, b: tf.Variable) -> tf.Tensor:
    return tf.reduce_sum(tf.square(w * tf.constant(X) + b - tf.constant(Y)))


_trainers: dict[tuple[str, tuple[str, ...]], tuple] = {}


def _trainer(optimizer_target: str, hyper_names: tuple[str, ...]):
    """One optimizer and one compiled training loop per optimizer type, for the whole process."""
    key = (optimizer_target, hyper_names)
    if key not in _trainers:
        _trainers[key] = _build_trainer(optimizer_target, hyper_names)
    return _trainers[key]


def _build_trainer(optimizer_target: str, hyper_names: tuple[str, ...]):
    w, b = _params()
    # Non-zero at build time: SGD then keeps momentum slots.
    optimizer = hydra.utils.instantiate({"_target_": optimizer_target, **{name: 0.5 for name in hyper_names}})
    optimizer.build([w, b])
    hypers = {name: tf.Variable(0.5, trainable=False, name=name) for name in hyper_names}
    for name, variable in hypers.items():
        setattr(optimizer, name, _NonZero(variable) if name == "momentum" else variable)
    initial_state = [v.numpy() for v in optimizer.variables]

    @tf.function
    def train(steps: tf.Tensor) -> tf.Tensor:
        losses = tf.TensorArray(tf.float32, size=0, dynamic_size=True)
        for step in tf.range(steps):
            with tf.GradientTape() as tape:
                loss = _loss(w, b)
            if not tf.math.is_finite(loss):
                break  # diverged: the curve keeps every finite loss before this step
            losses = losses.write(step, loss)
            optimizer.apply_gradients(zip(tape.gradient(loss, [w, b]), [w, b]))
        return losses.stack()

    return optimizer, hypers, initial_state, train


def traces(optimizer_target: str) -> int:
    """How often this process traced the training loop of this optimizer type (once is the aim)."""
    return sum(train.experimental_get_tracing_count()
               for (target, _), (*_, train) in _trainers.items() if target == optimizer_target)


def _train_reporting(train, steps: int, w: tf.Variable, b: tf.Variable) -> list[float]:
    """Train `steps` steps; under a search's trial, in stretches, reporting the loss after each
    (the same steps: the loop's state lives in the variables) and stopping where the pruner says."""
    reporter = trial.current()
    if reporter is None:
        return list(train(tf.constant(steps)).numpy())
    curve: list[float] = []
    stretch = max(1, -(-steps // STRETCHES))
    while len(curve) < steps:
        want = min(stretch, steps - len(curve))
        part = train(tf.constant(want)).numpy()
        curve += list(part)
        loss = {"final_loss": float(_loss(w, b))}
        if len(part) < want or reporter.report(loss, len(curve), last=len(curve) == steps):
            break  # diverged inside the stretch, or pruned
    return curve


def run(*, optimizer: dict[str, Any], steps: int, job_dir: Path | None = None) -> Outcome:
    """Train from W = 0.3, b = -0.3 for `steps` full-batch steps; the loss is the sum of squares."""
    settings = {k: v for k, v in optimizer.items() if k not in ("_target_", "name", "learning_rate")}
    keras_optimizer, hypers, initial_state, train = _trainer(optimizer["_target_"], tuple(sorted(settings)))
    for variable, value in zip(keras_optimizer.variables, initial_state):
        variable.assign(value)
    keras_optimizer.learning_rate = optimizer["learning_rate"]
    for name, value in settings.items():
        hypers[name].assign(value)
    w, b = _params()
    w.assign(W0)
    b.assign(B0)

    start = time.perf_counter()
    curve = _train_reporting(train, steps, w, b)
    final_loss = float(_loss(w, b))
    elapsed = time.perf_counter() - start

    finite = bool(tf.math.is_finite(final_loss)) and len(curve) == steps
    status = trial.status_of("ok" if finite else "diverged", trial.current())  # pruned: stopped early
    return Outcome(
        status=status,
        metrics={"final_loss": final_loss, "W": float(w.numpy()), "b": float(b.numpy())},
        history={"loss": [float(v) for v in curve]},
        train_time_s=elapsed,
    )
