"""The per-job result record: one `result.json` in each job's directory, written atomically."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import msgspec

from sweeper.files import written_beside
from sweeper.status import RECORDED, Status
from sweeper.job.index import FileKey, Indexed, file_key, index_record

RECORD_NAME = "result.json"
SCHEMA_VERSION = 2  # 1: before `schema_version`, `direction` and `preset` were recorded


class Record(msgspec.Struct, gc=False):
    """What one job leaves behind. docs/records.md, "The result record", documents each field (tests/test_docs.py keeps them equal).
    A msgspec struct: the one type its file, its index line and every reader encode and decode
    (record_json, parsed_record), as the job list's rows are (sweeper/job/manifest.py). Not tracked
    by Python's cycle collector: it holds plain data, no cycle, and a report reads 100,000 at once."""

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
    environment: dict[str, str] = msgspec.field(default_factory=dict)  # the scheduler's variables, where set (allocation.RECORDED)
    direction: str | None = None                 # minimize | maximize: how the objective ranks jobs
    preset: str | None = None                    # the experiment or hparams_search it came from
    fused: int | None = None                     # N: trained fused with N-1 others (train_time_s: its share)
    usage: dict[str, Any] = msgspec.field(default_factory=dict)  # what it used: wall_s, cpu_s, peak_rss_mb, cpus
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        # The file holds the value ("ok"), and callers may pass it so: kept as the Status.
        self.status = Status(self.status)


# The one place a record is serialised (record_json) and parsed (parsed_record): its file, its
# index line, and every reader. msgspec encodes and decodes the Record struct at C speed; JSON
# has no NaN/Infinity, and msgspec writes a diverged job's non-finite numbers as null.
def plain_number(value: Any) -> Any:
    """msgspec's hook for what it does not encode itself: subclasses of float and int (numpy's
    float64), which json.dumps wrote as numbers; TypeError for anything else."""
    if isinstance(value, float):
        return float(value)
    if isinstance(value, int):
        return int(value)
    raise TypeError(f"a record holds no {type(value).__name__}")


_ENCODER = msgspec.json.Encoder(enc_hook=plain_number)
_DECODER = msgspec.json.Decoder(Record)


def record_json(record: Record, history: bool = True) -> bytes:
    """The record as its file holds it (the status as its value: "ok"); history=False: with its
    history left empty, as the sweep's index holds it."""
    return _ENCODER.encode(record if history else msgspec.structs.replace(record, history={}))


def record_data(record: Record) -> dict[str, Any]:
    """The record as its file holds it, as a mapping (the live page sends it so)."""
    return msgspec.json.decode(record_json(record))  # type: ignore[no-any-return]


