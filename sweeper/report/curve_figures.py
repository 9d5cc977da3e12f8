"""Figures of curves: training loss by step, accuracy and loss by epoch."""
from __future__ import annotations

import math
import warnings
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Iterable

import numpy as np
import pandas as pd

from sweeper.words import counted
from sweeper.status import Status
from sweeper.sweep.jobs import Job
from sweeper.report.groups import (BAND_POINTS, FEW_RUNS, Group, MAX_CURVES, MAX_DIVERGED, MAX_HISTORIES, MAX_REPEATS,
                                   MAX_RUN_PANELS, STATUS_COLOR, metric_text)
from sweeper.report.plotting import plain_log_ticks, save

if TYPE_CHECKING:
    from matplotlib.axes import Axes


def _curve(job: Job) -> tuple[np.ndarray, np.ndarray] | None:
    history = job.record.history if job.record else {}
    loss = history.get("loss")
    if not loss:
        return None
    y = np.array([np.nan if v is None else v for v in loss], dtype=float)
    steps = history.get("loss_steps")
    x = np.array(steps, dtype=float) if steps and len(steps) == len(y) else np.arange(1, len(y) + 1, dtype=float)
    return x, y


def _floor(curves: Iterable[tuple[np.ndarray, np.ndarray]]) -> float:
    """Where a loss of exactly 0 is drawn on the log axis: a decade below the smallest loss > 0."""
    smallest = min((float(y[y > 0].min()) for _, y in curves if (y > 0).any()), default=1.0)
    return smallest / 10


def _ranks(n: int, k: int) -> list[int]:
    """k indices out of n ranked ones: the first, the last and evenly spaced ones between."""
    return list(range(n)) if n <= k else sorted({round(i * (n - 1) / (k - 1)) for i in range(k)})


def _diverged_ends(ax: Axes, curves: list[tuple[np.ndarray, np.ndarray]], ceiling: float | None) -> None:
    """A cross where each diverged run stopped (every one, drawn or not); runs that stopped at the
    same point share one cross with their number beside it, so that N diverged runs read as N."""
    ends: dict[tuple[float, float], int] = {}
    for x, y in curves:
        finite = y[np.isfinite(y)]
        last = float(finite[-1]) if finite.size else np.nan
        if ceiling is not None and not (last <= ceiling):  # off the scale, or no finite loss at all
            last = ceiling
        key = (float(x[-1]), last)
        ends[key] = ends.get(key, 0) + 1
    for (x_end, y_end), count in ends.items():
        ax.plot([x_end], [y_end], marker="x", linestyle="none", color=STATUS_COLOR[Status.DIVERGED], markersize=9,
                mew=2, gid="diverged-end")
        if count > 1:
            ax.annotate(f"×{count}", (x_end, y_end), textcoords="offset points", xytext=(7, 2), fontsize=9,
                        fontweight="bold", color=STATUS_COLOR[Status.DIVERGED], gid="diverged-count")
    if any(count > 1 for count in ends.values()):
        ax.plot([], [], marker="x", linestyle="none", color=STATUS_COLOR[Status.DIVERGED], mew=2,
                label="where diverged runs stopped (×N: N runs at one point)")


def _spread(names: list[str]) -> list[str]:
    """At most MAX_HISTORIES of ranked names, the first and last among them: the runs whose
    histories a figure reads. A record's history is most of it: 100,000 of them are gigabytes."""
    return [names[i] for i in _ranks(len(names), MAX_HISTORIES)]


