"""Where a job ran, as the rest of the sweeper asks it: one backend per way of running jobs.

A launcher submits (sweeper/launching/slurm.py, local.py, in_process.py); the job list records,
for a job a scheduler took, the backend's `name` and the scheduler's job id. Whoever reads a sweep
later (its status, cancel, cost) asks that job's backend, here, and never a scheduler by name:
its states, the status each state means, why a queued job waits, how to cancel, its accounting.
Jobs run locally or in process have no scheduler: no state, and they are cancelled as processes.
"""
from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from typing import Iterable, Protocol

from sweeper import allocation
from sweeper.job import owner
from sweeper.status import Status
from sweeper.launching import accounting, slurm_queries


class Backend(Protocol):
    name: str    # as a job list names it (`slurm`)
    title: str   # as a person does (`Slurm`)

    def states(self, job_ids: Iterable[str]) -> dict[str, str] | None:
        """The scheduler's word for where each job is (`RUNNING`, `CANCELLED by 0`); a job it does
        not know is left out; None when it did not answer."""

    def status_of(self, state: str) -> Status | None:
        """The status a state means for a job that left no record (None: says nothing)."""

    def ended(self, state: str) -> bool:
        """Whether a job in this state will not run again (a requeued job will)."""

    def pending_reasons(self, job_ids: Iterable[str]) -> dict[str, str]:
        """Why each queued job waits, where the scheduler says."""

    def cancel(self, job_ids: list[str]) -> str | None:
        """Stop these jobs; None, or why it was refused."""

    def save_accounting(self, wanted: dict[Path, list[tuple[str, int]]]) -> None:
        """Keep beside each job (accounting.json) what the scheduler says its ids used."""

    def answer_timeout(self) -> float:
        """Seconds each question to the scheduler may take."""


# Slurm's states (sacct/squeue) of a job that left no record.
_SLURM_STATUS = {
    "PENDING": Status.PENDING, "REQUEUED": Status.PENDING, "REQUEUE_HOLD": Status.PENDING,
    "REQUEUE_FED": Status.PENDING, "RESV_DEL_HOLD": Status.PENDING,
    "RUNNING": Status.RUNNING, "CONFIGURING": Status.RUNNING, "COMPLETING": Status.RUNNING,
    "SUSPENDED": Status.RUNNING, "STAGE_OUT": Status.RUNNING, "SIGNALING": Status.RUNNING,
    "RESIZING": Status.RUNNING, "STOPPED": Status.RUNNING,
    "CANCELLED": Status.CANCELLED, "TIMEOUT": Status.TIMEOUT, "DEADLINE": Status.TIMEOUT,
    "OUT_OF_MEMORY": Status.OUT_OF_MEMORY, "NODE_FAIL": Status.NODE_FAIL, "PREEMPTED": Status.PREEMPTED,
    "FAILED": Status.FAILED, "BOOT_FAIL": Status.FAILED, "SPECIAL_EXIT": Status.FAILED,
    "REVOKED": Status.CANCELLED,
}


class SlurmBackend:
    """Jobs submitted to Slurm through submitit (sweeper/launching/slurm.py): sacct and squeue for
    their states (slurm_queries.py), scancel, sacct -D for their accounting."""

    name = allocation.SLURM
    title = "Slurm"

    def states(self, job_ids: Iterable[str]) -> dict[str, str] | None:
        return slurm_queries.job_states(job_ids)

    def status_of(self, state: str) -> Status | None:
        return _SLURM_STATUS.get(state.split()[0]) if state else None  # "CANCELLED by 0" is CANCELLED

    def ended(self, state: str) -> bool:
        return bool(state) and state.split()[0] in slurm_queries.ENDED

    def pending_reasons(self, job_ids: Iterable[str]) -> dict[str, str]:
        return slurm_queries.pending_reasons(job_ids)

    def cancel(self, job_ids: list[str]) -> str | None:
        done = subprocess.run(["scancel", *job_ids], capture_output=True, text=True, timeout=60)
        return None if done.returncode == 0 else f"scancel {' '.join(job_ids)}: {done.stderr.strip() or done.returncode}"

    def save_accounting(self, wanted: dict[Path, list[tuple[str, int]]]) -> None:
        accounting.save(wanted)

    def answer_timeout(self) -> float:
        return slurm_queries.query_timeout()


class ProcessBackend:
    """Jobs run on this machine, by the local launcher (a process each) or in process: no
    scheduler, so no state; their ids are process ids, cancelled as Ctrl-C does (SIGINT)."""

    name = "process"
    title = "this machine"

    def states(self, job_ids: Iterable[str]) -> dict[str, str] | None:
        return {}

    def status_of(self, state: str) -> Status | None:
        return None

    def ended(self, state: str) -> bool:
        return False

    def pending_reasons(self, job_ids: Iterable[str]) -> dict[str, str]:
        return {}

    def cancel(self, job_ids: list[str]) -> str | None:
        for pid in job_ids:
            try:
                os.kill(int(pid), signal.SIGINT)
            except ProcessLookupError:
                continue
        return None

    def save_accounting(self, wanted: dict[Path, list[tuple[str, int]]]) -> None:
        return None

    def answer_timeout(self) -> float:
        return 0.0


SLURM = SlurmBackend()
PROCESSES = ProcessBackend()
SCHEDULERS: dict[str, Backend] = {SLURM.name: SLURM}


def backend_of(scheduler: str | None) -> Backend:
    """The backend of a job whose job-list entry names `scheduler` (None: run on this machine)."""
    return SCHEDULERS.get(scheduler or "", PROCESSES)


def _ended(scheduler: str, job_id: str) -> bool:
    """Whether the scheduler says the job ended; one it does not know (or that does not answer)
    cannot be told ended: not."""
    backend = backend_of(scheduler)
    return backend.ended((backend.states([job_id]) or {}).get(job_id, ""))


owner.ask_scheduler(_ended)  # an owner on another host: the job layer asks its scheduler through here
