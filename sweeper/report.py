"""`python -m sweeper report DIR`: a sweep's tables and figures, in DIR/report/.

The table is collate's (the same rows, read once); the figures are drawn from the records'
histories with matplotlib's non-interactive Agg backend. Each figure is made only when the sweep
has the data for it: loss curves, per-epoch accuracy and loss, heatmaps over two grid-varied
hyperparameters, GPU scaling, and the objective against the trial number of a search.
"""
from __future__ import annotations

import datetime
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from sweeper.hparams import HPARAMS
from sweeper.job.record import write_atomic
from sweeper.job.status import PROBLEM, RECORDED, Status, summary
from sweeper.sweep.collate import collate, write_tables
from sweeper.sweep.jobs import Job, Sweep, read_sweep

REPORT_DIR = "report"
MAX_CURVES = 8          # labelled curves per loss panel: best, worst and ranks between
MAX_DIVERGED = 3        # diverged curves drawn per panel; the rest are counted in the legend
MAX_RUN_PANELS = 30     # per-epoch small multiples: panels per figure
FEW_RUNS = 6            # up to this many runs share one per-epoch panel
MAX_GRID_VALUES = 12    # a hyperparameter with more values than this is not a grid axis
MAX_LISTED = 200        # problem jobs listed by name in report.md
BAND_POINTS = 400       # resolution of the band of all runs behind the loss curves
NOT_AXES = ("seed",)    # repeats, not a grid axis

_STATUS_COLOR = {"diverged": "#d62728", "failed": "#7f7f7f"}
_STATUS_TEXT = {"diverged": "#b00000", "failed": "#333333"}   # other statuses: #555555


@dataclass
class Group:
    """The jobs of one task and one optimizer: one figure of each kind."""

    task: str
    optimizer: str
    objective: str
    direction: str                       # minimize | maximize
    rows: pd.DataFrame                   # its rows of the collated table
    jobs: dict[str, Job]                 # job name -> job, for the histories
    varied: list[str] = field(default_factory=list)  # hyperparameters with more than one value

    @property
    def title(self) -> str:
        return f"{self.task}, {self.optimizer}"

    @property
    def slug(self) -> str:
        return f"{self.task}_{self.optimizer}".replace("/", "_")

    def ranked(self) -> pd.DataFrame:
        """Its ok rows with a finite objective, best first."""
        ok = self.rows[(self.rows.status == "ok") & np.isfinite(pd.to_numeric(self.rows.get(self.objective), errors="coerce"))]
        return ok.sort_values(self.objective, ascending=self.direction != "maximize", kind="stable")

    def label(self, row: pd.Series, per_line: int = 0) -> str:
        """The varied hyperparameters of a row, short: `lr=0.1 beta1=0.9`; per_line: wrapped."""
        parts = [f"{k}={_number(row[k])}" for k in self.varied] or [f"job {row['job']}"]
        if not per_line:
            return " ".join(parts)
        return "\n".join(" ".join(parts[i:i + per_line]) for i in range(0, len(parts), per_line))


# ---------------------------------------------------------------- formatting

def _number(value: Any) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e6:
        return str(int(value))
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _metric_text(metric: str, value: float) -> str:
    if not math.isfinite(value):
        return "nan"
    return f"{value:.4f}" if "accuracy" in metric else f"{value:.3g}"


def _markdown(frame: pd.DataFrame) -> str:
    shown = frame.astype(object).where(frame.notna(), None)
    return shown.to_markdown(index=False, floatfmt=".4g", missingval="")


def _direction(jobs: list[Job], objective: str) -> str:
    """The task's direction, as its records (or its sweep's job list) say; a guess from the
    metric's name only for records of schema 1, which did not say."""
    said = [job.record.direction if job.record and job.record.direction else job.entry.direction if job.entry else None
            for job in jobs]
    said = [d for d in said if d in ("minimize", "maximize")]
    if said:
        return max(set(said), key=said.count)
    return "maximize" if "accuracy" in objective else "minimize"


# ---------------------------------------------------------------- reading

