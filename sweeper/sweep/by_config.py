"""Tables by configuration: the jobs of a sweep that differ only in their seed (its repeats,
sweeper/sweep/repeats.py) as one row, with each metric's mean, standard deviation and 95% confidence
interval over the repeats that ended ok. The others are counted by status, never averaged in.

The interval is Student's t interval of the mean, mean ± t(0.975, k-1) s / sqrt(k) over the k ok
repeats: where the mean of many more repeats would lie, not where one more run would land.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweeper.job.record import write_atomic
from sweeper.job.status import Status
from sweeper.sweep.collate import hparam_columns

if TYPE_CHECKING:
    import pandas as pd

SEED = "seed"
CONFIDENCE = 0.95
NOT_METRICS = ("job", "task", "optimizer", "status", "error", "fused", "seeds")  # fused: the group's size


def configuration_keys(table: pd.DataFrame) -> list[str]:
    """What a configuration is: task, optimizer and the hyperparameters, less the seed."""
    return [c for c in ("task", "optimizer", *hparam_columns(table)) if c in table.columns and c != SEED]


def metric_columns(table: pd.DataFrame) -> list[str]:
    """The table's numeric columns after the status: the metrics a configuration averages."""
    import pandas as pd

    columns = list(table.columns)
    after = columns[columns.index("status") + 1:] if "status" in columns else []
    return [c for c in after if c not in NOT_METRICS and pd.api.types.is_numeric_dtype(table[c])
            and not pd.api.types.is_bool_dtype(table[c])]


def has_repeats(table: pd.DataFrame) -> bool:
    """Whether some configuration of the table has more than one job (seeds)."""
    if SEED not in table.columns or not len(table):
        return False
    seeds = table.groupby(configuration_keys(table), dropna=False, sort=False)[SEED].nunique()
    return bool(seeds.gt(1).any())


def interval(values: list[float]) -> tuple[float, float, float, float]:
    """Mean, sample standard deviation and the 95% t interval of the mean (NaN where under 2 values)."""
    import numpy as np
    from scipy import stats

    k = len(values)
    if not k:
        return math.nan, math.nan, math.nan, math.nan
    mean = float(np.mean(values))
    if k < 2:
        return mean, math.nan, math.nan, math.nan
    std = float(np.std(values, ddof=1))
    half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, k - 1)) * std / math.sqrt(k)
    return mean, std, mean - half, mean + half


def one_more_run(values: list[float]) -> tuple[float, float]:
    """Where one more run would land, 95% of the time: mean ± t(0.975, k-1) s sqrt(1 + 1/k) over k
    values (NaN under 2): the spread a single published run is held against."""
    import numpy as np
    from scipy import stats

    k = len(values)
    if k < 2:
        return math.nan, math.nan
    mean, std = float(np.mean(values)), float(np.std(values, ddof=1))
    half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, k - 1)) * std * math.sqrt(1 + 1 / k)
    return mean - half, mean + half


def _ok_values(frame: pd.DataFrame, metric: str) -> list[float]:
    import numpy as np
    import pandas as pd

    values = pd.to_numeric(frame.loc[frame.status == Status.OK.value, metric], errors="coerce")
    return [float(v) for v in values if np.isfinite(v)]


def by_config(table: pd.DataFrame) -> pd.DataFrame:
    """One row per configuration of a collated table: its keys, `n` jobs, `n_ok` and `n_<status>`
    for every other status the table has, its `seeds`, and for each metric `<m>_mean`, `<m>_std`,
    `<m>_ci95_low`, `<m>_ci95_high` over its ok repeats; `jobs`: its jobs' names. In the table's order."""
    import pandas as pd

    keys = configuration_keys(table)
    metrics = metric_columns(table)
    others = [s.value for s in Status if s != Status.OK and (table.status == s.value).any()] if "status" in table else []
    rows = []
    for values, frame in table.groupby(keys, dropna=False, sort=False):
        frame = _one_per_seed(frame)
        row: dict[str, Any] = dict(zip(keys, values))
        row.update(n=len(frame), n_ok=int((frame.status == Status.OK.value).sum()))
        row.update({f"n_{status}": int((frame.status == status).sum()) for status in others})
        if SEED in frame:
            row["seeds"] = ",".join(str(int(s)) for s in frame[SEED].dropna())
        for metric in metrics:
            mean, std, low, high = interval(_ok_values(frame, metric))
            row.update({f"{metric}_mean": mean, f"{metric}_std": std, f"{metric}_ci95_low": low, f"{metric}_ci95_high": high})
        row["jobs"] = " ".join(str(job) for job in frame.job)
        rows.append(row)
    return pd.DataFrame(rows)


