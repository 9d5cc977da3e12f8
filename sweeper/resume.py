"""Finished work is never redone: configuration fingerprints, done jobs, `python -m sweeper resume`."""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from sweeper.record import RECORD_NAME, Record, read_record

FINISHED = ("ok", "diverged")


class MismatchError(Exception):
    """A job directory holds the record of a different configuration."""


# Keys that do not change what a job computes: Hydra's own, and where logs go.
_NOT_FINGERPRINTED = ("hydra", "logging")


def fingerprint(cfg: DictConfig) -> str:
    """A hash of the resolved job config, without Hydra's own (runtime) keys and logging switches."""
    content = {}
    for key in cfg:
        if key not in _NOT_FINGERPRINTED:
            node = cfg[key]
            content[key] = OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node
    if isinstance(content.get("task"), dict):
        content["task"].pop("logging", None)  # a task may take the logging switches too
    return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()[:16]


def finished_record(job_dir: Path, expected: str, overrides: list[str]) -> Record | None:
    """The job's finished record when it is there for this configuration; None if it must run.

    Raises MismatchError when the directory holds the record of another configuration.
    """
    path = job_dir / RECORD_NAME
    if not path.exists():
        return None
    try:
        record = read_record(path)
    except ValueError:
        return None  # unreadable: run again, the new record replaces it
    if record.fingerprint != expected:
        raise MismatchError(
            f"{job_dir} holds the record of another configuration: {' '.join(record.overrides) or 'defaults'} "
            f"(fingerprint {record.fingerprint}), not {' '.join(overrides) or 'defaults'} ({expected}): "
            "use a new hydra.sweep.dir, or delete that directory to run it again")
    return record if record.status in FINISHED else None


def job_dir_of(sweep_cfg: DictConfig) -> Path:
    """The directory Hydra gives the job whose composed config (with hydra.job.num set) is sweep_cfg."""
    sweep = sweep_cfg.hydra.sweep
    return Path(str(sweep.dir)) / str(sweep.subdir)


# Overrides that `resume` accepts because they change where jobs run, not what they compute.
_LAUNCHER_PREFIXES = ("hydra/launcher=", "hydra.launcher.", "hydra.verbose", "hydra/hydra_logging=", "hydra/job_logging=")


def resume_command(sweep_dir: Path, extra: list[str], entry_point: Path) -> list[str]:
    """The command that re-launches the sweep stored in sweep_dir/multirun.yaml into sweep_dir."""
    stored = sweep_dir / "multirun.yaml"
    if not stored.exists():
        raise ValueError(f"{stored} not found: give the directory of a sweep started with `python run.py -m`")
    refused = [o for o in extra if not o.lstrip("+~").startswith(_LAUNCHER_PREFIXES)]
    if refused:
        raise ValueError(f"resume refuses {' '.join(refused)}: only launcher settings (hydra/launcher=..., "
                         "hydra.launcher.*) may change; start a new sweep to change jobs")
    saved = OmegaConf.load(stored).hydra
    hydra_overrides = [o for o in saved.overrides.hydra if not o.startswith("hydra.sweep.dir=")]
    if any(o.startswith("hydra/launcher=") for o in extra):
        hydra_overrides = [o for o in hydra_overrides if not o.lstrip("+~").startswith(_LAUNCHER_PREFIXES)]
    return [sys.executable, str(entry_point), "-m", *saved.overrides.task, *hydra_overrides, *extra,
            f"hydra.sweep.dir={sweep_dir.resolve()}"]


def resume(sweep_dir: Path, extra: list[str]) -> int:
    """Run the stored sweep again in the same directory: only missing and unfinished jobs run."""
    entry_point = Path(__file__).resolve().parents[1] / "run.py"
    command = resume_command(sweep_dir, extra, entry_point)
    print("resuming:", " ".join(command[1:]), flush=True)
    return subprocess.run(command, cwd=entry_point.parent).returncode
