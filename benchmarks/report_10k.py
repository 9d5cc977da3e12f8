"""Collating and reporting 10,000 job records: seconds, not minutes.

Writes two synthetic sweeps of 5,000 jobs each into a temporary folder (no training): a linear Adam
grid (lr x beta1 x beta2 x epsilon, 1,000 loss values per job, some diverged) and a softmax grid
(lr x batch_size x momentum x seed, per-epoch histories and the loss every 50 steps), each with its
job list (jobs.json), 30 jobs of each not started. Then times `collate` and `report` on the folder, and
prints the figures. Run: python benchmarks/report_10k.py
"""
from __future__ import annotations

import itertools
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sweeper.sweep.collate import collate
from sweeper.sweep.jobs import read_jobs  # noqa: E402
from sweeper.report import report  # noqa: E402
from tests import synthetic  # noqa: E402

LINEAR = {"lr": [0.3, 0.1, 0.03, 0.01, 0.003, 0.001, 0.0003, 0.0001, 3e-5, 1e-5],
          "beta1": [0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.93, 0.95, 0.97, 0.99],
          "beta2": [0.8, 0.85, 0.9, 0.93, 0.95, 0.97, 0.98, 0.99, 0.995, 0.999],
          "epsilon": [1e-8, 1e-7, 1e-6, 1e-5, 1e-4]}
SOFTMAX = {"lr": [0.5, 0.3, 0.1, 0.05, 0.03, 0.01, 0.005, 0.003, 0.001, 0.0005],
           "batch_size": [32, 64, 128, 256, 512],
           "momentum": [0.0, 0.5, 0.8, 0.85, 0.9, 0.92, 0.95, 0.97, 0.98, 0.99],
           "seed": list(range(10))}
NOT_STARTED = 30  # the last jobs of each sweep


def write_sweeps(root: Path) -> int:
    linear, softmax = root / "linear", root / "softmax"
    jobs = list(itertools.product(*LINEAR.values()))
    synthetic.write_job_list(linear, "linear", "adam", [dict(zip(LINEAR, values)) for values in jobs])
    for number, values in enumerate(jobs[:-NOT_STARTED]):
        hparams = dict(zip(LINEAR, values))
        diverge = 30 + number % 50 if hparams["lr"] == 0.3 and hparams["beta2"] < 0.9 else None
        synthetic.linear_job(linear / str(number), "adam", diverge_at=diverge, **hparams)
    more = list(itertools.product(*SOFTMAX.values()))
    synthetic.write_job_list(softmax, "softmax", "momentum", [dict(zip(SOFTMAX, values)) for values in more], epochs=5)
    for number, values in enumerate(more[:-NOT_STARTED]):
        synthetic.mnist_job(softmax / str(number), "softmax", "momentum", epochs=5, **dict(zip(SOFTMAX, values)))
    return len(jobs) + len(more)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        start = time.perf_counter()
        planned = write_sweeps(root)
        print(f"wrote {planned - 2 * NOT_STARTED} synthetic records of {planned} planned jobs "
              f"in {time.perf_counter() - start:.1f} s")
        size = sum(p.stat().st_size for p in root.rglob("result.json")) / 2**20
        print(f"records on disk: {size:.0f} MiB")

        start = time.perf_counter()
        jobs = read_jobs(root)
        read_s = time.perf_counter() - start
        start = time.perf_counter()
        table = collate(root, jobs)
        table_s = time.perf_counter() - start
        start = time.perf_counter()
        table = collate(root)
        collate_s = time.perf_counter() - start
        print(f"collate: {collate_s:.2f} s for {len(table)} rows (reading the records {read_s:.2f} s, "
              f"the table from them {table_s:.2f} s)")

        start = time.perf_counter()
        path, figures = report(root)
        report_s = time.perf_counter() - start
        print(f"report: {report_s:.2f} s, {len(figures)} figures, report.md {path.stat().st_size / 2**10:.0f} KiB")


if __name__ == "__main__":
    main()
