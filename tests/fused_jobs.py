"""What the fused tests share: optimizer configs as a job's `optimizer` node holds them, and the
comparison of a fused job's outcome with the same job's alone."""
from __future__ import annotations

import numpy as np

SGD, ADAGRAD, ADAM = "keras.optimizers.SGD", "keras.optimizers.Adagrad", "keras.optimizers.Adam"


def gd(lr: float) -> dict:
    return {"_target_": SGD, "name": "gd", "learning_rate": lr}


def momentum(lr: float, m: float) -> dict:
    return {"_target_": SGD, "name": "momentum", "learning_rate": lr, "momentum": m}


def adagrad(lr: float, eps: float = 1e-7) -> dict:
    return {"_target_": ADAGRAD, "name": "adagrad", "learning_rate": lr, "epsilon": eps}


def adam(lr: float, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-7) -> dict:
    return {"_target_": ADAM, "name": "adam", "learning_rate": lr, "beta_1": b1, "beta_2": b2, "epsilon": eps}


def assert_same_outcome(alone, together, rtol: float, skip=("epoch_time_s",)):
    assert together.status == alone.status
    for name, curve in alone.history.items():
        if name not in skip:
            assert len(together.history[name]) == len(curve), name  # the same diverged step
            np.testing.assert_allclose(together.history[name], curve, rtol=rtol, atol=1e-6, err_msg=name)
    for name, value in alone.metrics.items():
        if isinstance(value, (list, str)):
            assert together.metrics[name] == value, name
        elif name not in ("samples_per_s", "test_time_s"):
            np.testing.assert_allclose(together.metrics[name], value, rtol=rtol, atol=1e-6, err_msg=name)
