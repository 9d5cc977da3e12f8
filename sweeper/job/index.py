"""A sweep's index: one line per record written, with all of the record but its history, so that
reading a sweep back (collate, status, report, resume) does not parse every record.

The records stay the source of truth; the index is a cache of them, kept in `index/` in the sweep
directory and checked against them when read (sweeper/sweep/jobs.py): a line counts only while its
record's file is still the one it describes (its job directory, the file's size and modification
time in nanoseconds), and any record the index lacks or describes otherwise is read from its file.
Deleting `index/` is always safe. Nothing of the key changes when a sweep is copied with its times
(`cp -a`, `rsync -a`): the copy's index serves as the original's does. (Before, the key held the
file's inode too, which a copy changes: lines that hold one are read, their inode left aside.)

Many processes on many nodes write one sweep's records over a shared file system, so each process
appends to its own shard (`index/<host>-<pid>-<random>.jsonl`): no two writers share a file, no
lock is needed (NFS locks are not to be trusted), and a writer killed mid-line tears only its own
last line, which readers ignore (a line counts only once its newline is written). Each line goes
out in one write() of the whole line. Readers merge the shards; where several lines describe a
job, the one that matches its record's file wins, whatever the order of the shards.

It sits with the record (sweeper/job/record.py appends here as it writes one) and imports nothing
of the project; the sweep's readers (sweeper/sweep/jobs.py, planning.py) read it.
"""
from __future__ import annotations

import os
import secrets
import socket
from pathlib import Path

import msgspec

INDEX_DIR = "index"
LISTED = "jobs.json"  # the sweep's job list: named here, below the record, and taken by sweeper/job/manifest.py

# (size, mtime_ns): what a line says of its record's file; the file replaced or edited, it differs (a
# record is written into a temporary file renamed over the old: a new file, its time the time it
# was written, in nanoseconds).
FileKey = tuple[int, int]
# What a line says of a record: its status, and the record without its history as JSON text, parsed
# only when asked for (sweeper/job/record.py parsed_record): `status` and `resume` need the status alone.
Indexed = tuple[str, bytes]

_shard: tuple[int, str] | None = None   # (pid, file name) of this process's shard


def file_key(stat: os.stat_result) -> FileKey:
    return stat.st_size, stat.st_mtime_ns


def _shard_name() -> str:
    """This process's shard; a forked child gets its own."""
    global _shard
    if _shard is None or _shard[0] != os.getpid():
        name = f"{socket.gethostname().split('.')[0]}-{os.getpid()}-{secrets.token_hex(4)}.jsonl"
        _shard = os.getpid(), name
    return _shard[1]


def sweep_of(job_dir: Path) -> Path | None:
    """The sweep directory whose index describes job directory `job_dir`: its parent when that
    holds a job list. Jobs deeper (a nested hydra.sweep.subdir) or of no sweep are not indexed:
    readers read their records."""
    parent = Path(job_dir).absolute().parent
    return parent if (parent / LISTED).exists() else None


def line(job: str, key: FileKey, status: str, summary: bytes) -> bytes:
    """One index line: job directory (relative to the sweep), its record's file key, its status, and
    `summary`: the record's JSON with its history left empty (histories are most of a record: 27 kB
    of a linear job's 28), last, kept as text by readers until asked for (read_index)."""
    head = msgspec.json.encode({"job": job, "file": list(key), "status": status})
    return head[:-1] + b',"record":' + summary + b"}\n"


def append(sweep_dir: Path, lines: list[bytes]) -> None:
    """Append whole lines to this process's shard, in one write() each. An index that cannot be
    written (a read-only sweep, a full disk) costs readers time, not results: ignored."""
    if not lines:
        return
    try:
        directory = Path(sweep_dir) / INDEX_DIR
        directory.mkdir(exist_ok=True)
        fd = os.open(directory / _shard_name(), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o666)
        try:
            for text in lines:
                os.write(fd, text)
        finally:
            os.close(fd)
    except OSError:
        pass


def index_record(job_dir: Path, key: FileKey, status: str, summary: bytes) -> None:
    """Add the record just written in job_dir to its sweep's index (none outside a sweep)."""
    sweep_dir = sweep_of(job_dir)
    if sweep_dir is not None:
        append(sweep_dir, [line(Path(job_dir).name, key, status, summary)])


class _Line(msgspec.Struct):
    """A line as read: the record kept as its JSON text (msgspec.Raw), unparsed."""

    job: str
    file: list[int]                 # [size, mtime_ns]; lines written before: [inode, size, mtime_ns]
    status: str
    record: msgspec.Raw             # lines written before: a JSON string holding the record's JSON


_LINE = msgspec.json.Decoder(_Line)


def read_index(sweep_dir: Path) -> dict[str, dict[FileKey, Indexed]]:
    """Every line of the sweep's shards, by job and file key: {job: {key: (status, record)}}.
    A torn last line (a writer killed mid-line) and lines that do not parse are skipped."""
    found: dict[str, dict[FileKey, Indexed]] = {}
    try:
        shards = sorted(os.scandir(Path(sweep_dir) / INDEX_DIR), key=lambda entry: entry.name)
    except OSError:
        return found
    for shard in shards:
        if not shard.name.endswith(".jsonl"):
            continue
        try:
            with open(shard.path, "rb") as f:
                text = f.read()
        except OSError:
            continue
        for raw in text.split(b"\n")[:-1]:  # after the last newline: a line not yet whole
            row = _read_line(raw)
            if row is not None:
                found.setdefault(row.job, {})[row.file[-2], row.file[-1]] = row.status, _summary(row.record)
    return found


def _read_line(raw: bytes) -> _Line | None:
    try:
        row = _LINE.decode(raw)
    except (msgspec.DecodeError, RecursionError):
        return None
    return row if len(row.file) in (2, 3) else None


def _summary(raw: msgspec.Raw) -> bytes:
    """The record's JSON text; a line written before holds it as a JSON string (b'"{...}"')."""
    text = bytes(raw)
    if text.startswith(b'"'):
        try:
            return msgspec.json.decode(text, type=str).encode()
        except msgspec.DecodeError:
            return b""
    return text
