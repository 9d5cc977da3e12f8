"""A sweep's jobs, read once: its job list (jobs.json), each job's record, and each job's status.

`collate`, `status`, `report`, `resume` and a sweep's end all read jobs here. A directory holding
several sweeps (or single runs) is read sweep by sweep; job directories that no job list names
(a sweep from before job lists, single runs) are read from their records alone.

A listed job's record is taken from its sweep's index (sweeper/job/index.py) while the index
describes the record's file as it is now (one stat a job), else read from the file and added to
the index; its history is read only when asked for (`Job.record`).
"""
from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import hashlib
import os
import re
import sys
from pathlib import Path
from typing import Iterator

import msgspec

from sweeper.errors import BadInput
from sweeper.job.owner import OWNER_NAME
from sweeper.job.record import RECORD_NAME, Record, parsed_record, read_record, read_record_keyed, record_json
from sweeper.status import RECORDED, Status, decide
from sweeper.job.index import FileKey, Indexed, append, file_key, line, read_index
from sweeper.job.manifest import MANIFEST_NAME, ListedJob, Manifest, read_manifest
from sweeper.job.standing import standing
from sweeper.launching.backend import backend_of


# Where a reader's warnings go: stderr, or the list of whoever keeps them (warnings_kept). A
# context variable, so that the page's reading thread keeps its own and no other thread's output.
_KEPT: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("sweeper_read_warnings", default=None)


def warn(message: str) -> None:
    """A reader's warning (a damaged record or job list): on stderr, or kept (warnings_kept)."""
    kept = _KEPT.get()
    if kept is None:
        print(f"warning: {message}", file=sys.stderr)
    else:
        kept.append(f"warning: {message}")


@contextlib.contextmanager
def warnings_kept() -> Iterator[list[str]]:
    """The warnings of the reads within, kept in the list it gives rather than printed."""
    kept: list[str] = []
    token = _KEPT.set(kept)
    try:
        yield kept
    finally:
        _KEPT.reset(token)


class Job(msgspec.Struct, gc=False):
    """One job under the directory read: where it is, what it is, how it stands. Not tracked by
    Python's cycle collector (it holds no cycle): 100,000 of them are read at once."""

    name: str                       # its directory relative to the directory read
    path: Path | None               # None: a search's trial not asked for yet
    status: Status
    found: Record | bytes | None = None  # its record, whole or without its history (bytes: the index's JSON of it)
    error: str | None = None        # why its record is corrupt
    entry: ListedJob | None = None   # what its sweep's job list says of it
    scheduler_state: str | None = None  # its scheduler's word for it, where the launcher recorded its job id
    sweep: Path | None = None       # the sweep directory whose list names it
    whole: bool = True              # False: `found` came from the index, without its history

    @property
    def summary(self) -> Record | None:
        """Its record, its history left out where the sweep's index gave it: parsed the first time
        it is asked for (`status` and `resume` need the status alone)."""
        if isinstance(self.found, bytes):
            try:
                self.found = parsed_record(self.found)
            except ValueError:  # a line damaged by hand: the file says
                self.found = None
                return self.record
        return self.found

    @property
    def record(self) -> Record | None:
        """Its whole record, history included: read from its file the first time it is asked for
        where the index gave the rest. Use `summary` for anything but the history: a report of
        100,000 jobs reads only the histories it draws."""
        if not self.whole and self.path is not None:
            self.whole = True
            try:
                self.found = read_record(self.path / RECORD_NAME)
            except ValueError as e:  # gone or damaged since: what the index said stands, if it is a record
                warn(str(e))
                if self.summary is None:
                    self.status, self.error = decide(corrupt=True), str(e)
        return self.summary

    @property
    def overrides(self) -> list[str]:
        """What made this job: its job list's entry, else its record, else Hydra's overrides.yaml."""
        if self.entry is not None:
            return self.entry.overrides
        if self.summary is not None:
            return self.summary.overrides
        path = self.path / ".hydra" / "overrides.yaml" if self.path else None
        if path is None or not path.exists():
            return []
        from omegaconf import OmegaConf

        return [str(line) for line in OmegaConf.load(path)]


@dataclasses.dataclass
class Sweep:
    """The jobs under a directory, and the job lists of the sweeps there."""

    root: Path
    jobs: list[Job]
    manifests: dict[Path, Manifest]
    unanswered: tuple[str, ...] = ()  # the schedulers asked about its jobs that did not answer

    @property
    def scheduler_answered(self) -> bool:
        return not self.unanswered


