"""`python -m sweeper status DIR`: where each job of a sweep is, from Slurm and from the records."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from sweeper.status import Status
from sweeper.scheduler import pending_reasons as reasons_of
from sweeper.sweep.jobs import Sweep, read_sweep
from sweeper.words import counted

COLUMNS = ["job", "slurm_job_id", "slurm", "status", "overrides"]
# A terminal reads a few dozen rows: a bigger sweep lists its jobs that did not end ok, this many at most.
LISTED_AT_MOST = 100


def status_table(sweep: Sweep) -> pd.DataFrame:
    """One row per job (job, slurm_job_id, slurm, status, overrides), in the sweep's order (job
    number); a sweep that never went to Slurm has no Slurm columns."""
    entries = [job.entry for job in sweep.jobs]
    table = pd.DataFrame({  # column by column: no dict a row for 100,000 jobs
        "job": [job.name for job in sweep.jobs],
        "slurm_job_id": [(entry.slurm_job_id if entry else None) or "-" for entry in entries],
        "slurm": [job.slurm.split()[0].lower() if job.slurm else "-" for job in sweep.jobs],
        "status": [job.status.value for job in sweep.jobs],
        "overrides": [" ".join(job.overrides) for job in sweep.jobs]}, columns=COLUMNS)
    if (table["slurm_job_id"] == "-").all():
        table = table.drop(columns=["slurm_job_id", "slurm"])
    return table


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
    """Why Slurm keeps each pending task pending: `Slurm job 123_1 (jobs 4 5 6) pending: Resources`."""
    by_id: dict[str, list[str]] = {}
    for job in sweep.jobs:
        if job.status == Status.PENDING and job.entry is not None and job.entry.slurm_job_id:
            by_id.setdefault(job.entry.slurm_job_id, []).append(job.name)
    reasons = reasons_of(by_id) if by_id else {}
    return [f"Slurm job {slurm_id} ({'jobs' if len(names) > 1 else 'job'} {' '.join(names)}) pending: {reasons[slurm_id]}"
            for slurm_id, names in by_id.items() if slurm_id in reasons]


def sweep_status(root: Path) -> tuple[Sweep, pd.DataFrame]:
    sweep = read_sweep(root)
    return sweep, status_table(sweep)
