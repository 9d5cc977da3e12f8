"""What a report shows per group: the jobs of one task and one optimizer, and how numbers are written."""
from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from sweeper.status import Status
from sweeper.sweep.by_config import SEED, config_points, has_repeats, hparam_columns
from sweeper.sweep.jobs import Job


REPORT_DIR = "report"
MAX_CURVES = 8          # labelled curves per loss panel: best, worst and ranks between
MAX_DIVERGED = 3        # diverged curves drawn per panel; the rest are counted in the legend
MAX_RUN_PANELS = 30     # per-epoch small multiples: panels per figure
FEW_RUNS = 6            # up to this many runs share one per-epoch panel
MAX_GRID_VALUES = 12    # a hyperparameter with more values than this is not a grid axis
MAX_LISTED = 200        # problem jobs listed by name in report.md
BAND_POINTS = 400       # resolution of the band of all runs behind the loss curves
MAX_HISTORIES = 500     # histories a figure reads: a larger group's are this many ranks, spread evenly
NOT_AXES = ("seed",)    # repeats, not a grid axis
_SLUG_CHARACTERS = 100  # of a figure's file name (a name has at most 255 bytes)
MAX_REPEATS = 50        # a configuration's curves: the histories of at most this many of its repeats, spread evenly

STATUS_COLOR = {Status.DIVERGED: "#d62728", Status.FAILED: "#7f7f7f"}
STATUS_TEXT = {Status.DIVERGED.text: "#b00000", Status.FAILED.text: "#333333"}   # other statuses: #555555


@dataclass
class Group:
    """The jobs of one task and one optimizer: one figure of each kind."""

    task: str
    optimizer: str
    objective: str
    direction: str                       # minimize | maximize
    rows: pd.DataFrame                   # its rows of the collated table
    jobs: dict[str, Job]                 # job name -> job, for the histories
    varied: list[str] = field(default_factory=list)  # hyperparameters with more than one value (the seed of repeats not)
    hparams: list[str] = field(default_factory=list)  # every hyperparameter of its jobs, in the table's order
    configs: pd.DataFrame | None = None  # where its jobs have repeats: one row per configuration (config_points)

    @property
    def seeds(self) -> int:
        """The most repeats of one configuration: 1 without repeats."""
        return int(self.configs.n.max()) if self.configs is not None and len(self.configs) else 1

    @property
    def points(self) -> pd.DataFrame:
        """What its tables, heatmaps and best-per figures rank: its configurations where it has
        repeats (the objective their ok repeats' mean), else its jobs' rows."""
        return self.rows if self.configs is None else self.configs

    @property
    def title(self) -> str:
        return f"{self.task}, {self.optimizer}"

    @property
    def slug(self) -> str:
        """Its figures' file names' part: `softmax_adam`; a name a file cannot have (a NUL, a slash,
        300 characters) made one that it can, unique by a hash of the name."""
        name = f"{self.task}_{self.optimizer}"
        slug = re.sub(r"[^\w.+=-]", "_", name, flags=re.ASCII)[:_SLUG_CHARACTERS]
        if slug == name:
            return slug
        return f"{slug}_{hashlib.sha1(name.encode(errors='replace')).hexdigest()[:8]}"

    def ranked(self, points: bool = False) -> pd.DataFrame:
        """Its ok rows with a finite objective, best first; points: its `points` (configurations where it has repeats)."""
        rows = self.points if points else self.rows
        objective = pd.to_numeric(rows.get(self.objective), errors="coerce")  # type: ignore[call-overload]  # pandas-stubs: None is taken too (NaN)
        ok: pd.DataFrame = rows[(rows.status == Status.OK) & np.isfinite(objective)]
        return ok.sort_values(self.objective, ascending=self.direction != "maximize", kind="stable")

    @property
    def of_repeats(self) -> str:
        """What a figure's title adds where the group has repeats."""
        return f", mean over up to {self.seeds} seeds" if self.configs is not None else ""

    def value_text(self, point: pd.Series) -> str:
        """A point's objective: a job's value, or a configuration's mean ± std (n ok repeats of N)."""
        value = metric_text(self.objective, float(point[self.objective]))
        if self.configs is None:
            return value
        std = float(point[f"{self.objective}_std"])
        spread = f" ± {metric_text(self.objective, std)}" if math.isfinite(std) else ""
        of = f" of {point.n}" if point.n_ok < point.n else ""
        return f"{value}{spread} (n={point.n_ok}{of})"

    def label(self, row: pd.Series, per_line: int = 0) -> str:
        """The varied hyperparameters of a row, short: `lr=0.1 beta1=0.9`; per_line: wrapped."""
        parts = [f"{k}={fmt_number(row[k])}" for k in self.varied] or [f"job {row['job']}"]
        if not per_line:
            return " ".join(parts)
        return "\n".join(" ".join(parts[i:i + per_line]) for i in range(0, len(parts), per_line))


def fmt_number(value: Any) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e6:
        return str(int(value))
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def metric_text(metric: str, value: float) -> str:
    if not math.isfinite(value):
        return "nan"
    return f"{value:.4f}" if "accuracy" in metric else f"{value:.3g}"


def markdown_table(frame: pd.DataFrame) -> str:
    shown = frame.astype(object).where(frame.notna(), None)
    return shown.to_markdown(index=False, floatfmt=".4g", missingval="")


def direction_of(jobs: list[Job], objective: str) -> str:
    """The task's direction, as its records (or its sweep's job list) say; a guess from the
    metric's name only for records of schema 1, which did not say."""
    said = [job.summary.direction if job.summary and job.summary.direction else job.entry.direction if job.entry else None
            for job in jobs]
    known = [d for d in said if d is not None and d in ("minimize", "maximize")]
    if known:
        return max(set(known), key=known.count)
    return "maximize" if "accuracy" in objective else "minimize"


def read_groups(table: pd.DataFrame, jobs: list[Job]) -> list[Group]:
    by_name = {job.name: job for job in jobs}
    if not {"task", "optimizer"} <= set(table.columns):
        return []
    groups = []
    hparams = hparam_columns(table)
    for (task, optimizer), rows in table.dropna(subset=["task", "optimizer"]).groupby(["task", "optimizer"]):
        records = [record for n in rows.job if (record := by_name[n].summary) is not None]
        objectives = [r.objective for r in records if r.objective is not None and r.objective in rows.columns]
        if not objectives:
            continue
        objective = max(set(objectives), key=objectives.count)
        direction = direction_of([by_name[n] for n in rows.job], objective)
        rows = rows.loc[:, rows.notna().any() | (rows.columns == objective)]  # the objective's column stays, even all empty
        own = [k for k in hparams if k in rows.columns]
        varied = [k for k in own if rows[k].nunique() > 1]
        configs = config_points(rows, objective) if has_repeats(rows) else None
        if configs is not None:
            varied = [k for k in varied if k != SEED]
        groups.append(Group(str(task), str(optimizer), objective, direction, rows, {n: by_name[n] for n in rows.job},
                            varied, own, configs))
    return groups


