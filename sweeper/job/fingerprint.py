"""A job's identity: the fingerprint of its configuration, and whether a record is of that job."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from sweeper.job.record import RECORD_NAME, Record, read_record
from sweeper.job.status import FINISHED

# Keys that do not change what a job computes: Hydra's own, and where logs go.
_NOT_FINGERPRINTED = ("hydra", "logging")


class MismatchError(Exception):
    """A job directory (or a sweep directory) holds the work of a different configuration."""


def fingerprint(cfg: DictConfig) -> str:
    """A hash of the resolved job config, without Hydra's own (runtime) keys and logging switches."""
    content: dict[Any, Any] = {}
    for key in cfg:
        if key not in _NOT_FINGERPRINTED:
            node = cfg[key]
            content[key] = OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node
    run = content.get("task", {}).get("run") if isinstance(content.get("task"), dict) else None
    if isinstance(run, dict):
        run.pop("logging", None)  # a task may take the logging switches too
    return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()[:16]


def is_same_job(record: Record, expected: str, overrides: list[str]) -> bool:
    """Whether `record` was written by the job of this fingerprint. A record of schema 1 hashed
    another layout of the config: there the same overrides in the same directory are the same job."""
    if record.fingerprint == expected:
        return True
    return record.schema_version < 2 and list(record.overrides) == list(overrides)


def mismatch(job_dir: Path, record: Record, expected: str, overrides: list[str]) -> MismatchError:
    return MismatchError(
        f"{job_dir} holds the record of another configuration: {' '.join(record.overrides) or 'defaults'} "
        f"(fingerprint {record.fingerprint}), not {' '.join(overrides) or 'defaults'} ({expected}): "
        "use a new hydra.sweep.dir, or delete that directory to run it again")


def finished_record(job_dir: Path, expected: str, overrides: list[str]) -> Record | None:
    """The job's finished record when it is there for this configuration; None if it must run.

    Raises MismatchError when the directory holds the record of another configuration.
    """
    path = Path(job_dir) / RECORD_NAME
    if not path.exists():
        return None
    try:
        record = read_record(path)
    except ValueError:
        return None  # unreadable: run again, the new record replaces it
    if not is_same_job(record, expected, overrides):
        raise mismatch(Path(job_dir), record, expected, overrides)
    return record if record.status in FINISHED else None
