"""The entry point: `hpc-sweeper [-m] [group=option] [key=value ...]` once installed, `python
run.py ...` in a checkout (a wrapper of `main`), `python -m sweeper.run ...` (what `resume` runs).

Hydra names a job after the module of its task function: this module is `run`, so each job's log
is `run.log` whichever way the command started.
"""
from __future__ import annotations

import signal
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # nothing heavy before main: Ctrl-C while importing is caught there
    from omegaconf import DictConfig


def _job(cfg: DictConfig) -> float:
    from sweeper.job.entry import run_job

    return run_job(cfg)


def main() -> None:
    """Run the command line (sys.argv) as Hydra's app, its configs the project's `conf/` and,
    with `--config-dir DIR`, the user's; a task module in the working directory imports.
    Ctrl-C before a sweep lists its jobs (importing, composing, checking) ends in one line."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        # Started in the background of a script, which ignores SIGINT for it: `python -m sweeper
        # cancel` (sweeper/sweep/cancel.py) stops a sweep with SIGINT, as Ctrl-C would.
        signal.signal(signal.SIGINT, signal.default_int_handler)
    from sweeper.errors import said

    try:
        with said():
            _main()
    except KeyboardInterrupt:  # later ones are the sweeper's or the job's, which say what they left
        multirun = any(arg in ("-m", "--multirun") for arg in sys.argv[1:])
        print("\ninterrupted before any job was listed: nothing was started" if multirun else "\ninterrupted",
              flush=True)
        raise SystemExit(130) from None


def _main() -> None:
    import hydra  # imported here, so that Ctrl-C while importing is a stop like any other

    from sweeper.paths import conf_dir, import_from_working_dir
    from sweeper.refusals import check_argv

    import_from_working_dir()
    check_argv(sys.argv[1:])  # a misspelt key: the nearest known one, before Hydra's error
    hydra.main(version_base="1.3", config_path=str(conf_dir()), config_name="config")(_job)()


if __name__ == "__main__":
    main()
