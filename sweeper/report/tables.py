"""The report's tables: summary, best per optimizer, jobs with problems, grids of two hyperparameters."""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from sweeper.words import counted
from sweeper.sweep.by_config import hparam_columns
from sweeper.status import PROBLEM, RECORDED, Status, summary
from sweeper.sweep.jobs import Job, Sweep
from sweeper.launching.backend import backend_of
from sweeper.report.groups import Group, MAX_GRID_VALUES, MAX_LISTED, NOT_AXES, fmt_number, metric_text


def summary_lines(sweep: Sweep) -> list[str]:
    statuses = [job.status for job in sweep.jobs]
    covered = sum(job.status in RECORDED and job.summary is not None for job in sweep.jobs)  # a killed trial: failed, no record
    lines = [f"Covers **{covered} of {counted(len(statuses), 'job')}** with a record; {summary(statuses)}."]
    if not sweep.manifests:
        lines.append("No job list (jobs.json) here: the total counts the job directories found, not the jobs planned.")
    for directory, manifest in sweep.manifests.items():
        kind = (f"a search of {counted(manifest.total, 'trial')}" if manifest.search
                else f"{counted(manifest.total, 'job')} planned")
        lines.append(f"Sweep `{directory.name}`: hydra/sweeper={manifest.sweeper}, {kind}.")
    return lines


def best_table(groups: list[Group]) -> pd.DataFrame:
    """The best job of each group; where it has repeats, the best configuration by its mean, as
    mean ± std (n), and whether the runner-up can be told apart from it."""
    rows = []
    for group in groups:
        ranked = group.ranked(points=True)
        if ranked.empty:
            continue
        best = ranked.iloc[0]
        hparams = {k: best[k] for k in group.hparams if k in ranked.columns and pd.notna(best[k])}
        repeats = group.configs is not None  # a configuration: its jobs, its mean against the next one's
        row = {"task": group.task, "optimizer": group.optimizer,
               **({"jobs": _names(best.jobs)} if repeats else {"job": best.job}),
               "best": f"{group.objective} = {group.value_text(best)}", "direction": group.direction,
               **{k: fmt_number(v) for k, v in hparams.items()}}
        row |= {"runner-up": runner_up(group, ranked)} if repeats else {"train_time_s": best.get("train_time_s")}
        rows.append(row)
    return pd.DataFrame(rows)


MAX_NAMED = 10  # a configuration's jobs named in the best table (the page links each): its count is in `best`


def _names(jobs: list[str]) -> str:
    """`0 2 4`, or the first MAX_NAMED and `…` (a configuration of 20,000 repeats is no cell to read)."""
    return " ".join([*map(str, jobs[:MAX_NAMED]), *(["…"] if len(jobs) > MAX_NAMED else [])])


def runner_up(group: Group, ranked: pd.DataFrame) -> str:
    """Whether the best configuration and the next are told apart: their 95% intervals of the mean apart."""
    if len(ranked) < 2:
        return "none"
    best, second = ranked.iloc[0], ranked.iloc[1]
    low, high = f"{group.objective}_ci95_low", f"{group.objective}_ci95_high"
    said = f"{group.label(second)}: {group.value_text(second)}"
    if not all(math.isfinite(float(p[k])) for p in (best, second) for k in (low, high)):
        return f"{said}; not told apart (an interval needs 2 ok repeats)"
    if best[low] <= second[high] and second[low] <= best[high]:
        return f"{said}; not told apart (95% intervals overlap)"
    return f"{said}; behind (95% intervals apart)"


_REASONS = {
    Status.NOT_STARTED: "not started: no job directory yet",
    Status.MISSING: "no result.json and nobody runs it: stopped before it finished",
    Status.PENDING: "waiting in Slurm's queue",
    Status.RUNNING: "running: no result.json yet",
}


def _reason(row: pd.Series, job: Job | None) -> str:
    status = Status(row.status)
    if status == Status.DIVERGED:
        loss = job.record.history.get("loss") if job and job.record else None
        return f"loss not finite after step {len(loss)}" if loss else "loss not finite"
    if status in _REASONS:
        return _REASONS[status]
    if job and job.summary is None and job.entry and job.entry.trial_failed:
        return "running when its search was killed: its trial marked failed, its budget asked again"
    error = row.get("error")
    if isinstance(error, str):
        return error
    if job and job.entry and job.scheduler_state:
        return f"{backend_of(job.entry.scheduler).title}: {status.text}, without a result.json"
    return status.text


