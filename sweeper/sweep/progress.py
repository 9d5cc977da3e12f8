"""Live progress of a sweep: `[k/N]` in front of each job's line (Hydra's own `Launching N jobs`
and `#k : <overrides>` lines are not logged: sweeper/launching/in_process.py), and the summary
line at the end. Shared by the grid and the Optuna sweepers and by
the launchers that run jobs in other processes."""
from __future__ import annotations

from pathlib import Path
from typing import Collection, NoReturn

from omegaconf import DictConfig, OmegaConf

from sweeper.errors import Unfinished
from sweeper.job.context import JobCounter
from sweeper.status import FINISHED, summary
from sweeper.job import manifest
from sweeper.sweep.jobs import read_sweep
from sweeper.words import counted, sweeper_command


def start(total: int, done: int = 0) -> JobCounter:
    """A sweep of `total` jobs starts (`done` of them counted before, a resumed search's): its counter."""
    return JobCounter(total, done)


def end(sweep_dir: Path, seconds: float, done: Collection[int] = (), jobs: int | None = None) -> None:
    """`sweep: 4 jobs: 3 ok, 1 failed in 3.1 s wall time; collate: ...` (this command's time: a job's
    line gives its training time, over every attempt); Unfinished (exit 1) naming the jobs that did not finish. `done`: the
    numbers of the jobs found done before the sweep started (not run again); `jobs`: this command's, the
    first of the folder's list (a grid run again with fewer), else all."""
    ran = [job for job in read_sweep(sweep_dir).jobs
           if job.sweep == sweep_dir and job.entry is not None and job.entry.num not in done
           and (jobs is None or job.entry.num < jobs)]
    print(f"sweep: {summary([job.status for job in ran], skipped=len(done))} in {seconds:.1f} s wall time; "
          f"collate: {sweeper_command('collate', sweep_dir)}", flush=True)
    failed = [str(job.path) for job in ran if job.status not in FINISHED]
    if failed:
        raise Unfinished(f"{counted(len(failed), 'job')} did not finish: {' '.join(failed)}; "
                         f"finish them with: {sweeper_command('resume', sweep_dir)}")


def stopped(sweep_dir: Path, config: DictConfig, finish: str = "finish the sweep") -> NoReturn:
    """Ctrl-C at any moment of a sweep: the resume line once its job list is written (multirun.yaml,
    which resume reads, is written then if it was not yet), else a line saying that nothing was
    started; exit 130."""
    if manifest.path_of(sweep_dir).exists():
        if not (sweep_dir / "multirun.yaml").exists():
            OmegaConf.save(config, sweep_dir / "multirun.yaml")
        print(f"\ninterrupted; {finish} with: {sweeper_command('resume', sweep_dir)}", flush=True)
    else:
        print(f"\ninterrupted before any job was listed: nothing was started in {sweep_dir}", flush=True)
    raise SystemExit(130)
