"""A sweep's job list: `jobs.json` in the sweep directory, written before its first job runs.

The sweeper writes it (a search appends each trial as it asks for it); launchers add what they
learn (the scheduler and its job id); collate, status, report and resume read it. One process writes it, the
sweep's; every write replaces the file atomically. It is one JSON document with a job a line, written
as a stream (a 100,000-job list is about 40 MB: no list of rows is built for it in memory); lists
written before, indented, read the same.
"""
from __future__ import annotations

import dataclasses
import io
import json
import tempfile
from pathlib import Path
from typing import IO, Any, Callable, Iterable, Iterator

import msgspec
from omegaconf import DictConfig, OmegaConf

from sweeper import allocation
from sweeper.errors import BadInput
from sweeper.hparams import recorded_hparams
from sweeper.job.index import LISTED
from sweeper.job.fingerprint import MismatchError, difference, every_mismatch, same_configuration
from sweeper.job.planned import PlannedJob
from sweeper.job.record import plain_number
from sweeper.files import create_atomic, write_atomic

MANIFEST_NAME = LISTED  # named where the record writer, below this module, needs it too
SCHEMA_VERSION = 1


class DamagedManifest(BadInput):
    """A job list that cannot be read; the message names the file and what to do."""


class ListedJob(msgspec.Struct, gc=False):
    """One row of the job list: a planned job's serialisable part, and what launchers add. Not
    tracked by Python's cycle collector (it holds no cycle): 100,000 of them are read at once."""

    num: int                        # hydra.job.num: its place in the sweep
    dir: str                        # its directory, relative to the sweep directory
    overrides: list[str]
    fingerprint: str
    task: str | None
    optimizer: str | None
    hparams: dict[str, Any]         # the hyperparameters that apply to it, with its values
    objective: str | None = None
    direction: str | None = None    # minimize | maximize
    preset: str | None = None       # experiment=... or hparams_search=...
    scheduler_job_id: str | None = None  # set by a launcher that submits the job to a scheduler: its latest id
    packed_task: str | None = None  # the scheduler's task the job is packed into (jobs_per_task > 1), else None
    trial: int | None = None        # a search's trial number
    trial_failed: bool = False      # the search marked its trial failed: it was running when the search died
    scheduler_job_ids: list[str] = msgspec.field(default_factory=list)  # every id it was submitted as
    scheduler: str | None = None    # the backend that submitted it (`slurm`: sweeper/launching/backend.py)


# What a job list calls its sweeper: the option of `hydra/sweeper` (stable), not a Python class name;
# lists written before said the class name, which reading maps.
GRID, SEARCH = "checked", "optuna_search"
_OLD_NAMES = {"CheckedSweeper": GRID, "OptunaSweeper": SEARCH}


@dataclasses.dataclass
class Manifest:
    sweeper: str                    # GRID or SEARCH
    search: bool                    # trials are asked as it runs: `total` of them in the end
    total: int                      # the jobs the sweep will have
    jobs: list[ListedJob]
    schema_version: int = SCHEMA_VERSION


def listed_job(job: PlannedJob, cfg: DictConfig, trial: int | None = None) -> ListedJob:
    """The job list's row of a planned job, from its composed config; `trial`: a search's trial number."""
    return ListedJob(
        num=job.num, dir=job.dir, overrides=list(job.overrides), fingerprint=job.fingerprint,
        task=OmegaConf.select(cfg, "task.name"), optimizer=OmegaConf.select(cfg, "optimizer.name"),
        hparams=recorded_hparams(cfg), objective=OmegaConf.select(cfg, "task.objective"),
        direction=OmegaConf.select(cfg, "task.direction"), preset=job.preset, trial=trial)


def _listed(data: dict[str, Any]) -> ListedJob:
    """A row of a job list as read where the typed decode (read_manifest) refused the list: rows of
    older lists (fields missing) get defaults, damaged ones raise TypeError or ValueError (a row
    whose directory is not inside the sweep)."""
    _check_row(data)
    return ListedJob(**_renamed(data))


# Fields of rows written before jobs named their scheduler: the Slurm launcher's.
_OLD_FIELDS = {"slurm_job_id": "scheduler_job_id", "slurm_job_ids": "scheduler_job_ids"}


def _renamed(data: dict[str, Any]) -> dict[str, Any]:
    """A row of a list written before, in this version's fields: its Slurm ids its scheduler's."""
    if not _OLD_FIELDS.keys() & data.keys():
        return data
    data = {_OLD_FIELDS.get(key, key): value for key, value in data.items()}
    if (data.get("scheduler_job_id") or data.get("scheduler_job_ids")) and "scheduler" not in data:
        data["scheduler"] = allocation.SLURM
    return data


