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

from sweeper.files import write_atomic
from sweeper.status import Status

if TYPE_CHECKING:
    import pandas as pd

SEED = "seed"
CONFIDENCE = 0.95
NOT_METRICS = ("job", "task", "optimizer", "status", "error", "fused", "seeds")  # fused: the group's size


def hparam_columns(table: pd.DataFrame) -> list[str]:
    """The hyperparameters' columns of a collated table: those between the optimizer and the status."""
    columns = list(table.columns)
    if "status" not in columns:
        return []
    first = columns.index("optimizer") + 1 if "optimizer" in columns else columns.index("task") + 1 if "task" in columns else 1
    return columns[first:columns.index("status")]


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


def one_more_run(values: list[float]) -> tuple[float, float]:
    """Where one more run would land, 95% of the time: mean ± t(0.975, k-1) s sqrt(1 + 1/k) over k
    values (NaN under 2): the spread a single published run is held against."""
    import numpy as np

    k = len(values)
    if k < 2:
        return math.nan, math.nan
    mean, std = float(np.mean(values)), float(np.std(values, ddof=1))
    half = float(t_quantile(k - 1)) * std * math.sqrt(1 + 1 / k)
    return mean - half, mean + half


def t_quantile(dof: Any) -> Any:
    """Student's t at 0.975 (a two-sided 95% interval) for `dof` degrees of freedom (a number or an array)."""
    from scipy import stats

    return stats.t.ppf(0.5 + CONFIDENCE / 2, dof)


def _configurations(table: pd.DataFrame, keys: list[str]) -> pd.Series:
    """Each row's configuration, numbered in the table's order."""
    return table.groupby(keys, dropna=False, sort=False).ngroup() if keys else table.index.to_series() * 0


def _one_per_seed(table: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """One job per configuration and seed (an ok one where there is one), in the table's order: a
    folder of sweeps may hold the same run twice (a grid's seed-0 job and a repeats sweep's), and a
    seed counts once."""
    if SEED not in table:
        return table
    ok_first = table.iloc[(table.status != Status.OK.value).to_numpy().argsort(kind="stable")]
    return ok_first.drop_duplicates(subset=[*keys, SEED]).sort_index()


def _spread(table: pd.DataFrame, number: pd.Series, metric: str) -> pd.DataFrame:
    """Per configuration (`number`): the metric's mean, std, and 95% interval of the mean over its
    ok rows with a finite value."""
    import numpy as np
    import pandas as pd

    values = pd.to_numeric(table[metric], errors="coerce") if metric in table else pd.Series(np.nan, index=table.index)
    values = values[(table.status == Status.OK.value) & np.isfinite(values)]
    found = values.groupby(number[values.index]).agg(["mean", "std", "count"])
    half = t_quantile(np.maximum(found["count"] - 1, 1)) * found["std"] / np.sqrt(found["count"])
    return pd.DataFrame({"mean": found["mean"], "std": found["std"], "ci95_low": found["mean"] - half,
                         "ci95_high": found["mean"] + half}).reindex(range(int(number.max()) + 1 if len(number) else 0))


def _counted(table: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series, pd.DataFrame]:
    """The table one job per configuration and seed, each row's configuration number, and per
    configuration its keys, `n`, and its jobs' count by status (a column per status)."""
    keys = configuration_keys(table)
    table = _one_per_seed(table, keys)
    number = _configurations(table, keys)
    first = table.loc[~number.duplicated(), keys].set_axis(number[~number.duplicated()].to_numpy())
    statuses = table.status.groupby(number).value_counts().unstack(fill_value=0)
    configs = first.assign(n=number.value_counts().sort_index())
    return table, number, configs.join(statuses.add_prefix("n_"))


def by_config(table: pd.DataFrame) -> pd.DataFrame:
    """One row per configuration of a collated table: its keys, `n` jobs, `n_ok` and `n_<status>`
    for every other status the table has, its `seeds`, and for each metric `<m>_mean`, `<m>_std`,
    `<m>_ci95_low`, `<m>_ci95_high` over its ok repeats; `jobs`: its jobs' names. In the table's order."""
    import pandas as pd

    metrics = metric_columns(table)
    table, number, configs = _counted(table)
    counts = [f"n_{s.value}" for s in Status if s != Status.OK and f"n_{s.value}" in configs]
    shown = configs[[*configuration_keys(table), "n"]].assign(n_ok=configs.get("n_ok", 0))
    shown = shown.join(configs[counts])
    if SEED in table:
        shown["seeds"] = table[SEED].groupby(number).agg(lambda seeds: ",".join(str(int(s)) for s in seeds.dropna()))
    spreads = [_spread(table, number, metric).add_prefix(f"{metric}_") for metric in metrics]
    shown = pd.concat([shown, *spreads], axis=1)
    shown["jobs"] = table.job.groupby(number).agg(lambda jobs: " ".join(map(str, jobs)))
    return shown.reset_index(drop=True)


def mean_text(mean: float, std: float, low: float | None = None, high: float | None = None) -> str:
    """`0.684 ± 0.031`, with ` [0.61, 0.76]` where the interval is given; the mean alone for one value."""
    if not math.isfinite(mean):
        return ""
    if not math.isfinite(std) or std == 0:  # one repeat, or a constant (a parameter count)
        return f"{mean:.4g}"
    text = f"{mean:.4g} ± {std:.4g}"
    return text + (f" [{low:.4g}, {high:.4g}]" if low is not None and high is not None and math.isfinite(low) else "")


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


def config_points(table: pd.DataFrame, objective: str) -> pd.DataFrame:
    """A report's points where a group has repeats: per configuration its keys, `status` (ok where a
    repeat is, else the first status in Status' order of its jobs), the objective's mean over the ok
    repeats (as `objective`) with `<objective>_std`, `_ci95_low`, `_ci95_high`, `n`, `n_ok`,
    `n_diverged`, `n_other` (its other statuses), `jobs` (a list) and `job` (its first)."""
    table, number, configs = _counted(table)
    order = [s.value for s in Status]
    first = table.status.map(order.index).groupby(number).min()
    points = configs[configuration_keys(table)].assign(
        job=table.job.groupby(number).first(), status=[order[i] for i in first],
        n=configs.n, n_ok=configs.get("n_ok", 0), n_diverged=configs.get("n_diverged", 0))
    points["n_other"] = points.n - points.n_ok - points.n_diverged
    spread = _spread(table, number, objective)
    points[objective] = spread["mean"]
    for part in ("std", "ci95_low", "ci95_high"):
        points[f"{objective}_{part}"] = spread[part]
    points["jobs"] = table.job.groupby(number).agg(list)
    return points.reset_index(drop=True)
