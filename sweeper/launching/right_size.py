"""Right-sized requests (`hydra.launcher.right_size=true`): once 3 jobs of a request have finished
ok, the jobs of that request still to submit ask for what those used plus a margin, never more than
the user asked; CPUs and GPUs stay as asked.

Memory: max(1 GB, 1.5 x the highest peak of a task, times the tasks on a node), rounded up to a
whole GB. Time: max(5 min, 2 x the longest elapsed), rounded up to a minute. The peak is the
higher of Slurm's MaxRSS and the record's own `usage.peak_rss_mb` (a job of a few seconds may end
between two of Slurm's samples). The finished jobs are read from their `accounting.json`
(sweeper/launching/accounting.py), whose entries carry the user's request the Slurm id was
submitted for, so that the jobs of earlier launches into the same sweep directory (a resume, a
search's earlier batches, a grid run again) count too.
"""
from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

from sweeper.job.record import RECORD_NAME, read_record
from sweeper.status import Status
from sweeper.launching import accounting
from sweeper.launching.resources import with_signal_delay
from sweeper.job import manifest
from sweeper.words import counted, duration, gigabytes

PROBE_JOBS = 3          # jobs of a request that finish with it before the others are right-sized
MEMORY_MARGIN = 1.5     # x the highest peak
MEMORY_FLOOR_GB = 1
TIME_MARGIN = 2.0       # x the longest job
TIME_FLOOR_MIN = 5
# How a Slurm id's request came about, in its accounting.json entry (`sizing`).
AS_ASKED, RIGHT_SIZED, RESUBMITTED = "as asked", "right-sized", "resubmitted"
RESUBMIT_STATES = frozenset({"TIMEOUT", "DEADLINE"})  # and out of memory (accounting.out_of_memory)


@dataclasses.dataclass
class Measured:
    """What the jobs of one request that finished ok used."""

    jobs: int = 0
    peak_mb: float | None = 0.0   # the highest peak of a task; None: a job's is unknown
    longest_s: float = 0.0        # the longest job, over all of its attempts


def request_of(params: dict[str, Any]) -> dict[str, Any]:
    """The user's request as an accounting entry keeps it and compares it: the job's submitit
    parameters (the same for every job of the group, resources.by_resources), as JSON has them,
    without the sweep's log folder (a sweep resumed from elsewhere asks the same)."""
    asked = {key: value for key, value in params.items() if key != "submitit_folder"}
    loaded: dict[str, Any] = json.loads(json.dumps(asked, sort_keys=True, default=str))
    return loaded


def note(asked: dict[str, Any], submitted: dict[str, Any], sizing: str) -> dict[str, Any]:
    """A Slurm id's entry's additions: the user's request, what it was submitted with, and how."""
    return {"request": request_of(asked), "sizing": sizing,
            "submitted": {"mem_gb": submitted.get("mem_gb"), "timeout_min": submitted.get("timeout_min")}}


def measure(sweep_dir: Path, asked: dict[str, Any]) -> Measured:
    """What the jobs of the sweep that ran with this request as asked, or right-sized from it, and
    finished ok (Slurm's COMPLETED, the record's `ok`) used; a packed task's jobs are not counted."""
    try:
        listed = manifest.read_manifest(sweep_dir)
    except manifest.DamagedManifest:
        return Measured()
    request = request_of(asked)
    measured = Measured()
    for row in listed.jobs if listed else []:
        if not row.scheduler_job_id:
            continue
        job_dir = sweep_dir / row.dir
        finished = [entry for entry in accounting.read_file(job_dir).values()
                    if entry.get("request") == request and entry.get("packed_jobs") == 1
                    and entry.get("attempts") and entry["attempts"][-1]["state"] == "COMPLETED"]
        if finished and _ok(job_dir):
            _add(measured, finished[-1], job_dir)
    return measured


def _ok(job_dir: Path) -> bool:
    try:
        return read_record(job_dir / RECORD_NAME).status == Status.OK
    except ValueError:
        return False


