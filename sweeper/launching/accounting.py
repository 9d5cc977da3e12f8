"""What Slurm's accounting says a job used, read once after it ended and kept beside its record.

`sacct -D` (every attempt: a requeued job runs again under the same id) gives, per attempt, its
state, elapsed time, total CPU time, what it was allocated (CPUs, GPUs and memory over all its
nodes), its time limit, and in its steps' lines the peak resident memory of any one task
(MaxRSS). Each job of the sweep gets `accounting.json` in its directory: one entry per Slurm id
it was submitted as, with `packed_jobs`, the jobs sharing that Slurm task (sweeper/sweep/cost.py
shares a packed task's cost among them by their measured time), and, where the launcher saved it,
the request it was submitted with (sweeper/launching/right_size.py).

submitit's own reader (`SlurmInfoWatcher`) asks sacct for states only, so the fields are read here.
"""
from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any, Iterable

from sweeper.files import write_atomic
from sweeper.launching.slurm_queries import ENDED, query_timeout, run_query

ACCOUNTING_NAME = "accounting.json"
_FIELDS = "JobID,State,Elapsed,TotalCPU,MaxRSS,AllocCPUS,AllocTRES,ReqMem,Timelimit,NNodes,Submit,Start,End"
_UNITS = {"K": 1 / 1024, "M": 1.0, "G": 1024.0, "T": 1024.0 ** 2}


def seconds(text: str) -> float | None:
    """Slurm's `[D-]HH:MM:SS[.mmm]`, `MM:SS[.mmm]` -> seconds; None for UNLIMITED, Partition_Limit, ''."""
    match = re.fullmatch(r"(?:(\d+)-)?(?:(\d+):)?(\d+):(\d+(?:\.\d+)?)", text.strip())
    if not match:
        return None
    days, hours, minutes, secs = match.groups()
    return int(days or 0) * 86400 + int(hours or 0) * 3600 + int(minutes) * 60 + float(secs)


def megabytes(text: str) -> float | None:
    """`1234K`, `12.5M`, `8G`, `8Gn` (per node, older Slurm), `0` -> MB (sacct runs with
    `--units=M`, so a number without its unit is MB); None when empty."""
    match = re.fullmatch(r"([\d.]+)([KMGT]?)[nc]?", text.strip())
    if not match:
        return None
    return float(match.group(1)) * _UNITS[match.group(2) or "M"]


def _tres(text: str) -> dict[str, str]:
    """`billing=1,cpu=1,gres/gpu=2,mem=8G,node=1` -> {name: value}."""
    return dict(item.split("=", 1) for item in text.split(",") if "=" in item)


def _attempt(fields: dict[str, str]) -> dict[str, Any]:
    tres = _tres(fields["AllocTRES"])
    return {
        "state": fields["State"].split()[0] if fields["State"] else "",
        "elapsed_s": seconds(fields["Elapsed"]) or 0.0,
        "cpu_s": seconds(fields["TotalCPU"]) or 0.0,
        "max_rss_mb": None,
        "cpus": int(fields["AllocCPUS"] or 0),
        "gpus": int(tres.get("gres/gpu", "0") or 0),
        "mem_mb": megabytes(tres["mem"]) if "mem" in tres else megabytes(fields["ReqMem"]),
        "nodes": int(fields["NNodes"] or 0),
        "time_limit_s": seconds(fields["Timelimit"]),
        "submit": fields["Submit"], "start": fields["Start"], "end": fields["End"],
    }


