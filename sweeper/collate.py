"""Collation: every job record under a directory, as one table (results.csv, results.md)."""
from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path
from typing import Iterator

import pandas as pd

from sweeper.config import HPARAMS
from sweeper.plan import MULTIRUN_NAME, Plan, read_plan
from sweeper.record import RECORD_NAME, Record, read_record, write_atomic

# Metrics in the order the table shows them; other scalar metrics follow, sorted by name.
METRIC_ORDER = ("final_loss", "W", "b", "test_accuracy", "test_loss", "train_loss",
                "train_time_s", "samples_per_s", "params", "replicas")


@dataclasses.dataclass
class Job:
    """One job under the collated directory, read once: its record when it has a whole one."""

    name: str                       # its directory relative to the collated root
    path: Path
    status: str                     # the record's, or missing | corrupt
    record: Record | None = None
    error: str | None = None        # why it is corrupt, or "not started"
    settings: dict | None = None    # for a job not started: what its sweep will run it with


def _walk(root: Path) -> tuple[list[Path], list[Path]]:
    """Job directories (they hold `.hydra/` or a record) and sweep directories under root.

    A job directory is not searched further: its own files (TensorBoard logs, ...) can be many.
    """
    jobs, sweeps = [], []
    for directory, subdirs, files in os.walk(root):
        if MULTIRUN_NAME in files:
            sweeps.append(Path(directory))
        if ".hydra" in subdirs or RECORD_NAME in files:
            jobs.append(Path(directory))
            subdirs.clear()
    return jobs, sweeps


def job_dirs(root: Path) -> Iterator[Path]:
    """Every Hydra job directory (it holds `.hydra/`) or directory with a record under root."""
    yield from _walk(Path(root))[0]


def read_job(root: Path, job: Path) -> Job:
    """The job in directory `job` (named relative to root): its record, or why it has none."""
    name = job.relative_to(root).as_posix() or "."
    path = job / RECORD_NAME
    if not path.exists():
        return Job(name, job, "missing")
    try:
        record = read_record(path)
    except ValueError as e:
        print(f"warning: {e}", file=sys.stderr)
        return Job(name, job, "corrupt", error=str(e))
    return Job(name, job, record.status, record, record.error)


def _not_started(root: Path, plan: Plan, found: set[Path]) -> list[Job]:
    """The planned jobs of a sweep whose directory does not exist yet."""
    return [Job(job.directory.relative_to(root).as_posix(), job.directory, "missing", error="not started",
                settings=job.settings)
            for job in plan.jobs if job.directory is not None and job.directory not in found]


def read_sweep(root: Path) -> tuple[list[Job], list[Plan]]:
    """Every job under root, with its record, and the jobs its sweeps have not started yet;
    the plans of those sweeps (their multirun.yaml)."""
    root = Path(root)
    directories, sweeps = _walk(root)
    jobs = [read_job(root, job) for job in directories]
    found = {job.path: job for job in jobs}
    searches = {job.parent for job in directories} - set(sweeps)  # a search writes no multirun.yaml
    plans = [plan for plan in map(read_plan, sorted({*sweeps, *searches})) if plan is not None]
    for plan in plans:
        for planned in plan.jobs:  # what a job without a record was to run
            job = found.get(planned.directory)
            if job is not None and job.record is None:
                job.settings = planned.settings
        jobs.extend(_not_started(root, plan, set(found)))
    return jobs, plans


def read_jobs(root: Path) -> list[Job]:
    """Every job under root, with its record; with the jobs of its sweeps not started yet."""
    return read_sweep(root)[0]


def _row(job: Job) -> dict:
    row: dict = {"job": job.name}
    if job.record is None:
        return {**row, **(job.settings or {}), "status": job.status, **({"error": job.error} if job.error else {})}
    record = job.record
    row.update(task=record.task, optimizer=record.optimizer, **record.hparams, status=record.status)
    row.update({k: v for k, v in record.metrics.items() if isinstance(v, (int, float, str, type(None)))})
    row["train_time_s"] = record.train_time_s
    if record.error:
        row["error"] = record.error
    return row


def _column_order(columns: list[str]) -> list[str]:
    head = ["job", "task", "optimizer", *HPARAMS, "status"]
    metrics = [c for c in METRIC_ORDER if c in columns]
    rest = sorted(c for c in columns if c not in head and c not in metrics and c != "error")
    return [c for c in head if c in columns] + metrics + rest + (["error"] if "error" in columns else [])


def collate(root: Path, jobs: list[Job] | None = None) -> pd.DataFrame:
    """One row per job under root, sorted by optimizer then hyperparameters.

    Jobs that a sweep's multirun.yaml plans but that have no directory yet are rows too:
    `missing`, error "not started". `jobs`: what read_jobs(root) returned, for a caller that
    needs the records as well and reads each once.
    """
    rows = [_row(job) for job in (read_jobs(root) if jobs is None else jobs)]
    table = pd.DataFrame(rows, columns=None if rows else ["job", "status"])
    table = table[_column_order(list(table.columns))]
    keys = [c for c in ("task", "optimizer", *HPARAMS, "job") if c in table.columns]
    return table.sort_values(keys, na_position="last", kind="stable").reset_index(drop=True)


def write_tables(root: Path, table: pd.DataFrame) -> str:
    """Write root/results.csv and root/results.md; return the Markdown table."""
    shown = table.astype(object).where(table.notna(), None)  # empty cells, not "nan"
    markdown = shown.to_markdown(index=False, floatfmt=".6g", missingval="")
    write_atomic(root / "results.csv", table.to_csv(index=False))
    write_atomic(root / "results.md", markdown + "\n")
    return markdown