def _check_row(data: Any) -> None:
    """Readers sort rows by number, read the job in `dir` and show its hyperparameters: a row whose
    fields cannot be so used, or whose `dir` leads out of the sweep directory, makes the list damaged
    (nothing outside the sweep is read through it)."""
    if type(data) is not dict:
        raise ValueError("a job is a mapping of its fields")
    num, directory = data.get("num"), data.get("dir")
    if type(num) is not int:
        raise ValueError(f"job number {num!r} is not a whole number")
    if type(directory) is not str or not _inside(directory):
        raise ValueError(f"job {num}'s dir {directory!r} is not a folder inside the sweep directory")
    if type(data.get("hparams")) is not dict or type(data.get("overrides")) is not list:
        raise ValueError(f"job {num}'s hparams must be a mapping and its overrides a list")


def _inside(directory: str) -> bool:
    """Whether a job's `dir` names a folder inside the sweep directory: relative, without `..`."""
    return (directory != "" and not directory.startswith("/") and "\0" not in directory
            and ".." not in directory.split("/"))


def path_of(sweep_dir: Path) -> Path:
    return Path(sweep_dir) / MANIFEST_NAME


_DECODER = msgspec.json.Decoder(Manifest)


def read_manifest(sweep_dir: Path) -> Manifest | None:
    """The sweep's job list; None where there is none (a sweep from before it existed, a single
    run). Raises ValueError naming the file when it is damaged."""
    path = path_of(sweep_dir)
    try:
        text = path.read_bytes()
        try:
            if b'"slurm_job_id' in text:  # written before jobs named their scheduler: renamed row by row
                raise ValueError("an older job list")
            manifest = _DECODER.decode(text)
            if not all(_inside(job.dir) for job in manifest.jobs):
                raise ValueError("a job's dir leads out of the sweep directory")
        except (ValueError, RecursionError):  # msgspec's errors are ValueErrors: json says what is wrong
            manifest = _parsed_slowly(text)
        manifest.sweeper = _OLD_NAMES.get(manifest.sweeper, manifest.sweeper)
        return manifest
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError, KeyError, AttributeError, RecursionError) as e:
        raise DamagedManifest(f"{path}: not a valid job list ({e}); delete it to collate from the job "
                              "directories alone, or use a new hydra.sweep.dir") from None


def _parsed_slowly(text: bytes) -> Manifest:
    """The job list as json reads it, row by row, saying what is wrong with a damaged one."""
    data = json.loads(text)
    jobs = [_listed(job) for job in data.pop("jobs")]
    return Manifest(**data, jobs=jobs)


def _header(sweeper: str, search: bool, total: int) -> str:
    return json.dumps({"sweeper": sweeper, "search": search, "total": total, "schema_version": SCHEMA_VERSION})


def _plain(value: Any) -> Any:
    """As json.dumps(default=str) wrote them: numbers as the record writes them, a value of no
    JSON type as its text."""
    try:
        return plain_number(value)
    except TypeError:
        return str(value)


_ENCODER = msgspec.json.Encoder(enc_hook=_plain)
_ROW = msgspec.json.Decoder(ListedJob)


def _row(job: ListedJob) -> str:
    return _ENCODER.encode(job).decode()  # its fields, in order


def _write(f: IO[str], header: str, rows: Iterable[str]) -> None:
    """A job list as one JSON document with a job a line: written as a stream, read as a document
    (json.load), as lists written before it (one document, indented) are."""
    f.write(header[:-1] + ', "jobs": [')
    separator = "\n"
    for row in rows:
        f.write(separator + row)
        separator = ",\n"
    f.write("\n]}\n")


class Writer:
    """A job list written a job at a time as a sweep is planned, into a temporary file apart from the
    sweep directory (a sweep refused before its first job writes nothing there), so that no list
    of all the jobs is held in memory; `claim` makes it the sweep's."""

    def __init__(self, sweeper: str, search: bool, total: int) -> None:
        self.header = _header(sweeper, search, total)
        self.total = total
        self.rows = tempfile.TemporaryFile("w+")  # the rows, a line each

    @classmethod
    def of(cls, manifest: Manifest) -> Writer:
        written = cls(manifest.sweeper, manifest.search, manifest.total)
        for job in manifest.jobs:
            written.add(job)
        return written

    def add(self, job: ListedJob) -> None:
        self.rows.write(_row(job) + "\n")

    def jobs(self) -> Iterator[ListedJob]:
        self.rows.seek(0)
        return (_ROW.decode(line) for line in self.rows)

    def document(self) -> IO[str]:
        """The whole job list, as a file to read from its start."""
        document = tempfile.TemporaryFile("w+")
        self.rows.seek(0)
        _write(document, self.header, (line.rstrip("\n") for line in self.rows))
        document.seek(0)
        return document

    def close(self) -> None:
        self.rows.close()


