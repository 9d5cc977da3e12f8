"""`python -m sweeper status DIR`: where each job of a sweep is, from its scheduler and from the records."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from sweeper.status import Status
from sweeper.launching.backend import backend_of
from sweeper.sweep.jobs import Sweep, read_sweep
from sweeper.words import counted

# A terminal reads a few dozen rows: a bigger sweep lists its jobs that did not end ok, this many at most.
LISTED_AT_MOST = 100


def status_table(sweep: Sweep) -> pd.DataFrame:
    """One row per job (job, NAME_job_id, NAME, status, overrides: NAME the scheduler's, `slurm`),
    in the sweep's order (job number); a sweep that never went to a scheduler has no scheduler columns."""
    entries = [job.entry for job in sweep.jobs]
    schedulers = {entry.scheduler for entry in entries if entry and entry.scheduler and entry.scheduler_job_id}
    name = schedulers.pop() if len(schedulers) == 1 else "scheduler"
    columns = {  # column by column: no dict a row for 100,000 jobs
        "job": [job.name for job in sweep.jobs],
        f"{name}_job_id": [(entry.scheduler_job_id if entry else None) or "-" for entry in entries],
        name: [job.scheduler_state.split()[0].lower() if job.scheduler_state else "-" for job in sweep.jobs],
        "status": [job.status.value for job in sweep.jobs],
        "overrides": [" ".join(job.overrides) for job in sweep.jobs]}
    if all(value == "-" for value in columns[f"{name}_job_id"]):
        del columns[f"{name}_job_id"], columns[name]
    return pd.DataFrame(columns, columns=list(columns))


def rows_shown(table: pd.DataFrame, every: bool = False) -> tuple[pd.DataFrame, str | None]:
    """The rows `status` prints, and a line saying what it leaves out: every row of a sweep of at
    most LISTED_AT_MOST jobs (or with `--all`); of a bigger one, the jobs that did not end ok, the
    first LISTED_AT_MOST of them."""
    if every or len(table) <= LISTED_AT_MOST:
        return table, None
    ok = int((table["status"] == Status.OK.value).sum())
    shown = table[table["status"] != Status.OK.value].head(LISTED_AT_MOST)
    left = len(table) - len(shown)
    return shown, f"{counted(left, 'more job')} not listed ({ok} of them ok): `--all` lists every job"


def pending_lines(sweep: Sweep) -> list[str]:
    """Why its scheduler keeps each pending task pending: `Slurm job 123_1 (jobs 4 5 6) pending: Resources`."""
    by_id: dict[str | None, dict[str, list[str]]] = {}
    for job in sweep.jobs:
        if job.status == Status.PENDING and job.entry is not None and job.entry.scheduler_job_id:
            by_id.setdefault(job.entry.scheduler, {}).setdefault(job.entry.scheduler_job_id, []).append(job.name)
    lines = []
    for scheduler, jobs in by_id.items():
        backend = backend_of(scheduler)
        reasons = backend.pending_reasons(jobs)
        lines += [f"{backend.title} job {job_id} ({'jobs' if len(names) > 1 else 'job'} {' '.join(names)}) pending: "
                  f"{reasons[job_id]}" for job_id, names in jobs.items() if job_id in reasons]
    return lines


def sweep_status(root: Path) -> tuple[Sweep, pd.DataFrame]:
    sweep = read_sweep(root)
    return sweep, status_table(sweep)