def _mean_curve(curves: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """The repeats' curves of one configuration as one: steps, mean, lowest and highest, over the
    steps all of them reached."""
    if not curves:
        return None
    n = min(len(y) for _, y in curves)
    stack = np.vstack([y[:n] for _, y in curves])
    with warnings.catch_warnings():  # a step where every repeat's value is missing: no point there
        warnings.simplefilter("ignore", RuntimeWarning)
        return curves[0][0][:n], np.nanmean(stack, axis=0), np.nanmin(stack, axis=0), np.nanmax(stack, axis=0)


def _ok_jobs(group: Group, point: pd.Series) -> list[Job]:
    """A configuration's ok repeats whose histories its curves read: all, or MAX_REPEATS spread
    evenly over them (a sweep of 100,000 repeats is gigabytes of histories)."""
    ok = [group.jobs[name] for name in point.jobs if group.jobs[name].status == Status.OK]
    return [ok[i] for i in _ranks(len(ok), MAX_REPEATS)]


def _repeats_loss_figure(plt: ModuleType, group: Group, path: Path) -> Path | None:
    """Of a group with repeats: each configuration's mean training loss over its ok repeats, with
    their range as a band; the best, the worst and ranks between."""
    ranked = group.ranked(points=True)
    picks = _ranks(len(ranked), MAX_CURVES)
    means = {i: m for i in picks if (m := _mean_curve([c for job in _ok_jobs(group, ranked.iloc[i])
                                                         if (c := _curve(job)) is not None])) is not None}
    if not means:
        return None
    floor = _floor((x, y) for x, _, y, _ in means.values())
    fig, ax = plt.subplots(figsize=(9, 5.2))
    colors = plt.get_cmap("viridis")(np.linspace(0, 0.9, max(len(means), 2)))
    for color, (i, (x, mean, low, high)) in zip(colors, means.items()):
        point = ranked.iloc[i]
        rank = "best" if i == 0 else "worst" if i == len(ranked) - 1 else f"#{i + 1}"
        ax.fill_between(x, np.maximum(low, floor), np.maximum(high, floor), color=color, alpha=0.2, linewidth=0)
        ax.plot(x, np.maximum(mean, floor), color=color, linewidth=1.4,
                label=f"{rank} of {len(ranked)}: {group.label(point)} ({group.objective} {group.value_text(point)})")
    diverged = int(group.points.n_diverged.sum())
    if diverged:
        ax.plot([], [], color=STATUS_COLOR[Status.DIVERGED], linestyle="--",
                label=f"{counted(diverged, 'diverged repeat')}: not in the means")
    ax.set_yscale("log")
    plain_log_ticks(ax.yaxis)
    ax.set_xlabel("training step")
    ax.set_ylabel("training loss (log scale)")
    ax.set_title(f"{group.title}: mean training loss per step over each configuration's ok repeats (up to "
                 f"{MAX_REPEATS}; band: their range; {len(means)} of {counted(len(ranked), 'configuration')})", fontsize=10)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0)
    return save(fig, path, tight=True)


def loss_figure(plt: ModuleType, group: Group, path: Path) -> Path | None:
    if group.configs is not None:
        return _repeats_loss_figure(plt, group, path)
    ranked = group.ranked()
    all_diverged = group.rows[group.rows.status == Status.DIVERGED]
    read = _spread(list(ranked.job)) + _spread(list(all_diverged.job))
    if len(group.rows) <= MAX_HISTORIES:
        read = list(group.rows.job)
    curves = {name: c for name in read if (c := _curve(group.jobs[name])) is not None}
    ok = [name for name in ranked.job if name in curves]
    place = {name: i for i, name in enumerate(ranked.job)}  # rank among all finished runs, read or not
    finished = len(ok) if len(group.rows) <= MAX_HISTORIES else len(ranked)  # ranked: with a final objective
    diverged = all_diverged[all_diverged.job.isin(list(curves))]
    if not ok and diverged.empty:
        return None
    floor = _floor(curves.values())
    for _, y in curves.values():
        y[y <= 0] = floor
    fig, ax = plt.subplots(figsize=(9, 5.2))
    if len(ok) > MAX_CURVES:  # the band shows where all runs lie; the curves pick ranks in it
        top = max(curves[n][0][-1] for n in ok)
        grid = np.linspace(1, top, BAND_POINTS)
        stack = np.vstack([np.interp(grid, *curves[n], left=np.nan, right=np.nan) for n in ok])
        with warnings.catch_warnings():  # steps that no run reached: no band there
            warnings.simplefilter("ignore", RuntimeWarning)
            ax.fill_between(grid, np.nanmin(stack, axis=0), np.nanmax(stack, axis=0), color="#cccccc",
                            alpha=0.6, linewidth=0, label=f"range of all {len(ok)} finished runs" if len(ok) == finished
                            else f"range of {len(ok)} of {finished} finished runs, spread evenly over the ranks")
    picks = _ranks(len(ok), MAX_CURVES)
    colors = plt.get_cmap("viridis")(np.linspace(0, 0.9, max(len(picks), 2)))
    rows = ranked.set_index("job", drop=False)
    for color, i in zip(colors, picks):
        row = rows.loc[ok[i]]
        rank = "best" if i == 0 else "worst" if i == len(ok) - 1 else f"#{place[ok[i]] + 1}"
        value = metric_text(group.objective, float(row[group.objective]))
        ax.plot(*curves[ok[i]], color=color, linewidth=1.4,
                label=f"{rank} of {finished}: {group.label(row)} ({group.objective} {value})")
    # Diverged runs climb out of the top: the axis stays on the finished runs' range.
    top = 100 * max((np.nanmax(curves[n][1]) for n in ok), default=np.nan)
    shown = diverged.iloc[_ranks(len(diverged), MAX_DIVERGED)] if len(diverged) else diverged
    ceiling = top / 5  # where a diverged run's last point is marked when it is off the scale
    for _, row in shown.iterrows():
        x, y = curves[row.job]
        if np.isfinite(top):
            y = np.minimum(y, ceiling)
        label = f"diverged at step {int(x[-1])}: {group.label(row)}"
        ax.plot(x, y, color=STATUS_COLOR[Status.DIVERGED], linestyle="--", linewidth=1.2, label=label)
    _diverged_ends(ax, [curves[name] for name in diverged.job], ceiling if np.isfinite(top) else None)
    if len(all_diverged) > len(diverged):
        ax.plot([], [], marker="x", linestyle="none", color=STATUS_COLOR[Status.DIVERGED], mew=2,
                label=f"ends of {len(diverged)} of {len(all_diverged)} diverged runs, spread evenly")
    if len(all_diverged) > len(shown):
        ax.plot([], [], color=STATUS_COLOR[Status.DIVERGED], linestyle="--",
                label=f"{counted(len(all_diverged) - len(shown), 'more diverged run')} not drawn")
    ax.set_yscale("log")
    exact = any((y == floor).any() for _, y in curves.values())
    if exact:
        ax.set_ylim(bottom=floor / 2)
    if len(diverged) and np.isfinite(top):
        bottom = floor / 2 if exact else min(np.nanmin(curves[n][1]) for n in ok) / 2
        ax.set_ylim(bottom, top)
    plain_log_ticks(ax.yaxis)
    ax.set_xlabel("training step")
    ax.set_ylabel("training loss (log scale)" + ("; 0 drawn at the bottom" if exact else ""))
    count = f"{len(picks)} of {finished} finished runs" if finished > len(picks) else f"{finished} finished runs"
    ax.set_title(f"{group.title}: training loss per step ({count}"
                 f"{f', {len(all_diverged)} diverged' if len(all_diverged) else ''})")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0)
    return save(fig, path, tight=True)