def _groups(table: pd.DataFrame, jobs: list[Job]) -> list[Group]:
    by_name = {job.name: job for job in jobs}
    if not {"task", "optimizer"} <= set(table.columns):
        return []
    groups = []
    for (task, optimizer), rows in table.dropna(subset=["task", "optimizer"]).groupby(["task", "optimizer"]):
        records = [by_name[n] for n in rows.job if by_name[n].record is not None]
        objectives = [job.record.objective for job in records if job.record.objective in rows.columns]
        if not objectives:
            continue
        objective = max(set(objectives), key=objectives.count)
        direction = _direction([by_name[n] for n in rows.job], objective)
        rows = rows.dropna(axis=1, how="all")
        varied = [k for k in HPARAMS if k in rows.columns and rows[k].nunique() > 1]
        groups.append(Group(task, optimizer, objective, direction, rows, {n: by_name[n] for n in rows.job}, varied))
    return groups


# ---------------------------------------------------------------- tables

def _summary(sweep: Sweep) -> list[str]:
    statuses = [job.status for job in sweep.jobs]
    covered = sum(status in RECORDED for status in statuses)
    lines = [f"Covers **{covered} of {len(statuses)} jobs** with a record; {summary(statuses)}."]
    if not sweep.manifests:
        lines.append("No job list (jobs.json) here: the total counts the job directories found, not the jobs planned.")
    for directory, manifest in sweep.manifests.items():
        kind = f"a search of {manifest.total} trials" if manifest.search else f"{manifest.total} jobs planned"
        lines.append(f"Sweep `{directory.name}`: {manifest.sweeper}, {kind}.")
    return lines


def _best_table(groups: list[Group]) -> pd.DataFrame:
    rows = []
    for group in groups:
        ranked = group.ranked()
        if ranked.empty:
            continue
        best = ranked.iloc[0]
        hparams = {k: best[k] for k in HPARAMS if k in ranked.columns and pd.notna(best[k])}
        rows.append({"task": group.task, "optimizer": group.optimizer, "job": best.job,
                     f"best ({group.direction[:3]})": f"{group.objective} = {_metric_text(group.objective, float(best[group.objective]))}",
                     **{k: _number(v) for k, v in hparams.items()},
                     "train_time_s": best.get("train_time_s")})
    return pd.DataFrame(rows)


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
    error = row.get("error")
    if isinstance(error, str):
        return error
    return f"Slurm: {status.text}, without a result.json" if job and job.slurm else status.text


def _problems(table: pd.DataFrame, jobs: list[Job]) -> pd.DataFrame:
    """The first MAX_LISTED jobs that did not finish well, with the reason."""
    by_name = {job.name: job for job in jobs}
    bad = table[table.status.isin([s.value for s in PROBLEM])].head(MAX_LISTED)
    hparams = [k for k in HPARAMS if k in table.columns and table[k].nunique() > 1] or \
        [k for k in HPARAMS if k in bad.columns and bad[k].notna().any()]  # what tells these jobs apart
    rows = [{"job": row.job, "task": row.get("task"), "optimizer": row.get("optimizer"),
             "hyperparameters": " ".join(f"{k}={_number(row[k])}" for k in hparams if pd.notna(row[k])),
             "status": row.status, "reason": _reason(row, by_name.get(row.job))}
            for _, row in bad.iterrows()]
    return pd.DataFrame(rows, columns=["job", "task", "optimizer", "hyperparameters", "status", "reason"])


# ---------------------------------------------------------------- grids

def _grid_pairs(group: Group) -> list[tuple[str, str]]:
    """Pairs of hyperparameters the group varies on a grid: few values each, most cells present."""
    axes = [k for k in group.varied if k not in NOT_AXES and k != "gpus" and group.rows[k].nunique() <= MAX_GRID_VALUES]
    pairs = []
    for i, a in enumerate(axes):
        for b in axes[i + 1:]:
            cells = group.rows[[a, b]].dropna().drop_duplicates()
            if len(cells) >= 0.5 * group.rows[a].nunique() * group.rows[b].nunique():
                pairs.append((a, b))
    return pairs


