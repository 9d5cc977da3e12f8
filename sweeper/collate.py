"""Collation: every job record under a directory, as one table (results.csv, results.md)."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterator

import pandas as pd

from sweeper.config import HPARAMS
from sweeper.record import RECORD_NAME, Record, read_record, write_atomic

# Metrics in the order the table shows them; other scalar metrics follow, sorted by name.
METRIC_ORDER = ("final_loss", "W", "b", "test_accuracy", "test_loss", "train_loss",
                "train_time_s", "samples_per_s", "params", "replicas")


def job_dirs(root: Path) -> Iterator[Path]:
    """Every Hydra job directory (it holds `.hydra/`) or directory with a record under root."""
    seen = set()
    for marker in ("**/.hydra", f"**/{RECORD_NAME}"):
        for path in root.glob(marker):
            job = path.parent
            if job not in seen:
                seen.add(job)
                yield job


def _row(root: Path, job: Path) -> dict:
    row: dict = {"job": job.relative_to(root).as_posix() or "."}
    path = job / RECORD_NAME
    if not path.exists():
        return {**row, "status": "missing"}
    try:
        record: Record = read_record(path)
    except ValueError as e:
        print(f"warning: {e}", file=sys.stderr)
        return {**row, "status": "corrupt", "error": str(e)}
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


def collate(root: Path) -> pd.DataFrame:
    """One row per job under root, sorted by optimizer then hyperparameters."""
    rows = [_row(root, job) for job in job_dirs(root)]
    table = pd.DataFrame(rows, columns=None if rows else ["job", "status"])
    table = table[_column_order(list(table.columns))]
    keys = [c for c in ("task", "optimizer", *HPARAMS, "job") if c in table.columns]
    return table.sort_values(keys, na_position="last", kind="stable").reset_index(drop=True)


def write_tables(root: Path, table: pd.DataFrame) -> str:
    """Write root/results.csv and root/results.md; return the Markdown table."""
    markdown = table.to_markdown(index=False, floatfmt=".6g")
    write_atomic(root / "results.csv", table.to_csv(index=False))
    write_atomic(root / "results.md", markdown + "\n")
    return markdown