_EPOCH_KEYS = ("train_accuracy", "test_accuracy", "train_loss", "test_loss")


Run = tuple[pd.Series, dict[str, np.ndarray]]  # a job's row and its per-epoch curves


def _epochs(job: Job) -> dict[str, np.ndarray] | None:
    history = job.record.history if job.record else {}
    found = {k: np.array([np.nan if v is None else v for v in history[k]], dtype=float)
             for k in _EPOCH_KEYS if history.get(k)}
    return found or None


def _config_runs(group: Group) -> list[Run]:
    """Of a group with repeats: each configuration as one run, its curves the means over its ok
    repeats (and their range, as `<key>:low`, `<key>:high`); when there are many, ranks from best to worst."""
    ranked = group.ranked(points=True)
    points = pd.concat([ranked, group.points[~group.points.job.isin(ranked.job)]])
    if len(points) > MAX_RUN_PANELS:
        points = points.iloc[_ranks(len(points), MAX_RUN_PANELS)]
    runs = []
    for _, point in points.iterrows():
        epochs = [e for job in _ok_jobs(group, point) if (e := _epochs(job)) is not None]
        curves: dict[str, np.ndarray] = {}
        for key in _EPOCH_KEYS:
            mean = _mean_curve([(np.arange(len(e[key])), e[key]) for e in epochs if key in e])
            if mean is not None:
                curves[key], curves[f"{key}:low"], curves[f"{key}:high"] = mean[1:]
        if curves:
            runs.append((point, curves))
    return runs


def _epoch_runs(group: Group) -> list[Run]:
    """Runs with per-epoch histories; when there are many, ranks from best to worst."""
    if group.configs is not None:
        return _config_runs(group)
    ranked = group.ranked()
    others = group.rows[~group.rows.job.isin(ranked.job)]
    rows = pd.concat([ranked, others])
    if len(rows) > MAX_HISTORIES:  # the panels pick ranks: read those that can be picked
        rows = rows.iloc[_ranks(len(rows), MAX_HISTORIES)]
    runs = [(row, e) for _, row in rows.iterrows() if (e := _epochs(group.jobs[row.job])) is not None]
    if len(runs) > MAX_RUN_PANELS:
        runs = [runs[i] for i in _ranks(len(runs), MAX_RUN_PANELS)]
    elif len(runs) > FEW_RUNS:  # all of them: in the order of the table (the grid's order)
        order = {name: i for i, name in enumerate(group.rows.job)}
        runs.sort(key=lambda run: order[run[0].job])
    return runs


def _runs(group: Group, n: int) -> str:
    """What the panels' lines are: runs, or configurations drawn as their repeats' mean."""
    if group.configs is None:
        return counted(n, "run")
    return f"{counted(n, 'configuration')}, each the mean of its ok repeats (up to {MAX_REPEATS}; band: their range)"


def _band(ax: Axes, curves: dict[str, np.ndarray], key: str, color: Any) -> None:
    """The range of a configuration's repeats around its mean curve, where the run is one."""
    if f"{key}:low" in curves:
        ax.fill_between(np.arange(1, len(curves[key]) + 1), curves[f"{key}:low"], curves[f"{key}:high"],
                        color=color, alpha=0.15, linewidth=0)