def _cell(frame: pd.DataFrame, objective: str, direction: str) -> tuple[float, str]:
    """One grid cell's best objective over the other hyperparameters, or why there is none."""
    values = pd.to_numeric(frame.loc[frame.status == "ok", objective], errors="coerce").dropna()
    values = values[np.isfinite(values)]
    if len(values):
        value = float(values.max() if direction == "maximize" else values.min())
        return value, _metric_text(objective, value)
    for status in Status:  # the first status, in Status' order, that a job of the cell has
        if (frame.status == status.value).any():
            return math.nan, status.text
    return math.nan, ""


def _grid(group: Group, a: str, b: str) -> tuple[list, list, np.ndarray, list[list[str]]]:
    rows_values = sorted(group.rows[a].dropna().unique())
    cols_values = sorted(group.rows[b].dropna().unique())
    values = np.full((len(rows_values), len(cols_values)), np.nan)
    texts = [["missing"] * len(cols_values) for _ in rows_values]
    for (va, vb), frame in group.rows.groupby([a, b]):
        i, j = rows_values.index(va), cols_values.index(vb)
        values[i, j], texts[i][j] = _cell(frame, group.objective, group.direction)
    return rows_values, cols_values, values, texts


def _pivot_markdown(a: str, b: str, rows_values: list, cols_values: list, texts: list[list[str]]) -> str:
    frame = pd.DataFrame(texts, columns=[f"{b}={_number(v)}" for v in cols_values])
    frame.insert(0, f"{a} \\ {b}", [_number(v) for v in rows_values])
    return frame.to_markdown(index=False)


# ---------------------------------------------------------------- figures

def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"figure.dpi": 100, "savefig.dpi": 110, "font.size": 10, "axes.titlesize": 11,
                         "axes.grid": True, "grid.alpha": 0.3, "legend.fontsize": 8, "figure.titlesize": 12})
    return plt


def _save(fig, path: Path, tight: bool = False) -> Path:
    # "tight" makes room for what sticks out (a legend beside the axes, colorbar labels), at the
    # price of a second drawing pass: seconds for a grid of small multiples.
    fig.savefig(path, bbox_inches="tight" if tight else None)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


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


def _loss_figure(plt, group: Group, path: Path) -> Path | None:
    ranked = group.ranked()
    curves = {name: c for name in group.rows.job if (c := _curve(group.jobs[name])) is not None}
    ok = [name for name in ranked.job if name in curves]
    diverged = group.rows[(group.rows.status == "diverged") & group.rows.job.isin(list(curves))]
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
                            alpha=0.6, linewidth=0, label=f"range of all {len(ok)} finished runs")
    picks = _ranks(len(ok), MAX_CURVES)
    colors = plt.get_cmap("viridis")(np.linspace(0, 0.9, max(len(picks), 2)))
    rows = ranked.set_index("job", drop=False)
    for color, i in zip(colors, picks):
        row = rows.loc[ok[i]]
        rank = "best" if i == 0 else "worst" if i == len(ok) - 1 else f"#{i + 1}"
        value = _metric_text(group.objective, float(row[group.objective]))
        ax.plot(*curves[ok[i]], color=color, linewidth=1.4,
                label=f"{rank} of {len(ok)}: {group.label(row)} ({group.objective} {value})")
    # Diverged runs climb out of the top: the axis stays on the finished runs' range.
    top = 100 * max((np.nanmax(curves[n][1]) for n in ok), default=np.nan)
    shown = diverged.iloc[_ranks(len(diverged), MAX_DIVERGED)] if len(diverged) else diverged
    ceiling = top / 5  # where a diverged run's last point is marked when it is off the scale
    for _, row in shown.iterrows():
        x, y = curves[row.job]
        if np.isfinite(top):
            y = np.minimum(y, ceiling)
        label = f"diverged at step {int(x[-1])}: {group.label(row)}"
        ax.plot(x, y, color=_STATUS_COLOR["diverged"], linestyle="--", linewidth=1.2, label=label)
        ax.plot(x[-1:], y[-1:], marker="x", color=_STATUS_COLOR["diverged"], markersize=9, mew=2)
    if len(diverged) > len(shown):
        ax.plot([], [], color=_STATUS_COLOR["diverged"], linestyle="--",
                label=f"{len(diverged) - len(shown)} more diverged run{'s' if len(diverged) - len(shown) > 1 else ''} not drawn")
    ax.set_yscale("log")
    exact = any((y == floor).any() for _, y in curves.values())
    if exact:
        ax.set_ylim(bottom=floor / 2)
    if len(diverged) and np.isfinite(top):
        bottom = floor / 2 if exact else min(np.nanmin(curves[n][1]) for n in ok) / 2
        ax.set_ylim(bottom, top)
    ax.set_xlabel("training step")
    ax.set_ylabel("training loss (log scale)" + ("; 0 drawn at the bottom" if exact else ""))
    count = f"{len(picks)} of {len(ok)} finished runs" if len(ok) > len(picks) else f"{len(ok)} finished runs"
    ax.set_title(f"{group.title}: training loss per step ({count}"
                 f"{f', {len(diverged)} diverged' if len(diverged) else ''})")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0)
    return _save(fig, path, tight=True)


