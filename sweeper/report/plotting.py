"""matplotlib, without a display, and saving a figure."""
from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:
    from matplotlib.artist import Artist
    from matplotlib.axis import Axis
    from matplotlib.figure import Figure




def pyplot() -> ModuleType:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"figure.dpi": 100, "savefig.dpi": 110, "font.size": 10, "axes.titlesize": 11,
                         "axes.grid": True, "grid.alpha": 0.3, "legend.fontsize": 8, "figure.titlesize": 12})
    return plt


def save(fig: Figure, path: Path, tight: bool = False, inside: Sequence[Artist] = ()) -> Path:
    """Save and close the figure. tight: crop it to what it draws, making room for what sticks out
    (a legend beside the axes, colorbar labels), at the price of a second drawing pass: seconds for
    a grid of small multiples. `inside`: artists within the axes (a heatmap's hundreds of cell
    labels), which cannot widen that box: left out of measuring it (matplotlib's `set_in_layout`)."""
    import matplotlib.pyplot as plt

    for artist in inside:
        artist.set_in_layout(False)
    fig.savefig(path, bbox_inches="tight" if tight else None)
    plt.close(fig)
    return path


def plain_log_ticks(axis: Axis) -> None:
    """A log axis spanning less than two decades labels the ticks matplotlib labels as plain
    numbers (200, 300, 400; 2.48, 2.5), not as 2x10^2, 3x10^2 or 2.48x10^0: with few powers of ten
    in view, matplotlib labels the ticks between them. An axis over more keeps its powers of ten.
    Call it once the axis' limits are final."""
    from matplotlib.ticker import LogFormatterSciNotation

    class Plain(LogFormatterSciNotation):
        """matplotlib's choice of which ticks to label, each labelled as a plain number."""

        def __call__(self, x: float, pos: int | None = None) -> str:
            return f"{x:g}" if super().__call__(x, pos) else ""

    low, high = sorted(axis.get_view_interval())
    if axis.get_scale() != "log" or low <= 0 or high / low >= 100:
        return
    axis.set_major_formatter(Plain())
    axis.set_minor_formatter(Plain(labelOnlyBase=False))
