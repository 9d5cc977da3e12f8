"""A job's status: the one type, the one function that decides it, and the one summary line.

The record says how a job ended; where it has none, its scheduler's state, a live owner of
its directory, or the directory's absence says where it is. Every command (a sweep's end, `status`,
`collate`, `report`, `resume`) decides and counts statuses here.
"""
from __future__ import annotations

import enum
from collections import Counter
from typing import Iterable

from sweeper.words import counted


class Status(str, enum.Enum):
    # How a job ended: written in its record.
    OK = "ok"
    DIVERGED = "diverged"
    PRUNED = "pruned"                  # a search's pruner stopped it early: kept, not a failure
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    # Where a job is when it has no (readable) record.
    CORRUPT = "corrupt"                # a record that cannot be read
    PENDING = "pending"                # queued by its scheduler (for a packed job: its task is)
    WAITING = "waiting"                # its packed task runs, and it waits for its turn in it
    RUNNING = "running"                # its scheduler runs it, or a live process owns its directory
    CANCELLED = "cancelled"            # its scheduler ended it before it wrote a record ...
    TIMEOUT = "timeout"
    OUT_OF_MEMORY = "out_of_memory"
    NODE_FAIL = "node_fail"
    PREEMPTED = "preempted"
    MISSING = "missing"                # started (its directory exists) but no record, nobody runs it
    NOT_STARTED = "not_started"        # in the sweep's job list, no directory yet

    def __str__(self) -> str:
        return self.value

    @property
    def text(self) -> str:
        return self.value.replace("_", " ")

    @property
    def hparams_session(self) -> str:
        """How a job that ended so shows in TensorBoard's HParams dashboard: the name of a
        `tensorboard.plugins.hparams.api_pb2.Status` value."""
        return _HPARAMS_SESSION.get(self, "STATUS_UNKNOWN")


FINISHED = frozenset({Status.OK, Status.DIVERGED, Status.PRUNED})  # kept: never run again
ACTIVE = frozenset({Status.PENDING, Status.WAITING, Status.RUNNING})  # someone is on it
RECORDED = frozenset({Status.OK, Status.DIVERGED, Status.PRUNED, Status.FAILED, Status.INTERRUPTED})
NEEDS_RERUN = frozenset(Status) - FINISHED - ACTIVE          # what `resume` runs again
PROBLEM = frozenset(Status) - {Status.OK, Status.PRUNED} - ACTIVE  # what a report lists with its reason
# Each recorded status in TensorBoard: a problem (one a report lists) a failure, else a success
# (pruned: the search stopped it early, as searches do).
_HPARAMS_SESSION = {Status.OK: "STATUS_SUCCESS", Status.PRUNED: "STATUS_SUCCESS", Status.DIVERGED: "STATUS_FAILURE",
                    Status.FAILED: "STATUS_FAILURE", Status.INTERRUPTED: "STATUS_FAILURE"}

def decide(record: Status | None = None, *, corrupt: bool = False, scheduled: Status | None = None,
           owner_alive: bool = False, started: bool = True, packed: bool = False,
           trial_failed: bool = False) -> Status:
    """One job's status.

    record: its record's status; corrupt: it has a record that cannot be read; scheduled: what its
    scheduler's state means (the job's backend says: sweeper/launching/backend.py) where the
    launcher recorded its job id; owner_alive: a live process holds its directory; started: its
    directory exists; packed: the scheduler's state is that of the packed task that holds the job
    with others (one process runs them one after the other);
    trial_failed: its search marked its trial failed (it was running when the search died, and its
    budget was asked again), which says more than `missing` or `not started`.
    A record says most, except `interrupted` while its scheduler has requeued the job (pending, running).
    """
    if packed and scheduled == Status.RUNNING and not owner_alive:
        scheduled = Status.WAITING  # the task runs, not (yet, or again after a requeue) this job
    if record is not None:
        return scheduled if record == Status.INTERRUPTED and scheduled in ACTIVE else record
    if corrupt:
        return Status.CORRUPT
    if scheduled is not None:
        return scheduled
    if owner_alive:
        return Status.RUNNING
    if trial_failed:
        return Status.FAILED
    return Status.MISSING if started else Status.NOT_STARTED


def summary(statuses: Iterable[Status], skipped: int = 0) -> str:
    """`6 jobs: 4 ok, 1 running, 1 not started`, in the order of Status; `skipped`: jobs a sweep
    found done before it started, counted apart."""
    counts = Counter(statuses)
    parts = [f"{counts[s]} {s.text}" for s in Status if counts[s]]
    if skipped:
        parts.append(f"{skipped} skipped (done before)")
    total = sum(counts.values()) + skipped
    return f"{counted(total, 'job')}: {', '.join(parts) or 'none'}"