_EPOCH_KEYS = ("train_accuracy", "test_accuracy", "train_loss", "test_loss")


def _epochs(job: Job) -> dict[str, np.ndarray] | None:
    history = job.record.history if job.record else {}
    found = {k: np.array([np.nan if v is None else v for v in history[k]], dtype=float)
             for k in _EPOCH_KEYS if history.get(k)}
    return found or None


def _epoch_runs(group: Group) -> list[tuple[pd.Series, dict[str, np.ndarray]]]:
    """Runs with per-epoch histories; when there are many, ranks from best to worst."""
    ranked = group.ranked()
    others = group.rows[~group.rows.job.isin(ranked.job)]
    rows = [row for _, row in pd.concat([ranked, others]).iterrows()]
    runs = [(row, e) for row in rows if (e := _epochs(group.jobs[row.job])) is not None]
    if len(runs) > MAX_RUN_PANELS:
        runs = [runs[i] for i in _ranks(len(runs), MAX_RUN_PANELS)]
    elif len(runs) > FEW_RUNS:  # all of them: in the order of the table (the grid's order)
        order = {name: i for i, name in enumerate(group.rows.job)}
        runs.sort(key=lambda run: order[run[0].job])
    return runs


def _epoch_few(plt, group: Group, runs, path: Path) -> Path:
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    colors = plt.get_cmap("tab10")(np.arange(len(runs)) % 10)
    for color, (row, e) in zip(colors, runs):
        for ax, kind in zip(axes, ("accuracy", "loss")):
            for split, style in (("train", "-"), ("test", "--")):
                if f"{split}_{kind}" in e:
                    y = e[f"{split}_{kind}"]
                    status = "" if row.status == "ok" else f" [{row.status}]"
                    ax.plot(np.arange(1, len(y) + 1), y, style, marker="o", markersize=3, color=color,
                            label=f"{group.label(row)}{status}" if split == "train" else None)
    for ax, kind in zip(axes, ("accuracy", "loss")):
        ax.set_xlabel("epoch")
        ax.set_ylabel(kind if kind == "loss" else "accuracy (fraction correct)")
        ax.set_title(f"{kind} per epoch (solid: train, dashed: test)")
        ax.xaxis.get_major_locator().set_params(integer=True)
    axes[1].legend(loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0)
    fig.suptitle(f"{group.title}: training and test accuracy and loss per epoch, {len(runs)} runs")
    return _save(fig, path, tight=True)


