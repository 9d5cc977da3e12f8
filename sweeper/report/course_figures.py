"""The course report's figures, by kind (`figures:` of an exercise in published.yaml), drawn from
our records with the published numbers beside them where the course gave some."""
from __future__ import annotations

import math
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Callable

import numpy as np

from sweeper.status import Status
from sweeper.report.curve_figures import epoch_figures, loss_figure
from sweeper.report.groups import Group, fmt_number
from sweeper.report.heatmaps import heatmap_figure
from sweeper.report.plotting import plain_log_ticks, save
from sweeper.report.published import Exercise, Match, Verdict
from sweeper.report.scaling import scaling_table
from sweeper.report.tables import grid_pairs, grid_values

if TYPE_CHECKING:
    from matplotlib.axes import Axes

Figure = tuple[Path, str]   # the PNG and its caption


def _loss_curves(plt: ModuleType, exercise: Exercise, groups: list[Group], matches: list[Match], out: Path) -> list[Figure]:
    made = []
    for group in groups:
        path = loss_figure(plt, group, out / f"{exercise.key}_loss_{group.slug}.png")
        if path:
            made.append((path, f"{group.title}: training loss per step, log scale (diverged runs dashed red)"))
    return made


def _x_key(group: Group) -> str | None:
    """The hyperparameter a group's line runs along: lr where the jobs have one, else the first varied."""
    if "lr" in group.rows.columns:
        return "lr"
    return group.varied[0] if group.varied else None


def reduced_note(matches: list[Match]) -> str:
    """What the figure says beside published values whose jobs ran on less than the published set-up,
    as the table's `set-up` column says it: "" where none did."""
    reasons = sorted({reason for m in matches if m.verdict == Verdict.REDUCED for reason in m.reduced})
    return f"ours: {Verdict.REDUCED} ({', '.join(reasons)}), not compared" if reasons else ""


def mark_reduced(ax: Axes, matches: list[Match], below: float = -0.3) -> None:
    """The reduced set-up of our values beside published ones, under the axis label in the table's words."""
    note = reduced_note(matches)
    if note:
        ax.text(0.5, below, note.replace(" (", "\n(", 1), transform=ax.transAxes, fontsize=7.5, color="#b00000",
                ha="center", va="top")


def _log_ticks(ax: Axes, values: list[float]) -> None:
    """A log axis labelled at the values drawn, as plain decimals (not 5x10^-1, 6x10^-1)."""
    from matplotlib.ticker import FixedLocator, NullFormatter, NullLocator

    ticks = sorted({float(v) for v in values})
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.set_xticks(ticks, [fmt_number(v) for v in ticks])
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlim(ticks[0] / (2 if len(ticks) == 1 else 1.25), ticks[-1] * (2 if len(ticks) == 1 else 1.25))


def _line_figure(plt: ModuleType, exercise: Exercise, groups: list[Group], matches: list[Match], path: Path) -> Path:
    """The objective against lr, one panel per optimizer (the best over its other hyperparameters);
    the published best starred, marked where ours ran on a reduced set-up."""
    fig, axes = plt.subplots(1, len(groups), figsize=(4.2 * len(groups), 3.9), squeeze=False)
    for ax, group in zip(axes.flat, groups):
        key = _x_key(group)
        assert key is not None, "_grid: groups with a hyperparameter"
        rows = group.points[group.points.status == Status.OK].dropna(subset=[key, group.objective])  # with repeats: means
        scale = 100 if "accuracy" in group.objective else 1
        others = [k for k in group.varied if k != key]
        best = rows.groupby(key)[group.objective]
        line = (best.max() if group.direction == "maximize" else best.min()).sort_index()
        if others:
            ax.plot(rows[key], rows[group.objective] * scale, "o", color="#1f77b4", alpha=0.3, markersize=4,
                    label=f"ours, each {', '.join(others)}")
        ax.plot(line.index, line.to_numpy() * scale, "o-", color="#1f77b4",
                label="ours" + (f", best over {', '.join(others)}" if others else "") + group.of_repeats)
        if group.configs is not None:  # the standard deviation of each configuration with repeats
            spread = rows[rows[f"{group.objective}_std"].notna()]
            ax.errorbar(spread[key], spread[group.objective] * scale, yerr=spread[f"{group.objective}_std"] * scale,
                        fmt="none", ecolor="#1f77b4", capsize=3, label="± std over its seeds")
        xs = [float(v) for v in line.index]
        ys = list(rows[group.objective] * scale)
        mine = [m for m in matches if m.row.metric == group.objective and m.row.config.get("optimizer") == group.optimizer
                and key in m.row.config]
        for match in mine:
            ax.plot([match.row.config[key]], [match.row.value], "*", color="#d62728", markersize=12, label="published best")
            xs.append(float(match.row.config[key]))
            ys.append(match.row.value)
        mark_reduced(ax, mine)
        if ys and max(ys) - min(ys) < 2 * scale / 100:  # a readable range, not 90.960-91.000
            middle = (max(ys) + min(ys)) / 2
            ax.set_ylim(middle - 1.2 * scale / 100, middle + 1.2 * scale / 100)
        ax.yaxis.get_major_formatter().set_useOffset(False)
        ax.set_xscale("log")
        if xs:
            _log_ticks(ax, xs)
        ax.set_xlabel(key)
        ax.set_ylabel(group.objective + (" (%)" if scale == 100 else ""))
        ax.set_title(group.title)
        ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return save(fig, path)


