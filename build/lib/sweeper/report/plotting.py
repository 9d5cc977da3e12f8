"""matplotlib, without a display, and saving a figure."""
from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure




def pyplot() -> ModuleType:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"figure.dpi": 100, "savefig.dpi": 110, "font.size": 10, "axes.titlesize": 11,
                         "axes.grid": True, "grid.alpha": 0.3, "legend.fontsize": 8, "figure.titlesize": 12})
    return plt


def save(fig: Figure, path: Path, tight: bool = False) -> Path:
    # "tight" makes room for what sticks out (a legend beside the axes, colorbar labels), at the
    # price of a second drawing pass: seconds for a grid of small multiples.
    fig.savefig(path, bbox_inches="tight" if tight else None)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


