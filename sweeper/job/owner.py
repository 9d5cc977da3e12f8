"""One owner per job directory: a job takes its directory before it runs and gives it back after.

The owner is a marker file `.owner` (host, process id, Slurm job id, start time) made with an
exclusive create, so of two runs that reach the same directory at once exactly one takes it. A
marker whose process is gone (same host, no such process; a Slurm job that is this one, requeued;
or, on another host, a Slurm job that Slurm says has ended: a dead node's) is stale and is taken over.
"""
from __future__ import annotations

import dataclasses
import datetime
import json
import os
import socket
from pathlib import Path

from sweeper.files import create_atomic
from sweeper.scheduler import ENDED, job_states

OWNER_NAME = ".owner"


@dataclasses.dataclass
class Owner:
    host: str
    pid: int
    started: str
    slurm_job_id: str | None = None

    def __str__(self) -> str:
        slurm = f", Slurm job {self.slurm_job_id}" if self.slurm_job_id else ""
        return f"pid {self.pid} on {self.host}{slurm}"


def _this_process() -> Owner:
    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    slurm = os.environ.get("SLURM_ARRAY_JOB_ID") and \
        f"{os.environ['SLURM_ARRAY_JOB_ID']}_{os.environ.get('SLURM_ARRAY_TASK_ID')}"
    return Owner(socket.gethostname(), os.getpid(), now, slurm or os.environ.get("SLURM_JOB_ID"))


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a killed process whose parent died too stays a zombie until someone reaps it
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def read_owner_file(path: Path) -> Owner | None:
    try:
        return Owner(**json.loads(Path(path).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def read_owner(job_dir: Path) -> Owner | None:
    """The directory's owner, when a run holds it (or held it and died)."""
    return read_owner_file(Path(job_dir) / OWNER_NAME)


def is_alive(owner: Owner, slurm_states: dict[str, str] | None = None) -> bool:
    """Whether the owner may still be running: its process exists on this host; on another host
    it is taken to be alive (nothing here can see its process), unless it is this Slurm job,
    requeued, or its Slurm job has ended (the node died under it). `slurm_states`: Slurm's states
    known to the caller, asked first and added to (a reader of many jobs asks Slurm once a job id)."""
    me = _this_process()
    if owner.slurm_job_id and owner.slurm_job_id == me.slurm_job_id:
        return owner.pid == me.pid  # the same Slurm job started again: the old process is gone
    if owner.host == me.host:
        return _process_exists(owner.pid)
    return not (owner.slurm_job_id and _slurm_ended(owner.slurm_job_id, {} if slurm_states is None else slurm_states))


def _slurm_ended(job_id: str, known: dict[str, str]) -> bool:
    """Whether Slurm says the job ended; a job Slurm does not know (or a Slurm that does not answer,
    asked once) cannot be told ended: not."""
    if job_id not in known:
        known[job_id] = (job_states([job_id]) or {}).get(job_id, "")
    return known[job_id] in ENDED


def take(job_dir: Path) -> Owner | None:
    """Take the directory for this process; None when taken. Else the live owner that has it."""
    job_dir = Path(job_dir)
    job_dir.mkdir(parents=True, exist_ok=True)
    path = job_dir / OWNER_NAME
    me = _this_process()
    for _ in range(3):  # a stale marker removed by two runs at once: one of them creates the next
        # Not fsynced: after a crash of the machine its process is gone, so the marker is stale anyway.
        if create_atomic(path, json.dumps(dataclasses.asdict(me)) + "\n", durable=False):
            return None
        owner = read_owner(job_dir)
        if owner is not None and (owner.host, owner.pid) == (me.host, me.pid):
            return None  # this process has it already (a job run twice in one process)
        if owner is not None and is_alive(owner):
            return owner
        moved = job_dir / f"{OWNER_NAME}.stale.{me.pid}"
        try:
            os.rename(path, moved)  # of two runs removing it, one finds it gone
        except FileNotFoundError:
            continue
        taken = read_owner_file(moved)
        if taken is not None and taken != owner:  # another run took it over in between: put it back
            try:
                os.link(moved, path)
            except FileExistsError:
                pass
            os.unlink(moved)
            return taken
        os.unlink(moved)
    owner = read_owner(job_dir)
    return owner or _this_process()


def give_back(job_dir: Path) -> None:
    """Remove this process's marker (and no one else's)."""
    owner = read_owner(job_dir)
    me = _this_process()
    if owner is not None and (owner.host, owner.pid) == (me.host, me.pid):
        (Path(job_dir) / OWNER_NAME).unlink(missing_ok=True)
