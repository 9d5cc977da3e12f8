"""`python -m sweeper resume DIR`: run a sweep again in its directory; finished jobs are kept."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from sweeper.errors import BadInput
from sweeper.status import ACTIVE, NEEDS_RERUN, summary
from sweeper.sweep.jobs import read_sweep
from sweeper.launching.backend import backend_of
from sweeper.words import counted

# Overrides that `resume` accepts because they change where jobs run, not what they compute.
_LAUNCHER_PREFIXES = ("hydra/launcher=", "hydra.launcher.", "hydra.verbose", "hydra/hydra_logging=", "hydra/job_logging=")


def resume_command(sweep_dir: Path, extra: list[str]) -> list[str]:
    """The command that re-launches the sweep stored in sweep_dir/multirun.yaml into sweep_dir:
    the entry point as a module (`python -m sweeper.run`: a checkout and an installed copy alike),
    with the sweep's `--config-dir` (a user's task) and its overrides."""
    stored = sweep_dir / "multirun.yaml"
    if not stored.exists():
        raise BadInput(f"{stored} not found: give the directory of a sweep started with `python run.py -m`")
    refused = [o for o in extra if not o.lstrip("+~").startswith(_LAUNCHER_PREFIXES)]
    if refused:
        raise BadInput(f"resume refuses {' '.join(refused)}: only launcher settings (hydra/launcher=..., "
                         "hydra.launcher.*) may change; start a new sweep to change jobs")
    saved = OmegaConf.load(stored).hydra
    hydra_overrides = [o for o in saved.overrides.hydra if not o.startswith("hydra.sweep.dir=")]
    if any(o.startswith("hydra/launcher=") for o in extra):
        hydra_overrides = [o for o in hydra_overrides if not o.lstrip("+~").startswith(_LAUNCHER_PREFIXES)]
    return [sys.executable, "-m", "sweeper.run", *_config_dir(saved), "-m", *saved.overrides.task, *hydra_overrides,
            *extra, f"hydra.sweep.dir={sweep_dir.resolve()}"]


def _config_dir(saved: DictConfig) -> list[str]:
    """`--config-dir DIR` where the sweep had one: Hydra keeps it, absolute, among its config sources."""
    sources = OmegaConf.select(saved, "runtime.config_sources", default=None) or []
    given = [str(source.path) for source in sources if source.provider == "command-line"]
    return ["--config-dir", given[0]] if given else []


def working_dir(sweep_dir: Path) -> Path:
    """Where the sweep's command ran (multirun.yaml's hydra.runtime.cwd), where it runs again: a
    user's task module imports from there, and a relative path of its overrides means the same;
    the current directory when that one is gone."""
    ran = OmegaConf.select(OmegaConf.load(sweep_dir / "multirun.yaml"), "hydra.runtime.cwd", default=None)
    return Path(ran) if ran and Path(ran).is_dir() else Path.cwd()


def resume(sweep_dir: Path, extra: list[str]) -> int:
    """Run the stored sweep again in the same directory: only missing and unfinished jobs run."""
    command = resume_command(sweep_dir, extra)
    jobs = [job for job in read_sweep(sweep_dir).jobs if job.sweep == sweep_dir]
    active = [job for job in jobs if job.status in ACTIVE]
    if active and any(job.entry is None or not job.entry.scheduler_job_id for job in active):
        raise BadInput(f"{counted(len(active), 'job')} of {sweep_dir} {'is' if len(active) == 1 else 'are'} still {' or '.join(sorted({j.status.text for j in active}))} "
                         f"({' '.join(job.name for job in active[:5])}{' ...' if len(active) > 5 else ''}): "
                         "wait for them (python -m sweeper status DIR), or cancel them, then resume")
    if active:  # a scheduler's: the launcher asks it again and submits none of them twice
        titles = sorted({backend_of(job.entry.scheduler).title for job in active if job.entry})
        print(f"left to {' and '.join(titles)}: {summary(job.status for job in active)}", flush=True)
    if jobs and not any(job.status in NEEDS_RERUN for job in jobs):
        print(f"nothing to resume: {summary(job.status for job in jobs)} ({sweep_dir})", flush=True)
        return 0
    if jobs:
        print(f"to run again: {summary(job.status for job in jobs if job.status in NEEDS_RERUN)}", flush=True)
    where = working_dir(sweep_dir)
    print(f"resuming: python {' '.join(command[1:])} (in {where})", flush=True)
    return subprocess.run(command, cwd=where).returncode