def _epoch_multiples(plt, group: Group, runs, kind: str, total: int, path: Path) -> Path:
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
        final = row.get(group.objective)
        status = "" if row.status == "ok" else f" [{row.status}]"
        score = f"\n{group.objective} {_metric_text(group.objective, float(final))}" if pd.notna(final) else ""
        ax.set_title(f"{group.label(row, per_line=2)}{status}{score}", fontsize=7.5)
        ax.tick_params(labelsize=7)
        ax.xaxis.get_major_locator().set_params(integer=True)
    for ax in axes.flat[len(runs):]:
        ax.set_visible(False)
    if kind == "loss":
        axes[0, 0].set_yscale("log")
    for ax in axes[-1]:
        ax.set_xlabel("epoch", fontsize=8)
    for ax in axes[:, 0]:
        ax.set_ylabel(kind if kind == "loss" else "accuracy", fontsize=8)
    axes[0, 0].legend(fontsize=7)
    chosen = f"{len(runs)} of {total} runs, best to worst" if total > len(runs) else f"{total} runs"
    fig.suptitle(f"{group.title}: {kind} per epoch, train (solid) and test (dashed); {chosen}")
    # Fixed spacing: tight_layout measures every tick label, seconds for a grid of panels.
    fig.subplots_adjust(left=0.06, right=0.98, bottom=0.6 / fig.get_figheight(),
                        top=1 - (0.5 + 0.16 * title_lines) / fig.get_figheight(), wspace=0.12,
                        hspace=0.2 + 0.12 * title_lines)
    return _save(fig, path)


def _epoch_figures(plt, group: Group, out: Path) -> list[Path]:
    runs = _epoch_runs(group)
    if not runs:
        return []
    if len(runs) <= FEW_RUNS:
        return [_epoch_few(plt, group, runs, out / f"epochs_{group.slug}.png")]
    total = sum(1 for name in group.rows.job if _epochs(group.jobs[name]) is not None)
    return [_epoch_multiples(plt, group, runs, kind, total, out / f"epochs_{kind}_{group.slug}.png")
            for kind in ("accuracy", "loss")]


def _heat_text(objective: str, value: float, text: str, crowded: bool) -> str:
    if not math.isfinite(value):
        return text[:4] + "." if crowded and len(text) > 5 else text  # diverged -> dive.
    if "accuracy" in objective:
        return f"{value:.3f}" if crowded else f"{value:.4f}"
    return f"{value:.2g}" if crowded else f"{value:.3g}"


