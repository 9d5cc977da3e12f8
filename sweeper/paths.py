"""Where things are, the same in a checkout and in an installed copy: the project's conf directory,
and the directories a job imports its task's module from."""
from __future__ import annotations

import os
import sys
from pathlib import Path


def conf_dir() -> Path:
    """The project's config directory. `sweeper/conf` is a link to the checkout's `conf/` (which
    stays where it is), and a wheel ships the files through it as package data (pyproject.toml):
    one path, whichever the install."""
    return (Path(__file__).parent / "conf").resolve()


def import_from_working_dir() -> None:
    """Put the working directory on sys.path (after the entry's own directory), as `python -m`
    does: a user's task module beside their `conf/` imports in process. An installed command
    (`hpc-sweeper`) has its bin directory there instead, and `python run.py` the checkout."""
    here = os.getcwd()
    if here not in sys.path:
        sys.path.insert(1, here)


def job_pythonpath() -> str:
    """PYTHONPATH of a job's own process (local or Slurm): the entry's directory (sys.path[0]: a
    checkout's run.py imports that checkout's sweeper, not another install's), the working directory
    (the user's task modules; submitit's `python -m` would add the job's working directory only
    by accident of where it starts), then the PYTHONPATH this process has. Absolute: a Slurm job
    may start elsewhere."""
    entry = os.path.abspath(sys.path[0] or os.getcwd())
    given = [path for path in os.environ.get("PYTHONPATH", "").split(os.pathsep) if path]
    return os.pathsep.join(dict.fromkeys([entry, os.getcwd(), *given]))


def command() -> str:
    """How the user started the sweep, for the commands the refusals suggest: `hpc-sweeper`, the
    installed command, or the checkout's `python run.py`."""
    return "hpc-sweeper" if Path(sys.argv[0]).name == "hpc-sweeper" else "python run.py"
