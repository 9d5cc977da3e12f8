"""A job's line, its label and its objective: how a job shows on the terminal and what it returns
to its sweeper. Used by `execute`, the launchers and both sweepers."""
from __future__ import annotations

import math
from typing import Any, Sequence

from sweeper.job.planned import PRESET_GROUPS
from sweeper.job.record import Record
from sweeper.job.status import Status


def _format(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def label(overrides: Sequence[str]) -> str:
    """A job's overrides as its line shows them: less the preset's (`experiment=ex1_adam`), which
    every job of the sweep shares."""
    return " ".join(o for o in overrides if o.split("=", 1)[0].lstrip("+~") not in PRESET_GROUPS)


def job_line(record: Record, every_metric: bool) -> str:
    """`<overrides> -> <status> <metric> (<seconds>)`: one line per job (a sweep puts `[k/N] ` in front)."""
    if record.status in (Status.FAILED, Status.INTERRUPTED):
        detail = record.error or ""
    elif every_metric:
        detail = " ".join(f"{k}={_format(v)}" for k, v in record.metrics.items())
    else:
        value = record.metrics.get(record.objective) if record.objective is not None else None
        detail = f"{record.objective}={_format(value)}"
    seconds = ""
    if record.train_time_s is not None and record.attempts > 1:  # more than this command's time
        seconds = f" (training {record.train_time_s:.2f} s over {record.attempts} attempts)"
    elif record.train_time_s is not None:
        seconds = f" ({record.train_time_s:.2f} s)"
    setting = label(record.overrides) or f"task={record.task} optimizer={record.optimizer}"
    return f"{setting} -> {record.status} {detail}{seconds}"


def objective(record: Record | None) -> float:
    """What the job returns to its sweeper: the objective, NaN when there is none."""
    value = record.metrics.get(record.objective) if record and record.objective is not None else None
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else math.nan
