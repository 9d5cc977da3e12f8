"""The sweep's page on 100,000 jobs: how long the server's read takes, and each answer the page asks for.

Writes a synthetic sweep of N linear jobs (5 steps each, records written directly, no training; N
100,000 unless given) into a temporary folder, serves it as `python -m sweeper serve` does (uvicorn,
a free port of 127.0.0.1), and times over HTTP: the server's first read of the sweep, the overview,
the first page of the table, a filter, a sort, and a filter asked while the server reads the sweep
again (the reader and the answer share one Python process). Run: python benchmarks/serve_100k.py [N]
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.serving import serving  # noqa: E402
from tests.synthetic import linear_job, write_job_list  # noqa: E402

RATES = (0.5, 0.1, 0.05, 0.01, 0.001)


def write_sweep(sweep: Path, count: int) -> None:
    jobs = [{"lr": RATES[number % len(RATES)], "seed": number} for number in range(count)]
    write_job_list(sweep, "linear", "gd", jobs, steps=5)
    with mock.patch.object(os, "fsync"):  # each record on disk before the next: not what is measured
        for number, hparams in enumerate(jobs):
            linear_job(sweep / str(number), "gd", steps=5, **hparams)


def timed(server, route: str, **params: str) -> float:
    started = time.monotonic()
    answer = server.get(route, **params)
    assert answer.status == 200, answer.text
    return time.monotonic() - started


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    with tempfile.TemporaryDirectory() as folder:
        sweep = Path(folder) / "sweep"
        started = time.monotonic()
        write_sweep(sweep, count)
        print(f"{count} records written in {time.monotonic() - started:.1f} s")
        started = time.monotonic()
        with serving(sweep) as server:
            server.get("/api/sweep")
            read = time.monotonic() - started
            print(f"the server's first read: {read:.2f} s")
            print(f"overview (/api/sweep): {timed(server, '/api/sweep'):.3f} s")
            print(f"first page of 50 rows: {timed(server, '/api/jobs'):.3f} s")
            print(f"filter lr=0.01: {timed(server, '/api/jobs', where='lr=0.01'):.3f} s")
            print(f"sort by final_loss, descending: {timed(server, '/api/jobs', sort='final_loss', desc='1'):.3f} s")
            time.sleep(2 * read + 0.5)  # a new read is due: the next request starts it
            server.get("/api/sweep")
            during = timed(server, "/api/jobs", where="lr=0.01 seed>=500")
            print(f"filter while the server reads the sweep again: {during:.3f} s")


if __name__ == "__main__":
    main()