def parse(text: str) -> dict[str, list[dict[str, Any]]]:
    """sacct's `-P` lines -> {Slurm job id: its attempts, in order}; a step's MaxRSS goes to the
    attempt above it (sacct prints each attempt's line, then its steps')."""
    names = _FIELDS.split(",")
    found: dict[str, list[dict[str, Any]]] = {}
    current: dict[str, Any] | None = None
    for line in text.splitlines():
        values = line.split("|")
        if len(values) != len(names):
            continue
        fields = dict(zip(names, values))
        job_id, _, step = fields["JobID"].partition(".")
        if "[" in job_id:  # pending array tasks: nothing used yet
            current = None
            continue
        if not step:
            current = _attempt(fields)
            found.setdefault(job_id, []).append(current)
        elif current is not None:
            rss = megabytes(fields["MaxRSS"])
            if rss is not None and (current["max_rss_mb"] is None or rss > current["max_rss_mb"]):
                current["max_rss_mb"] = round(rss, 1)
    for attempts in found.values():
        for attempt in attempts:
            attempt["out_of_memory"] = out_of_memory(attempt)
    return found


def out_of_memory(attempt: dict[str, Any]) -> bool:
    """Slurm's OUT_OF_MEMORY (a cgroup's kill), or a task that went over the job's memory (killed by
    the accounting's sampling, JobAcctGatherParams=OverMemoryKill, which leaves the job FAILED)."""
    if attempt["state"] == "OUT_OF_MEMORY":
        return True
    rss, asked, nodes = attempt["max_rss_mb"], attempt["mem_mb"], attempt["nodes"] or 1
    return attempt["state"] != "COMPLETED" and bool(rss and asked) and rss > asked / nodes


def read_accounting(job_ids: Iterable[str]) -> dict[str, list[dict[str, Any]]] | None:
    """Every attempt of each Slurm job id (`123` or `123_4`) that accounting knows; None when the
    cluster has no accounting or it does not answer."""
    wanted = set(job_ids)
    if not wanted:
        return {}
    arrays = sorted({job_id.split("_")[0] for job_id in wanted})
    done = run_query(["sacct", "-D", "-n", "-P", "--units=M", "-o", _FIELDS, "-j", ",".join(arrays)], query_timeout())
    if done is None or done.returncode != 0:
        return None
    return {job_id: attempts for job_id, attempts in parse(done.stdout).items() if job_id in wanted}


def ended(attempts: list[dict[str, Any]]) -> bool:
    """Whether the last attempt ended (a requeued job has attempts that ended and one that did not)."""
    return bool(attempts) and attempts[-1]["state"] in ENDED


def read_file(job_dir: Path) -> dict[str, Any]:
    """A job's `accounting.json`: {Slurm job id: {packed_jobs, attempts}}; {} when there is none
    or it cannot be read (it is read from Slurm again)."""
    try:
        data = json.loads((job_dir / ACCOUNTING_NAME).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def save(wanted: dict[Path, list[tuple[str, int]]], wait_s: float = 0.0,
         notes: dict[str, dict[str, Any]] | None = None) -> int:
    """Write the accounting of each job directory's Slurm ids (each with the number of jobs its task
    runs) that ended and is not written yet; `wait_s`: how long to wait for accounting to see them
    end (a job's result can come before Slurm has closed its record); `notes`: what the launcher
    adds to a Slurm id's entry (sweeper/launching/right_size.py: the request it was submitted with).
    Returns how many directories were written."""
    missing = {directory: ids for directory, ids in wanted.items()
               if any(slurm_id not in read_file(directory) for slurm_id, _ in ids)}
    if not missing:
        return 0
    every = {slurm_id for pairs in missing.values() for slurm_id, _ in pairs}
    deadline = time.monotonic() + wait_s
    found = read_accounting(every) or {}
    while time.monotonic() < deadline and not all(ended(found.get(i, [])) for i in every):
        time.sleep(0.5)
        found = read_accounting(every) or {}
    written = 0
    for directory, ids in missing.items():
        known = read_file(directory)
        new = {slurm_id: {"packed_jobs": packed, **(notes or {}).get(slurm_id, {}), "attempts": found[slurm_id]}
               for slurm_id, packed in ids
               if slurm_id not in known and ended(found.get(slurm_id, []))}
        if new and directory.is_dir():
            write_atomic(directory / ACCOUNTING_NAME, json.dumps({**known, **new}, indent=1) + "\n", durable=False)
            written += 1
    return written