def _heat_scale(objective: str, values: np.ndarray):
    """The values to colour, the colour scale, and whether it is logarithmic (for losses)."""
    from matplotlib.colors import LogNorm, Normalize

    finite = values[np.isfinite(values)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    log = "accuracy" not in objective and high > 0  # losses span decades
    colours = values
    if log and low <= 0:  # an exact fit: coloured as a decade below the smallest loss > 0
        low = float(finite[finite > 0].min()) / 10
        colours = np.where(values <= 0, low, values)
    if log and high / low < 10:
        low, high = low / 3, high * 3
    elif not log and high - low < 1e-3 * max(abs(high), 1e-12):  # all alike: a readable scale
        low, high = low - 0.005 * max(abs(low), 1), high + 0.005 * max(abs(high), 1)
    return colours, (LogNorm(low, high) if log else Normalize(low, high)), log


def _heatmap_figure(plt, group: Group, grids: list, path: Path) -> Path:
    """One heatmap per pair of grid axes, two or three to a row, sized by the number of cells."""
    widest = max(len(g[3]) for g in grids)
    tallest = max(len(g[2]) for g in grids)
    per_row = 2 if widest > 6 else 3
    columns, lines = min(per_row, len(grids)), math.ceil(len(grids) / per_row)
    cell_w, cell_h = max(4.2, 0.62 * widest + 2.2), max(3.4, 0.42 * tallest + 1.6)
    fig, axes = plt.subplots(lines, columns, figsize=(cell_w * columns, cell_h * lines + 0.6), squeeze=False)
    for ax, (a, b, rows_values, cols_values, values, texts) in zip(axes.flat, grids):
        colours, norm, log = _heat_scale(group.objective, values)
        cmap = plt.get_cmap("viridis" if group.direction == "maximize" else "viridis_r").copy()
        cmap.set_bad("#eeeeee")
        image = ax.imshow(np.ma.masked_invalid(colours), cmap=cmap, norm=norm, aspect="auto")
        crowded = len(cols_values) > 6
        for i in range(len(rows_values)):
            for j in range(len(cols_values)):
                value = values[i, j]
                shade = image.norm(colours[i, j]) if np.isfinite(value) else None
                dark = shade is not None and (shade < 0.5 if group.direction == "maximize" else shade > 0.5)
                color = "white" if dark else _STATUS_TEXT.get(texts[i][j], "#555555" if math.isnan(values[i, j]) else "black")
                ax.text(j, i, _heat_text(group.objective, value, texts[i][j], crowded), ha="center", va="center",
                        fontsize=7 if crowded else 8.5, color=color)
        ax.set_xticks(range(len(cols_values)), [_number(v) for v in cols_values], rotation=45 if crowded else 0)
        ax.set_yticks(range(len(rows_values)), [_number(v) for v in rows_values])
        ax.set_xlabel(b)
        ax.set_ylabel(a)
        ax.grid(False)
        others = [k for k in group.varied if k not in (a, b)]
        ax.set_title(f"{a} x {b}" + (f" (best over {', '.join(others)})" if others else ""), fontsize=10)
        bar = fig.colorbar(image, ax=ax, label=group.objective + (" (log scale)" if log else ""), shrink=0.9)
        if not log:
            bar.formatter.set_useOffset(False)
    for ax in axes.flat[len(grids):]:
        ax.set_visible(False)
    better = "higher" if group.direction == "maximize" else "lower"
    fig.suptitle(f"{group.title}: {group.objective} over the grid ({better} is better)")
    fig.subplots_adjust(left=0.6 / fig.get_figwidth() * columns, right=0.98, bottom=0.9 / fig.get_figheight(),
                        top=1 - 0.75 / fig.get_figheight(), wspace=0.35, hspace=0.5)
    return _save(fig, path, tight=True)


# ---------------------------------------------------------------- GPU scaling

def _scaling_table(group: Group) -> pd.DataFrame | None:
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


def _scaling_figure(plt, group: Group, table: pd.DataFrame, path: Path) -> Path:
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
    return _save(fig, path)


# ---------------------------------------------------------------- search

def _trial(name: str) -> int | None:
    last = name.rsplit("/", 1)[-1]
    return int(last) if last.isdigit() else None


def _search_figure(plt, group: Group, path: Path) -> Path | None:
    rows = group.rows.assign(trial=[_trial(n) for n in group.rows.job]).dropna(subset=["trial"]).sort_values("trial")
    values = pd.to_numeric(rows[group.objective], errors="coerce")
    ok = rows[(rows.status == "ok") & np.isfinite(values)]
    if ok.empty:
        return None
    fig, ax = plt.subplots(figsize=(8, 4.4))
    ax.plot(ok.trial, ok[group.objective], "o", color="#1f77b4", label="trial")
    best = ok[group.objective].cummax() if group.direction == "maximize" else ok[group.objective].cummin()
    ax.step(ok.trial, best, where="post", color="#2ca02c", label="best so far")
    top = group.ranked().iloc[0]
    ax.plot([_trial(top.job)], [top[group.objective]], "*", color="#ff7f0e", markersize=16,
            label=f"best: trial {_trial(top.job)}", zorder=3)
    bad = rows[rows.status.isin(["diverged", "failed"])]
    if len(bad):
        low = ok[group.objective].min() if group.direction == "maximize" else ok[group.objective].max()
        ax.plot(bad.trial, [low] * len(bad), "x", color=_STATUS_COLOR["diverged"], markersize=8,
                label="diverged / failed (no value)")
    if "accuracy" not in group.objective and ok[group.objective].min() > 0:
        ax.set_yscale("log")
    ax.set_xlabel("trial number")
    ax.set_ylabel(group.objective)
    better = "higher" if group.direction == "maximize" else "lower"
    ax.set_title(f"{group.title}: {group.objective} by trial ({better} is better)")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend()
    return _save(fig, path)


# ---------------------------------------------------------------- report.md

def _image(lines: list[str], out: Path, path: Path | None, caption: str) -> None:
    if path is not None:
        lines += [f"![{caption}]({path.relative_to(out).as_posix()})", ""]


def _group_sections(plt, group: Group, out: Path, search: bool) -> tuple[list[str], list[Path]]:
    lines, figures = [f"## {group.title}", ""], []
    better = "highest" if group.direction == "maximize" else "lowest"
    lines += [f"{len(group.rows)} jobs; objective `{group.objective}` ({better} is best); varied: "
              f"{', '.join(group.varied) or 'nothing'}.", ""]
    if search:
        ranked = group.ranked()
        if len(ranked):
            best = ranked.iloc[0]
            hparams = ", ".join(f"{k}={_number(best[k])}" for k in group.varied)
            lines += [f"Best trial: **{_trial(best.job)}** (job `{best.job}`), {group.objective} = "
                      f"{_metric_text(group.objective, float(best[group.objective]))}, {hparams}.", ""]
        path = _search_figure(plt, group, out / f"search_{group.slug}.png")
        _image(lines, out, path, f"{group.objective} by trial")
        figures += [path] if path else []
    grids = []
    for a, b in _grid_pairs(group):
        rows_values, cols_values, values, texts = _grid(group, a, b)
        others = [k for k in group.varied if k not in (a, b)]
        lines += [f"### {a} x {b} -> {group.objective}" + (f" (best over {', '.join(others)})" if others else ""),
                  "", _pivot_markdown(a, b, rows_values, cols_values, texts), ""]
        grids.append((a, b, rows_values, cols_values, values, texts))
    if grids:
        path = _heatmap_figure(plt, group, grids, out / f"heatmap_{group.slug}.png")
        _image(lines, out, path, f"heatmaps of {group.objective}")
        figures.append(path)
    scaling = _scaling_table(group)
    if scaling is not None:
        lines += ["### GPU scaling", "", _markdown(scaling), ""]
        path = _scaling_figure(plt, group, scaling, out / f"gpu_scaling_{group.slug}.png")
        _image(lines, out, path, "GPU scaling")
        figures.append(path)
    path = _loss_figure(plt, group, out / f"loss_{group.slug}.png")
    _image(lines, out, path, "training loss curves")
    figures += [path] if path else []
    for path in _epoch_figures(plt, group, out):
        _image(lines, out, path, "per-epoch accuracy and loss")
        figures.append(path)
    return lines, figures


def report(root: Path) -> tuple[Path, list[Path]]:
    """Collate root, write root/report/report.md and its figures; return report.md and the figures."""
    root = Path(root)
    sweep = read_sweep(root)
    jobs = sweep.jobs
    table = collate(root, jobs)
    full = write_tables(root, table)
    groups = _groups(table, jobs)
    out = root / REPORT_DIR
    out.mkdir(exist_ok=True)
    search = any(m.search for m in sweep.manifests.values())
    now = datetime.datetime.now().isoformat(timespec="seconds")
    lines = [f"# Sweep report: {root.resolve().name}", "", f"`{root}`, written {now}.", ""]
    lines += [" ".join(_summary(sweep)), ""]
    best = _best_table(groups)
    if len(best):
        lines += ["## Best per optimizer", "", _markdown(best), ""]
    problems = _problems(table, jobs)
    if len(problems):
        lines += ["## Jobs missing, failed or diverged", "", _markdown(problems), ""]
        total = int(table.status.isin([s.value for s in PROBLEM]).sum())
        if total > len(problems):
            lines += [f"... and {total - len(problems)} more: see results.csv.", ""]
    plt = _pyplot()
    figures: list[Path] = []
    for group in groups:
        section, made = _group_sections(plt, group, out, search)
        lines += section
        figures += made
    lines += ["## All jobs", "", "As `python -m sweeper collate` writes it (results.csv, results.md).", "", full, ""]
    path = out / "report.md"
    write_atomic(path, "\n".join(lines))
    return path, figures
