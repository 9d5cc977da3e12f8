"""The per-job result record: one `result.json` in each job's directory, written atomically."""
from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import IO, Any

from sweeper.job.status import RECORDED, Status
from sweeper.job.index import FileKey, Indexed, file_key, index_record

RECORD_NAME = "result.json"
SCHEMA_VERSION = 2  # 1: before `schema_version`, `direction` and `preset` were recorded


@dataclasses.dataclass
class Record:
    """What one job leaves behind. docs/records.md, "The result record", documents each field (tests/test_docs.py keeps them equal)."""

    status: Status                               # one of status.RECORDED; in the file: its value ("ok")
    task: str                                    # task name (conf/task/<task>.yaml)
    optimizer: str                               # optimizer name (conf/optimizer/<optimizer>.yaml)
    hparams: dict[str, Any]                      # the hyperparameters that apply to this job
    metrics: dict[str, Any]                      # final figures: final_loss, W, b, test_accuracy, ...
    history: dict[str, list[Any]]                # curves: loss per step, per-epoch metrics, ...
    train_time_s: float | None                   # training alone: no imports, no start-up
    started: str                                 # ISO 8601 times, UTC
    finished: str
    overrides: list[str]                         # the command-line overrides that made this job
    versions: dict[str, str]                     # python, tensorflow, keras
    git_commit: str | None
    host: str
    error: str | None = None                     # the exception's message when status is failed
    objective: str | None = None                 # the metric returned to the sweeper
    fingerprint: str | None = None               # hash of the resolved job config (resume)
    attempts: int = 1                            # how many times the job started (requeue, resume)
    environment: dict[str, str] = dataclasses.field(default_factory=dict)  # SLURM_JOB_ID, ... when set
    direction: str | None = None                 # minimize | maximize: how the objective ranks jobs
    preset: str | None = None                    # the experiment or hparams_search it came from
    fused: int | None = None                     # N: trained fused with N-1 others (train_time_s: its share)
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        # The file holds the value ("ok"), and callers may pass it so: kept as the Status.
        self.status = Status(self.status)


def _finite_or_none(value: Any) -> Any:
    """JSON has no NaN/Infinity: a diverged job's non-finite numbers become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_none(v) for v in value]
    return value


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _written(path: Path, text: str | IO[str], durable: bool = True) -> str:
    """A temporary file beside `path`, holding `text`, or what is left to read of a file (on disk,
    when durable)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            if isinstance(text, str):
                f.write(text)
            else:
                shutil.copyfileobj(text, f)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return tmp


def write_atomic(path: Path, text: str | IO[str], durable: bool = True) -> None:
    """Write `text` so that readers see the old file or the new one, never half of one.
    durable=False: no fsync, for a file that need not outlive a crash of the machine."""
    tmp = _written(path, text, durable)
    try:
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def create_atomic(path: Path, text: str | IO[str], durable: bool = True) -> bool:
    """Write `text` (or a file's text) to `path` whole, only if there is no such file: False when there is one.
    durable=False: no fsync, for a file that need not outlive a crash of the machine."""
    tmp = _written(path, text, durable)
    try:
        os.link(tmp, path)  # atomic, and fails where the file exists
        return True
    except FileExistsError:
        return False
    finally:
        Path(tmp).unlink(missing_ok=True)


def record_data(record: Record) -> dict[str, Any]:
    """The record as its file holds it."""
    return _finite_or_none({**dataclasses.asdict(record), "status": record.status.value})  # type: ignore[no-any-return]


def write_record(job_dir: Path, record: Record) -> Path:
    """Write the job's record atomically, then add it to its sweep's index (sweeper/job/index.py).

    Every record is written here, so every record written reaches the index, right after it lands:
    a process killed between the two leaves a record the index lacks, which readers read from its
    file. The index line names the file by its temporary's inode, size and time, taken before the
    rename, so that it describes this record even if another process replaces it at once."""
    path = Path(job_dir) / RECORD_NAME
    data = record_data(record)
    tmp = _written(path, json.dumps(data, indent=1, allow_nan=False) + "\n")
    try:
        key = file_key(os.stat(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    index_record(Path(job_dir), key, data)
    return path


_FIELDS = {field.name for field in dataclasses.fields(Record)}


def record_from(data: Any) -> Record:
    """A record of this schema or an older one, from its file's JSON (fields it does not know are
    ignored). Raises ValueError (or TypeError: a field missing) when it is not a valid record."""
    if data.keys() == _FIELDS:  # as this version writes it: its fields set without __init__'s cost (100,000 at collate)
        record = Record.__new__(Record)
        record.__dict__.update(data)
        record.__post_init__()
    else:
        known = {key: value for key, value in data.items() if key in _FIELDS}
        known.setdefault("schema_version", 1)
        record = Record(**known)  # an unknown status: ValueError
    if record.status not in RECORDED:
        raise ValueError(f"status {record.status.value!r} is not one a job records")
    return record


def read_record(path: Path) -> Record:
    """Parse one record; raises ValueError naming the file when it is not a valid record."""
    return read_record_keyed(path)[0]


def read_record_keyed(path: Path) -> tuple[Record, FileKey]:
    """Parse one record, and the key (inode, size, time) of the very file parsed: what the
    sweep's index says of it. Raises ValueError naming the file when it is not a valid record."""
    try:
        with open(path, "rb") as f:
            key = file_key(os.fstat(f.fileno()))
            return record_from(json.loads(f.read())), key
    except (OSError, ValueError, TypeError, AttributeError) as e:
        raise ValueError(f"{path}: not a valid result record ({e})") from None


def read_summary(path: Path, indexed: dict[FileKey, Indexed] | None) -> Record:
    """The record at `path`, without its history where the sweep's index (`indexed`: its lines
    of this job) describes the file as it is; else read whole. Raises ValueError as read_record."""
    try:
        line = (indexed or {}).get(file_key(os.stat(path)))
        if line is not None:
            return record_from(json.loads(line[1]))
    except (OSError, ValueError, TypeError):
        pass  # the file says
    return read_record(path)
