"""Exercise 1: fit y = W x + b to four points by full-batch gradient descent.

The whole loop runs in one tf.function, traced once per optimizer and reused by every job of an
in-process sweep: the hyperparameters live in variables, not in the trace.
"""
from __future__ import annotations

import functools
import time
from pathlib import Path
from typing import Any, Callable

import hydra.utils
import numpy as np

from sweeper.outcome import Outcome
from sweeper.status import Status
from sweeper.trial import Reporter, status_of
from sweeper.training import fused_loop
from sweeper.training.fused_loop import Hyperparameter
from sweeper.training.fused_state import LEARNING_RATE
from sweeper.training.tf import import_tensorflow

import_tensorflow()  # started quietly: the import below finds it
import tensorflow as tf

X = [1.0, 2.0, 3.0, 4.0]
Y = [0.0, -1.0, -2.0, -3.0]
W0, B0 = 0.3, -0.3
STRETCHES = 10  # a search's trial hears the loss this many times (pruning); else one call trains all


@functools.cache
def _params() -> tuple[tf.Variable, tf.Variable]:
    return tf.Variable(W0, name="W"), tf.Variable(B0, name="b")


def _loss(w: tf.Variable, b: tf.Variable) -> tf.Tensor:
    return tf.reduce_sum(tf.square(w * tf.constant(X) + b - tf.constant(Y)))


# a Keras optimizer, its hyperparameters held in variables, its initial state, the loop (a tf.function: steps -> losses)
_Trainer = tuple[Any, dict[str, Hyperparameter], list[np.ndarray], Any]
_trainers: dict[tuple[str, tuple[str, ...]], _Trainer] = {}


def _trainer(optimizer_target: str, hyper_names: tuple[str, ...]) -> _Trainer:
    """One optimizer and one compiled training loop per optimizer type, for the whole process."""
    key = (optimizer_target, hyper_names)
    if key not in _trainers:
        _trainers[key] = _build_trainer(optimizer_target, hyper_names)
    return _trainers[key]


def _build_trainer(optimizer_target: str, hyper_names: tuple[str, ...]) -> _Trainer:
    w, b = _params()
    # Non-zero at build time: SGD then keeps momentum slots.
    optimizer = hydra.utils.instantiate({"_target_": optimizer_target, **{name: 0.5 for name in hyper_names}})
    optimizer.build([w, b])
    # Held in variables, so that one trace serves every job (sweeper.training.fused_loop.Hyperparameter).
    hypers = {name: Hyperparameter([], name) for name in hyper_names}
    for name, hyper in hypers.items():
        setattr(optimizer, name, hyper)
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


def _train_reporting(train: Callable[[tf.Tensor], tf.Tensor], steps: int, w: tf.Variable, b: tf.Variable, reporter: Reporter | None) -> list[float]:
    """Train `steps` steps; under a search's trial, in stretches, reporting the loss after each
    (the same steps: the loop's state lives in the variables) and stopping where the pruner says."""
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


def run(*, optimizer: dict[str, Any], steps: int, job_dir: Path | None = None, trial: Reporter | None = None) -> Outcome:
    """Train from W = 0.3, b = -0.3 for `steps` full-batch steps; the loss is the sum of squares.
    `trial`: a search's trial, told the loss along the way (its pruner may stop the job)."""
    settings = {k: v for k, v in optimizer.items() if k not in ("_target_", "name", "learning_rate")}
    keras_optimizer, hypers, initial_state, train = _trainer(optimizer["_target_"], tuple(sorted(settings)))
    for variable, value in zip(keras_optimizer.variables, initial_state):
        variable.assign(value)
    keras_optimizer.learning_rate = optimizer[LEARNING_RATE]
    for name, value in settings.items():
        hypers[name].assign(value)
    w, b = _params()
    w.assign(W0)
    b.assign(B0)

    start = time.perf_counter()
    curve = _train_reporting(train, steps, w, b, trial)
    final_loss = float(_loss(w, b))
    elapsed = time.perf_counter() - start

    finite = bool(tf.math.is_finite(final_loss)) and len(curve) == steps
    status = status_of(Status.OK if finite else Status.DIVERGED, trial)  # pruned: stopped early
    return Outcome(
        status=status,
        metrics={"final_loss": final_loss, "W": float(w.numpy()), "b": float(b.numpy())},
        history={"loss": [float(v) for v in curve]},
        train_time_s=elapsed,
    )


def _fused_trainer(optimizers: list[dict[str, Any]]) -> tuple[tf.Variable, Callable[[], tf.Tensor], Callable[[tf.Tensor], tf.Tensor]]:
    """The group's loop: every copy's (W, b) in one [N, 2] variable, the per-copy losses one
    broadcast expression, one Keras optimizer with per-copy hyperparameters (sweeper.training.fused_loop)."""
    params = tf.Variable([[W0, B0]] * len(optimizers), name="W_b")
    optimizer = fused_loop.optimizer_for(optimizers, [params])

    def losses() -> tf.Tensor:  # [N]: each copy's sum of squares, the same expression as `_loss`
        w, b = params[:, :1], params[:, 1:]
        return tf.reduce_sum(tf.square(w * tf.constant(X) + b - tf.constant(Y)), axis=1)

    @tf.function
    def train(steps: tf.Tensor) -> tf.Tensor:
        curves = tf.TensorArray(tf.float32, size=steps)
        alive = tf.ones([len(optimizers)], tf.bool)
        for step in tf.range(steps):
            with tf.GradientTape() as tape:
                loss = losses()
                alive = tf.logical_and(alive, tf.math.is_finite(loss))  # a lone run stops here
                total = tf.reduce_sum(tf.where(alive, loss, 0.0))
            curves = curves.write(step, loss)
            if not tf.reduce_any(alive):
                break
            fused_loop.masked_apply(optimizer, [tape.gradient(total, params)], [params], alive)
        return curves.stack()

    return params, losses, train


def run_fused(*, optimizers: list[dict[str, Any]], steps: int, job_dirs: list[Path] | None = None) -> list[Outcome]:
    """`run` for each optimizer config (one family, other hyperparameters), trained as one loop;
    each outcome is the one `run` gives within float tolerance (tests/test_fused.py)."""
    params, losses, train = _fused_trainer(optimizers)
    start = time.perf_counter()
    curves = train(tf.constant(steps)).numpy()  # [steps run, N]
    final = losses().numpy()
    elapsed = time.perf_counter() - start
    outcomes = []
    for i, (w, b) in enumerate(params.numpy()):
        curve = [float(v) for v in curves[:_first_non_finite(curves[:, i]), i]]  # as a lone run stops
        ok = bool(np.isfinite(final[i])) and len(curve) == steps
        outcomes.append(Outcome(
            status=Status.OK if ok else Status.DIVERGED,
            metrics={"final_loss": float(final[i]), "W": float(w), "b": float(b)},
            history={"loss": curve},
            train_time_s=elapsed / len(optimizers),
            fused=len(optimizers),
        ))
    return outcomes


def _first_non_finite(curve: np.ndarray) -> int:
    bad = np.flatnonzero(~np.isfinite(curve))
    return int(bad[0]) if len(bad) else len(curve)
