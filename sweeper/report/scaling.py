"""GPU scaling: training time, speedup and efficiency against the number of GPUs of a job (nodes x
GPUs: a job over several nodes has `gpus` on each), or of CPU replicas where the jobs ran with
`devices=cpu` (their records' `devices` metric names CPUs)."""
from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pandas as pd

from sweeper.status import Status
from sweeper.report.groups import Group
from sweeper.report.plotting import save


def _device_kind(group: Group, job: str) -> str:
    """`CPU` when the job's replicas ran on CPUs (as its record's `devices` metric names them), else `GPU`."""
    record = group.jobs[job].summary
    names = (record.metrics.get("devices") if record else None) or []
    return "CPU" if names and all("CPU" in str(name).upper() for name in names) else "GPU"


def unit(table: pd.DataFrame) -> str:
    """What the table counts: `GPUs`, or `CPU replicas` when every row ran on CPUs."""
    return "CPU replicas" if (table.devices == "CPU").all() else "GPUs"


def scaling_table(group: Group) -> pd.DataFrame | None:
    """One row per number of GPUs of a job (`gpus`: nodes x GPUs per node), with `nodes` where some
    job ran on several."""
    if not {"gpus", "nodes"} & set(group.varied) or "train_time_s" not in group.rows.columns:
        return None
    rows = group.rows
    nodes = rows["nodes"].fillna(1).astype(int) if "nodes" in rows.columns else pd.Series(1, index=rows.index)
    rows = rows.assign(gpus=rows.gpus * nodes, nodes=nodes)  # a record from before `nodes` ran on one
    rows = rows[(rows.status == Status.OK) & rows.train_time_s.notna() & (rows.gpus > 0)]  # gpus=0: the CPU
    if rows.gpus.nunique() < 2:
        return None
    columns = ({"nodes": "max"} if (rows.nodes > 1).any() else {}) | {"train_time_s": "median"} \
        | ({"replicas": "max"} if "replicas" in rows.columns else {}) \
        | ({"samples_per_s": "median"} if "samples_per_s" in rows.columns else {})
    rows = rows.assign(devices=[_device_kind(group, job) for job in rows.job])
    spread = {"train_time_s_min": ("train_time_s", "min"), "train_time_s_max": ("train_time_s", "max"),
              "train_time_s_std": ("train_time_s", "std")} if rows.gpus.value_counts().max() > 1 else {}  # repeats
    table = rows.groupby("gpus").agg(devices=("devices", lambda kinds: "/".join(sorted(set(kinds)))),
                                     runs=("job", "size"), **{k: (k, how) for k, how in columns.items()},
                                     **spread).reset_index()
    base = table.iloc[0]
    table["speedup"] = base.train_time_s / table.train_time_s
    table["ideal_speedup"] = table.gpus / base.gpus
    table["efficiency"] = table.speedup / table.ideal_speedup
    return table


def scaling_figure(plt: ModuleType, group: Group, table: pd.DataFrame, path: Path) -> Path:
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    what = unit(table)
    gpus = table.gpus.to_numpy(dtype=float)
    base_time, base_gpus = table.train_time_s.iloc[0], gpus[0]
    left.plot(gpus, table.train_time_s, "o-", color="#1f77b4", label="measured (median)")
    if "train_time_s_min" in table:  # repeats: the range of their times
        low, high = table.train_time_s - table.train_time_s_min, table.train_time_s_max - table.train_time_s
        left.errorbar(gpus, table.train_time_s, yerr=[low, high], fmt="none", ecolor="#1f77b4", capsize=4,
                      label="range over the runs of each count")
    left.plot(gpus, base_time * base_gpus / gpus, "--", color="#555555", label="ideal linear scaling")
    left.set_ylabel("training time (s)")
    left.set_title(f"training time against the number of {what}")
    right.plot(gpus, table.speedup, "o-", color="#1f77b4", label="measured")
    right.plot(gpus, gpus / base_gpus, "--", color="#555555", label="ideal")
    for g, s, e in zip(gpus, table.speedup, table.efficiency):
        right.annotate(f"{e:.0%}", (g, s), textcoords="offset points", xytext=(-8, 8), ha="right", fontsize=8)
    right.set_ylabel(f"speedup over {int(base_gpus)} {what if base_gpus > 1 else what.rstrip('s')}")
    right.set_title("speedup (labels: parallel efficiency)")
    for ax in (left, right):
        ax.set_xlabel(what)
        ax.set_xticks(gpus, [str(int(g)) for g in gpus])
        ax.legend()
    fig.suptitle(f"{group.title}: scaling over {what}")
    fig.tight_layout()
    return save(fig, path)