def problems_table(table: pd.DataFrame, jobs: list[Job]) -> pd.DataFrame:
    """The first MAX_LISTED jobs that did not finish well, with the reason."""
    by_name = {job.name: job for job in jobs}
    bad = table[table.status.isin([s.value for s in PROBLEM])].head(MAX_LISTED)
    names = hparam_columns(table)
    hparams = [k for k in names if table[k].nunique() > 1] or \
        [k for k in names if k in bad.columns and bad[k].notna().any()]  # what tells these jobs apart
    rows = [{"job": row.job, "task": row.get("task"), "optimizer": row.get("optimizer"),
             "hyperparameters": " ".join(f"{k}={fmt_number(row[k])}" for k in hparams if pd.notna(row[k])),
             "status": row.status, "reason": _reason(row, by_name.get(row.job))}
            for _, row in bad.iterrows()]
    return pd.DataFrame(rows, columns=["job", "task", "optimizer", "hyperparameters", "status", "reason"])


def grid_pairs(group: Group) -> list[tuple[str, str]]:
    """Pairs of hyperparameters the group varies on a grid: few values each, most cells present."""
    points = group.points
    axes = [k for k in group.varied if k not in NOT_AXES and k != "gpus" and points[k].nunique() <= MAX_GRID_VALUES]
    pairs = []
    for i, a in enumerate(axes):
        for b in axes[i + 1:]:
            cells = points[[a, b]].dropna().drop_duplicates()
            if len(cells) >= 0.5 * points[a].nunique() * points[b].nunique():
                pairs.append((a, b))
    return pairs


Cells = dict[tuple[Any, ...], tuple[float, str]]  # a cell's values of the keys -> its value and text


def best_cells(points: pd.DataFrame, keys: list[str], objective: str, direction: str) -> Cells:
    """Each cell's (the points of one value of each key) best objective over the other
    hyperparameters, or why there is none: the first status, in Status' order, that a point of it
    has; of configurations (points with repeats), the best mean, written mean ± std. All cells in
    one groupby each, not a filter per cell."""
    by = [points[key] for key in keys]
    ranks = points.status.map({status.value: i for i, status in enumerate(Status)})
    statuses = list(Status)
    cells: Cells = {_cell_key(cell): (math.nan, "" if math.isnan(rank) else statuses[int(rank)].text)
                    for cell, rank in ranks.groupby(by, sort=False).min().items()}
    values = pd.to_numeric(points[objective], errors="coerce")
    ok = (points.status == Status.OK) & np.isfinite(values)
    grouped = values[ok].groupby([points.loc[ok, key] for key in keys], sort=False)  # looked up by key: no order needed
    spread = points[f"{objective}_std"] if f"{objective}_std" in points else None
    for cell, best in (grouped.idxmax() if direction == "maximize" else grouped.idxmin()).items():
        value = float(values[best])
        std = spread.get(best) if spread is not None else None
        text = f" ± {metric_text(objective, float(std))}" if std is not None and math.isfinite(std) else ""
        cells[_cell_key(cell)] = value, metric_text(objective, value) + text
    return cells


def _cell_key(cell: Any) -> tuple[Any, ...]:
    return cell if isinstance(cell, tuple) else (cell,)


# a heatmap's grid: its two hyperparameters, their values (rows, columns), the cells' values and texts
Grid = tuple[str, str, list[Any], list[Any], np.ndarray, list[list[str]]]


def grid_values(group: Group, a: str, b: str) -> tuple[list[Any], list[Any], np.ndarray, list[list[str]]]:
    points = group.points
    rows_values = sorted(points[a].dropna().unique())
    cols_values = sorted(points[b].dropna().unique())
    values = np.full((len(rows_values), len(cols_values)), np.nan)
    texts = [["missing"] * len(cols_values) for _ in rows_values]
    for (va, vb), (value, text) in best_cells(points, [a, b], group.objective, group.direction).items():
        i, j = rows_values.index(va), cols_values.index(vb)
        values[i, j], texts[i][j] = value, text
    return rows_values, cols_values, values, texts


def pivot_markdown(a: str, b: str, rows_values: list[Any], cols_values: list[Any], texts: list[list[str]]) -> str:
    frame = pd.DataFrame(texts, columns=[f"{b}={fmt_number(v)}" for v in cols_values])
    frame.insert(0, f"{a} \\ {b}", [fmt_number(v) for v in rows_values])
    return frame.to_markdown(index=False)


