"""`python -m sweeper cancel DIR`: stop a sweep's jobs, leaving it for `resume`.

Its jobs in a scheduler are cancelled by their backend (sweeper/launching/backend.py; a packed task
once, for all of its jobs); a sweep running on this machine is stopped as Ctrl-C stops it: SIGINT
to the process of each running job and to the sweep's own process above it, so that each running
job records `interrupted` and the sweep prints its resume line. Finished records are left as they are.
"""
from __future__ import annotations

import socket
from pathlib import Path

from sweeper.job.owner import OWNER_NAME, read_owner_file
from sweeper.status import ACTIVE, summary
from sweeper.launching.backend import PROCESSES, backend_of
from sweeper.sweep.jobs import Job, read_sweep
from sweeper.words import counted, sweeper_command

# a process's command line that runs a sweep: run.py, `python -m sweeper.run` (what resume runs), the installed command
SWEEP_COMMANDS = ("run.py", "sweeper.run", "hpc-sweeper")


def scheduler_ids(jobs: list[Job]) -> dict[str, list[str]]:
    """The scheduler's jobs (or packed tasks) of the active jobs, each once, by scheduler."""
    ids: dict[str, set[str]] = {}
    for job in jobs:
        if job.entry and job.entry.scheduler and job.entry.scheduler_job_id:
            ids.setdefault(job.entry.scheduler, set()).add(job.entry.packed_task or job.entry.scheduler_job_id)
    return {scheduler: sorted(found) for scheduler, found in ids.items()}


def local_processes(jobs: list[Job]) -> list[int]:
    """The processes on this machine running the active jobs that no scheduler does, and the sweep's
    own process above each (a local launcher's, or the sweep that runs its jobs in process)."""
    host, found = socket.gethostname(), set()
    for job in jobs:
        owner = read_owner_file(job.path / OWNER_NAME) if job.path else None
        if owner is None or owner.host != host or owner.scheduler_job_id or (job.entry and job.entry.scheduler_job_id):
            continue
        found.add(owner.pid)
        parent = _parent(owner.pid)
        if parent and _runs_a_sweep(parent):
            found.add(parent)
    return sorted(found)


def _parent(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def _runs_a_sweep(pid: int) -> bool:
    try:
        words = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return any(Path(word.decode(errors="replace")).name in SWEEP_COMMANDS for word in words)


def cancel(sweep_dir: Path) -> int:
    """Cancel the sweep's active jobs; print what was stopped and the resume line. Returns 0, or 1
    where a scheduler refused."""
    jobs = [job for job in read_sweep(sweep_dir).jobs if job.sweep == sweep_dir]
    active = [job for job in jobs if job.status in ACTIVE]
    if not active:
        print(f"nothing to cancel: {summary(job.status for job in jobs)} ({sweep_dir})", flush=True)
        return 0
    by_scheduler, pids = scheduler_ids(active), local_processes(active)
    said = []
    for scheduler, ids in by_scheduler.items():
        backend = backend_of(scheduler)
        refused = backend.cancel(ids)
        if refused:
            print(f"error: {refused}", flush=True)
            return 1
        said.append(f"{counted(len(ids), backend.title + ' job')} ({', '.join(ids)})")
    PROCESSES.cancel([str(pid) for pid in pids])
    if pids:
        said.append(f"{counted(len(pids), 'process', 'processes')} on this machine ({', '.join(map(str, pids))})")
    stopped = " and ".join(said) or "nothing: the active jobs run elsewhere"
    print(f"cancelled {counted(len(active), 'job')}: {stopped}; finish the sweep with: "
          f"{sweeper_command('resume', sweep_dir)}", flush=True)
    return 0
