"""How long the Slurm launcher takes to submit a 2,000-job sweep (`make slurm-up` first).

The jobs are submitted held (`--hold`), so that none runs, and cancelled afterwards. Also measured:
the per-job config that decides a job's resources, composed the shortcut way (sweeper/launching/compose.py)
and the full way (Hydra's `load_sweep_config` for each job), side by side.

    python benchmarks/slurm_submit.py [JOBS]
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def submit(jobs: int, sweep: Path) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, str(ROOT / "run.py"), "-m", f"steps=range(1,{jobs + 1})", "hydra/launcher=slurm",
                    "hydra.launcher.wait=false", "+hydra.launcher.additional_parameters.hold=true",
                    f"hydra.sweep.dir={sweep}"], check=True, capture_output=True, cwd=ROOT)
    return time.perf_counter() - start


def cancel(sweep: Path) -> int:
    from sweeper.job.manifest import read_manifest

    arrays = sorted({job.scheduler_job_id.split("_")[0] for job in read_manifest(sweep).jobs if job.scheduler_job_id})
    subprocess.run(["scancel", *arrays], check=True)
    return len(arrays)


def planning(jobs: int) -> tuple[float, float]:
    """Seconds per job: the shortcut (job_configs + job_resources), and a full composition."""
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.types import RunMode

    from sweeper.launching.compose import job_configs
    from sweeper.launching.resources import job_resources

    overrides = [[f"steps={n}"] for n in range(1, jobs + 1)]
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        loader = GlobalHydra.instance().config_loader()
        master = loader.load_configuration("config", ["hydra/launcher=slurm"], run_mode=RunMode.MULTIRUN)
        start = time.perf_counter()
        for cfg in job_configs(loader, master, overrides):
            job_resources(cfg)
        fast = (time.perf_counter() - start) / jobs
        sample = overrides[:100]
        start = time.perf_counter()
        for job in sample:
            job_resources(loader.load_sweep_config(master, job))
        full = (time.perf_counter() - start) / len(sample)
    return fast, full


def main() -> None:
    jobs = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    with tempfile.TemporaryDirectory() as tmp:
        sweep = Path(tmp) / "sweep"
        seconds = submit(jobs, sweep)
        arrays = cancel(sweep)
    fast, full = planning(jobs)
    print(f"{jobs} jobs submitted (held, then cancelled) as {arrays} arrays: {seconds:.1f} s for the whole "
          f"`python run.py -m ... hydra.launcher.wait=false`, {1000 * seconds / jobs:.1f} ms per job")
    print(f"each job's config and resources: {1000 * fast:.2f} ms per job (shortcut), {1000 * full:.1f} ms "
          f"(full composition), {full / fast:.0f}x; for {jobs} jobs: {fast * jobs:.1f} s vs {full * jobs:.0f} s")


if __name__ == "__main__":
    main()
