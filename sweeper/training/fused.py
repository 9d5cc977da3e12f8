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


class _NonZero:
    """SGD's momentum as a per-copy tensor. Keras asks `momentum != 0` in Python to choose its
    momentum update; the group's SGD was built with momentum slots, so the answer is yes (a copy
    whose momentum is 0 then gets `m = -lr g; w += m`, which is plain gradient descent exactly)."""

    def __init__(self, value: tf.Tensor):
        self.value = value

    def __ne__(self, other: object) -> bool:
        return True

    def __tf_tensor__(self, dtype=None, name=None) -> tf.Tensor:
        tf = import_tensorflow()
        return tf.convert_to_tensor(self.value, dtype=dtype, name=name)


def per_copy(values: Sequence[float], rank: int) -> tf.Tensor:
    """`values` as an `[N, 1, ..., 1]` float32 constant that broadcasts against a rank-`rank` variable."""
    tf = import_tensorflow()
    return tf.reshape(tf.constant(values, tf.float32), [len(values)] + [1] * (rank - 1))


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
    tf = import_tensorflow()
    optimizer = hydra.utils.instantiate(first)
    optimizer.build([variable])
    rank = len(variable.shape)
    rates = per_copy([float(o["learning_rate"]) for o in optimizers], rank)
    optimizer.learning_rate = lambda: rates  # a callable: Keras' update_step gets it as learning_rate
    for name in HYPERPARAMETERS[1:]:
        if name == "momentum" and any(momentums):
            optimizer.momentum = _NonZero(per_copy(momentums, rank))
        elif name != "momentum" and name in optimizers[0]:
            values = per_copy([float(o[name]) for o in optimizers], rank)
            if name == "epsilon":
                # Full shape: Keras' `ops.add(x, epsilon)` takes an [N, 1, ...] tensor whose N equals
                # a dimension of x for a bias and adds it along the wrong axis (keras 3.15).
                values = tf.broadcast_to(values, variable.shape)
            setattr(optimizer, name, values)
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
