"""A running MNIST job's progress, so that a long epoch (a CNN's, on a CPU: minutes) does not pass
with nothing moving.

On a terminal (standard output a TTY) the job shows one line updated in place: its name, the
epoch, the step of the epoch's steps, the running loss, images per second and the time left; the
next line the job prints (its `[k/N]` line, a warning) replaces it. Where standard output is not a
terminal (a log file, a pipe, a Slurm job's output) it prints one line per epoch instead, with the
epoch's loss, test accuracy, images per second and time. The per-epoch lines go to the job's
`run.log` in either case (sweeper/job_log.py); the in-place line to the terminal only.

`callback` is a Keras callback: `fit.train` gives it to Keras' `fit` (Keras' own progress bar is
off: one way to show progress), and the fused loop (fused_loop.py) calls its hooks itself, one line
for the group with each value over its live copies (`0.31 to 0.45`: the lowest to the highest).

The line's name is the job's label (its overrides, as its `[k/N]` line shows them) or its fused
group's (sweeper/job/display.py's `group_label`), passed by whoever runs it to the task as its
`progress` argument (sweeper/job/execute.py, fused_groups.py); a job without one (a task called
directly, a worker of a multi-worker job other than the first) shows none.
"""
from __future__ import annotations

import math
import shutil
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from sweeper.job_log import clear_in_place, echo, in_place, on_terminal
from sweeper.training.tf import import_keras
from sweeper.words import number

if TYPE_CHECKING:
    import keras

REFRESH_S = 0.25    # the in-place line is redrawn at most this often

def values(value: Any) -> str:
    """A loss or an accuracy as the line shows it: one number, or for a fused group's live copies
    the lowest to the highest (`0.31 to 0.45`); `-` where there is none."""
    array = np.asarray(value, dtype=np.float64).ravel()
    if array.size == 0:
        return "-"
    finite = array[np.isfinite(array)]
    low = float(np.min(finite)) if finite.size else math.inf
    high = float(np.max(finite)) if finite.size == array.size else math.inf  # a copy diverged: say so
    return number(low) if number(low) == number(high) else f"{number(low)} to {number(high)}"


def duration(seconds: float) -> str:
    """`0:07`, `12:30`, `1:02:03`: minutes and seconds, hours when there are any."""
    whole = max(0, int(round(seconds)))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def shortened(prefix: str, room_after: int) -> str:
    """`prefix` (the name and `: `), cut short with `...` where the terminal's width would otherwise
    cut the numbers after it (`room_after` characters)."""
    room = shutil.get_terminal_size().columns - 1 - room_after
    if len(prefix) <= room:
        return prefix
    return f"{prefix[:max(room - 5, 0)]}...: " if room >= 10 else ""


class ProgressLine:
    """The line's arithmetic and where it goes, apart from Keras (tests drive it directly)."""

    def __init__(self, name: str | None, batch_size: int, samples: int, terminal: bool):
        self.prefix = f"{name}: " if name else ""
        self.batch_size, self.samples, self.terminal = batch_size, samples, terminal

    def begin(self, epochs: int, steps: int, now: float) -> None:
        self.epochs, self.steps = epochs, steps
        self.start, self.trained, self.shown = now, 0, -math.inf

    def begin_epoch(self, epoch: int, now: float) -> None:
        self.epoch, self.epoch_start, self.step = epoch, now, 0

    def _left(self, now: float) -> float:
        """This run's time per step so far (test evaluations included) times the steps to go."""
        to_go = (self.epochs - self.epoch - 1) * self.steps + self.steps - self.step
        return (now - self.start) / max(self.trained, 1) * to_go

    def _rate(self, now: float) -> str:
        seen = min(self.step * self.batch_size, self.samples)
        return f"{seen / max(now - self.epoch_start, 1e-9):.0f} images/s"

    def step_end(self, step: int, loss: Any, now: float) -> None:
        """After step `step` (1-based in the epoch), with the running loss (a fused group's: each
        live copy's): on a terminal, redraw the line (at most every REFRESH_S)."""
        self.trained += step - self.step
        self.step = step
        if self.terminal and (now - self.shown >= REFRESH_S or step == self.steps):
            self.shown = now
            numbers = (f"epoch {self.epoch + 1}/{self.epochs} step {step}/{self.steps} loss {values(loss)}, "
                       f"{self._rate(now)}, {duration(self._left(now))} left")
            in_place(shortened(self.prefix, len(numbers)) + numbers)

    def end_epoch(self, loss: Any, accuracy: Any, train_s: float, now: float, metric: str = "accuracy") -> None:
        """The epoch's line, with its training loss and test accuracy (or the task's first `metric`)
        and `train_s`, its training time (test evaluation apart): printed and logged off a terminal,
        logged only on one."""
        seen = min(self.step * self.batch_size, self.samples)
        left = f", {duration(self._left(now))} left" if self.epoch + 1 < self.epochs else ""
        line = (f"{self.prefix}epoch {self.epoch + 1}/{self.epochs}: loss {values(loss)}, test {metric} "
                f"{values(accuracy)}, {seen / max(train_s, 1e-9):.0f} images/s, {now - self.epoch_start:.2f} s"
                f"{left}")
        echo(line, terminal=not self.terminal)

    def end(self) -> None:
        if self.terminal:
            clear_in_place()


def progress(name: str | None, batch_size: int, samples: int) -> ProgressLine | None:
    """The progress of the job (or fused group) `name`; None where its runner asked for none."""
    return ProgressLine(name, batch_size, samples, on_terminal()) if name is not None else None


def callback(name: str | None, batch_size: int, samples: int) -> keras.callbacks.Callback:
    """The progress line as a Keras callback: for Keras' `fit` (`params`: its epochs and steps), or
    driven by hand with the same hooks and logs (the fused loop: `set_params` first; each log value
    may hold every live copy's)."""
    import_keras()
    import keras  # started quietly above; imported by name for its types

    shown = progress(name, batch_size, samples)

    class ProgressCallback(keras.callbacks.Callback):
        def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
            if shown is not None:
                shown.begin(int(self.params["epochs"]), int(self.params["steps"]), time.perf_counter())

        def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            self.epoch_start = time.perf_counter()
            self.test_s = 0.0
            if shown is not None:
                shown.begin_epoch(epoch, self.epoch_start)

        def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
            if shown is not None:
                shown.step_end(batch + 1, (logs or {}).get("loss", []), time.perf_counter())

        def on_test_begin(self, logs: dict[str, Any] | None = None) -> None:
            self.test_start = time.perf_counter()

        def on_test_end(self, logs: dict[str, Any] | None = None) -> None:
            self.test_s += time.perf_counter() - self.test_start

        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            if shown is not None:
                now = time.perf_counter()
                logs = logs or {}
                tested = [key for key in logs if key.startswith("val_") and key != "val_loss"] or ["val_loss"]
                shown.end_epoch(logs.get("loss", []), logs[tested[0]] if tested[0] in logs else [],
                                now - self.epoch_start - self.test_s, now, metric=tested[0][4:])

        def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
            if shown is not None:
                shown.end()

    return ProgressCallback()
