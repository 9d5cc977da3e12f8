"""A search: the objective by trial number, and the best so far."""
from __future__ import annotations

from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd

from sweeper.status import Status
from sweeper.report.groups import Group, STATUS_COLOR
from sweeper.report.plotting import plain_log_ticks, save


def trial_of(name: str) -> int | None:
    last = name.rsplit("/", 1)[-1]
    return int(last) if last.isdigit() else None


def search_figure(plt: ModuleType, group: Group, path: Path) -> Path | None:
    # pandas-stubs: a column's values may not be None, which pandas takes (as NaN)
    rows = group.rows.assign(trial=[trial_of(n) for n in group.rows.job]).dropna(subset=["trial"]).sort_values("trial")  # type: ignore[misc]
    values = pd.to_numeric(rows[group.objective], errors="coerce")
    ok = rows[(rows.status == Status.OK) & np.isfinite(values)]
    if ok.empty:
        return None
    fig, ax = plt.subplots(figsize=(8, 4.4))
    ax.plot(ok.trial, ok[group.objective], "o", color="#1f77b4", label="trial")
    best = ok[group.objective].cummax() if group.direction == "maximize" else ok[group.objective].cummin()
    ax.step(ok.trial, best, where="post", color="#2ca02c", label="best so far")
    top = group.ranked().iloc[0]
    ax.plot([trial_of(top.job)], [top[group.objective]], "*", color="#ff7f0e", markersize=16,
            label=f"best: trial {trial_of(top.job)}", zorder=3)
    bad = rows[rows.status.isin([Status.DIVERGED, Status.FAILED])]
    if len(bad):
        low = ok[group.objective].min() if group.direction == "maximize" else ok[group.objective].max()
        ax.plot(bad.trial, [low] * len(bad), "x", color=STATUS_COLOR[Status.DIVERGED], markersize=8,
                label="diverged / failed (no value)")
    if "accuracy" not in group.objective and ok[group.objective].min() > 0:
        ax.set_yscale("log")
        plain_log_ticks(ax.yaxis)
    ax.set_xlabel("trial number")
    ax.set_ylabel(group.objective)
    better = "higher" if group.direction == "maximize" else "lower"
    ax.set_title(f"{group.title}: {group.objective} by trial ({better} is better)")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend()
    return save(fig, path)


