"""Helpers of the tests on the real Slurm cluster of this machine (`make slurm-up`): a sweep
through the slurm launcher, what sacct says of a job, the sweep's job ids and its status table."""
from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from sweeper.launching.slurm_queries import ENDED
from sweeper.job import manifest
from tests.conftest import ROOT, run_cli


def slurm_multirun(sweep: Path, *overrides: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return run_cli(str(ROOT / "run.py"), "-m", "hydra/launcher=slurm", f"hydra.sweep.dir={sweep}", *overrides, cwd=cwd)


def sacct(job_id: str, field: str) -> str:
    out = subprocess.run(["sacct", "-X", "-n", "-P", "-o", field, "-j", job_id], capture_output=True, text=True,
                         timeout=10)
    return out.stdout.strip()


def final_state(job_id: str) -> str:
    """Slurm's state of a job once it ended (a job has its result a moment before it ends)."""
    deadline = time.monotonic() + 30
    while (state := sacct(job_id, "State")).split(" ")[0] not in ENDED and time.monotonic() < deadline:  # "CANCELLED by 0"
        time.sleep(0.5)
    return state


def read_job_ids(sweep: Path) -> dict[int, dict]:
    """Job number -> its Slurm job id, directory and overrides, from the sweep's job list."""
    listed = manifest.read_manifest(sweep)
    return {job.num: {"slurm_job_id": job.scheduler_job_id, "dir": job.dir, "overrides": job.overrides}
            for job in listed.jobs if job.scheduler_job_id} if listed else {}


@pytest.fixture
def status(sweeper_cli):
    """status(sweep): `python -m sweeper status SWEEP`, which must succeed."""

    def _status(sweep: Path) -> subprocess.CompletedProcess:
        result = sweeper_cli("status", str(sweep))
        assert result.returncode == 0, result.stderr
        return result

    return _status


def status_rows(output: str) -> dict[str, list[str]]:
    """job -> [slurm_job_id, slurm, status, overrides...] from the status table."""
    lines = output.split("\n\n")[0].splitlines()[1:]
    return {line.split()[0]: line.split()[1:] for line in lines}


def states(output: str) -> dict[str, list[str]]:
    """job -> [Slurm's state, status] from the status table."""
    return {job: row[1:3] for job, row in status_rows(output).items()}