# What makes a directory a job's: Hydra's `.hydra/`, an owner, or a record of ours (_holds_a_record).
_JOB_MARKS = frozenset({".hydra", OWNER_NAME})
# A record as write_record writes it: a JSON object whose first key is its status (a torn one too).
_RECORD_START = re.compile(rb'\s*\{\s*"status"\s*:')


def _holds_a_record(directory: str | Path) -> bool:
    """Whether the directory's result.json is one of ours: another program's result.json (a list, a
    dict of its own, text) makes no job; one of ours that is damaged does (shown `corrupt`)."""
    try:
        with open(os.path.join(directory, RECORD_NAME), "rb") as f:
            return _RECORD_START.match(f.read(256)) is not None
    except OSError:
        return False


def _is_job(directory: str | Path, subdirs: list[str], files: list[str]) -> bool:
    """The one test of a job's directory, given what it holds: Hydra's `.hydra/`, an owner, or a
    record of ours."""
    return bool(_JOB_MARKS.intersection(subdirs) or _JOB_MARKS.intersection(files)) or \
        (RECORD_NAME in files and _holds_a_record(directory))


def _walk(root: Path, lists: dict[Path, Manifest | None] | None = None) -> tuple[list[Path], list[Path]]:
    """Job directories (they hold `.hydra/`, a record or an owner) and sweep directories (they hold
    a job list) under root. A job directory is not searched further: its files can be many.
    `lists`: the job lists read on the way go there, and the jobs they list right in their sweep
    directory are not visited (nor returned): 100,000 of them cost a listing each."""
    jobs, sweeps = [], []
    for directory, subdirs, files in os.walk(root):
        if MANIFEST_NAME in files:
            sweeps.append(Path(directory))
            if lists is not None:
                listed = lists[Path(directory)] = _manifest(Path(directory))
                known = {entry.dir for entry in listed.jobs} if listed is not None else set()
                subdirs[:] = [name for name in subdirs if name not in known]
        if _is_job(directory, subdirs, files):
            jobs.append(Path(directory))
            subdirs.clear()
    return jobs, sweeps


def job_dirs(root: Path) -> list[Path]:
    """Every job directory under root."""
    return _walk(Path(root))[0]


def has_job_dir(root: Path) -> bool:
    """Whether any job directory is under root: the walk stops at the first (job_dirs() lists
    100,000 directories of a big sweep, seconds, to say the same)."""
    return any(_is_job(directory, subdirs, files) for directory, subdirs, files in os.walk(root))


def _is_job_dir(path: Path) -> bool:
    if not path.is_dir():
        return False
    names = os.listdir(path)
    return _is_job(path, names, names)


def _is_single_run(path: Path) -> bool:
    """A run without -m (outputs/runs/<date>): Hydra's saved config says `mode: RUN`."""
    try:
        return "\n  mode: RUN\n" in (path / ".hydra" / "hydra.yaml").read_text()
    except OSError:
        return False


def _is_sweep_dir(path: Path) -> bool:
    """A job list or Hydra's multirun.yaml, or job directories right inside (not single runs')."""
    if (path / MANIFEST_NAME).exists() or (path / "multirun.yaml").exists():
        return True
    return any(_is_job_dir(child) and not _is_single_run(child) for child in _subdirs(path))


def _subdirs(path: Path) -> list[Path]:
    try:
        return sorted(child for child in path.iterdir() if child.is_dir() and not child.is_symlink())
    except OSError:  # a folder this user may not read is no sweep
        return []


def sweep_of_job(path: Path) -> Path | None:
    """The sweep directory that holds job directory `path`; None when `path` is no job of a sweep."""
    path = Path(path).resolve()
    if not _is_job_dir(path):
        return None
    sweep = path.parent
    return sweep if (sweep / MANIFEST_NAME).exists() or (sweep / "multirun.yaml").exists() else None


class NotASweep(BadInput):
    """A folder that collate and report refuse: the message is one line, naming what to give."""