def _add(measured: Measured, entry: dict[str, Any], job_dir: Path) -> None:
    attempts = entry["attempts"]
    peaks = [attempt["max_rss_mb"] for attempt in attempts if attempt.get("max_rss_mb") is not None]
    usage = read_record(job_dir / RECORD_NAME).usage
    if isinstance(usage.get("peak_rss_mb"), (int, float)):
        peaks.append(usage["peak_rss_mb"])
    measured.jobs += 1
    measured.peak_mb = max(measured.peak_mb, *peaks) if peaks and measured.peak_mb is not None else None
    measured.longest_s = max(measured.longest_s, sum(attempt["elapsed_s"] for attempt in attempts))


def sized(asked: dict[str, Any], measured: Measured) -> dict[str, Any] | None:
    """The request for the jobs still to submit, from what those measured used; None while fewer
    than PROBE_JOBS have finished, or where it would ask for no less."""
    if measured.jobs < PROBE_JOBS:
        return None
    params = dict(asked)
    if asked.get("mem_gb") and measured.peak_mb is not None:
        per_node = measured.peak_mb * (asked.get("tasks_per_node") or 1)
        need = max(MEMORY_FLOOR_GB, math.ceil(MEMORY_MARGIN * per_node / 1024))
        params["mem_gb"] = min(asked["mem_gb"], need)
    if asked.get("timeout_min"):
        need = max(TIME_FLOOR_MIN, math.ceil(TIME_MARGIN * measured.longest_s / 60))
        params["timeout_min"] = min(asked["timeout_min"], need)
    if (params.get("mem_gb"), params.get("timeout_min")) == (asked.get("mem_gb"), asked.get("timeout_min")):
        return None
    return with_signal_delay(params)


def resubmit(entry: dict[str, Any]) -> bool:
    """Whether a right-sized Slurm job's accounting entry says it ended for want of what it asked:
    out of memory, or its time limit."""
    attempts = entry.get("attempts") or []
    return (entry.get("sizing") == RIGHT_SIZED and bool(attempts)
            and (bool(attempts[-1].get("out_of_memory")) or attempts[-1]["state"] in RESUBMIT_STATES))


def _request_words(params: dict[str, Any]) -> tuple[str, str]:
    memory = f"{params['mem_gb']} GB" if params.get("mem_gb") else "memory as asked"
    return memory, duration(params["timeout_min"] * 60) if params.get("timeout_min") else "no limit"


def group_words(task: str | None, params: dict[str, Any]) -> str:
    """`linear, 1 CPU` / `cnn, 4 CPU, 1 GPU`: the request's jobs, as the sweep's lines name them."""
    gpus = params.get("gpus_per_node") or 0
    return ", ".join([task or "?", f"{params['cpus_per_task']} CPU", *([f"{gpus} GPU"] if gpus else [])])


def sized_line(nums: str, group: str, asked: dict[str, Any], params: dict[str, Any], measured: Measured) -> str:
    """`right-sized jobs 3-11 (linear, 1 CPU): 8 GB -> 1 GB, 2 h -> 5 min, from 3 finished jobs (...)`."""
    before, after = _request_words(asked), _request_words(params)
    changes = [f"{old} -> {new}" for old, new in zip(before, after) if old != new]
    peak = f"peak {gigabytes(measured.peak_mb)}, " if measured.peak_mb is not None else ""
    return (f"right-sized {nums} ({group}): {', '.join(changes)}, from {counted(measured.jobs, 'finished job')} "
            f"({peak}longest {duration(measured.longest_s)})")


def probe_line(nums: str, group: str, asked: dict[str, Any], others: int) -> str:
    memory, time = _request_words(asked)
    return (f"right_size: {nums} ({group}) first, as asked ({memory}, {time}); "
            f"then {counted(others, 'job')} more, sized from what these use")


def resubmit_line(num: int, overrides: list[str], slurm_id: str, asked: dict[str, Any], entry: dict[str, Any]) -> str:
    memory, time = _request_words(asked)
    why = "ran out of memory" if entry["attempts"][-1].get("out_of_memory") else "reached its time limit"
    return (f"resubmitted job {num} ({' '.join(overrides) or 'defaults'}) as asked ({memory}, {time}): "
            f"its right-sized Slurm job {slurm_id} {why}")