def _grid(plt: ModuleType, exercise: Exercise, groups: list[Group], matches: list[Match], out: Path) -> list[Figure]:
    made = []
    lines = [g for g in groups if _x_key(g) is not None]
    if lines:
        path = _line_figure(plt, exercise, lines, matches, out / f"{exercise.key}_grid_lines.png")
        made.append((path, "test accuracy against lr, one panel per optimizer (the best over its other hyperparameters); "
                           "the published best starred"))
    for group in groups:
        pairs = grid_pairs(group)
        if not pairs:
            continue
        grids = [(a, b, *grid_values(group, a, b)) for a, b in pairs]
        path = heatmap_figure(plt, group, grids, out / f"{exercise.key}_grid_{group.slug}.png")
        made.append((path, f"{group.title}: {group.objective} over the grid"))
    return made


def _lr_batch_heatmap(plt: ModuleType, exercise: Exercise, groups: list[Group], matches: list[Match], out: Path) -> list[Figure]:
    """Test accuracy over lr x batch size, published and ours side by side, on the same cells."""
    published = {(m.row.config["lr"], m.row.config["batch_size"]): m.row.value for m in matches
                 if m.row.metric == "test_accuracy"}
    ours = {}
    for group in groups:
        for _, row in group.points[group.points.status == Status.OK].iterrows():  # with repeats: their means
            ours[(row["lr"], row["batch_size"])] = 100 * row["test_accuracy"]
    if not ours and not published:
        return []
    lrs = sorted({k[0] for k in (*published, *ours)})
    batches = sorted({k[1] for k in (*published, *ours)})
    fig, axes = plt.subplots(1, 2, figsize=(12, 0.45 * len(lrs) + 2.4))
    cmap = plt.get_cmap("viridis").with_extremes(bad="#eeeeee")
    values_all = [v for v in (*published.values(), *ours.values()) if math.isfinite(v)]
    low, high = (min(values_all), max(values_all)) if values_all else (0, 100)
    for ax, (name, cells) in zip(axes, (("published", published), ("ours", ours))):
        grid = np.array([[cells.get((lr, b), np.nan) for b in batches] for lr in lrs])
        image = ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, vmin=low, vmax=high, aspect="auto")
        for i in range(len(lrs)):
            for j in range(len(batches)):
                text = f"{grid[i, j]:.1f}" if np.isfinite(grid[i, j]) else ""
                ax.text(j, i, text, ha="center", va="center", fontsize=8,
                        color="white" if np.isfinite(grid[i, j]) and grid[i, j] < (low + high) / 2 else "black")
        ax.set_xticks(range(len(batches)), [fmt_number(b) for b in batches])
        ax.set_yticks(range(len(lrs)), [fmt_number(lr) for lr in lrs])
        ax.set_xlabel("batch size")
        ax.set_ylabel("lr")
        ax.grid(False)
        ax.set_title(f"{name}: test accuracy (%) after one epoch")
        fig.colorbar(image, ax=ax, shrink=0.9)
        if name == "ours":
            mark_reduced(ax, [m for m in matches if m.row.metric == "test_accuracy"], below=-0.22)
    fig.tight_layout()
    path = save(fig, out / f"{exercise.key}_lr_batch.png")
    return [(path, "test accuracy after one epoch over lr x batch size: published (left), ours (right); empty: not run")]


