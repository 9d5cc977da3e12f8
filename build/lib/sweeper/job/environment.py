"""Where a job ran: versions, the code's commit, the host and the cluster's variables."""
from __future__ import annotations

import datetime
import functools
import os
import platform
import socket
import subprocess
from importlib import metadata
from pathlib import Path

# Recorded when set (Slurm sets them, and CUDA_VISIBLE_DEVICES).
ENVIRONMENT = ("SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID", "SLURM_CPUS_PER_TASK",
               "SLURM_GPUS_ON_NODE", "CUDA_VISIBLE_DEVICES")


def now() -> str:
    """The time as the record writes it: ISO 8601, UTC, milliseconds."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")


@functools.cache
def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for package in ("tensorflow", "keras"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    return found


@functools.cache
def git_commit() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def host() -> str:
    return socket.gethostname()


def cluster_variables() -> dict[str, str]:
    return {key: os.environ[key] for key in ENVIRONMENT if key in os.environ}