def sweeps_in(root: Path) -> list[Path]:
    """What `collate` and `report` read, and write their results beside: root itself when it is a
    sweep directory (or a single run's, or a folder of single runs: outputs/runs), else the sweep
    directories inside a folder of sweeps (every folder in it a sweep, or a single run, which is
    left out). Raises NotASweep for anything else, without walking it: records deeper
    would mix unrelated work, and results are written only into a sweep or a folder of sweeps the
    user named."""
    root = Path(root)
    if _is_job_dir(root) or _is_sweep_dir(root):
        return [root]
    children = [child for child in _subdirs(root) if not child.name.startswith(".") and child.name != "report"]
    sweeps = [child for child in children if _is_sweep_dir(child)]
    runs = [child for child in children if _is_single_run(child)]
    others = [child for child in children if child not in sweeps and child not in runs]
    if sweeps and not others:
        return sweeps
    if runs and not others:  # single runs alone, read as one table (a sweep would leave them out)
        return [root]
    holding = next((child for child in others if any(_is_sweep_dir(g) for g in _subdirs(child))), None)
    if sweeps and holding is not None:  # outputs: its own sweeps (hydra.sweep.dir=outputs/x) and outputs/multirun
        raise NotASweep(f"{root} holds sweeps and folders of sweeps: give a folder of sweeps (such as {holding}) "
                        f"or a sweep directory (such as {sweeps[0]})")
    if sweeps:
        raise NotASweep(f"{root} holds sweeps and other folders (such as {others[0]}): give a sweep directory "
                        "or a folder of sweeps only")
    if holding is not None:
        raise NotASweep(f"{root} holds no sweep, only sweeps deeper: give a sweep directory or a folder of "
                        f"sweeps (such as {holding})")
    raise NotASweep(f"{root} holds no sweep: no job list (jobs.json), multirun.yaml or job directories in it or "
                    "in its folders: give a sweep directory (hydra.sweep.dir, such as outputs/multirun/<date>) "
                    "or a folder of sweeps")


def _in_number_order(path: Path) -> list[tuple[int, int, str]]:
    """Sort key: numbers as numbers, so that job 2 comes before job 10."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", path.as_posix())]


def _name(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix() or "."


@dataclasses.dataclass
class _Index:
    """A sweep's index as read, and the lines of the records it lacked, to add to it."""

    lines: dict[str, dict[FileKey, Indexed]]
    sweep: str                      # its directory
    missing: list[bytes] = dataclasses.field(default_factory=list)

    def record(self, path: Path) -> tuple[Status, Record | bytes, bool] | None:
        """The status of the record in job directory `path` (None: none there), the record
        without its history (bytes: its JSON, from the index) and False (not whole): from the index
        when a line describes its file as it is, else read from the file and noted for the index."""
        try:
            key = file_key(os.stat(f"{self.sweep}/{path.name}/{RECORD_NAME}"))  # pathlib: seconds in 100,000
        except (FileNotFoundError, NotADirectoryError):
            return None
        indexed = self.lines.get(path.name, {}).get(key)
        if indexed is not None and indexed[0] in _RECORDED_VALUES:  # else a line edited by hand: the file says
            return Status(indexed[0]), indexed[1], False
        # Read without its history, as if from the index: 100,000 histories do not fit in memory,
        # and a record's history is most of what parsing it costs.
        record, key = read_record_keyed(path / RECORD_NAME, history=False)
        self.missing.append(line(path.name, key, record.status.value, record_json(record)))
        return record.status, record, False


_RECORDED_VALUES = frozenset(status.value for status in RECORDED)


def _recorded(path: Path, index: _Index | None) -> tuple[Status, Record | bytes, bool] | None:
    if index is not None:
        return index.record(path)
    record_path = path / RECORD_NAME
    if not record_path.exists():
        return None
    record = read_record(record_path)
    return record.status, record, True


def read_job(root: Path, path: Path, entry: ListedJob | None = None, state: str | None = None,
             index: _Index | None = None, name: str | None = None, asked: _Asked | None = None) -> Job:
    """The job in directory `path` (named relative to root): its record, or why it has none.
    `state`: its scheduler's word for it; `index`: its sweep's, when `path` is a job directory
    right in the sweep's; `asked`: the schedulers' states known so far, for an owner on another
    host (owner.is_alive)."""
    name = _name(root, path) if name is None else name
    try:
        found = _recorded(path, index)
    except ValueError as e:
        warn(str(e))
        return Job(name, path, decide(corrupt=True), error=str(e), entry=entry, scheduler_state=state)
    scheduled = backend_of(entry.scheduler).status_of(state) if entry is not None and state else None
    status = standing(path, entry, found[0] if found else None, scheduled, (asked or _Asked({})).ended)
    if found is not None:
        return Job(name, path, status, found[1], entry=entry, scheduler_state=state, whole=found[2])
    return Job(name, path, status, entry=entry, scheduler_state=state)


@dataclasses.dataclass
class _Asked:
    """The schedulers' states of jobs, by (scheduler, job id): those of the sweep's jobs, asked at
    once, and those of owners on other hosts, asked once each."""

    states: dict[tuple[str, str], str]

    def ended(self, scheduler: str, job_id: str) -> bool:
        backend = backend_of(scheduler)
        if (scheduler, job_id) not in self.states:
            self.states[(scheduler, job_id)] = (backend.states([job_id]) or {}).get(job_id, "")
        return backend.ended(self.states[(scheduler, job_id)])