def _epoch_few(plt: ModuleType, group: Group, runs: list[Run], path: Path) -> Path:
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    colors = plt.get_cmap("tab10")(np.arange(len(runs)) % 10)
    for color, (row, e) in zip(colors, runs):
        for ax, kind in zip(axes, ("accuracy", "loss")):
            for split, style in (("train", "-"), ("test", "--")):
                if f"{split}_{kind}" in e:
                    y = e[f"{split}_{kind}"]
                    status = "" if row.status == Status.OK else f" [{row.status}]"
                    ax.plot(np.arange(1, len(y) + 1), y, style, marker="o", markersize=3, color=color,
                            label=f"{group.label(row)}{status}" if split == "train" else None)
                    _band(ax, e, f"{split}_{kind}", color)
    for ax, kind in zip(axes, ("accuracy", "loss")):
        ax.set_xlabel("epoch")
        ax.set_ylabel(kind if kind == "loss" else "accuracy (fraction correct)")
        ax.set_title(f"{kind} per epoch (solid: train, dashed: test)")
        ax.xaxis.get_major_locator().set_params(integer=True)
    axes[1].legend(loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0)
    fig.suptitle(f"{group.title}: training and test accuracy and loss per epoch, {_runs(group, len(runs))}")
    return save(fig, path, tight=True)


def _epoch_multiples(plt: ModuleType, group: Group, runs: list[Run], kind: str, total: int, path: Path) -> Path:
    columns = min(6, len(runs))
    lines = math.ceil(len(runs) / columns)
    title_lines = math.ceil(max(len(group.varied), 1) / 2) + 1
    fig, axes = plt.subplots(lines, columns, figsize=(2.7 * columns, (1.7 + 0.16 * title_lines) * lines + 0.8),
                             sharex=True, sharey=True, squeeze=False)
    for ax, (row, e) in zip(axes.flat, runs):
        for split, style, color in (("train", "-", "#1f77b4"), ("test", "--", "#ff7f0e")):
            if f"{split}_{kind}" in e:
                y = e[f"{split}_{kind}"]
                ax.plot(np.arange(1, len(y) + 1), y, style, color=color, marker="o", markersize=2.5,
                        label=split)
                _band(ax, e, f"{split}_{kind}", color)
        final = row.get(group.objective)
        status = "" if row.status == Status.OK else f" [{row.status}]"
        score = f"\n{group.objective} {group.value_text(row)}" if pd.notna(final) else ""
        ax.set_title(f"{group.label(row, per_line=2)}{status}{score}", fontsize=7.5)
        ax.tick_params(labelsize=7)
        ax.xaxis.get_major_locator().set_params(integer=True)
    for ax in axes.flat[len(runs):]:
        ax.set_visible(False)
    if kind == "loss":
        axes[0, 0].set_yscale("log")  # the panels share it
        plain_log_ticks(axes[0, 0].yaxis)
    for ax in axes[-1]:
        ax.set_xlabel("epoch", fontsize=8)
    for ax in axes[:, 0]:
        ax.set_ylabel(kind if kind == "loss" else "accuracy", fontsize=8)
    axes[0, 0].legend(fontsize=7)
    chosen = f"{len(runs)} of {_runs(group, total)}, best to worst" if total > len(runs) else _runs(group, total)
    fig.suptitle(f"{group.title}: {kind} per epoch, train (solid) and test (dashed); {chosen}")
    # Fixed spacing: tight_layout measures every tick label, seconds for a grid of panels.
    fig.subplots_adjust(left=0.06, right=0.98, bottom=0.6 / fig.get_figheight(),
                        top=1 - (0.5 + 0.16 * title_lines) / fig.get_figheight(), wspace=0.12,
                        hspace=0.2 + 0.12 * title_lines)
    return save(fig, path)


def _most_epochs(runs: list[Run]) -> int:
    return max((len(curve) for _, e in runs for curve in e.values()), default=0)


def epoch_figures(plt: ModuleType, group: Group, out: Path) -> list[Path]:
    """Per-epoch figures of a group with more than one epoch: one epoch is one dot per panel."""
    runs = _epoch_runs(group)
    if _most_epochs(runs) < 2:
        return []
    if len(runs) <= FEW_RUNS:
        return [_epoch_few(plt, group, runs, out / f"epochs_{group.slug}.png")]
    total = len(group.points)  # of many runs, the histories of all are not read: each taken to have epochs
    if group.configs is not None:
        total = len(runs) if len(group.points) <= MAX_RUN_PANELS else total
    elif total <= MAX_HISTORIES:
        total = sum(1 for name in group.rows.job if _epochs(group.jobs[name]) is not None)
    return [_epoch_multiples(plt, group, runs, kind, total, out / f"epochs_{kind}_{group.slug}.png")
            for kind in ("accuracy", "loss")]


