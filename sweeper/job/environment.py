"""Where a job ran: versions, the code's commit, the host (the scheduler's variables: sweeper/allocation.py)."""
from __future__ import annotations

import datetime
import functools
import platform
import socket
import subprocess
from importlib import metadata
from pathlib import Path


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
