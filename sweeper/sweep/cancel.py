"""`python -m sweeper cancel DIR`: stop a sweep's jobs, leaving it for `resume`.

Its jobs in Slurm are cancelled with `scancel` (a packed task once, for all of its jobs); a sweep
running on this machine is stopped as Ctrl-C stops it: SIGINT to the process of each running job
and to the sweep's own process above it, so that each running job records `interrupted` and the
sweep prints its resume line. Finished records are left as they are.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
from pathlib import Path

from sweeper.job.owner import OWNER_NAME, read_owner_file
from sweeper.status import ACTIVE, summary
from sweeper.sweep.jobs import Job, read_sweep
from sweeper.words import counted, sweeper_command

# a process's command line that runs a sweep: run.py, `python -m sweeper.run` (what resume runs), the installed command
SWEEP_COMMANDS = ("run.py", "sweeper.run", "hpc-sweeper")


def slurm_ids(jobs: list[Job]) -> list[str]:
    """The Slurm jobs (or packed tasks) of the active jobs, each once."""
    ids = {job.entry.packed_task or job.entry.slurm_job_id for job in jobs if job.entry and job.entry.slurm_job_id}
    return sorted(i for i in ids if i)


def local_processes(jobs: list[Job]) -> list[int]:
    """The processes on this machine running the active jobs that Slurm does not, and the sweep's
    own process above each (a local launcher's, or the sweep that runs its jobs in process)."""
    host, found = socket.gethostname(), set()
    for job in jobs:
        owner = read_owner_file(job.path / OWNER_NAME) if job.path else None
        if owner is None or owner.host != host or owner.slurm_job_id or (job.entry and job.entry.slurm_job_id):
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
    where scancel refused."""
    jobs = [job for job in read_sweep(sweep_dir).jobs if job.sweep == sweep_dir]
    active = [job for job in jobs if job.status in ACTIVE]
    if not active:
        print(f"nothing to cancel: {summary(job.status for job in jobs)} ({sweep_dir})", flush=True)
        return 0
    ids, pids = slurm_ids(active), local_processes(active)
    said = []
    if ids:
        done = subprocess.run(["scancel", *ids], capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            print(f"error: scancel {' '.join(ids)}: {done.stderr.strip() or done.returncode}", flush=True)
            return 1
        said.append(f"{counted(len(ids), 'Slurm job')} ({', '.join(ids)})")
    for pid in pids:
        try:
            os.kill(pid, signal.SIGINT)
        except ProcessLookupError:
            continue
    if pids:
        said.append(f"{counted(len(pids), 'process', 'processes')} on this machine ({', '.join(map(str, pids))})")
    stopped = " and ".join(said) or "nothing: the active jobs run elsewhere"
    print(f"cancelled {counted(len(active), 'job')}: {stopped}; finish the sweep with: "
          f"{sweeper_command('resume', sweep_dir)}", flush=True)
    return 0
