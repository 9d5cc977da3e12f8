"""The entry point: `hpc-sweeper [-m] [group=option] [key=value ...]` once installed, `python
run.py ...` in a checkout (a wrapper of `main`), `python -m sweeper.run ...` (what `resume` runs).

Hydra names a job after the module of its task function: this module is `run`, so each job's log
is `run.log` whichever way the command started.
"""
from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from sweeper.job.entry import run_job
from sweeper.paths import conf_dir, import_from_working_dir
from sweeper.refusals import check_argv


def _job(cfg: DictConfig) -> float:
    return run_job(cfg)


_hydra_main = hydra.main(version_base="1.3", config_path=str(conf_dir()), config_name="config")(_job)


def main() -> None:
    """Run the command line (sys.argv) as Hydra's app, its configs the project's `conf/` and,
    with `--config-dir DIR`, the user's; a task module in the working directory imports."""
    import_from_working_dir()
    check_argv(sys.argv[1:])  # a misspelt key: the nearest known one, before Hydra's error
    _hydra_main()


if __name__ == "__main__":
    main()
