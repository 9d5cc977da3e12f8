"""The 64-job ex1_adam grid on the Slurm test cluster (`make slurm-up`): unpacked (one Slurm task a
job), packed (the preset's 32 jobs a task), and in process (no launcher), side by side.

Prints each one's wall time from the command's start to its last record, and the ratios; checks
that the three give the same 64 records. Run: python benchmarks/packing.py
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
JOBS = 64


def to_last_record(sweep: Path, *args: str) -> float:
    """Seconds from the command's start to the newest record it left (all 64 must be there)."""
    start = time.time()
    # Unfused (hydra.sweeper.fuse=false): this compares packing with one task a job, not fusion
    # (benchmarks/fused.py does that), and unfused the three give bit-identical records.
    subprocess.run([sys.executable, "run.py", "-m", "experiment=ex1_adam", "hydra.sweeper.fuse=false",
                    f"hydra.sweep.dir={sweep}", *args],
                   cwd=ROOT, check=True, capture_output=True)
    records = list(sweep.glob("*/result.json"))
    assert len(records) == JOBS, f"{sweep}: {len(records)} records"
    return max(path.stat().st_mtime for path in records) - start


def results(sweep: Path) -> dict[str, tuple]:
    """Each job's status and metric, by directory."""
    out = {}
    for path in sweep.glob("*/result.json"):
        record = json.loads(path.read_text())
        out[path.parent.name] = (record["status"], round(record["metrics"]["final_loss"], 6))
    return out


def main() -> None:
    with tempfile.TemporaryDirectory(dir=ROOT / "outputs") as tmp:
        tmp_dir = Path(tmp)
        in_process = to_last_record(tmp_dir / "in_process")
        packed = to_last_record(tmp_dir / "packed", "hydra/launcher=slurm")   # the preset: 32 jobs a task
        unpacked = to_last_record(tmp_dir / "unpacked", "hydra/launcher=slurm", "hydra.launcher.jobs_per_task=1")
        same = results(tmp_dir / "in_process") == results(tmp_dir / "packed") == results(tmp_dir / "unpacked")
    print(f"{JOBS} ex1_adam jobs, wall time from the command's start to its last record:")
    print(f"  in process (no launcher):            {in_process:6.1f} s")
    print(f"  Slurm, packed (32 jobs a task):       {packed:6.1f} s   {packed / in_process:.1f}x in process")
    print(f"  Slurm, unpacked (one task a job):     {unpacked:6.1f} s   {unpacked / packed:.1f}x packed")
    print(f"records agree (status and final_loss of every job): {same}")


if __name__ == "__main__":
    main()
