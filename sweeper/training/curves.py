"""A Keras job's record curves and counters, kept one way for a lone job (fit.py's Keras callback)
and for each copy of a fused group (fused_loop.py), so that both records come from the same
arithmetic. Training code gives it the loss, metrics and times; it decides what is kept.

loss: the mean training loss over each stretch of `every` steps, from Keras' running mean (reset
every epoch), at the steps in loss_steps (1-based, counted across epochs). A non-finite running
loss ends the job after that step (it is then `diverged`).
epoch_time_s: training alone; the test evaluation inside each epoch is timed apart (test_time_s).
fit_time_s: the time in training up to the last finished epoch, over every attempt.
Per epoch: the training loss and each of the task's metrics (`train_loss`, `train_<metric>`), then
the test set's (`test_loss`, `test_<metric>`), named after Keras' logs (`epoch_curves`): the
course's tasks, compiled with metrics=["accuracy"], keep train_loss, train_accuracy, test_loss,
test_accuracy.
"""
from __future__ import annotations

import math
from typing import Any, Mapping

LOSS_POINTS_PER_EPOCH = 100   # history["loss"]: about this many points per epoch

_STEP_CURVES = ("loss", "loss_steps")
_TIME_CURVE = "epoch_time_s"


def fresh_counters() -> dict[str, Any]:
    """The counters of a job that has trained nothing yet (its epoch curves come with its first epoch)."""
    return {**{name: [] for name in (*_STEP_CURVES, _TIME_CURVE)}, "test_time_s": 0.0, "samples_seen": 0,
            "fit_time_s": 0.0}


def epoch_values(logs: Mapping[str, Any]) -> dict[str, float]:
    """An epoch's curve values from Keras' logs at its end: `loss`, `mae` -> train_loss, train_mae;
    `val_loss`, `val_mae` -> test_loss, test_mae (the test set is Keras' validation data)."""
    return {(f"test_{key[4:]}" if key.startswith("val_") else f"train_{key}"): float(value)
            for key, value in logs.items()}


def epoch_curves(counters: Mapping[str, Any]) -> list[str]:
    """The names of the per-epoch curves in a job's counters, in the order they were first kept."""
    return [name for name, value in counters.items()
            if isinstance(value, list) and name not in (*_STEP_CURVES, _TIME_CURVE)]


def history_of(counters: Mapping[str, Any]) -> dict[str, list[float]]:
    """The record's curves from a job's counters: the loss points and their steps, each epoch curve, the epoch times."""
    history = {name: [float(v) for v in counters[name]]
               for name in (*_STEP_CURVES, *epoch_curves(counters), _TIME_CURVE)}
    history["loss_steps"] = [int(v) for v in history["loss_steps"]]
    return history


class Curves:
    """One job's `counters` (what its saved state holds, and its outcome's history), updated step
    by step and epoch by epoch."""

    def __init__(self, steps_per_epoch: int, batch_size: int, samples: int, saved: dict[str, Any] | None = None):
        """`saved`: the counters from the job's saved state (None: a fresh start)."""
        self.steps, self.batch_size, self.samples = steps_per_epoch, batch_size, samples
        self.every = max(1, steps_per_epoch // LOSS_POINTS_PER_EPOCH)
        self.counters: dict[str, Any] = saved or fresh_counters()
        self.before = float(self.counters["fit_time_s"])  # the earlier attempts' (read once: counters change)

    def fit_time(self, attempt_s: float) -> float:
        """The job's training time so far: the earlier attempts' (each up to its last saved epoch)
        and `attempt_s`, this attempt's."""
        return self.before + attempt_s

    def begin_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.mark = (0, 0.0)  # (samples so far this epoch, their summed loss) at the last point

    def step_end(self, step: int, running_loss: float) -> bool:
        """After training step `step` (1-based in the epoch), with Keras' running mean of the
        epoch's loss: keep a loss point where one falls. Returns whether the job stops here
        (a non-finite loss)."""
        stopped = not math.isfinite(running_loss)
        seen = min(step * self.batch_size, self.samples)  # the last batch of an epoch may be short
        if step % self.every and step != self.steps and not stopped:
            return stopped
        total = running_loss * seen  # Keras' loss is the running mean, weighted by batch size
        self.counters["loss"].append((total - self.mark[1]) / (seen - self.mark[0]))
        self.counters["loss_steps"].append(self.epoch * self.steps + step)
        self.mark = (seen, total)
        self.counters["samples_seen"] = self.epoch * self.samples + seen
        return stopped

    def end_epoch(self, metrics: Mapping[str, float], train_s: float, test_s: float, fit_s: float) -> None:
        """`metrics`: the epoch's value of each curve (epoch_values); `train_s`, `test_s`: the epoch's
        training and test times; `fit_s`: this attempt's time in training so far."""
        self.counters["epoch_time_s"].append(train_s)
        for name, value in metrics.items():
            self.counters.setdefault(name, []).append(float(value))
        self.counters["test_time_s"] += test_s
        self.counters["fit_time_s"] = self.fit_time(fit_s)
