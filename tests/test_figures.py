"""What the report's figures show, read from their artists (matplotlib's Agg backend): the figures
of `python -m sweeper report DIR` and of the course report, drawn from synthetic sweeps."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from sweeper.__main__ import main
from tests import synthetic


@pytest.fixture
def drawn(monkeypatch):
    """drawn(): the figures written so far, by file name, left open to be read (not closed after saving)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    figures: dict[str, Figure] = {}
    savefig = Figure.savefig

    def keep(self, path, *args, **kwargs):
        figures[Path(path).name] = self
        return savefig(self, path, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", keep)
    monkeypatch.setattr(plt, "close", lambda fig=None: None)
    yield lambda: figures
    for fig in figures.values():
        matplotlib.pyplot.close(fig)


def report(sweep: Path, capsys) -> None:
    assert main(["report", str(sweep)]) == 0
    capsys.readouterr()


def set_metric(job_dir: Path, **metrics) -> None:
    data = json.loads((job_dir / "result.json").read_text())
    data["metrics"].update(metrics)
    (job_dir / "result.json").write_text(json.dumps(data))


def extent(fig, artist):
    return artist.get_window_extent(fig.canvas.get_renderer())


def test_heatmap_labels_keep_clear_of_the_colour_bar_before_them(drawn, capsys, tmp_path):
    sweep = tmp_path / "adam"
    synthetic.adam_grid_sweep(sweep)
    report(sweep, capsys)
    fig = drawn()["heatmap_linear_adam.png"]
    fig.canvas.draw()
    panels = [ax for ax in fig.axes if ax.images]
    assert len(panels) == 3
    for before, after in zip(panels, panels[1:]):
        bar = before.images[0].colorbar.ax
        right_of_bar = max(extent(fig, bar.yaxis.label).x1, *(extent(fig, t).x1 for t in bar.get_yticklabels()))
        left_of_next = min(extent(fig, after.yaxis.label).x0, *(extent(fig, t).x0 for t in after.get_yticklabels()))
        assert left_of_next - right_of_bar >= 0.25 * fig.dpi, (right_of_bar, left_of_next)


def test_a_loss_of_exactly_zero_is_not_coloured_as_the_smallest_loss(drawn, capsys, tmp_path):
    sweep = tmp_path / "adam"
    jobs = synthetic.adam_grid_sweep(sweep)
    exact = jobs.index({"lr": 0.1, "beta1": 0.9, "beta2": 0.9})
    set_metric(sweep / str(exact), final_loss=0.0)
    report(sweep, capsys)
    fig = drawn()["heatmap_linear_adam.png"]
    lr_beta1 = next(ax for ax in fig.axes if ax.get_title().startswith("lr x beta1"))
    rows = [t.get_text() for t in lr_beta1.get_yticklabels()]
    columns = [t.get_text() for t in lr_beta1.get_xticklabels()]
    i, j = rows.index("0.1"), columns.index("0.9")
    image = lr_beta1.images[0]
    shown = image.to_rgba(image.get_array())
    smallest = image.cmap(image.norm(image.norm.vmin))
    assert not np.allclose(shown[i, j], smallest)      # the zero cell is not the minimum's colour
    hatched = [p for p in lr_beta1.patches if p.get_hatch()]
    assert [(p.get_x() + 0.5, p.get_y() + 0.5) for p in hatched] == [(j, i)]
    assert not np.allclose(hatched[0].get_facecolor(), smallest)
    assert "hatched: exactly 0" in image.colorbar.ax.get_ylabel()
    assert any(t.get_text() == "0" for t in lr_beta1.texts)


def course_report(directory: Path, capsys) -> None:
    assert main(["course", "smoke", "--dir", str(directory), "--report-only"]) == 0
    capsys.readouterr()


def tick_texts(ax, which: str = "x") -> list[str]:
    axis = ax.xaxis if which == "x" else ax.yaxis
    return [t.get_text() for t in axis.get_majorticklabels() + axis.get_minorticklabels() if t.get_text()]


def test_every_optimizer_of_a_grid_gets_its_panel_with_readable_ticks(drawn, capsys, tmp_path):
    synthetic.ex2_course(tmp_path / "course")
    course_report(tmp_path / "course", capsys)
    fig = drawn()["ex2_grid_lines.png"]
    fig.canvas.draw()
    panels = {ax.get_title(): ax for ax in fig.axes}
    assert sorted(panels) == ["softmax, adagrad", "softmax, adam", "softmax, gd", "softmax, momentum"]
    assert tick_texts(panels["softmax, gd"]) == ["0.5", "0.7"]
    assert tick_texts(panels["softmax, momentum"]) == ["0.1", "0.5"]
    assert tick_texts(panels["softmax, adagrad"]) == ["0.5"]
    for ax in panels.values():
        assert not any("10^" in t or "times" in t for t in tick_texts(ax) + tick_texts(ax, "y")), tick_texts(ax)
    # momentum varies two: the line is the best over momentum at each lr
    line = next(line for line in panels["softmax, momentum"].lines if line.get_label().startswith("ours, best"))
    assert list(line.get_xdata()) == [0.1, 0.5]


def test_a_published_value_beside_a_reduced_set_up_is_marked_on_the_figure(drawn, capsys, tmp_path):
    synthetic.ex2_course(tmp_path / "reduced", train_samples=500)
    course_report(tmp_path / "reduced", capsys)
    fig = drawn()["ex2_grid_lines.png"]
    for ax in fig.axes:
        assert any(line.get_label() == "published best" for line in ax.lines)
        notes = [t.get_text() for t in ax.texts if "reduced set-up" in t.get_text()]
        assert len(notes) == 1 and "500 of 60,000 train images" in notes[0], ax.get_title()
    # The same jobs on all 60,000 images: compared, nothing to mark.
    synthetic.ex2_course(tmp_path / "full", train_samples=60_000)
    course_report(tmp_path / "full", capsys)
    fig = drawn()["ex2_grid_lines.png"]
    assert not any("reduced" in t.get_text() for ax in fig.axes for t in ax.texts)


def test_exercise_3_figures_mark_a_reduced_set_up_beside_the_published(drawn, capsys, tmp_path):
    synthetic.ex3_course(tmp_path / "course", train_samples=256)
    course_report(tmp_path / "course", capsys)
    figures = drawn()
    ours = next(ax for ax in figures["ex3_1epoch_lr_batch.png"].axes if ax.get_title().startswith("ours"))
    assert [t.get_text() for t in ours.texts if "reduced set-up" in t.get_text()] == [
        "ours: reduced set-up\n(256 of 60,000 train images), not compared"]
    epochs = figures["ex3_40epochs_accuracy_per_epoch.png"].axes[0]
    assert any("reduced set-up" in t.get_text() and "2 of 40 epochs" in t.get_text() for t in epochs.texts)


def test_diverged_runs_that_stop_at_one_point_are_counted_not_stacked(drawn, capsys, tmp_path):
    sweep = tmp_path / "gd"
    lrs = [0.01, 0.05, 0.1, 0.5, 0.6, 0.7, 0.8, 0.9]
    synthetic.write_job_list(sweep, "linear", "gd", [{"lr": lr} for lr in lrs], steps=1000)
    for number, lr in enumerate(lrs):  # the five largest diverge at the same step, off the scale
        synthetic.linear_job(sweep / str(number), "gd", diverge_at=30 if lr >= 0.5 else None, lr=lr)
    synthetic.linear_job(sweep / "2", "gd", diverge_at=20, lr=0.1)  # and one elsewhere
    report(sweep, capsys)
    ax = drawn()["loss_linear_gd.png"].axes[0]
    crosses = [line for line in ax.lines if line.get_marker() == "x" and len(line.get_xdata())]
    counts = [t for t in ax.texts if t.get_gid() == "diverged-count"]
    assert len(crosses) == 2 and [t.get_text() for t in counts] == ["×5"]
    stacked = next(line for line in crosses if line.get_xdata()[0] == 30)
    assert tuple(counts[0].xy) == (stacked.get_xdata()[0], stacked.get_ydata()[0])
    assert "6 diverged" in ax.get_title()


def shown_ticks(axis) -> list[str]:
    """The tick labels drawn inside the axis' view (a locator may place ticks beyond it)."""
    low, high = sorted(axis.get_view_interval())
    ticks = axis.get_major_ticks() + axis.get_minor_ticks()
    return [text for tick in ticks if low <= tick.get_loc() <= high
            for text in [tick.label1.get_text() or tick.label2.get_text()] if text]


def plain(texts: list[str]) -> bool:
    """Every label a plain number (`200`, `2.5`), none a power of ten (`2x10^2`, mathtext)."""
    return all(re.fullmatch(r"-?\d+(\.\d+)?", text) for text in texts)


def test_a_log_axis_within_a_decade_is_labelled_with_plain_numbers(drawn, capsys, tmp_path):
    """Exercise 4's training times (36 to 120 s, published 150 to 650 s) and a loss curve that moves
    within a decade: a few plain ticks, where matplotlib labelled 2x10^2, 3x10^2, 2.48x10^0."""
    synthetic.gpu_sweep(tmp_path / "course" / "ex4_gpus")
    course_report(tmp_path / "course", capsys)
    synthetic.gpu_sweep(tmp_path / "gpus")
    report(tmp_path / "gpus", capsys)
    figures = drawn()
    times = figures["ex4_scaling.png"].axes[0]
    loss = figures["loss_cnn_adam.png"].axes[0]
    for ax in (times, loss):
        ax.figure.canvas.draw()
        assert ax.get_yscale() == "log"
        low, high = ax.get_ylim()
        assert high / low < 10
        texts = shown_ticks(ax.yaxis)
        assert len(texts) >= 2 and plain(texts), texts


def test_a_log_axis_over_decades_keeps_its_powers_of_ten(drawn, capsys, tmp_path):
    synthetic.adam_grid_sweep(tmp_path / "adam")
    report(tmp_path / "adam", capsys)
    ax = drawn()["loss_linear_adam.png"].axes[0]
    ax.figure.canvas.draw()
    texts = shown_ticks(ax.yaxis)
    assert len(texts) >= 3 and all("10^{" in text for text in texts), texts


def test_a_log_colour_bar_within_a_decade_is_labelled_with_plain_numbers(drawn, capsys, tmp_path):
    """The heatmaps of losses that differ by less than ten times: their colour bars' ticks."""
    sweep = tmp_path / "adam"
    jobs = synthetic.adam_grid_sweep(sweep)
    for number in range(len(jobs)):
        set_metric(sweep / str(number), final_loss=0.4 + 0.3 * number / len(jobs))
    report(sweep, capsys)
    fig = drawn()["heatmap_linear_adam.png"]
    fig.canvas.draw()
    bars = [ax.images[0].colorbar.ax for ax in fig.axes if ax.images]
    assert len(bars) == 3
    for bar in bars:
        assert bar.get_yscale() == "log"
        texts = shown_ticks(bar.yaxis)
        assert len(texts) >= 2 and plain(texts), texts
