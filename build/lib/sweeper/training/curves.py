"""A Keras job's record curves and counters, kept one way for a lone job (fit.py's Keras callback)
and for each copy of a fused group (fused_loop.py), so that both records come from the same
arithmetic. Training code gives it the loss, metrics and times; it decides what is kept.

loss: the mean training loss over each stretch of `every` steps, from Keras' running mean (reset
every epoch), at the steps in loss_steps (1-based, counted across epochs). A non-finite running
loss ends the job after that step (it is then `diverged`).
epoch_time_s: training alone; the test evaluation inside each epoch is timed apart (test_time_s).
fit_time_s: the time in training up to the last finished epoch, over every attempt.
"""
from __future__ import annotations

import math
from typing import Any

LOSS_POINTS_PER_EPOCH = 100   # history["loss"]: about this many points per epoch

EPOCH_CURVES = ("train_loss", "train_accuracy", "test_loss", "test_accuracy")  # one value per epoch
CURVES = ("loss", "loss_steps", *EPOCH_CURVES, "epoch_time_s")


def fresh_counters() -> dict[str, Any]:
    """The counters of a job that has trained nothing yet."""
    return {**{name: [] for name in CURVES}, "test_time_s": 0.0, "samples_seen": 0, "fit_time_s": 0.0}


class Curves:
    """One job's `counters` (what its saved state holds, and its outcome's history), updated step
    by step and epoch by epoch."""

    def __init__(self, steps_per_epoch: int, batch_size: int, samples: int, saved: dict[str, Any] | None = None):
        """`saved`: the counters from the job's saved state (None: a fresh start)."""
        self.steps, self.batch_size, self.samples = steps_per_epoch, batch_size, samples
        self.every = max(1, steps_per_epoch // LOSS_POINTS_PER_EPOCH)
        self.counters: dict[str, Any] = saved or fresh_counters()
        self.before = self.counters["fit_time_s"]  # the earlier attempts' training

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

    def end_epoch(self, metrics: dict[str, float], train_s: float, test_s: float, fit_s: float) -> None:
        """`metrics`: the epoch's value of each of EPOCH_CURVES; `train_s`, `test_s`: the epoch's
        training and test times; `fit_s`: this attempt's time in training so far."""
        self.counters["epoch_time_s"].append(train_s)
        for name in EPOCH_CURVES:
            self.counters[name].append(float(metrics[name]))
        self.counters["test_time_s"] += test_s
        self.counters["fit_time_s"] = self.before + fit_s
