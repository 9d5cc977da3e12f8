"""A job's line, its label and its objective: how a job shows on the terminal and what it returns
to its sweeper. Used by `execute`, the launchers and both sweepers."""
from __future__ import annotations

import math
from typing import Any, Sequence

from sweeper.job.planned import PRESET_GROUPS
from sweeper.job.record import Record
from sweeper.status import Status
from sweeper.words import number


# Overrides a job's line leaves out: not what the job is (its fingerprint leaves them out too), and
# the same on every line of a sweep: where the data are read from, where logs go.
NOT_SHOWN = ("data.dir", "task.run.data.dir", "logging.", "task.run.logging.")


def _shown(override: str) -> str:
    """`lr=0.01567667719550607` (a search's value) as `lr=0.01568`; a value that 4 significant
    digits keep as it is (`lr=0.1`, `epsilon=1e-9`, `lr=5.0`) is left as written; a boolean as YAML
    writes it (Hydra writes a job's `false` back as `False`)."""
    key, sep, value = override.partition("=")
    if value in ("True", "False"):
        return f"{key}{sep}{value.lower()}"
    try:
        parsed = float(value)
    except ValueError:
        return override
    short = number(parsed)
    return f"{key}{sep}{short}" if math.isfinite(parsed) and float(short) != parsed else override


def label(overrides: Sequence[str]) -> str:
    """A job's overrides as its line shows them: less the preset's (`experiment=ex1_adam`), which
    every job of the sweep shares, and NOT_SHOWN, with numbers at 4 significant digits (the record
    and the job's overrides keep them whole)."""
    keys = [o.split("=", 1)[0].lstrip("+~") for o in overrides]
    return " ".join(_shown(o) for o, key in zip(overrides, keys) if key not in PRESET_GROUPS and not key.startswith(NOT_SHOWN))


def group_label(overrides: Sequence[Sequence[str]], width: int = 60) -> str:
    """A fused group's name, from its jobs' overrides: what they share as `label` shows it, then
    each job's own in brackets, `task=softmax [2 fused: lr=0.5 | lr=0.1]`; past `width` characters
    the first job's and the last's only, `[64 fused: lr=0.1 | ... | lr=0.001]`."""
    shown = [label(o).split(" ") if label(o) else [] for o in overrides]
    shared = [o for o in shown[0] if all(o in others for others in shown[1:])] if shown else []
    own = [" ".join(o for o in job if o not in shared) for job in shown]
    copies = " | ".join(own)
    if len(copies) > width and len(own) > 2:
        copies = f"{own[0]} | ... | {own[-1]}"
    return " ".join([*shared, f"[{len(own)} fused: {copies}]"])


def job_line(record: Record, every_metric: bool) -> str:
    """`<overrides> -> <status> <metric> (<seconds>)`: one line per job (a sweep puts `[k/N] ` in front)."""
    if record.status in (Status.FAILED, Status.INTERRUPTED):
        detail = record.error or ""
    elif every_metric:
        detail = " ".join(f"{k}={number(v)}" for k, v in record.metrics.items())
    else:
        detail = f"{record.objective}={number(record.metrics.get(record.objective))}" \
            if record.objective is not None and record.objective in record.metrics else f"{record.objective}=none"
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
