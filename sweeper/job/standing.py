"""A listed job's status from its directory (its record's status, its owner) and what its
scheduler's state means: the one reading of one job, for the sweep's reader (sweeper/sweep/jobs.py,
which reads records through the sweep's index) and the launcher (which jobs of an earlier
submission its scheduler still holds).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from sweeper.job.manifest import ListedJob
from sweeper.job.owner import is_alive, read_owner
from sweeper.status import Status, decide


def standing(path: Path, entry: ListedJob | None, recorded: Status | None, scheduled: Status | None = None,
             ended: Callable[[str, str], bool] | None = None) -> Status:
    """The status of the job in directory `path`: `recorded` its record's status (None: it has
    none); `scheduled` what its scheduler's state means; `ended` how to ask a scheduler whether the
    job of an owner on another host ended (owner.is_alive)."""
    packed = entry is not None and entry.packed_task is not None
    owner = read_owner(path) if packed or recorded is None else None
    owner_alive = owner is not None and is_alive(owner, ended)
    if recorded is not None:
        return decide(recorded, scheduled=scheduled, owner_alive=owner_alive, packed=packed)
    return decide(scheduled=scheduled, owner_alive=owner_alive, started=path.exists(), packed=packed,
                  trial_failed=entry is not None and entry.trial_failed)
