"""The building blocks of fused training: N copies of one model, each with its own weights and its
own optimizer hyperparameters, trained as one computation on the same batches (horizontal fusion).

The copies' weights are one variable with a leading copy axis, `[N, ...]`. The optimizer is the
jobs' own Keras optimizer (SGD, Adagrad, Adam: one family per group), with each hyperparameter
(`learning_rate`, `momentum`, `beta_1`, `beta_2`, `epsilon`) replaced by an `[N, 1, ...]` tensor that
broadcasts against that variable. So Keras' own `update_step` does each copy's update, and no
optimizer math is written here; tests/test_fused.py checks it against lone Keras optimizers.

A copy whose loss stops being finite is dead from then on: `masked_apply` keeps its weights as
they were, so it cannot spoil the others (whose slices of every tensor are apart from its own).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

import hydra.utils

from sweeper.training.tf import import_tensorflow

if TYPE_CHECKING:
    import keras
    import tensorflow as tf

# The optimizer config's keys that may differ between the copies of a group.
HYPERPARAMETERS = ("learning_rate", "momentum", "beta_1", "beta_2", "epsilon")


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
        import numpy as np

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

    def __tf_tensor__(self, dtype=None, name=None) -> tf.Tensor:
        tf = import_tensorflow()
        return tf.convert_to_tensor(self.value, dtype=dtype, name=name)


def optimizer_for(optimizers: Sequence[dict[str, Any]], variable: tf.Variable) -> keras.optimizers.Optimizer:
    """One Keras optimizer of the group's family that updates each copy of `variable` (leading axis:
    the copy) with that copy's hyperparameters. `optimizers`: the jobs' optimizer configs, in copy
    order, all of one `_target_`."""
    targets = {o["_target_"] for o in optimizers}
    if len(targets) != 1:
        raise ValueError(f"one optimizer family per fused group, not {sorted(targets)}")
    first = {k: v for k, v in optimizers[0].items() if k != "name"}
    momentums = [float(o.get("momentum", 0.0)) for o in optimizers]
    if any(momentums):
        first["momentum"] = 0.5  # non-zero when built: SGD then keeps momentum slots
    optimizer = hydra.utils.instantiate(first)
    optimizer.build([variable])
    rank = len(variable.shape)
    # [N, 1, ...]: broadcast by Keras' own arithmetic. Epsilon full-shaped: Keras' `ops.add(x, eps)`
    # takes an [N, 1, ...] tensor whose N equals a dimension of x for a bias, and adds it along the
    # wrong axis (keras 3.15).
    copies = [len(optimizers)] + [1] * (rank - 1)
    rate = Hyperparameter(copies, "learning_rate").assign([float(o["learning_rate"]) for o in optimizers])
    optimizer.learning_rate = lambda: rate.value  # a callable: Keras' update_step gets it as learning_rate
    if any(momentums):
        optimizer.momentum = Hyperparameter(copies, "momentum").assign(momentums)
    for name in ("beta_1", "beta_2", "epsilon"):
        if name in optimizers[0]:
            shape = variable.shape if name == "epsilon" else copies
            setattr(optimizer, name, Hyperparameter(shape, name).assign([float(o[name]) for o in optimizers]))
    return optimizer


def masked_apply(optimizer: keras.optimizers.Optimizer, gradient: tf.Tensor, variable: tf.Variable,
                 alive: tf.Tensor) -> None:
    """One optimizer step on every copy; the copies not `alive` ([N] bool) keep their weights."""
    tf = import_tensorflow()
    before = tf.identity(variable)
    optimizer.apply([gradient], [variable])
    keep = tf.reshape(alive, [-1] + [1] * (len(variable.shape) - 1))
    variable.assign(tf.where(keep, variable, before))


def stacked(weights: Sequence[Any], copies: int) -> Any:
    """A lone model's weights repeated for every copy: `[copies, *shape]`."""
    import numpy as np

    return np.stack([np.asarray(weights)] * copies)
