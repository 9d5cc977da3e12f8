"""`python -m sweeper report DIR`: a sweep's tables and figures, in DIR/report/.

The table is collate's (the same rows, read once); the figures are drawn from the records'
histories with matplotlib's non-interactive Agg backend. Each figure is made only when the sweep
has the data for it: loss curves, per-epoch accuracy and loss, the best per value of each varied
hyperparameter, heatmaps over two grid-varied hyperparameters, GPU scaling, and the objective against the trial number of a search.
"""
from __future__ import annotations

import datetime
from pathlib import Path
from types import ModuleType

from sweeper.words import counted
from sweeper.files import write_atomic
from sweeper.status import PROBLEM
from sweeper.sweep.collate import collate, write_tables
from sweeper.sweep.cost import summary as summary_of_cost
from sweeper.sweep.jobs import read_sweep
from sweeper.report.curve_figures import epoch_figures, loss_figure
from sweeper.report.groups import Group, REPORT_DIR, fmt_number, markdown_table, metric_text, read_groups
from sweeper.report.heatmaps import heatmap_figure
from sweeper.report.values import section as per_value_section
from sweeper.report.plotting import pyplot
from sweeper.report.scaling import scaling_figure, scaling_table, unit
from sweeper.report.search_figure import search_figure, trial_of
from sweeper.report.tables import best_table, grid_pairs, grid_values, pivot_markdown, problems_table, summary_lines

SHOWN_ROWS = 10_000  # a longer sweep's report names results.csv and results.md rather than holding its table


def _image(lines: list[str], out: Path, path: Path | None, caption: str) -> None:
    if path is not None:
        lines += [f"![{caption}]({path.relative_to(out).as_posix()})", ""]


def _group_sections(plt: ModuleType, group: Group, out: Path, search: bool) -> tuple[list[str], list[Path]]:
    lines, figures = [f"## {group.title}", ""], []
    better = "highest" if group.direction == "maximize" else "lowest"
    lines += [f"{counted(len(group.rows), 'job')}; objective `{group.objective}` ({better} is best); varied: "
              f"{', '.join(group.varied) or 'nothing'}.", ""]
    if group.configs is not None:
        lines[-2] += (f" Repeats: {counted(len(group.configs), 'configuration')}, up to {group.seeds} seeds each; the tables "
                      "and figures below are by configuration, each the mean over its ok repeats (± their standard deviation).")
    if search:
        ranked = group.ranked()
        if len(ranked):
            best = ranked.iloc[0]
            hparams = ", ".join(f"{k}={fmt_number(best[k])}" for k in group.varied)
            lines += [f"Best trial: **{trial_of(best.job)}** (job `{best.job}`), {group.objective} = "
                      f"{metric_text(group.objective, float(best[group.objective]))}, {hparams}.", ""]
        path = search_figure(plt, group, out / f"search_{group.slug}.png")
        _image(lines, out, path, f"{group.objective} by trial")
        figures += [path] if path else []
    if not search:  # a search's trials draw values, not a grid's: the objective by trial tells it
        per_value, path = per_value_section(plt, group, out)
        lines += per_value
        _image(lines, out, path, f"best {group.objective} per value")
        figures += [path] if path else []
    grids = []
    for a, b in grid_pairs(group):
        rows_values, cols_values, values, texts = grid_values(group, a, b)
        others = [k for k in group.varied if k not in (a, b)]
        mean = "mean " if group.configs is not None else ""
        lines += [f"### {a} x {b} -> {mean}{group.objective}" + (f" (best over {', '.join(others)})" if others else ""),
                  "", pivot_markdown(a, b, rows_values, cols_values, texts), ""]
        grids.append((a, b, rows_values, cols_values, values, texts))
    if grids:
        path = heatmap_figure(plt, group, grids, out / f"heatmap_{group.slug}.png")
        _image(lines, out, path, f"heatmaps of {group.objective}")
        figures.append(path)
    scaling = scaling_table(group)
    if scaling is not None:
        heading = "GPU scaling" if unit(scaling) == "GPUs" else f"Scaling over {unit(scaling)}"
        lines += [f"### {heading}", "", markdown_table(scaling), ""]
        path = scaling_figure(plt, group, scaling, out / f"gpu_scaling_{group.slug}.png")
        _image(lines, out, path, heading)
        figures.append(path)
    path = loss_figure(plt, group, out / f"loss_{group.slug}.png")
    _image(lines, out, path, "training loss curves")
    figures += [path] if path else []
    for path in epoch_figures(plt, group, out):
        _image(lines, out, path, "per-epoch accuracy and loss")
        figures.append(path)
    return lines, figures


def report(root: Path, within: list[Path] | None = None) -> tuple[Path, list[Path]]:
    """Collate root (the sweeps `within` it only, where given: sweeper/sweep/jobs.py sweeps_in),
    write root/report/report.md and its figures; return report.md and the figures."""
    root = Path(root)
    sweep = read_sweep(root, within)
    jobs = sweep.jobs
    table = collate(root, jobs)
    full = write_tables(root, table)
    groups = read_groups(table, jobs)
    out = root / REPORT_DIR
    out.mkdir(exist_ok=True)
    search = any(m.search for m in sweep.manifests.values())
    now = datetime.datetime.now().isoformat(timespec="seconds")
    lines = [f"# Sweep report: {root.resolve().name}", "", f"`{root}`, written {now}.", ""]
    lines += [" ".join(summary_lines(sweep)), ""]
    best = best_table(groups)
    if len(best):
        lines += ["## Best per optimizer", "", markdown_table(best), ""]
    problems = problems_table(table, jobs)
    if len(problems):
        lines += ["## Jobs missing, failed or diverged", "", markdown_table(problems), ""]
        total = int(table.status.isin([s.value for s in PROBLEM]).sum())
        if total > len(problems):
            lines += [f"... and {total - len(problems)} more: see results.csv.", ""]
    plt = pyplot()
    figures: list[Path] = []
    for group in groups:
        section, made = _group_sections(plt, group, out, search)
        lines += section
        figures += made
    cost = summary_of_cost(root, jobs)
    lines += ["## Cost", "", cost, ""]
    lines += ["## All jobs", ""]
    if len(table) > SHOWN_ROWS:  # a page of 100,000 rows is read by no one: the files have them
        lines += [f"{counted(len(table), 'job')}: see results.csv and results.md beside the sweep.", ""]
    else:
        lines += ["As `python -m sweeper collate` writes it (results.csv, results.md).", "", full, ""]
    path = out / "report.md"
    write_atomic(path, "\n".join(lines))
    return path, figures