def _accuracy_per_epoch(plt: ModuleType, exercise: Exercise, groups: list[Group], matches: list[Match], out: Path) -> list[Figure]:
    """Test accuracy per epoch of every run; the published "99% shortly after the 5th epoch" marked."""
    runs = [(group, row) for group in groups for _, row in group.rows.iterrows()
            if (record := group.jobs[row.job].record) and record.history.get("test_accuracy")]
    if not runs:
        return []
    fig, ax = plt.subplots(figsize=(9, 4.8))
    for group, row in runs:
        record = group.jobs[row.job].record
        assert record is not None, "runs: jobs with records"
        curve = record.history["test_accuracy"]
        images = record.metrics.get("train_samples")
        ax.plot(range(1, len(curve) + 1), [100 * v if v is not None else np.nan for v in curve], "o-", markersize=3,
                label=f"lr={fmt_number(row['lr'])} batch {fmt_number(row['batch_size'])}, {images:,} training images")
    for match in matches:
        if match.row.metric.startswith("epochs_to_"):
            target = 100 * float(match.row.metric.rsplit("_", 1)[1])
            ax.axhline(target, color="#555555", linestyle=":", linewidth=1)
            ax.axvline(match.row.value - 1, color="#d62728", linestyle="--", linewidth=1,
                       label=f"published: {match.row.statement} (lr={fmt_number(match.row.config.get('lr'))}, "
                             f"batch {match.row.config.get('batch_size')})")
    ax.set_xlabel("epoch")
    ax.set_ylabel("test accuracy (%)")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_title("test accuracy per epoch")
    ax.legend(loc="lower right", fontsize=8)
    mark_reduced(ax, matches, below=-0.14)
    path = save(fig, out / f"{exercise.key}_accuracy_per_epoch.png", tight=True)
    return [(path, "test accuracy per epoch; the published 99% marker dashed")]


def _ideal_label(label: str) -> str:
    """The legend of a series' ideal line: `ideal, from our first point` for `ours (...)`."""
    whose = "our" if label.startswith("ours") else f"the {label.split(' ')[0]}"
    return f"ideal, from {whose} first point"


def _scaling(plt: ModuleType, exercise: Exercise, groups: list[Group], matches: list[Match], out: Path) -> list[Figure]:
    """Training time, speedup and efficiency against GPUs: ours (GPUs or CPU replicas) and published."""
    published = sorted((m.row.config["gpus"], m.row.value) for m in matches if m.row.metric == "train_time_s")
    ours = next((t for g in groups if (t := scaling_table(g)) is not None), None)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    series = [("published (GPUs)", np.array([g for g, _ in published], float), np.array([t for _, t in published]), "#d62728")]
    if ours is not None:
        kind = "CPU replicas" if (ours.devices == "CPU").all() else "GPUs"
        series.append((f"ours ({kind})", ours.gpus.to_numpy(float), ours.train_time_s.to_numpy(float), "#1f77b4"))
    for label, gpus, times, color in series:
        if not len(gpus):
            continue
        left.plot(gpus, times, "o-", color=color, label=label)
        left.plot(gpus, times[0] * gpus[0] / gpus, ":", color=color, label=_ideal_label(label))
        speedup = times[0] / times
        right.plot(gpus, speedup, "o-", color=color, label=label)
        for g, s in zip(gpus, speedup):
            right.annotate(f"{s / (g / gpus[0]):.0%}", (g, s), textcoords="offset points", xytext=(6, -10), fontsize=8, color=color)
    every = sorted({g for _, gpus, _, _ in series for g in gpus})
    if every:
        right.plot(every, [g / every[0] for g in every], "--", color="#555555", label="ideal")
    left.set_yscale("log")
    left.set_ylabel("training time (s, log scale)")
    left.set_title("training time against devices")
    right.set_ylabel("speedup (labels: parallel efficiency)")
    right.set_title("speedup")
    for ax in (left, right):
        ax.set_xlabel("GPUs (or CPU replicas)")
        ax.set_xticks(every, [str(int(g)) for g in every])
        ax.legend(fontsize=8)
    mark_reduced(left, [m for m in matches if m.row.metric == "train_time_s"], below=-0.16)
    plain_log_ticks(left.yaxis)
    fig.tight_layout()
    path = save(fig, out / f"{exercise.key}_scaling.png")
    return [(path, "training time, speedup and parallel efficiency against devices: ours beside the published")]


def _epochs(plt: ModuleType, exercise: Exercise, groups: list[Group], matches: list[Match], out: Path) -> list[Figure]:
    made = []
    for group in groups:
        for path in epoch_figures(plt, group, out):
            target = path.with_name(f"{exercise.key}_{path.name}")
            path.replace(target)
            made.append((target, f"{group.title}: accuracy and loss per epoch, one run per device count"))
    return made


FIGURES: dict[str, Callable[[ModuleType, Exercise, list[Group], list[Match], Path], list[Figure]]] = {
    "loss_curves": _loss_curves, "grid": _grid, "lr_batch_heatmap": _lr_batch_heatmap,
    "accuracy_per_epoch": _accuracy_per_epoch, "scaling": _scaling, "epochs": _epochs,
}
