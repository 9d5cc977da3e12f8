"""Collation: every job under a directory, as one table (results.csv, results.md)."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweeper.files import write_atomic
from sweeper.status import Status
from sweeper.sweep.by_config import by_config as configurations
from sweeper.sweep.jobs import Job, NotASweep, read_jobs, read_sweep, sweep_of_job, sweeps_in

if TYPE_CHECKING:  # pandas is imported when a table is made: `sweeper` (run.py's every job) goes without it
    import pandas as pd

# Metrics in the order the table shows them; other scalar metrics follow, sorted by name.
METRIC_ORDER = ("final_loss", "W", "b", "test_accuracy", "test_loss", "train_loss",
                "train_time_s", "fused", "samples_per_s", "params", "replicas")


class _Names:
    """The hyperparameters' names of a table, each placed after the name that comes before it in the
    record that first has it (gd's `lr, steps` and adam's `lr, beta1, ..., steps` give `lr, beta1, ..., steps`)."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.seen: set[tuple[str, ...]] = set()  # the records' name lists met so far (a sweep has few)

    def update(self, names: dict[str, Any]) -> None:
        key = tuple(names)
        if key in self.seen:
            return
        self.seen.add(key)
        for i, name in enumerate(key):
            if name not in self.names:
                after = self.names.index(key[i - 1]) + 1 if i else 0
                self.names.insert(after, name)


def _as_cell(hparams: dict[str, Any]) -> dict[str, Any]:
    """A hyperparameter that is a list or a mapping (a task's `layers=[32,16]`) as its text, compact
    as the override that set it: a cell that groups, sorts and labels like any other value."""
    return {name: json.dumps(value, separators=(",", ":")) if isinstance(value, (list, dict)) else value
            for name, value in hparams.items()}


def _row(job: Job, hparams: _Names) -> dict[str, Any]:
    """The job's row; `hparams` gathers the hyperparameters' names."""
    row: dict[str, Any] = {"job": job.name}
    record = job.summary
    if record is None:  # what its sweep's job list says it runs with
        entry = job.entry
        hparams.update(entry.hparams if entry else {})
        known = {"task": entry.task, "optimizer": entry.optimizer, **_as_cell(entry.hparams)} if entry else {}
        return {**row, **known, "status": job.status.value, **({"error": job.error} if job.error else {})}
    hparams.update(record.hparams)
    row.update(task=record.task, optimizer=record.optimizer, **_as_cell(record.hparams), status=job.status.value)
    row.update({k: v for k, v in record.metrics.items() if isinstance(v, (int, float, str, type(None)))})
    if job.status == Status.DIVERGED:  # its record stores a value that is not finite as null: `inf`, as its line says
        row.update({k: math.inf for k, v in record.metrics.items() if v is None})
    row["train_time_s"] = record.train_time_s
    if record.fused:  # train_time_s is then a share of the group's time: say so beside it
        row["fused"] = record.fused
    if record.error:
        row["error"] = record.error
    return row


def _column_order(columns: list[str], hparams: list[str]) -> list[str]:
    head = ["job", "task", "optimizer", *hparams, "status"]
    metrics = [c for c in METRIC_ORDER if c in columns]
    rest = sorted(c for c in columns if c not in head and c not in metrics and c != "error")
    return [c for c in head if c in columns] + metrics + rest + (["error"] if "error" in columns else [])


def with_columns(table: pd.DataFrame, by_job: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """The table with more columns for its jobs (`collate --cost`), by job name; after the others."""
    import pandas as pd

    extra = pd.DataFrame([{"job": name, **values} for name, values in by_job.items()])
    if extra.empty:
        return table
    return table.merge(extra, on="job", how="left")


def collate(root: Path, jobs: list[Job] | None = None) -> pd.DataFrame:
    """One row per job under root, sorted by task, optimizer, then hyperparameters.

    Jobs of a sweep's job list that have not started are rows too (`not_started`). `jobs`: what
    read_jobs(root) returned, for a caller that needs the records as well and reads each once.
    """
    import pandas as pd

    jobs = read_jobs(root) if jobs is None else jobs
    names = _Names()
    rows = [_row(job, names) for job in jobs]
    hparams = [name for name in names.names if name not in ("job", "task", "optimizer", "status")]
    table = pd.DataFrame(rows, columns=None if rows else ["job", "status"])
    table = table[_column_order(list(table.columns), hparams)]
    keys = [c for c in ("task", "optimizer", *hparams, "job") if c in table.columns]
    try:
        return table.sort_values(keys, na_position="last", kind="stable").reset_index(drop=True)
    except TypeError:  # a key with values of several types (a task's 8 and another's "wide"): as they came
        return table.sort_values(["task", "optimizer", "job"], na_position="last", kind="stable").reset_index(drop=True)


def results(directory: str | Path, by_config: bool = False) -> pd.DataFrame:
    """The table of a sweep (or of a folder of sweeps): the rows `python -m sweeper collate DIR`
    writes, as a DataFrame, for a notebook (`sweeper.results("outputs/multirun/...")`); by_config:
    the rows of `collate --by-config` (a configuration's repeats as one row, sweeper/sweep/by_config.py).
    Writes nothing. Raises NotASweep (a ValueError, one line) for a folder that holds no sweep or is one job of one."""
    root = Path(directory)
    sweep = sweep_of_job(root)
    if sweep is not None:
        raise NotASweep(f"{root} is one job of the sweep {sweep}: give the sweep's folder")
    table = collate(root, read_sweep(root, sweeps_in(root)).jobs)
    return configurations(table) if by_config else table


# Above this many rows results.md is not padded to align its columns: tabulate types, formats and
# pads each cell in Python (0.1 s for 1,000 rows, 1.5 s for 10,000, 9 s for 100,000), and no one
# reads a table that long by eye; its cells are the same (tests/test_index.py).
ALIGNED_ROWS = 1_000


def _cell(value: Any) -> str:
    if value is None:
        return ""
    return format(value, ".6g") if isinstance(value, float) else str(value).replace("|", "\\|")


def plain_markdown(shown: pd.DataFrame) -> str:
    """A Markdown table, its columns not padded to align."""
    lines = ["| " + " | ".join(map(str, shown.columns)) + " |", "|" + "|".join("---" for _ in shown.columns) + "|"]
    # Column by column on plain lists: pandas' map and itertuples cost 2 s at 100,000 rows.
    cells = [[format(value, ".6g") if type(value) is float else _cell(value) for value in shown[column].tolist()]
             for column in shown.columns]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in zip(*cells)])


def write_tables(root: Path, table: pd.DataFrame) -> str:
    """Write root/results.csv and root/results.md; return the Markdown table."""
    shown = table.astype(object).where(table.notna(), None)  # empty cells, not "nan"
    markdown = plain_markdown(shown) if len(table) > ALIGNED_ROWS else \
        str(shown.to_markdown(index=False, floatfmt=".6g", missingval=""))
    write_atomic(root / "results.csv", table.to_csv(index=False))
    write_atomic(root / "results.md", markdown + "\n")
    return markdown

