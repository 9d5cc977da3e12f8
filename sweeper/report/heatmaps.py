"""Heatmaps of the objective over two grid-varied hyperparameters."""
from __future__ import annotations

import math
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np

from sweeper.report.groups import Group, STATUS_TEXT, fmt_number
from sweeper.report.plotting import plain_log_ticks, save
from sweeper.report.tables import Grid

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.colors import Normalize


def _heat_text(objective: str, value: float, text: str, crowded: bool) -> str:
    if not math.isfinite(value):
        return text[:4] + "." if crowded and len(text) > 5 else text  # diverged -> dive.
    if "accuracy" in objective:
        return f"{value:.3f}" if crowded else f"{value:.4f}"
    return f"{value:.2g}" if crowded else f"{value:.3g}"


def _heat_scale(objective: str, values: np.ndarray) -> tuple[np.ndarray, Normalize, bool]:
    """The values to colour, the colour scale, and whether it is logarithmic (for losses). On a log
    scale a loss of exactly 0 (an exact fit) has no colour (NaN): it is drawn as a cell of its own."""
    from matplotlib.colors import LogNorm, Normalize

    finite = values[np.isfinite(values)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    log = "accuracy" not in objective and high > 0  # losses span decades
    colours = values
    if log and low <= 0:
        low = float(finite[finite > 0].min())
        colours = np.where(values <= 0, np.nan, values)
    if log and high / low < 10:
        low, high = low / 3, high * 3
    elif not log and high - low < 1e-3 * max(abs(high), 1e-12):  # all alike: a readable scale
        low, high = low - 0.005 * max(abs(low), 1), high + 0.005 * max(abs(high), 1)
    return colours, (LogNorm(low, high) if log else Normalize(low, high)), log


ZERO_FACE, ZERO_HATCH = "white", "////"   # a cell of exactly 0 on a log scale: not the smallest colour
GAP_IN = 1.7    # inches between panels: a colour bar's label and the next panel's tick labels and label


def _zero_cells(ax: Axes, cells: list[tuple[int, int]]) -> None:
    from matplotlib.patches import Rectangle

    for i, j in cells:
        ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, facecolor=ZERO_FACE, edgecolor="#2ca02c", hatch=ZERO_HATCH,
                               linewidth=0, label="exactly 0 (below any log scale)"))


def heatmap_figure(plt: ModuleType, group: Group, grids: list[Grid], path: Path) -> Path:
    """One heatmap per pair of grid axes, two or three to a row, sized by the number of cells."""
    widest = max(len(g[3]) for g in grids)
    tallest = max(len(g[2]) for g in grids)
    per_row = 2 if widest > 6 else 3
    columns, lines = min(per_row, len(grids)), math.ceil(len(grids) / per_row)
    cell_w, cell_h = max(4.2, 0.62 * widest + 2.2), max(3.4, 0.42 * tallest + 1.6)
    fig, axes = plt.subplots(lines, columns, figsize=(cell_w * columns + 0.8 * (columns - 1), cell_h * lines + 0.6), squeeze=False)
    labels = []  # the cells' texts: inside their axes, left out of measuring the figure's tight box (save)
    for ax, (a, b, rows_values, cols_values, values, texts) in zip(axes.flat, grids):
        colours, norm, log = _heat_scale(group.objective, values)
        cmap = plt.get_cmap("viridis" if group.direction == "maximize" else "viridis_r").with_extremes(bad="#eeeeee")
        image = ax.imshow(np.ma.masked_invalid(colours), cmap=cmap, norm=norm, aspect="auto")
        shades = np.asarray(image.norm(colours))  # each cell's place on the scale, all at once (a call per cell: 0.2 s)
        zeros = [(i, j) for i, j in zip(*np.nonzero(values == 0))] if log else []
        _zero_cells(ax, zeros)
        crowded = len(cols_values) > 6
        for i in range(len(rows_values)):
            for j in range(len(cols_values)):
                value = values[i, j]
                shade = shades[i, j] if np.isfinite(colours[i, j]) else None
                dark = shade is not None and (shade < 0.5 if group.direction == "maximize" else shade > 0.5)
                color = "white" if dark else STATUS_TEXT.get(texts[i][j], "#555555" if math.isnan(values[i, j]) else "black")
                labels.append(ax.text(j, i, _heat_text(group.objective, value, texts[i][j], crowded), ha="center",
                                      va="center", fontsize=7 if crowded else 8.5, color=color))
        ax.set_xticks(range(len(cols_values)), [fmt_number(v) for v in cols_values], rotation=45 if crowded else 0)
        ax.set_yticks(range(len(rows_values)), [fmt_number(v) for v in rows_values])
        ax.set_xlabel(b)
        ax.set_ylabel(a)
        ax.grid(False)
        others = [k for k in group.varied if k not in (a, b)]
        ax.set_title(f"{a} x {b}" + (f" (best over {', '.join(others)})" if others else ""), fontsize=10)
        zero = "\nhatched: exactly 0" if zeros else ""
        bar = fig.colorbar(image, ax=ax, label=group.objective + (" (log scale)" if log else "") + zero, shrink=0.9)
        if log:
            plain_log_ticks(bar.ax.yaxis)
        else:
            bar.formatter.set_useOffset(False)
    for ax in axes.flat[len(grids):]:
        ax.set_visible(False)
    better = "higher" if group.direction == "maximize" else "lower"
    fig.suptitle(f"{group.title}: {group.objective} over the grid ({better} is better{group.of_repeats})")
    left, right = 0.6 / fig.get_figwidth() * columns, 0.98
    slot = (fig.get_figwidth() * (right - left) - GAP_IN * (columns - 1)) / columns   # inches per panel
    fig.subplots_adjust(left=left, right=right, bottom=0.9 / fig.get_figheight(),
                        top=1 - 0.75 / fig.get_figheight(), wspace=GAP_IN / slot, hspace=0.5)
    return save(fig, path, tight=True, inside=labels)


