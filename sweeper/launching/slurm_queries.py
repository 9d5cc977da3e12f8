"""What Slurm says about jobs: their states (sacct, squeue) and the cluster's array size.

Every query has a time limit, so that nothing here hangs on a cluster that does not answer.
"""
from __future__ import annotations

import os
import re
import subprocess
from typing import Iterable

# Slurm states after which a job will not run again (a requeued job goes back to PENDING).
ENDED = frozenset({"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY",
                   "BOOT_FAIL", "DEADLINE", "PREEMPTED", "SPECIAL_EXIT", "REVOKED"})


def query_timeout() -> float:
    """Seconds each Slurm command may take: 10, or SWEEPER_SLURM_TIMEOUT_S."""
    return float(os.environ.get("SWEEPER_SLURM_TIMEOUT_S", "10"))


def run_query(command: list[str], timeout: float) -> subprocess.CompletedProcess[str] | None:
    """The finished command, or None when it is not installed or did not finish in time."""
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return None


def _parse(lines: str) -> dict[str, str]:
    """`JOBID|STATE` lines (sacct's and squeue's) -> {job id: state}, read by submitit's own reader
    of sacct (`SlurmInfoWatcher.read_info`, which expands pending array tasks, `123_[4-6%2]`, to
    123_4, 123_5, 123_6); "CANCELLED by 0" is CANCELLED."""
    from submitit.slurm.slurm import SlurmInfoWatcher

    read = SlurmInfoWatcher().read_info("JobID|State\n" + lines)
    return {job_id: info["State"].split()[0] for job_id, info in read.items() if info.get("State")}


def _sacct(array_ids: list[str], timeout: float) -> dict[str, str] | None:
    """States from accounting; None when the cluster has no accounting (or it does not answer)."""
    done = run_query(["sacct", "-X", "-n", "-P", "-o", "JobID,State", "-j", ",".join(array_ids)], timeout)
    return _parse(done.stdout) if done is not None and done.returncode == 0 else None


def _squeue(array_ids: list[str], timeout: float) -> dict[str, str] | None:
    """States from the controller: queued and running jobs, and those that ended in the last
    MinJobAge seconds (300 by default). None when the controller does not answer."""
    done = run_query(["squeue", "-h", "-r", "-t", "all", "-o", "%i|%T", "-j", ",".join(array_ids)], timeout)
    if done is None:
        return None
    if done.returncode != 0:
        return {} if "Invalid job id" in done.stderr else None
    return _parse(done.stdout)


def job_states(job_ids: Iterable[str], timeout: float | None = None) -> dict[str, str] | None:
    """Slurm's state (PENDING, RUNNING, COMPLETED, CANCELLED, TIMEOUT, ...) of each job id
    (`123`, or `123_4` for an array task), from sacct; the jobs sacct does not know, or all of them
    on a cluster without accounting, from squeue. A job no source knows is left out; None when
    Slurm did not answer at all."""
    wanted = set(job_ids)
    if not wanted:
        return {}
    array_ids = sorted({job_id.split("_")[0] for job_id in wanted})
    timeout = timeout or query_timeout()
    states = _sacct(array_ids, timeout)
    if states is None or not wanted <= states.keys():
        queued = _squeue(array_ids, timeout)
        if states is None and queued is None:
            return None
        states = {**(states or {}), **(queued or {})}
    return {job_id: state for job_id in wanted if (state := _state_of(states, job_id))}


def _state_of(states: dict[str, str], job_id: str) -> str | None:
    """A job's state; an array task that no line names takes its array's: sacct names an array none
    of whose tasks started by the array's id alone (`123|CANCELLED`: cancelled while pending)."""
    return states.get(job_id) or states.get(job_id.split("_")[0])


def max_array_size() -> int | None:
    """The cluster's MaxArraySize: an array may have indices 0 to MaxArraySize - 1."""
    done = run_query(["scontrol", "show", "config"], query_timeout())
    match = re.search(r"^MaxArraySize\s*=\s*(\d+)", done.stdout if done else "", re.MULTILINE)
    return int(match.group(1)) if match else None


def _gpus(gres: str) -> int:
    """`gpu:4`, `gpu:a100:4(S:0-1)`, `gpu:2,shard:8` -> the node's GPUs."""
    total = 0
    for item in gres.split(","):
        parts = re.sub(r"\(.*?\)", "", item).split(":")
        if parts[0] == "gpu" and parts[-1].isdigit():
            total += int(parts[-1])
    return total


def node_offers(partition: str | None) -> dict[str, dict[str, int]] | None:
    """What each node of the partition (the default one when None) has: {node: {cpus, mem_mb, gpus}};
    None when Slurm does not answer or knows no such partition (sbatch then says why)."""
    done = run_query(["sinfo", "-h", "-N", "-o", "%P|%N|%c|%m|%G"], query_timeout())
    if done is None or done.returncode != 0:
        return None
    nodes: dict[str, dict[str, int]] = {}
    for line in done.stdout.splitlines():
        fields = line.strip().split("|")
        if len(fields) != 5:
            continue
        name, node, cpus, mem, gres = fields
        default = name.endswith("*")
        if (partition is None and default) or name.rstrip("*") == partition:
            nodes[node] = {"cpus": int(cpus.rstrip("+") or 0), "mem_mb": int(re.sub(r"\D", "", mem) or 0),
                           "gpus": _gpus(gres)}
    return nodes or None


def pending_reasons(job_ids: Iterable[str], timeout: float | None = None) -> dict[str, str]:
    """Why each pending job waits (squeue's reason: Resources, Priority, PartitionConfig, ...)."""
    wanted = set(job_ids)
    if not wanted:
        return {}
    array_ids = sorted({job_id.split("_")[0] for job_id in wanted})
    done = run_query(["squeue", "-h", "-r", "-t", "PENDING", "-o", "%i|%r", "-j", ",".join(array_ids)],
                timeout or query_timeout())
    if done is None or done.returncode != 0:
        return {}
    return {job_id: reason for job_id, reason in _parse(done.stdout).items() if job_id in wanted}