def _scheduler_states(manifests: dict[Path, Manifest]) -> tuple[dict[tuple[str, str], str], tuple[str, ...]]:
    """Each scheduler's state of every job a launcher submitted to it, by (scheduler, job id), and
    the schedulers asked that did not answer."""
    ids: dict[str, list[str]] = {}
    for manifest in manifests.values():
        for job in manifest.jobs:
            if job.scheduler and job.scheduler_job_id:
                ids.setdefault(job.scheduler, []).append(job.scheduler_job_id)
    states: dict[tuple[str, str], str] = {}
    unanswered = []
    for scheduler, job_ids in ids.items():
        said = backend_of(scheduler).states(job_ids)
        if said is None:
            unanswered.append(scheduler)
        states.update({(scheduler, job_id): state for job_id, state in (said or {}).items()})
    return states, tuple(unanswered)


def _manifest(sweep: Path) -> Manifest | None:
    try:
        return read_manifest(sweep)
    except ValueError as e:
        warn(str(e))
        return None


def read_sweep(root: Path, within: list[Path] | None = None, index_elsewhere: Path | None = None) -> Sweep:
    """Every job under root (or under the folders `within` it only: sweeps_in(root)): sweep by
    sweep, each in the order of its job list, then the others by name (numbers in number order).
    `index_elsewhere`: a folder of the reader's own where the index lines it adds go, read with the
    sweep's, for a reader that changes nothing in the sweep (serve); else they go into the sweep."""
    return _read_sweep(Path(root), within, index_elsewhere)


def _own_index(folder: Path | None, sweep_dir: Path) -> Path | None:
    """The reader's own index folder for sweep_dir under `folder` (one per sweep); None: the sweep's."""
    if folder is None:
        return None
    own = folder / hashlib.sha1(str(sweep_dir.absolute()).encode()).hexdigest()[:16]
    own.mkdir(parents=True, exist_ok=True)
    return own


_IndexLines = dict[str, dict[FileKey, Indexed]]


def _merged(first: _IndexLines, then: _IndexLines) -> _IndexLines:
    return {**first, **{job: {**first.get(job, {}), **lines} for job, lines in then.items()}}


def _read_sweep(root: Path, within: list[Path] | None, index_elsewhere: Path | None) -> Sweep:
    directories, sweeps = [], []
    lists: dict[Path, Manifest | None] = {}
    for top in within if within is not None else [root]:
        found = _walk(top, lists)
        directories += found[0]
        sweeps += found[1]
    manifests = {sweep: manifest for sweep in sorted(sweeps, key=_in_number_order)
                 if (manifest := lists[sweep]) is not None}
    states, unanswered = _scheduler_states(manifests)
    asked = _Asked(dict(states))  # and the jobs of owners on other hosts, asked once each
    jobs: list[Job] = []
    listed: set[Path] = set()
    for sweep_dir, manifest in manifests.items():
        own = _own_index(index_elsewhere, sweep_dir)
        index = _Index(_merged(read_index(sweep_dir), read_index(own) if own else {}), str(sweep_dir))
        prefix = "" if sweep_dir == root else f"{_name(root, sweep_dir)}/"
        for entry in sorted(manifest.jobs, key=lambda entry: entry.num):
            path = sweep_dir / entry.dir
            direct = "/" not in entry.dir and entry.dir not in (".", "..")  # sweep_of(): deeper jobs are not indexed
            name = f"{prefix}{entry.dir}" if direct else None  # as _name() says it, without its cost
            state = states.get((entry.scheduler or "", entry.scheduler_job_id or ""))
            job = read_job(root, path, entry, state, index if direct else None, name, asked)
            job.sweep = sweep_dir
            jobs.append(job)
            if not direct:  # a direct one was not walked (_walk)
                listed.add(path)
        append(own or sweep_dir, index.missing)  # rebuilt: the next reader need not parse them again
        for number in range(len(manifest.jobs), manifest.total):  # a search's trials not asked yet
            jobs.append(Job(f"{_name(root, sweep_dir)}#{number}", None, Status.NOT_STARTED, sweep=sweep_dir))
    jobs += [read_job(root, path, asked=asked) for path in sorted(directories, key=_in_number_order)
             if path not in listed]
    return Sweep(root, jobs, manifests, unanswered=unanswered)


def read_jobs(root: Path) -> list[Job]:
    return read_sweep(root).jobs