def _text(manifest: Manifest) -> str:
    text = io.StringIO()
    _write(text, _header(manifest.sweeper, manifest.search, manifest.total), map(_row, manifest.jobs))
    return text.getvalue()


def write_manifest(sweep_dir: Path, manifest: Manifest) -> None:
    write_atomic(path_of(sweep_dir), _text(manifest))


def claim(sweep_dir: Path, listed: Manifest | Writer,
          planned: Callable[[int], tuple[tuple[str, ...], DictConfig | None]] | None = None) -> None:
    """Make the job list `listed` (or as it is being `written`) the sweep directory's, before any job runs.

    Where the directory has a list already (a resumed sweep, or another sweep started into it),
    every job number both lists hold must be the same configuration in the same directory, or
    MismatchError (naming what differs) is raised and nothing is written; jobs only the new list
    has are added. `planned(num)`: a job's former fingerprints and its config (or None), asked
    where the fingerprints differ, to recognise a list written before data.dir left the
    fingerprint and to name what differs.
    """
    if isinstance(listed, Manifest):
        written = Writer.of(listed)
        try:
            return claim(sweep_dir, written, planned)
        finally:
            written.close()
    written = listed
    sweep_dir = Path(sweep_dir)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    with written.document() as document:
        if create_atomic(path_of(sweep_dir), document):
            return
    existing = read_manifest(sweep_dir)
    assert existing is not None
    known = {job.num: job for job in existing.jobs}
    added = []
    mismatched = []  # every job the folder's list holds as another configuration: named at once
    for job in written.jobs():
        old = known.get(job.num)
        if old is None:
            added.append(job)
            continue
        if old.dir == job.dir and old.fingerprint == job.fingerprint:
            continue
        former, cfg = planned(job.num) if planned is not None else ((), None)
        if old.dir != job.dir or not same_configuration(old.fingerprint, job.fingerprint, former, sweep_dir / old.dir):
            changed = difference(sweep_dir / old.dir, old.overrides, old.hparams, job.overrides, cfg, job.hparams)
            what = (f"another configuration ({changed})" if changed and old.dir == job.dir else
                    f"{' '.join(old.overrides) or 'defaults'} (fingerprint {old.fingerprint}, in {old.dir}), not "
                    f"{' '.join(job.overrides) or 'defaults'} ({job.fingerprint}, in {job.dir})")
            mismatched.append(MismatchError(f"{sweep_dir} holds another sweep: its job {job.num} is {what}: "
                                            "use a new hydra.sweep.dir, or delete that directory to run it again",
                                            sweep_dir / old.dir, f"({changed})" if changed else f"(is {' '.join(old.overrides)})"))
    if mismatched:
        raise every_mismatch(mismatched, sweep_dir, listed=True)
    if added or written.total > existing.total:
        existing.jobs = sorted([*existing.jobs, *added], key=lambda job: job.num)
        existing.total = max(existing.total, written.total, len(existing.jobs))
        write_manifest(sweep_dir, existing)


def update(sweep_dir: Path, changes: dict[int, dict[str, Any]]) -> None:
    """Set fields of some jobs (by number), e.g. {3: {"trial_failed": True}}."""
    manifest = read_manifest(sweep_dir)
    if manifest is None:
        return
    for job in manifest.jobs:
        for key, value in changes.get(job.num, {}).items():
            setattr(job, key, value)
    write_manifest(sweep_dir, manifest)


def record_submitted(sweep_dir: Path, scheduler: str, submitted: dict[int, tuple[str, bool]]) -> None:
    """The scheduler's job id each job (by number) was just submitted as, and whether it is a packed
    task's: the latest in `scheduler_job_id` (and `packed_task`), every one in `scheduler_job_ids`."""
    manifest = read_manifest(sweep_dir)
    if manifest is None:
        return
    for job in manifest.jobs:
        if job.num in submitted:
            job_id, packed = submitted[job.num]
            job.scheduler, job.scheduler_job_id, job.packed_task = scheduler, job_id, job_id if packed else None
            job.scheduler_job_ids = [*job.scheduler_job_ids, job_id]
    write_manifest(sweep_dir, manifest)