def write_record(job_dir: Path, record: Record) -> Path:
    """Write the job's record atomically, then add it to its sweep's index (sweeper/job/index.py).

    Every record is written here, so every record written reaches the index, right after it lands:
    a process killed between the two leaves a record the index lacks, which readers read from its
    file. The index line names the file by its temporary's size and time, taken before the rename,
    so that it describes this record even if another process replaces it at once."""
    path = Path(job_dir) / RECORD_NAME
    text = record_json(record)
    tmp = written_beside(path, msgspec.json.format(text, indent=1).decode() + "\n")
    try:
        key = file_key(os.stat(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:
        parsed_record(text)  # the index holds only records that read back: readers find others corrupt
    except ValueError:
        return path
    index_record(Path(job_dir), key, record.status.value, record_json(record, history=False))
    return path


_FIELDS = set(Record.__struct_fields__)
_REQUIRED = [field.name for field in msgspec.structs.fields(Record) if field.required]
_RECORDED_VALUES = [status.value for status in Status if status in RECORDED]

# What each field of a record's JSON may hold, and those types in words, for the message.
_TEXT, _TEXT_OR_NULL = ((str,), "a string"), ((str, type(None)), "a string or null")
_SHAPES: dict[str, tuple[tuple[type, ...], str]] = {
    "status": _TEXT, "task": _TEXT, "optimizer": _TEXT, "hparams": ((dict,), "a mapping"),
    "metrics": ((dict,), "a mapping"), "history": ((dict,), "a mapping"),
    "train_time_s": ((int, float, type(None)), "a number or null"), "started": _TEXT, "finished": _TEXT,
    "overrides": ((list,), "a list"), "versions": ((dict,), "a mapping"), "git_commit": _TEXT_OR_NULL,
    "host": _TEXT, "error": _TEXT_OR_NULL, "objective": _TEXT_OR_NULL, "fingerprint": _TEXT_OR_NULL,
    "attempts": ((int,), "a whole number"), "environment": ((dict,), "a mapping"), "direction": _TEXT_OR_NULL,
    "preset": _TEXT_OR_NULL, "fused": ((int, type(None)), "a whole number or null"),
    "usage": ((dict,), "a mapping"),
    "schema_version": ((int,), "a whole number"),
}
assert _SHAPES.keys() == _FIELDS
_KINDS = {dict: "a mapping", list: "a list", str: "a string", bool: "true or false", int: "a number",
          float: "a number", type(None): "null"}


def _kind(value: Any) -> str:
    return _KINDS.get(type(value), type(value).__name__)


def shape_error(data: Any) -> str | None:
    """What is wrong with a record's JSON, in a few words (`metrics must be a mapping, not a
    string`); None when it has a record's shape. Types are compared exactly (true is no number)."""
    if type(data) is not dict:
        return f"a record is a mapping of its fields, not {_kind(data)}"
    missing = [name for name in _REQUIRED if name not in data]
    if missing:
        return f"it lacks {', '.join(missing)}"
    for name, (types, words) in _SHAPES.items():
        if name in data and type(data[name]) not in types:
            return f"{name} must be {words}, not {_kind(data[name])}"
    if data["status"] not in _RECORDED_VALUES:
        return f"status {data['status']!r} is not one a job records ({', '.join(_RECORDED_VALUES)})"
    return _inner_error(data)


def _inner_error(data: dict[str, Any]) -> str | None:
    """What is wrong inside the fields that readers look into: the curves, the overrides, the objective."""
    for name, values in data["history"].items():
        if type(values) is not list:
            return f"history's {name} must be a list, not {_kind(values)}"
    if any(type(override) is not str for override in data["overrides"]):
        return "overrides must be a list of strings"
    for name in ("hparams", "metrics", "history", "versions", "environment", "usage"):  # the fields that may nest
        if name in data and _too_deep(data[name], _MAX_DEPTH):  # an older record may lack `usage`
            return f"its values nest more than {_MAX_DEPTH} lists or mappings deep"
    objective = data.get("objective")
    if objective is not None and type(data["metrics"].get(objective)) not in (int, float, type(None)):
        return f"metrics' {objective} (the objective) must be a number or null, not {_kind(data['metrics'][objective])}"
    return None


_MAX_DEPTH = 20  # readers copy and draw records by recursion: deeper is no record, and would exhaust the stack
_CONTAINERS = frozenset({dict, list})


def _too_deep(value: Any, levels: int) -> bool:
    """Whether lists and mappings nest in `value` more than `levels` deep. A list of numbers (a
    curve) is scanned at C speed, not item by item."""
    values = value.values() if type(value) is dict else value if type(value) is list else None
    if values is None:
        return False
    if levels == 0:
        return True
    if _CONTAINERS.isdisjoint(set(map(type, values))):
        return False
    return any(_too_deep(item, levels - 1) for item in values)


def parsed_record(text: str | bytes) -> Record:
    """The record that a file's (or an index line's) text holds, of this schema or an older one
    (fields it does not know are ignored). Raises ValueError saying what is wrong when it is not a
    valid record: every reader parses records here, so a record of the wrong shape is each
    reader's `corrupt`. The typed decode takes a valid record; what it refuses, or what its types
    do not say (the status one a job records, the depth, the objective's value), is parsed again
    with json and shape_error, which says what is wrong in the words of the record's fields."""
    try:
        record = _DECODER.decode(text)
    except (msgspec.DecodeError, RecursionError):  # a ValidationError is a DecodeError
        return _parsed_slowly(text)
    return _checked(record, text) or _parsed_slowly(text)


def _checked(record: Record, text: str | bytes) -> Record | None:
    """A record the typed decode made, checked for what its types do not say (the status one a job
    records, the depth, the objective's value); None: to be parsed slowly, for its words."""
    if record.status not in RECORDED or _inner_error(_inner_fields(record)) is not None:
        return None
    if record.schema_version == SCHEMA_VERSION and _lacks_schema_version(text):
        record.schema_version = 1  # written before the schema was recorded
    return record


def _inner_fields(record: Record) -> dict[str, Any]:
    """What _inner_error looks into, of a record the typed decode made."""
    return {"history": record.history, "overrides": record.overrides, "hparams": record.hparams,
            "metrics": record.metrics, "versions": record.versions, "environment": record.environment,
            "usage": record.usage, "objective": record.objective}


def _summary_type() -> type:
    """Record's fields, its history kept as each curve's JSON text (msgspec.Raw), not parsed: a
    curve of 1,000 numbers is skipped at C speed rather than made 1,000 Python floats."""
    fields: list[tuple[str, Any] | tuple[str, Any, Any]] = []
    for f in msgspec.structs.fields(Record):
        kind = dict[str, msgspec.Raw] if f.name == "history" else f.type
        if f.default_factory is not msgspec.NODEFAULT:
            fields.append((f.name, kind, msgspec.field(default_factory=f.default_factory)))
        else:
            fields.append((f.name, kind) if f.required else (f.name, kind, f.default))
    return msgspec.defstruct("RecordSummary", fields, gc=False)


_SUMMARY_DECODER: msgspec.json.Decoder[Any] = msgspec.json.Decoder(_summary_type())


def _flat(curve: msgspec.Raw) -> bool:
    """Whether a curve's JSON text is a list holding no list or mapping: one level deep (as
    _inner_error would find it), told from its text alone."""
    text = bytes(curve)
    return text.startswith(b"[") and text.find(b"[", 1) < 0 and text.find(b"{") < 0


def parsed_summary(text: str | bytes) -> Record:
    """parsed_record(text) with its history left empty ({}), as the sweep's index holds it, for a
    reader that reads many records and few histories; the history is checked as parsed_record
    checks it (a record it refuses is refused here too, in its words), without parsing its numbers."""
    try:
        summary = _SUMMARY_DECODER.decode(text)
    except (msgspec.DecodeError, RecursionError):
        summary = None
    if summary is None or not all(_flat(curve) for curve in summary.history.values()):
        return msgspec.structs.replace(parsed_record(text), history={})  # what it is, or what is wrong with it
    record = Record(**{**msgspec.structs.asdict(summary), "history": {}})
    return _checked(record, text) or msgspec.structs.replace(_parsed_slowly(text), history={})


def _lacks_schema_version(text: str | bytes) -> bool:
    """Searched from the end, where this version writes it: no cost for a record of this schema."""
    if isinstance(text, bytes):
        return text.rfind(b'"schema_version"') < 0
    return text.rfind('"schema_version"') < 0


def _parsed_slowly(text: str | bytes) -> Record:
    """parsed_record's way for what the typed decode refuses: json (which takes NaN, as Python's
    json wrote it), and shape_error's words for what is wrong."""
    try:
        data = json.loads(text)
    except UnicodeDecodeError:
        raise ValueError("not UTF-8 text") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"not JSON ({e.msg} at line {e.lineno} column {e.colno})") from None
    except RecursionError:
        raise ValueError("nested too deeply to be a record") from None
    wrong = shape_error(data)
    if wrong is not None:
        raise ValueError(wrong)
    return Record(**{"schema_version": 1, **{key: value for key, value in data.items() if key in _FIELDS}})


def read_record(path: Path) -> Record:
    """Parse one record; raises ValueError naming the file when it is not a valid record."""
    return read_record_keyed(path)[0]


def read_record_keyed(path: Path, history: bool = True) -> tuple[Record, FileKey]:
    """Parse one record, and the key (size, time) of the very file parsed: what the
    sweep's index says of it; history=False: its history left empty (parsed_summary). Raises
    ValueError naming the file when it is not a valid record."""
    try:
        with open(path, "rb") as f:
            key = file_key(os.fstat(f.fileno()))
            text = f.read()
    except OSError as e:
        raise ValueError(f"{path}: not a valid result record: {e.strerror}") from None
    try:
        return (parsed_record(text) if history else parsed_summary(text)), key
    except ValueError as e:
        raise ValueError(f"{path}: not a valid result record: {e}") from None


def read_summary(path: Path, indexed: dict[FileKey, Indexed] | None) -> Record:
    """The record at `path`, without its history where the sweep's index (`indexed`: its lines
    of this job) describes the file as it is; else read whole. Raises ValueError as read_record."""
    try:
        line = (indexed or {}).get(file_key(os.stat(path)))
        if line is not None:
            return parsed_record(line[1])
    except (OSError, ValueError):
        pass  # the file says
    return read_record(path)
