"""Exercise 1's task with real TensorFlow training."""
from __future__ import annotations

import math

import pytest

from sweeper.status import Status
from tasks import linear

SGD = "keras.optimizers.SGD"


def optimizer(target: str = SGD, **settings) -> dict:
    return {"_target_": target, "name": "test", "learning_rate": 0.01, **settings}


def test_gradient_descent_finds_the_exact_fit():
    outcome = linear.run(optimizer=optimizer(), steps=1000)
    assert outcome.status is Status.OK
    assert outcome.metrics["final_loss"] < 1e-9
    assert outcome.metrics["W"] == pytest.approx(-1, abs=1e-4)
    assert outcome.metrics["b"] == pytest.approx(1, abs=1e-4)
    curve = outcome.history["loss"]
    assert len(curve) == 1000
    assert curve[0] == pytest.approx(sum((0.3 * x - 0.3 - y) ** 2 for x, y in zip(linear.X, linear.Y)))
    assert curve[-1] < curve[0]


def test_too_large_a_step_diverges_and_keeps_its_curve():
    outcome = linear.run(optimizer=optimizer(learning_rate=0.1), steps=1000)
    assert outcome.status is Status.DIVERGED
    curve = outcome.history["loss"]
    assert 0 < len(curve) < 1000 and all(math.isfinite(v) for v in curve)
    assert curve[-1] > curve[0] * 1e6


@pytest.mark.parametrize(
    "target,settings",
    [(SGD, {"learning_rate": 0.01, "momentum": 0.9}),
     ("keras.optimizers.Adagrad", {"learning_rate": 0.1, "epsilon": 1e-7}),
     ("keras.optimizers.Adam", {"learning_rate": 0.1, "beta_1": 0.9, "beta_2": 0.99, "epsilon": 1e-8})],
)
def test_each_optimizer_reduces_the_loss(target, settings):
    outcome = linear.run(optimizer=optimizer(target, **settings), steps=200)
    assert outcome.status is Status.OK
    assert outcome.metrics["final_loss"] < outcome.history["loss"][0] / 10


def test_hyperparameters_change_results_without_retracing():
    adam = "keras.optimizers.Adam"
    first = linear.run(optimizer=optimizer(adam, learning_rate=0.1, beta_1=0.8, beta_2=0.99, epsilon=1e-7), steps=50)
    second = linear.run(optimizer=optimizer(adam, learning_rate=0.01, beta_1=0.95, beta_2=0.9, epsilon=1e-7), steps=50)
    again = linear.run(optimizer=optimizer(adam, learning_rate=0.1, beta_1=0.8, beta_2=0.99, epsilon=1e-7), steps=50)
    assert first.history["loss"] != second.history["loss"]
    assert again.history["loss"] == first.history["loss"]  # state is reset between jobs
    assert linear.traces(adam) == 1


def test_momentum_matches_the_textbook_update():
    # v <- m v - lr g; w <- w + v, by hand for two steps of the sum-of-squares loss
    lr, m = 0.01, 0.5
    w, b, vw, vb, expected = 0.3, -0.3, 0.0, 0.0, []
    for _ in range(3):
        residuals = [w * x + b - y for x, y in zip(linear.X, linear.Y)]
        expected.append(sum(r * r for r in residuals))
        gw, gb = sum(2 * r * x for r, x in zip(residuals, linear.X)), sum(2 * r for r in residuals)
        vw, vb = m * vw - lr * gw, m * vb - lr * gb
        w, b = w + vw, b + vb
    outcome = linear.run(optimizer=optimizer(learning_rate=lr, momentum=m), steps=3)
    assert outcome.history["loss"] == pytest.approx(expected, rel=1e-5)
