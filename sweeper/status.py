"""`python -m sweeper status DIR`: where each job of a sweep is, from Slurm and from the records."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import pandas as pd

from sweeper.collate import collate
from sweeper.slurm import job_states, read_job_ids

# A record's status says more than Slurm's state: a job whose task raised has Slurm's COMPLETED.
_FROM_RECORD = ("ok", "diverged", "failed", "interrupted", "corrupt")


def job_status(record: str | None, slurm: str | None) -> str:
    """One job's status: its record's when it has one; else Slurm's state (pending, running,
    cancelled, timeout, ...); `missing` when Slurm ended it normally, or does not know it, and it
    left no record."""
    if record in _FROM_RECORD:
        return record
    if slurm is None or slurm == "COMPLETED":
        return "missing"
    return slurm.lower()


def sweep_status(root: Path) -> tuple[pd.DataFrame, bool]:
    """One row per job (job, slurm_job_id, slurm, status, overrides), in the sweep's order; and
    whether Slurm answered. Jobs the launcher did not list (a local sweep) come from their records."""
    jobs = read_job_ids(root)
    records = dict(zip(*collate(root)[["job", "status"]].to_dict("list").values()))
    states = job_states(entry["slurm_job_id"] for entry in jobs.values())
    rows = []
    for entry in jobs.values():
        slurm = (states or {}).get(entry["slurm_job_id"])
        record = records.pop(entry["dir"], None)
        rows.append({"job": entry["dir"], "slurm_job_id": entry["slurm_job_id"],
                     "slurm": slurm.lower() if slurm else "-", "status": job_status(record, slurm),
                     "overrides": " ".join(entry["overrides"])})
    rows += [{"job": job, "slurm_job_id": "-", "slurm": "-", "status": record, "overrides": ""}
             for job, record in records.items()]
    return pd.DataFrame(rows, columns=["job", "slurm_job_id", "slurm", "status", "overrides"]), states is not None


def summary(table: pd.DataFrame) -> str:
    """`4 jobs: 1 cancelled, 2 ok, 1 running`."""
    counts = Counter(table["status"])
    return f"{len(table)} jobs: " + ", ".join(f"{counts[s]} {s}" for s in sorted(counts))
