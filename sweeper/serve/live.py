"""A sweep as its page sees it: one snapshot, read at most once per interval and shared by every
request, and the questions the page asks of it (a page of the table, one job, the figures).

The sweep is read by the one reader (sweeper/sweep/jobs.py read_sweep) into collate's table; paging,
sorting and filtering happen here on that table, so that the page sends 50 rows of 100,000.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import operator
import re
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as StillReading
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from sweeper.job.record import RECORD_NAME, record_data
from sweeper.launching.backend import backend_of
from sweeper.status import RECORDED, Status, summary
from sweeper.report.curve_figures import epoch_figures, loss_figure
from sweeper.report.groups import Group, read_groups
from sweeper.report.heatmaps import heatmap_figure
from sweeper.report.plotting import pyplot
from sweeper.report.scaling import scaling_figure, scaling_table
from sweeper.report.search_figure import search_figure
from sweeper.report.values import per_value_figure
from sweeper.report.tables import best_table, grid_pairs, grid_values
from sweeper.sweep.cost import sweep_cost
from sweeper.sweep.collate import collate
from sweeper.sweep.jobs import Job, Sweep, read_sweep, warnings_kept
from sweeper.sweep.status_command import pending_lines

POLL_S = 2.0        # the page asks again this often
REFRESH_S = 1.5     # the sweep is read again at most this often (below POLL_S: each poll sees a fresh read)
WAIT_S = 1.0        # a request waits this long for a read under way, then answers from the last one
PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
LOG_LINES = 100
LOG_BYTES = 65536   # a run.log's tail is read from its last bytes only: logs can be large
RUN_LOG = "run.log"  # Hydra's job log: <script name>.log in the job directory (run.py)
JOB_FILES = (RECORD_NAME, RUN_LOG, ".hydra/config.yaml", ".hydra/overrides.yaml")


class BadQuery(ValueError):
    """A sort or filter that the table cannot answer; the message is one line for the page."""


@dataclasses.dataclass
class Snapshot:
    """The sweep as read once: its jobs, collate's table and what the sweep's page shows above it."""

    sweep: Sweep
    table: pd.DataFrame
    jobs: dict[str, Job]
    overview: dict[str, Any]
    taken: float        # time.monotonic() when read
    took: float = 0.0   # seconds the read took


def _frame(frame: pd.DataFrame) -> dict[str, Any]:
    """A table as JSON: its columns and rows of values (NaN as null)."""
    data: dict[str, Any] = json.loads(frame.to_json(orient="split", index=False, double_precision=15))
    return {"columns": data["columns"], "rows": data["data"]}


def _cost(root: Path, sweep: Sweep) -> dict[str, Any]:
    """The sweep's cost (sweeper/sweep/cost.py) from what is written: the page asks Slurm for no
    accounting, since it writes nothing into the sweep (`cost` and the sweep's end do)."""
    cost = sweep_cost(root, sweep.jobs, fetch=False)
    return {"headline": cost.headline, "notes": cost.notes,
            "table": _frame(cost.table) if cost.table is not None else {"columns": [], "rows": []}}


def _overview(root: Path, sweep: Sweep, table: pd.DataFrame) -> dict[str, Any]:
    statuses = [job.status for job in sweep.jobs]
    counts = Counter(statuses)
    return {
        "root": str(root),
        "summary": summary(statuses),
        "counts": [{"status": s.value, "text": s.text, "count": counts[s]} for s in Status if counts[s]],
        "total": len(statuses),
        "recorded": sum(status in RECORDED for status in statuses),
        "best": _frame(best_table(read_groups(table, sweep.jobs))),
        "cost": _cost(root, sweep),
        "pending": pending_lines(sweep),
        "scheduler_answered": sweep.scheduler_answered,
        "sweeps": [{"dir": str(directory), "sweeper": manifest.sweeper, "search": manifest.search,
                    "total": manifest.total} for directory, manifest in sweep.manifests.items()],
        "poll_s": POLL_S,
    }


def read_snapshot(root: Path, within: list[Path], index_elsewhere: Path | None = None) -> Snapshot:
    sweep = read_sweep(root, within, index_elsewhere)
    table = collate(root, sweep.jobs)
    return Snapshot(sweep, table, {job.name: job for job in sweep.jobs}, _overview(root, sweep, table),
                    time.monotonic())


class Live:
    """The latest snapshot of the sweep under root, read again when a request finds it older than
    `every` seconds; one read at a time, its result shared by all requests."""

    def __init__(self, root: Path, within: list[Path], every: float = REFRESH_S) -> None:
        self.root, self.within, self.every = Path(root), within, every
        self._lock = threading.Lock()
        self._latest: Snapshot | None = None
        self._reading: Future[Snapshot] | None = None
        self._reader = ThreadPoolExecutor(1, thread_name_prefix="sweep-reader")
        self._warned: set[str] = set()
        # The index lines a read adds go here, not into the sweep, which the page does not change
        # (a read-only sweep is served as fast): read_sweep's `index_elsewhere`.
        self.index = Path(tempfile.mkdtemp(prefix="sweeper-serve-index-"))

    def start(self) -> None:
        """Read the sweep now, before the first request asks (a large sweep takes seconds)."""
        with self._lock:
            if self._latest is None and self._reading is None:
                self._reading = self._reader.submit(self._read)

    def _read(self) -> Snapshot:
        started = time.monotonic()
        said: list[str] = []
        try:
            with warnings_kept() as said:  # the reader's warnings: once each, not at every read
                snapshot = read_snapshot(self.root, self.within, self.index)
            snapshot.took = time.monotonic() - started
            with self._lock:
                self._latest = snapshot
            return snapshot
        finally:
            with self._lock:
                self._reading = None
            for line in said:
                if line not in self._warned:
                    self._warned.add(line)
                    print(line, file=sys.stderr)

    def close(self) -> None:
        shutil.rmtree(self.index, ignore_errors=True)

    def snapshot(self) -> Snapshot:
        """The latest snapshot; a new read starts when it is `every` seconds old (or as old as two
        reads take: a read of a large sweep is not started again and again)."""
        with self._lock:
            latest, reading = self._latest, self._reading
            due = latest is None or time.monotonic() - latest.taken >= max(self.every, 2 * latest.took)
            if reading is None and due:
                reading = self._reading = self._reader.submit(self._read)
        if latest is None:  # the first read: nothing to show before it
            assert reading is not None
            return reading.result()
        if reading is None or latest.took > WAIT_S:  # a read that takes long: the last one now, it at a later poll
            return latest
        try:
            return reading.result(timeout=WAIT_S)
        except StillReading:
            return latest


# -- the table ---------------------------------------------------------------------------------------

_CONDITION = re.compile(r"^([\w.]+)(<=|>=|!=|=|<|>)(.+)$")
_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "=": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _condition(table: pd.DataFrame, token: str) -> pd.Series:
    """The rows that meet one condition such as `lr>=0.01` or `optimizer=adam`."""
    match = _CONDITION.match(token)
    if match is None:
        raise BadQuery(f"{token!r}: write a condition as COLUMN=VALUE, or with !=, <, <=, >, >= (lr>=0.01)")
    column, op, text = match.groups()
    if column not in table.columns:
        raise BadQuery(f"{token!r}: no column {column!r}; the table has {', '.join(map(str, table.columns))}")
    number = _number(text)
    numbers = pd.to_numeric(table[column], errors="coerce")
    if number is not None and numbers.notna().any():
        result: pd.Series = _OPERATORS[op](numbers, number)
        return result
    if op not in ("=", "!="):
        raise BadQuery(f"{token!r}: {text!r} is not a number" if number is None else
                       f"{token!r}: {column} holds text here: compare it with = or !=")
    text_result: pd.Series = _OPERATORS[op](table[column].astype(str), text)
    return text_result


def _sort_key(column: pd.Series) -> pd.Series:
    """Numbers as numbers where every value of the column is one, else as text: a column of mixed
    types cannot be compared as it is."""
    numbers = pd.to_numeric(column, errors="coerce")
    if numbers.notna().sum() == column.notna().sum():
        return numbers
    return column.astype(str).where(column.notna())


def table_page(table: pd.DataFrame, *, sort: str | None = None, descending: bool = False,
               statuses: list[str] | None = None, where: str = "", page: int = 0, size: int = PAGE_SIZE) -> dict[str, Any]:
    """One page of the table: its rows that have one of `statuses` (all when none) and meet every
    condition of `where` (`lr>=0.01 optimizer=adam`), sorted by the column `sort` (collate's order
    when None)."""
    mask = pd.Series(True, index=table.index)
    if statuses:
        mask &= table["status"].isin(statuses)
    for token in where.split():
        mask &= _condition(table, token)
    rows = table[mask]
    if sort:
        if sort not in table.columns:
            raise BadQuery(f"no column {sort!r} to sort by")
        rows = rows.sort_values(sort, ascending=not descending, na_position="last", kind="stable", key=_sort_key)
    size = min(max(size, 1), MAX_PAGE_SIZE)
    pages = max(1, -(-len(rows) // size))
    page = min(max(page, 0), pages - 1)
    shown = rows.iloc[page * size:(page + 1) * size]
    return {**_frame(shown), "total": len(table), "matched": len(rows), "page": page, "pages": pages, "size": size}


# -- a job -------------------------------------------------------------------------------------------

def inside(root: Path, relative: str) -> Path | None:
    """The file that `relative` names under root; None when there is none, or when it is not under
    root: an absolute path, `..`, or a symbolic link that leads out of root."""
    if not relative or "\0" in relative or Path(relative).is_absolute():
        return None
    top = Path(root).resolve()
    try:
        path = (top / relative).resolve()
        return path if path.is_relative_to(top) and path.is_file() else None
    except OSError:  # a name too long, a loop of links: no such file
        return None


def _log_tail(root: Path, job: Job) -> list[str]:
    if job.path is None:
        return []
    path = inside(root, (job.path / RUN_LOG).relative_to(root).as_posix())
    if path is None:
        return []
    with path.open("rb") as log:
        log.seek(max(0, path.stat().st_size - LOG_BYTES))
        return log.read().decode(errors="replace").splitlines()[-LOG_LINES:]


def _record(job: Job) -> dict[str, Any] | None:
    if job.record is None:
        return None
    return record_data(job.record)


def job_detail(root: Path, snapshot: Snapshot, name: str) -> dict[str, Any] | None:
    """What the job's page shows; None when the sweep has no job of that name."""
    job = snapshot.jobs.get(name)
    if job is None:
        return None
    record, entry = job.record, job.entry
    files = [] if job.path is None else [
        relative for file in JOB_FILES
        if inside(root, relative := (job.path / file).relative_to(root).as_posix()) is not None]
    return {
        "name": job.name, "status": job.status.value, "status_text": job.status.text,
        "error": record.error if record is not None and record.error else job.error,
        "overrides": job.overrides, "scheduler": backend_of(entry.scheduler).title if entry and entry.scheduler else None,
        "scheduler_state": job.scheduler_state, "scheduler_job_id": entry.scheduler_job_id if entry else None,
        "sweep": str(job.sweep) if job.sweep else None,
        "hparams": record.hparams if record else entry.hparams if entry else {},
        "metrics": record.metrics if record else {},
        "log": _log_tail(root, job), "files": files, "record": _record(job),
        "version": _version([job]),
    }


# -- the report's figures ----------------------------------------------------------------------------

def _version(jobs: list[Job]) -> str:
    """What the figures of these jobs are drawn from: each job's status and its record's end."""
    text = "\n".join(f"{job.name} {job.status.value} {job.summary.finished if job.summary else ''}" for job in jobs)
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def _group_figures(plt: Any, group: Group, out: Path, search: bool) -> list[Path | None]:
    """The report's figures of one group, in the report's order (sweeper/report/__init__.py)."""
    made: list[Path | None] = []
    if search:
        made.append(search_figure(plt, group, out / f"search_{group.slug}.png"))
    else:
        made.append(per_value_figure(plt, group, out))
    grids = [(a, b, *grid_values(group, a, b)) for a, b in grid_pairs(group)]
    if grids:
        made.append(heatmap_figure(plt, group, grids, out / f"heatmap_{group.slug}.png"))
    scaling = scaling_table(group)
    if scaling is not None:
        made.append(scaling_figure(plt, group, scaling, out / f"gpu_scaling_{group.slug}.png"))
    made.append(loss_figure(plt, group, out / f"loss_{group.slug}.png"))
    return made + list(epoch_figures(plt, group, out))


class Figures:
    """The report's figures, drawn by the report's own code into a folder of the server's own
    (nothing is written into the sweep), again only when what they show has changed."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="sweeper-serve-"))
        self._lock = threading.Lock()  # pyplot is not thread-safe
        self._drawn: dict[str, list[str]] = {}   # folder name -> its figures' names

    def _draw(self, key: str, table: pd.DataFrame, jobs: list[Job], search: bool) -> list[str]:
        with self._lock:
            if key not in self._drawn:
                out = self.folder / key
                shutil.rmtree(out, ignore_errors=True)  # what a draw that failed half way left
                out.mkdir()
                plt = pyplot()
                made = [path for group in read_groups(table, jobs) for path in _group_figures(plt, group, out, search)]
                self._drawn[key] = [f"{key}/{path.name}" for path in made if path is not None]
            return self._drawn[key]

    def of_sweep(self, snapshot: Snapshot) -> list[str]:
        key = f"sweep-{_version(snapshot.sweep.jobs)}"
        search = any(manifest.search for manifest in snapshot.sweep.manifests.values())
        names = self._draw(key, snapshot.table, snapshot.sweep.jobs, search)
        self._forget("sweep-", keep=key)
        return names

    def of_job(self, snapshot: Snapshot, name: str) -> list[str]:
        job = snapshot.jobs[name]
        key = f"job-{hashlib.sha1(name.encode()).hexdigest()[:12]}-{_version([job])}"
        return self._draw(key, snapshot.table[snapshot.table["job"] == name], [job], search=False)

    def _forget(self, prefix: str, keep: str) -> None:
        with self._lock:
            for key in [k for k in self._drawn if k.startswith(prefix) and k != keep]:
                del self._drawn[key]
                shutil.rmtree(self.folder / key, ignore_errors=True)

    def path(self, name: str) -> Path | None:
        """A figure drawn here, by the name of_sweep or of_job gave; None for any other name."""
        with self._lock:
            known = any(name in names for names in self._drawn.values())
        return self.folder / name if known else None

    def close(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
