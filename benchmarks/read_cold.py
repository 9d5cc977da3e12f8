"""Reading a sweep no index describes, and a sweep copied elsewhere.

cold: a synthetic linear Adam sweep (benchmarks/scale.py's: each job's record of 1,000 loss values
written through write_record, as a real ex1 job's is), its index deleted before `collate`, and
again before `report`: what reading records from their files alone costs (a sweep whose index was
deleted, or one of a version before the index).
copied: a 2,000-job sweep with its index, copied with `cp -a` (new inodes, the same sizes and
modification times): the first `collate` in place, then the first in the copy.

Each step runs in a fresh process, timed inside it (benchmarks/scale.py --step). --checkout DIR:
write and read with that checkout's code instead of this one's, to compare two versions back to back.
Run: python benchmarks/read_cold.py [--jobs 10000] [--copied 2000] [--dir DIR] [--checkout DIR]
(--dir: keep the cold sweep in DIR/cold-<jobs> and reuse it: records of either version read the same.)
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def step(checkout: Path, name: str, sweep: Path) -> tuple[float, float]:
    """Seconds of one of scale.py's steps (collate, report, rebuild, ...) in a fresh process of
    `checkout`'s code, and the CPU seconds of that whole process (start-up and imports too: on a
    shared machine they vary less than the seconds)."""
    child = subprocess.Popen([sys.executable, str(checkout / "benchmarks" / "scale.py"), "--step", name, str(sweep)],
                             cwd=checkout, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(checkout)},
                             stdout=subprocess.PIPE, text=True)
    out = child.stdout.read() if child.stdout else ""
    _, status, usage = os.wait4(child.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{name} of {sweep} failed")
    return float(json.loads(out.strip().splitlines()[-1])["seconds"]), usage.ru_utime + usage.ru_stime


def write(checkout: Path, sweep: Path, jobs: int) -> None:
    """The sweep, written by `checkout`'s code (its index as that version writes it)."""
    code = (f"import sys; sys.path.insert(0, {str(checkout)!r}); from pathlib import Path; "
            f"from benchmarks.scale import write_sweep; write_sweep(Path({str(sweep)!r}), {jobs}, 1000)")
    subprocess.run([sys.executable, "-c", code], cwd=checkout, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(checkout)},
                   check=True)


def cold(checkout: Path, sweep: Path, jobs: int) -> None:
    if not (sweep / "jobs.json").exists():
        start = time.perf_counter()
        shutil.rmtree(sweep, ignore_errors=True)
        write(checkout, sweep, jobs)
        print(f"cold: {jobs} jobs written in {time.perf_counter() - start:.0f} s", flush=True)
    (collate_s, collate_cpu) = step(checkout, "rebuild", sweep)  # the index deleted, then collate
    shutil.rmtree(sweep / "index", ignore_errors=True)
    (report_s, report_cpu) = step(checkout, "report", sweep)
    print(f"cold, {jobs} jobs, no index: collate {collate_s:.2f} s, report {report_s:.2f} s, "
          f"together {collate_s + report_s:.2f} s (process CPU: collate {collate_cpu:.2f} s, report "
          f"{report_cpu:.2f} s)", flush=True)


def copied(checkout: Path, folder: Path, jobs: int) -> None:
    sweep, copy = folder / "sweep", folder / "copy"
    write(checkout, sweep, jobs)
    subprocess.run(["cp", "-a", str(sweep), str(copy)], check=True)
    in_place = step(checkout, "collate", sweep)[0]
    in_copy = step(checkout, "collate", copy)[0]
    print(f"copied, {jobs} jobs: first collate in place {in_place:.2f} s, in the copy (cp -a) {in_copy:.2f} s",
          flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000, help="jobs of the cold sweep (0: none)")
    parser.add_argument("--copied", type=int, default=2_000, help="jobs of the copied sweep (0: none)")
    parser.add_argument("--dir", type=Path, help="keep the cold sweep here (and reuse one already here)")
    parser.add_argument("--checkout", type=Path, default=ROOT, help="the checkout whose code writes and reads")
    args = parser.parse_args()
    checkout = args.checkout.resolve()
    with tempfile.TemporaryDirectory() as tmp:
        if args.jobs:
            cold(checkout, (args.dir or Path(tmp)) / f"cold-{args.jobs}", args.jobs)
        if args.copied:
            copied(checkout, Path(tmp), args.copied)


if __name__ == "__main__":
    main()
