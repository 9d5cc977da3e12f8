"""What a job used of the machine it ran on: wall time, CPU time, peak memory, and the CPUs and GPUs
it was given (sweeper/allocation.py).

Measured by the process that runs the job, on every launcher (the record's `usage`): its CPU time
is the process's (every thread's) over the job, its peak memory the process's peak resident set
since the job started. Linux lets a process reset its own peak (`/proc/self/clear_refs`, "5"), so
that each job of a sweep run in one process gets its own peak, which includes what the process
held before (TensorFlow, the data): what the job needs asked of a node. Where the reset is not
possible the peak is the process's since it started, and `peak_scope` says so.
"""
from __future__ import annotations

import dataclasses
import os
import resource
import time
from pathlib import Path
from typing import Any

from sweeper import allocation

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _cpu_s() -> float:
    times = os.times()
    return times.user + times.system


def _reset_peak() -> bool:
    """Start the process's peak resident set again from what it holds now (Linux >= 4.0)."""
    try:
        _CLEAR_REFS.write_text("5")
        return True
    except OSError:
        return False


def _peak_mb() -> float:
    """The process's peak resident set (VmHWM), in MB; ru_maxrss where /proc is not there."""
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@dataclasses.dataclass
class Meter:
    """A job's measurement under way: `Meter.start()`, then `stop()` at its end."""

    wall: float
    cpu: float
    peak_scope: str  # "job": the peak was reset at the start; "process": it was not

    @classmethod
    def start(cls) -> Meter:
        scope = "job" if _reset_peak() else "process"
        return cls(time.perf_counter(), _cpu_s(), scope)

    def stop(self, shared_by: int | None = None) -> dict[str, Any]:
        """The record's `usage`. `shared_by`: the jobs of a fused group measured together, among
        which wall and CPU time are split evenly (they trained as one computation); the peak is the
        group's, since they held it together."""
        share = shared_by or 1
        usage: dict[str, Any] = {
            "wall_s": round((time.perf_counter() - self.wall) / share, 3),
            "cpu_s": round((_cpu_s() - self.cpu) / share, 3),
            "peak_rss_mb": round(_peak_mb(), 1),
            "cpus": allocation.cpus(),
            "gpus": allocation.gpus(),
            "peak_scope": self.peak_scope,
        }
        if shared_by:
            usage["shared_by"] = shared_by
        return usage
