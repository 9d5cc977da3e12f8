"""GPU scaling: training time, speedup and efficiency against the number of GPUs."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from sweeper.report.groups import Group
from sweeper.report.plotting import save


def scaling_table(group: Group) -> pd.DataFrame | None:
    if "gpus" not in group.varied or "train_time_s" not in group.rows.columns:
        return None
    rows = group.rows
    rows = rows[(rows.status == "ok") & rows.train_time_s.notna() & (rows.gpus > 0)]  # gpus=0: the CPU
    if rows.gpus.nunique() < 2:
        return None
    columns = {"train_time_s": "median"} | ({"replicas": "max"} if "replicas" in rows.columns else {}) \
        | ({"samples_per_s": "median"} if "samples_per_s" in rows.columns else {})
    table = rows.groupby("gpus").agg(runs=("job", "size"), **{k: (k, how) for k, how in columns.items()}).reset_index()
    base = table.iloc[0]
    table["speedup"] = base.train_time_s / table.train_time_s
    table["ideal_speedup"] = table.gpus / base.gpus
    table["efficiency"] = table.speedup / table.ideal_speedup
    return table


def scaling_figure(plt, group: Group, table: pd.DataFrame, path: Path) -> Path:
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    gpus = table.gpus.to_numpy(dtype=float)
    base_time, base_gpus = table.train_time_s.iloc[0], gpus[0]
    left.plot(gpus, table.train_time_s, "o-", color="#1f77b4", label="measured (median)")
    left.plot(gpus, base_time * base_gpus / gpus, "--", color="#555555", label="ideal linear scaling")
    left.set_ylabel("training time (s)")
    left.set_title("training time against GPU count")
    right.plot(gpus, table.speedup, "o-", color="#1f77b4", label="measured")
    right.plot(gpus, gpus / base_gpus, "--", color="#555555", label="ideal")
    for g, s, e in zip(gpus, table.speedup, table.efficiency):
        right.annotate(f"{e:.0%}", (g, s), textcoords="offset points", xytext=(-8, 8), ha="right", fontsize=8)
    right.set_ylabel(f"speedup over {int(base_gpus)} GPU{'s' if base_gpus > 1 else ''}")
    right.set_title("speedup (labels: parallel efficiency)")
    for ax in (left, right):
        ax.set_xlabel("GPUs")
        ax.set_xticks(gpus, [str(int(g)) for g in gpus])
        ax.legend()
    fig.suptitle(f"{group.title}: GPU scaling")
    fig.tight_layout()
    return save(fig, path)


