"""The course report: every published table with our value beside each published one, and the
figures, drawn from the records of a course directory (`python -m sweeper course PROFILE`).

Numbers come from the records (read through sweeper/sweep/jobs.py), the published column from
published.yaml; nothing is typed in here. Written to DIR/report/: report.md with its PNGs, and
report.html, the same with the figures inlined.
"""
from __future__ import annotations

import datetime
from collections import Counter
from pathlib import Path
from types import ModuleType

import pandas as pd

from sweeper import allocation
from sweeper.words import counted
from sweeper.course_runner import Profile
from sweeper.files import write_atomic
from sweeper.status import Status, summary
from sweeper.report.course_figures import FIGURES
from sweeper.report.document import Document
from sweeper.report.groups import REPORT_DIR, Group, fmt_number, read_groups
from sweeper.report.layers import layer_table
from sweeper.report.plotting import pyplot
from sweeper.report.published import Exercise, Match, Verdict, compare, load_published
from sweeper.sweep.collate import collate
from sweeper.sweep.jobs import Job, read_sweep
from sweeper.job.manifest import MANIFEST_NAME

VERDICTS = (Verdict.REPRODUCED, Verdict.NOT_REPRODUCED, Verdict.REDUCED, Verdict.NOT_RUN)


def _sweep_of(job: Job) -> str:
    return job.name.split("/")[0]


def _summary_line(matches: list[Match]) -> str:
    counts = Counter(m.verdict for m in matches)
    return (f"{counts[Verdict.REPRODUCED]} of {len(matches)} published figures reproduced (within the tolerance, "
            f"or the bound holds), {counts[Verdict.NOT_REPRODUCED]} not, {counts[Verdict.REDUCED]} run on a reduced "
            f"set-up (shown, not compared), {counts[Verdict.NOT_RUN]} not run")


def _configuration(exercise: Exercise, match: Match) -> str:
    return " ".join(f"{k}={fmt_number(v)}" for k, v in match.row.config.items()
                    if k not in exercise.shared or exercise.shared[k] != v)


SPREAD = "published within our spread"   # of a row with repeats: where one more of our runs would land, 95%


def _table(exercise: Exercise, matches: list[Match]) -> pd.DataFrame:
    rows = []
    repeats = any(len(m.values) > 1 for m in matches)
    for m in matches:
        row = {"configuration": _configuration(exercise, m)}
        row |= {f"{k} (published)": fmt_number(v) for k, v in m.row.info.items()}
        row |= {"metric": m.row.metric, "published": m.row.published_text, "ours": m.ours_text}
        row |= {SPREAD: m.spread_text} if repeats else {}
        row |= {"difference": m.difference_text, "tolerance": m.row.tolerance_text, "verdict": m.verdict,
                "set-up": "; ".join(m.reduced) or ("as published" if m.job is not None else ""),
                "job": " ".join(j.name for j in m.repeats) if len(m.repeats) > 1 else m.job.name if m.job is not None else ""}
        rows.append(row)
    return pd.DataFrame(rows)


def _best_of_grid(exercise: Exercise, groups: list[Group], matches: list[Match]) -> pd.DataFrame:
    """Our best of each optimizer's grid beside the published best."""
    rows = []
    for group in groups:
        ranked = group.ranked(points=True)
        published = [m for m in matches if m.row.config.get("optimizer") == group.optimizer and m.row.metric == group.objective]
        if ranked.empty and not published:
            continue
        best = ranked.iloc[0] if len(ranked) else None
        rows.append({
            "optimizer": group.optimizer,
            "published best": _configuration(exercise, published[0]) if published else "",
            f"published {group.objective}": published[0].row.published_text if published else "",
            "our best": _hparams_text(best) if best is not None else "none finished",
            f"our {group.objective}": _percent(group, best) if best is not None else "",
            "train_loss": _train_loss(group, best) if best is not None else "",
            "jobs in our grid": len(group.rows),
        })
    return pd.DataFrame(rows)


def _train_loss(group: Group, best: pd.Series) -> str:
    """The best point's training loss: its job's, or the mean of its configuration's ok repeats."""
    jobs = best.jobs if group.configs is not None else [best.job]
    rows = group.rows[group.rows.job.isin(jobs) & (group.rows.status == Status.OK)]
    values = rows.train_loss.dropna() if "train_loss" in rows else pd.Series(dtype=float)
    return f"{values.mean():.3g}" if len(values) else ""


def _percent(group: Group, best: pd.Series) -> str:
    """A best job's accuracy in %, or a configuration's mean ± std (n) where the grid has repeats."""
    value = f"{100 * best[group.objective]:.2f}%"
    std = best.get(f"{group.objective}_std")
    if group.configs is None or std is None or not pd.notna(std):
        return value
    return f"{value} ± {100 * std:.2f} pp (n={best.n_ok})"


# What the course's optimizer files read (conf/optimizer/): the published numbers give these.
COURSE_OPTIMIZER_HPARAMS = ("lr", "momentum", "beta1", "beta2", "epsilon")


def _hparams_text(row: pd.Series) -> str:
    """The optimizer's hyperparameters of a table row: lr=0.5 momentum=0.9."""
    return " ".join(f"{k}={fmt_number(row[k])}" for k in COURSE_OPTIMIZER_HPARAMS
                    if k in row and pd.notna(row[k]))


