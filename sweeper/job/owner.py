"""One owner per job directory: a job takes its directory before it runs and gives it back after.

The owner is a marker file `.owner` (host, process id, its scheduler and the scheduler's job id,
start time) made with an exclusive create, so of two runs that reach the same directory at once
exactly one takes it. A marker whose process is gone (same host, no such process; a scheduler's job
that is this one, requeued; or, on another host, a job its scheduler says has ended: a dead node's)
is stale and is taken over.
"""
from __future__ import annotations

import dataclasses
import datetime
import json
import os
import socket
from pathlib import Path
from typing import Any, Callable

from sweeper import allocation
from sweeper.files import create_atomic

OWNER_NAME = ".owner"
# Whether a scheduler says its job ended: (scheduler, job id) -> bool, given by the backends
# (sweeper/launching/backend.py) where they are loaded; without it no scheduler can be asked.
_scheduler_says_ended: list[Callable[[str, str], bool]] = []


def ask_scheduler(ended: Callable[[str, str], bool]) -> None:
    _scheduler_says_ended[:] = [ended]


@dataclasses.dataclass
class Owner:
    host: str
    pid: int
    started: str
    scheduler_job_id: str | None = None
    scheduler: str | None = None    # the backend's name (`slurm`) where a scheduler runs it

    def __str__(self) -> str:
        job = f", {self.scheduler.capitalize()} job {self.scheduler_job_id}" if self.scheduler and self.scheduler_job_id else ""
        return f"pid {self.pid} on {self.host}{job}"


def _this_process() -> Owner:
    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    scheduler, job_id = allocation.scheduler_job() or (None, None)
    return Owner(socket.gethostname(), os.getpid(), now, job_id, scheduler)


def owner_from(data: dict[str, Any]) -> Owner:
    """An owner as its marker says it; markers written before name their Slurm job `slurm_job_id`."""
    if "slurm_job_id" in data:
        data = {**data, "scheduler_job_id": data["slurm_job_id"], "scheduler": allocation.SLURM if data["slurm_job_id"] else None}
        del data["slurm_job_id"]
    return Owner(**data)


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
        return owner_from(json.loads(Path(path).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def read_owner(job_dir: Path) -> Owner | None:
    """The directory's owner, when a run holds it (or held it and died)."""
    return read_owner_file(Path(job_dir) / OWNER_NAME)


def is_alive(owner: Owner, ended: Callable[[str, str], bool] | None = None) -> bool:
    """Whether the owner may still be running: its process exists on this host; on another host
    it is taken to be alive (nothing here can see its process), unless it is this scheduler job,
    requeued, or its scheduler says its job has ended (the node died under it). `ended(scheduler,
    job id)`: the caller's way to ask (a reader of many jobs asks once a job id), else the backends'."""
    me = _this_process()
    if owner.scheduler_job_id and (owner.scheduler, owner.scheduler_job_id) == (me.scheduler, me.scheduler_job_id):
        return owner.pid == me.pid  # the same scheduler job started again: the old process is gone
    if owner.host == me.host:
        return _process_exists(owner.pid)
    ask = ended or (_scheduler_says_ended[0] if _scheduler_says_ended else None)
    return not (owner.scheduler and owner.scheduler_job_id and ask is not None and ask(owner.scheduler, owner.scheduler_job_id))


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
