"""`python -m sweeper status DIR`: where each job of a sweep is, from Slurm and from the records."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from sweeper.sweep.jobs import Sweep, read_sweep

COLUMNS = ["job", "slurm_job_id", "slurm", "status", "overrides"]


def status_table(sweep: Sweep) -> pd.DataFrame:
    """One row per job (job, slurm_job_id, slurm, status, overrides), in the sweep's order."""
    rows = []
    for job in sweep.jobs:
        entry = job.entry
        overrides = entry.overrides if entry else job.record.overrides if job.record else []
        rows.append({"job": job.name, "slurm_job_id": (entry.slurm_job_id if entry else None) or "-",
                     "slurm": job.slurm.split()[0].lower() if job.slurm else "-", "status": job.status.value,
                     "overrides": " ".join(overrides)})
    return pd.DataFrame(rows, columns=COLUMNS)


def sweep_status(root: Path) -> tuple[Sweep, pd.DataFrame]:
    sweep = read_sweep(root)
    return sweep, status_table(sweep)