def _where(jobs: list[Job]) -> list[str]:
    records = [job.summary for job in jobs if job.summary is not None]
    hosts = Counter(r.host for r in records)
    versions = Counter(" ".join(f"{k} {v}" for k, v in sorted(r.versions.items())) for r in records)
    devices = Counter(str(d) for r in records for d in (r.metrics.get("devices") or []))
    slurm = sum(1 for r in records if allocation.ran_under_scheduler(r.environment))
    commits = Counter((r.git_commit or "unknown")[:10] for r in records)
    return ["hosts: " + (', '.join(f"{h} ({counted(n, 'job')})" for h, n in hosts.most_common()) or 'none yet'),
            f"devices of the CNN jobs: {', '.join(devices) or 'none'}; the other jobs ran on the CPU",
            f"versions: {'; '.join(versions) or 'none yet'}",
            f"Slurm: {slurm} of {counted(len(records), 'job')} ran in a Slurm job" if slurm else "Slurm: none (local processes)",
            f"code: commit {', '.join(commits) or 'unknown'}"]


def _exercise_section(doc: Document, plt: ModuleType, exercise: Exercise, matches: list[Match], groups: list[Group],
                      out: Path) -> list[Path]:
    doc.heading(exercise.title)
    doc.text(exercise.setup)
    doc.text(f"**{_summary_line(matches)}.**")
    doc.table(_table(exercise, matches))
    if exercise.best_of_grid:
        doc.heading("Our best of each optimizer's grid, beside the published best", 3)
        doc.table(_best_of_grid(exercise, groups, matches))
    if exercise.notes:
        doc.heading("Known differences", 3)
        doc.bullets(exercise.notes)
    if exercise.model:
        layers, total = layer_table(exercise.model)
        doc.heading("The model", 3)
        doc.text(f"`{exercise.model}()`, as Keras builds it: **{total:,} parameters** (the published summary: 3,274,634).")
        doc.table(layers)
    figures = []
    for kind in exercise.figures:
        for path, caption in FIGURES[kind](plt, exercise, groups, matches, out):
            doc.image(path, caption)
            figures.append(path)
    return figures


def course_report(directory: Path, profile: Profile) -> tuple[Path, Path, list[Path]]:
    """Write DIR/report/report.md (with PNGs) and report.html; return them and the figures."""
    directory = Path(directory)
    names = {sweep.name for sweep in profile.sweeps}
    jobs = [job for job in read_sweep(directory).jobs if _sweep_of(job) in names]
    table = collate(directory, jobs)
    out = directory / REPORT_DIR
    out.mkdir(parents=True, exist_ok=True)
    exercises = load_published()
    doc = Document(f"The course, reproduced: profile `{profile.name}`")
    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    doc.text(f"{profile.description}. Written {now} from the records under `{directory}`.")
    started = sum((directory / s.name / MANIFEST_NAME).exists() for s in profile.sweeps)
    doc.bullets([f"jobs: {summary(job.status for job in jobs)}, in {started} of the profile's {len(names)} sweeps "
                 f"(a sweep not started yet has no job list)", *_where(jobs)])
    matched = {e.key: [compare(row, [j for j in jobs if _exercise_of(profile, j) == e.key], _none(profile, directory, e.key))
                       for row in e.rows] for e in exercises}
    doc.heading("Summary")
    doc.bullets([f"{e.title}: {_summary_line(matched[e.key])}" for e in exercises])
    doc.text("A row run on fewer images or epochs than published, or on CPU replicas for GPUs, is shown "
             "and marked, never compared with the published figure. Tolerances are per row (`tolerance`).")
    plt = pyplot()
    figures: list[Path] = []
    for exercise in exercises:
        rows = table[table.job.map(lambda name: _exercise_of_name(profile, name) == exercise.key)]
        groups = read_groups(rows, jobs) if len(rows) else []
        figures += _exercise_section(doc, plt, exercise, matched[exercise.key], groups, out)
    doc.heading("Sweeps of this profile")
    doc.table(_sweeps_table(profile, jobs))
    markdown, page = out / "report.md", out / "report.html"
    write_atomic(markdown, doc.markdown(out))
    write_atomic(page, doc.html())
    return markdown, page, figures


def _none(profile: Profile, directory: Path, exercise: str) -> str:
    """What a row without a job says: its sweeps have not all started, or the profile has no such job."""
    mine = [s for s in profile.sweeps if s.exercise == exercise]
    started = all((directory / s.name / MANIFEST_NAME).exists() for s in mine)
    return "not in this profile" if mine and started else "not run yet"


def _exercise_of_name(profile: Profile, name: str) -> str | None:
    sweep = name.split("/")[0]
    return next((s.exercise for s in profile.sweeps if s.name == sweep), None)


def _exercise_of(profile: Profile, job: Job) -> str | None:
    return _exercise_of_name(profile, job.name)


def _sweeps_table(profile: Profile, jobs: list[Job]) -> pd.DataFrame:
    rows = []
    for sweep in profile.sweeps:
        mine = [job for job in jobs if _sweep_of(job) == sweep.name]
        rows.append({"sweep": sweep.name, "exercise": sweep.exercise, "preset": sweep.preset,
                     "overrides": " ".join(sweep.overrides + profile.overrides),
                     "jobs": summary(job.status for job in mine) if mine else "not run yet"})
    return pd.DataFrame(rows)
