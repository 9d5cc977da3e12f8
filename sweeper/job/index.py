"""A sweep's index: one line per record written, with all of the record but its history, so that
reading a sweep back (collate, status, report, resume) does not parse every record.

The records stay the source of truth; the index is a cache of them, kept in `index/` in the sweep
directory and checked against them when read (sweeper/sweep/jobs.py): a line counts only while its
record's file is still the one it describes (inode, size, modification time), and any record the
index lacks or describes otherwise is read from its file. Deleting `index/` is always safe.

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

import json
import os
import re
import secrets
import socket
from pathlib import Path
from typing import Any

INDEX_DIR = "index"
LISTED = "jobs.json"  # the sweep's job list: named here, below the record, and taken by sweeper/job/manifest.py

# (inode, size, mtime_ns): what a line says of its record's file; the file replaced or edited, it differs.
FileKey = tuple[int, int, int]
# What a line says of a record: its status, and the record without its history as JSON text, parsed
# only when asked for: `status` and `resume` need the status alone.
Indexed = tuple[str, str]

_shard: tuple[int, str] | None = None   # (pid, file name) of this process's shard


def file_key(stat: os.stat_result) -> FileKey:
    return stat.st_ino, stat.st_size, stat.st_mtime_ns


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


def line(job: str, key: FileKey, record: dict[str, Any]) -> bytes:
    """One index line: job directory (relative to the sweep), its record's file key, its status, the
    record with its history left empty (histories are most of a record: 27 kB of a linear job's
    28), last and as JSON itself, so that a reader takes the rest of the line without parsing it
    (read_index) and parses it only when asked (sweeper/sweep/jobs.py Job.summary)."""
    summary = json.dumps({**record, "history": {}}, allow_nan=False)
    head = json.dumps({"job": job, "file": list(key), "status": record["status"]})
    return f'{head[:-1]}, "record": {summary}}}\n'.encode()


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


def index_record(job_dir: Path, key: FileKey, record: dict[str, Any]) -> None:
    """Add the record just written in job_dir to its sweep's index (none outside a sweep)."""
    sweep_dir = sweep_of(job_dir)
    if sweep_dir is not None:
        append(sweep_dir, [line(Path(job_dir).name, key, record)])


# A line as line() writes it: job, file key and status read with no JSON parser, the record kept as
# its text. Lines written otherwise (by hand; before, the record was a JSON string) are parsed whole.
_LINE = re.compile(rb'\{"job": ("(?:[^"\\]|\\.)*"), "file": \[(\d+), (\d+), (\d+)\], "status": "(\w+)", '
                   rb'"record": (\{.*\})\}\Z')


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
        others = []
        for raw in text.split(b"\n")[:-1]:  # after the last newline: a line not yet whole
            match = _LINE.match(raw)
            if match is None:
                others.append(raw)
                continue
            job = match[1][1:-1].decode() if b"\\" not in match[1] else json.loads(match[1])
            key = int(match[2]), int(match[3]), int(match[4])
            found.setdefault(job, {})[key] = match[5].decode(), match[6].decode()
        for row in map(_fields, _parsed(others)):
            if row is not None:
                found.setdefault(row[0], {})[row[1]] = row[2], row[3]
    return found


def _fields(row: Any) -> tuple[str, FileKey, str, str] | None:
    """A line's job, file key, status and record (JSON text), from the line parsed; None where it
    lacks one."""
    try:
        job, key, status, record = row["job"], tuple(row["file"]), row["status"], row["record"]
    except (KeyError, TypeError):
        return None
    if isinstance(record, dict):
        record = json.dumps(record)
    if isinstance(job, str) and isinstance(status, str) and isinstance(record, str) and len(key) == 3:
        return job, key, status, record
    return None


def _parsed(lines: list[bytes]) -> list[Any]:
    """Lines parsed as JSON: all at once (a fifth faster than line by line), else one by one,
    leaving out those that do not parse."""
    try:
        parsed: list[Any] = json.loads(b"[" + b",".join(lines) + b"]")
        if len(parsed) == len(lines):  # no line held two values, or none
            return parsed
    except (ValueError, RecursionError):  # a line nested too deeply: one by one
        pass
    rows = []
    for raw in lines:
        try:
            rows.append(json.loads(raw))
        except (ValueError, RecursionError):
            continue
    return rows
