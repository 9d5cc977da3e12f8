"""Best per value: for each hyperparameter a group varies (the course's or a task's own), the best
objective at each of its values over every other key, as a table and one panel each."""
from __future__ import annotations

import math
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd

from sweeper.report.groups import MAX_GRID_VALUES, NOT_AXES, Group, fmt_number
from sweeper.report.plotting import plain_log_ticks, save
from sweeper.report.tables import best_cells

MAX_PANELS = 8  # keys drawn per figure


def value_keys(group: Group) -> list[str]:
    """The keys shown value by value: varied, not a repeat's seed nor the devices (the scaling section's),
    few enough values to read."""
    return [k for k in group.varied if k not in (*NOT_AXES, "gpus", "nodes") and group.points[k].nunique() <= MAX_GRID_VALUES]


def _order(values: list[Any]) -> list[Any]:
    try:
        return sorted(values)
    except TypeError:  # values of several types (8 and "wide"): as they came
        return values


def best_per_value(group: Group, key: str) -> pd.DataFrame:
    """One row per value of `key`: the best objective of its ok jobs (of its configurations' means,
    where the group has repeats), or the status of the first of its jobs where none is ok, and the jobs it has."""
    rows = []
    points = group.points
    cells = best_cells(points, [key], group.objective, group.direction)
    by_value = points.groupby(key, sort=False)  # values of several types (8 and "wide") need no order
    jobs = by_value.n.sum() if group.configs is not None else by_value.size()
    for value in _order(list(points[key].dropna().unique())):
        best, text = cells[(value,)]
        rows.append({key: fmt_number(value), f"best {group.objective}": text, "jobs": int(jobs[value]), "_value": value,
                     "_best": best})
    return pd.DataFrame(rows)


def markdown(table: pd.DataFrame) -> str:
    return table.drop(columns=["_value", "_best"]).to_markdown(index=False)


def figure(plt: ModuleType, group: Group, tables: dict[str, pd.DataFrame], path: Path) -> Path | None:
    """One panel per key: the best objective against the key's values (a log axis for numbers over
    more than a decade), the values with no ok job left out."""
    keys = list(tables)[:MAX_PANELS]
    if not keys:
        return None
    fig, axes = plt.subplots(1, len(keys), figsize=(3.2 * len(keys) + 0.6, 3.0), squeeze=False)
    for ax, key in zip(axes[0], keys):
        table = tables[key]
        numeric = all(isinstance(v, (int, float, np.number)) and not isinstance(v, bool) for v in table["_value"])
        xs = list(table["_value"]) if numeric else list(range(len(table)))
        ys = [float(v) for v in table["_best"]]
        ax.plot(xs, ys, marker="o")
        if numeric and min(xs) > 0 and max(xs) / min(xs) > 10:
            ax.set_xscale("log")
            plain_log_ticks(ax.xaxis)
        if not numeric:
            ax.set_xticks(xs, [fmt_number(v) for v in table["_value"]], rotation=30)
        finite = [y for y in ys if math.isfinite(y)]
        if finite and "accuracy" not in group.objective and min(finite) > 0 and max(finite) / min(finite) > 100:
            ax.set_yscale("log")
        ax.set_xlabel(key)
        ax.set_ylabel(f"best {group.objective}")
    fig.suptitle(f"{group.title}: best {group.objective} per value{group.of_repeats}")
    fig.tight_layout()
    return save(fig, path)


def _tables(group: Group) -> dict[str, pd.DataFrame]:
    return {key: best_per_value(group, key) for key in value_keys(group)}


def section(plt: ModuleType, group: Group, out: Path) -> tuple[list[str], Path | None]:
    """The report's lines (a table per key) and the figure (sweeper/report/__init__.py)."""
    tables = _tables(group)
    lines: list[str] = []
    for key, table in tables.items():
        others = [k for k in group.varied if k != key]
        lines += [f"### Best per {key}" + (f" (over {', '.join(others)})" if others else ""), "", markdown(table), ""]
    return lines, figure(plt, group, tables, out / f"best_per_value_{group.slug}.png")


def per_value_figure(plt: ModuleType, group: Group, out: Path) -> Path | None:
    """The figure alone, as the report draws it (the live page's, sweeper/serve/live.py)."""
    return figure(plt, group, _tables(group), out / f"best_per_value_{group.slug}.png")