def mean_text(mean: float, std: float, low: float | None = None, high: float | None = None, digits: str = ".4g") -> str:
    """`0.684 ± 0.031`, with ` [0.61, 0.76]` where the interval is given; the mean alone for one value."""
    if not math.isfinite(mean):
        return ""
    if not math.isfinite(std) or std == 0:  # one repeat, or a constant (a parameter count)
        return format(mean, digits)
    text = f"{mean:{digits}} ± {std:{digits}}"
    return text + (f" [{low:{digits}}, {high:{digits}}]" if low is not None and high is not None and math.isfinite(low) else "")


def markdown(configs: pd.DataFrame, metrics: list[str]) -> str:
    """The table in Markdown: a cell per metric, `mean ± std [95% interval]`."""
    spread = {f"{m}_{part}" for m in metrics for part in ("mean", "std", "ci95_low", "ci95_high")}
    shown = configs[[c for c in configs.columns if c not in spread and c != "jobs"]].copy()
    for metric in metrics:
        shown[metric] = [mean_text(r[f"{metric}_mean"], r[f"{metric}_std"], r[f"{metric}_ci95_low"], r[f"{metric}_ci95_high"])
                         for _, r in configs.iterrows()]
    shown = shown.astype(object).where(shown.notna(), None)
    return str(shown.to_markdown(index=False, floatfmt=".6g", missingval=""))


def write_by_config(root: Path, table: pd.DataFrame) -> str:
    """Write root/results_by_config.csv and .md; return the Markdown table."""
    configs = by_config(table)
    text = markdown(configs, metric_columns(table))
    write_atomic(root / "results_by_config.csv", configs.to_csv(index=False))
    write_atomic(root / "results_by_config.md", text + "\n")
    return text


def _one_per_seed(frame: pd.DataFrame) -> pd.DataFrame:
    """A configuration's jobs, one per seed (an ok one first): a folder of sweeps may hold the same
    run twice (a grid's seed-0 job and a repeats sweep's), and a seed counts once."""
    if SEED not in frame or frame[SEED].isna().all():
        return frame
    first_ok = frame.assign(_ok=frame.status != Status.OK.value).sort_values("_ok", kind="stable")
    return frame.loc[sorted(first_ok.drop_duplicates(subset=[SEED]).index, key=list(frame.index).index)]


def _status(frame: pd.DataFrame) -> str:
    """A configuration's status: ok where a repeat is, else the first status, in Status' order, of its jobs."""
    return next(s.value for s in Status if (frame.status == s.value).any()) if len(frame) else Status.NOT_STARTED.value


def config_points(table: pd.DataFrame, objective: str) -> pd.DataFrame:
    """A report's points where a group has repeats: per configuration its keys, `status`, the
    objective's mean over the ok repeats (as `objective`) with `<objective>_std`, `_ci95_low`,
    `_ci95_high`, `n`, `n_ok`, `n_diverged`, `n_other` (the other statuses) and `jobs` (a list); `job`: its first job."""
    import pandas as pd

    keys = configuration_keys(table)
    rows = []
    for values, frame in table.groupby(keys, dropna=False, sort=False):
        frame = _one_per_seed(frame)
        mean, std, low, high = interval(_ok_values(frame, objective)) if objective in frame else (math.nan,) * 4
        ok = int((frame.status == Status.OK.value).sum())
        diverged = int((frame.status == Status.DIVERGED.value).sum())
        rows.append({**dict(zip(keys, values)), "job": frame.job.iloc[0],
                     "status": _status(frame), objective: mean, f"{objective}_std": std, f"{objective}_ci95_low": low,
                     f"{objective}_ci95_high": high, "n": len(frame), "n_ok": ok, "n_diverged": diverged,
                     "n_other": len(frame) - ok - diverged, "jobs": list(frame.job)})
    return pd.DataFrame(rows)
