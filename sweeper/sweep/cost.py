"""What a sweep cost: `python -m sweeper cost DIR`, `collate --cost`, and the report's "Cost".

A scheduler's job is costed from its accounting (Slurm's: sweeper/launching/accounting.py, fetched
through the job's backend, sweeper/launching/backend.py), every attempt counted
(requeued, failed, timed out, out of memory): core-seconds are elapsed x the CPUs it held on all
of its nodes, GPU-seconds elapsed x GPUs. A packed task's cost is shared among its jobs by their
measured time (each record's `usage.wall_s`), a fused group's by even shares (its records' usage
already is). A job that ran off Slurm is costed from its record's `usage`: its wall time x the CPUs
and GPUs its process had. A partial sweep is costed as far as it ran, and the jobs still to run are
estimated from the finished jobs of their task.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from sweeper import allocation
from sweeper.status import ACTIVE, FINISHED
from sweeper.launching import accounting, right_size
from sweeper.launching.backend import backend_of
from sweeper.sweep.jobs import Job
from sweeper.words import counted, duration
from sweeper.words import gigabytes as _gb

COST_NAME = "cost.md"


@dataclasses.dataclass
class JobCost:
    """What one job used, over all of its attempts."""

    task: str
    resources: str                  # its request, in words: the group it is costed in
    attempts: int = 0
    wall_s: float = 0.0
    core_s: float = 0.0
    gpu_s: float = 0.0
    cpu_s: float = 0.0              # CPU time used
    held_cpu_s: float = 0.0         # elapsed x CPUs of the attempts whose CPU time is known
    peak_mb: float | None = None    # on its busiest node
    asked_mb: float | None = None   # a node's memory request
    limit_s: float | None = None
    longest_s: float = 0.0          # its longest attempt
    out_of_memory: int = 0
    timeouts: int = 0
    shared: str | None = None       # packed with others, or fused: how its share was taken
    right_sized: int = 0            # its Slurm jobs submitted right-sized (sweeper/launching/right_size.py)
    resubmitted: int = 0            # and those submitted again as asked after a right-sized one ran short


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.3g}"


def _asked(attempt: dict[str, Any], scheduler: str) -> str:
    """What the attempt held, as its scheduler (`Slurm`, its backend's title) gave it."""
    nodes = attempt["nodes"] or 1
    mem = f", {_gb(attempt['mem_mb'] / nodes)} a node" if attempt["mem_mb"] else ""
    where = f"{nodes} nodes, " if nodes > 1 else ""
    return (f"{scheduler}: {where}{attempt['cpus']} CPU, {attempt['gpus']} GPU{mem}, "
            f"{duration(attempt['time_limit_s'])}")


def _shares(jobs: list[Job], files: dict[str, dict[str, Any]]) -> dict[tuple[str, str], float]:
    """(job name, scheduler's id) -> the job's share of that scheduler's task: its measured time over its
    task's jobs' (an even share where a job has no measured time)."""
    members: dict[str, list[tuple[str, float | None]]] = {}
    for job in jobs:
        record = job.summary
        wall = record.usage.get("wall_s") if record is not None else None
        for task_id in files.get(job.name, {}):
            members.setdefault(task_id, []).append((job.name, wall if isinstance(wall, (int, float)) else None))
    shares = {}
    for task_id, sharing in members.items():
        packed = max([files[name][task_id].get("packed_jobs", 1) for name, _ in sharing] + [len(sharing)])
        total = sum(w for _, w in sharing if w)
        for name, wall in sharing:
            shares[(name, task_id)] = wall / total if wall and total and all(w for _, w in sharing) \
                and len(sharing) == packed else 1 / packed
    return shares


def _from_accounting(job: Job, file: dict[str, Any], shares: dict[tuple[str, str], float]) -> JobCost | None:
    cost = None
    for task_id, entry in file.items():
        attempts = entry.get("attempts") or []
        if not attempts:
            continue
        share = shares.get((job.name, task_id), 1.0)
        if cost is None:
            cost = JobCost(_task(job), _asked(attempts[-1], _scheduler(job)))
        cost.right_sized += entry.get("sizing") == right_size.RIGHT_SIZED
        cost.resubmitted += entry.get("sizing") == right_size.RESUBMITTED
        packed = entry.get("packed_jobs", 1)
        if packed > 1:
            cost.shared = f"packed with {packed - 1} other{'s' if packed > 2 else ''}: a share by measured time"
        for attempt in attempts:
            elapsed = attempt["elapsed_s"]
            cost.attempts += 1
            cost.wall_s += elapsed * share
            cost.core_s += elapsed * attempt["cpus"] * share
            cost.gpu_s += elapsed * attempt["gpus"] * share
            cost.cpu_s += attempt["cpu_s"] * share
            cost.held_cpu_s += elapsed * attempt["cpus"] * share
            cost.longest_s = max(cost.longest_s, elapsed)
            nodes = attempt["nodes"] or 1
            if attempt["mem_mb"]:
                cost.asked_mb = attempt["mem_mb"] / nodes
            cost.limit_s = attempt["time_limit_s"]
            cost.peak_mb = _max(cost.peak_mb, attempt["max_rss_mb"])
            cost.out_of_memory += bool(attempt.get("out_of_memory"))
            cost.timeouts += attempt["state"] in ("TIMEOUT", "DEADLINE")
    if cost is not None and job.summary is not None:  # a job of a few seconds may end between samples
        cost.peak_mb = _max(cost.peak_mb, job.summary.usage.get("peak_rss_mb"))
    return cost


def _from_usage(job: Job) -> JobCost | None:
    record = job.summary
    usage = record.usage if record is not None else {}
    if not usage or record is None:
        return None
    wall, cpus, gpus = usage.get("wall_s", 0.0), usage.get("cpus", 1), usage.get("gpus", 0)
    cost = JobCost(_task(job), f"on {record.host}: {cpus} CPU, {gpus} GPU", attempts=1, wall_s=wall,
                   core_s=wall * cpus, gpu_s=wall * gpus, cpu_s=usage.get("cpu_s", 0.0), held_cpu_s=wall * cpus,
                   peak_mb=usage.get("peak_rss_mb"), longest_s=wall)
    if usage.get("shared_by"):
        cost.shared = f"fused with {usage['shared_by'] - 1} others: an even share"
    return cost


def _max(a: float | None, b: Any) -> float | None:
    if not isinstance(b, (int, float)):
        return a
    return b if a is None else max(a, b)


def _scheduler(job: Job) -> str:
    """The title of the scheduler whose accounting costs the job (lists written before named none: Slurm's)."""
    return backend_of(job.entry.scheduler if job.entry and job.entry.scheduler else allocation.SLURM).title


def _task(job: Job) -> str:
    record = job.summary
    if record is not None:
        return record.task
    return (job.entry.task if job.entry else None) or "?"


def job_costs(jobs: list[Job], fetch: bool = True) -> dict[str, JobCost]:
    """Each job's cost, by job name; jobs that have not run (or left nothing to cost) are left out.
    `fetch`: ask their scheduler the accounting of ended jobs that have none beside their record yet."""
    if fetch:
        _fetch(jobs)
    files = {job.name: accounting.read_file(job.path) for job in jobs if job.path is not None and (job.entry is None or _scheduler_ids(job))}
    shares = _shares(jobs, files)
    costs = {}
    for job in jobs:
        cost = _from_accounting(job, files.get(job.name, {}), shares) or _from_usage(job)
        if cost is not None:
            costs[job.name] = cost
    return costs


def _fetch(jobs: list[Job]) -> None:
    """The accounting of the jobs a scheduler ran and no longer runs, once (a sweep run with
    wait=false, or one whose end did not wait long enough for it)."""
    wanted: dict[str | None, dict[Path, list[tuple[str, int]]]] = {}
    for job in jobs:
        entry = job.entry
        if job.path is None or entry is None or job.status in ACTIVE:
            continue
        ids = _scheduler_ids(job)
        packed = 2 if entry.packed_task else 1  # at least shared; _shares counts the task's jobs
        if ids:
            wanted.setdefault(entry.scheduler, {})[job.path] = [(job_id, packed) for job_id in ids]
    for scheduler, by_path in wanted.items():
        backend_of(scheduler).save_accounting(by_path)


def _scheduler_ids(job: Job) -> list[str]:
    """Every scheduler's id its sweep's job list says the job was submitted as (one never submitted
    has none, and no accounting file to read: a sweep of 100,000 jobs in process opens no file here)."""
    entry = job.entry
    if entry is None:
        return []
    return entry.scheduler_job_ids or ([entry.scheduler_job_id] if entry.scheduler_job_id else [])


def table(costs: dict[str, JobCost]) -> pd.DataFrame:
    """One row per task and resource request, and a total."""
    rows: dict[tuple[str, str], list[JobCost]] = {}
    for cost in costs.values():
        rows.setdefault((cost.task, cost.resources), []).append(cost)
    out = [_row(task, resources, group) for (task, resources), group in sorted(rows.items())]
    if len(out) > 1:
        out.append(_row("total", "", list(costs.values())))
    shown = pd.DataFrame(out)
    # columns that say nothing here: no failure of that kind, no request known
    quiet = [c for c in ("out of memory", "timeouts", "right-sized", "resubmitted") if not shown[c].any()]
    quiet += [c for c in ("of memory asked", "of time limit") if not shown[c].astype(bool).any()]
    return shown.drop(columns=quiet)


def _row(task: str, resources: str, group: list[JobCost]) -> dict[str, Any]:
    core, held, used = sum(c.core_s for c in group), sum(c.held_cpu_s for c in group), sum(c.cpu_s for c in group)
    peaks = [c.peak_mb for c in group if c.peak_mb is not None]
    asked = [c.asked_mb for c in group if c.asked_mb is not None]
    limits = [c.limit_s for c in group if c.limit_s is not None]
    longest = max(c.longest_s for c in group)
    return {
        "task": task, "resources": resources, "jobs run": len(group), "attempts": sum(c.attempts for c in group),
        "core-h": _hours(core), "GPU-h": _hours(sum(c.gpu_s for c in group)),
        "CPU used": f"{used / held:.0%}" if held else "",
        "peak memory": _gb(max(peaks)) if peaks else "",
        "of memory asked": f"{max(peaks) / max(asked):.0%}" if peaks and asked else "",
        "longest": duration(longest),
        "of time limit": f"{longest / max(limits):.1%}" if limits else "",
        "out of memory": sum(c.out_of_memory for c in group), "timeouts": sum(c.timeouts for c in group),
        "right-sized": sum(c.right_sized for c in group), "resubmitted": sum(c.resubmitted for c in group),
    }


def waste(costs: Iterable[JobCost]) -> list[str]:
    """The requests that went unused, in words, one line per task and request."""
    groups: dict[tuple[str, str], list[JobCost]] = {}
    for cost in costs:
        groups.setdefault((cost.task, cost.resources), []).append(cost)
    lines = []
    for (task, _), group in sorted(groups.items()):
        asked = max((c.asked_mb for c in group if c.asked_mb), default=None)
        peak = max((c.peak_mb for c in group if c.peak_mb is not None), default=None)
        limit = max((c.limit_s for c in group if c.limit_s), default=None)
        said = []
        if asked and peak is not None:
            said.append(f"asked {_gb(asked)}, used at most {_gb(peak)}")
        if limit:
            said.append(f"asked {duration(limit)}, the longest job took {duration(max(c.longest_s for c in group))}")
        if said:
            lines.append(f"{task}: {'; '.join(said)}")
    return lines


def still_to_run(jobs: list[Job], costs: dict[str, JobCost]) -> str | None:
    """The estimate for the jobs that have not finished: the mean of the finished jobs of their task."""
    rest = [job for job in jobs if job.status not in FINISHED]
    if not rest:
        return None
    done: dict[str, list[JobCost]] = {}
    for job in jobs:
        if job.status in FINISHED and job.name in costs:
            done.setdefault(costs[job.name].task, []).append(costs[job.name])
    core = gpu = 0.0
    unknown = 0
    for job in rest:
        finished = done.get(_task(job))
        if not finished:
            unknown += 1
            continue
        spent = costs[job.name] if job.name in costs else None
        core += max(0.0, sum(c.core_s for c in finished) / len(finished) - (spent.core_s if spent else 0.0))
        gpu += max(0.0, sum(c.gpu_s for c in finished) / len(finished) - (spent.gpu_s if spent else 0.0))
    line = (f"still to run: {counted(len(rest), 'job')}, about {_hours(core)} core-h and {_hours(gpu)} GPU-h more "
            "(the mean of the finished jobs of their task)")
    if unknown:
        line += f"; {counted(unknown, 'job')} of a task with no finished job not estimated"
    return line


@dataclasses.dataclass
class SweepCost:
    """A sweep's cost as `cost`, the report and the page show it."""

    headline: str
    table: pd.DataFrame | None  # None: nothing ran yet
    notes: list[str]


def sweep_cost(sweep_dir: Path, jobs: list[Job], fetch: bool = True) -> SweepCost:
    costs = job_costs(jobs, fetch)
    if not costs:
        return SweepCost(f"no job of {sweep_dir} has run yet: nothing to cost", None, [])
    core = sum(c.core_s for c in costs.values())
    gpu = sum(c.gpu_s for c in costs.values())
    headline = (f"cost of {sweep_dir}: {counted(len(costs), 'job')} of {len(jobs)} ran, {_hours(core)} core-h and "
                f"{_hours(gpu)} GPU-h over {counted(sum(c.attempts for c in costs.values()), 'attempt')}")
    notes = waste(costs.values())
    shared = {c.shared.split(":")[0].split(" with ")[0] for c in costs.values() if c.shared}
    if shared:
        notes.append(f"{' and '.join(sorted(shared))} jobs are costed by their share of what their task or group used")
    rest = still_to_run(jobs, costs)
    if rest:
        notes.append(rest)
    return SweepCost(headline, table(costs), notes)


def summary(sweep_dir: Path, jobs: list[Job], fetch: bool = True) -> str:
    """The cost of the jobs, as `cost` prints it and the report's "Cost" section shows it (markdown)."""
    cost = sweep_cost(sweep_dir, jobs, fetch)
    if cost.table is None:
        return cost.headline + "\n"
    lines = [cost.headline, "", cost.table.to_markdown(index=False), "", *[f"- {note}" for note in cost.notes]]
    return "\n".join(lines).rstrip() + "\n"


def columns(costs: dict[str, JobCost]) -> dict[str, dict[str, Any]]:
    """`collate --cost`: each job's cost columns, by job name."""
    return {name: {"cost.core_h": round(c.core_s / 3600, 6), "cost.gpu_h": round(c.gpu_s / 3600, 6),
                   "cost.cpu_s": round(c.cpu_s, 3), "cost.wall_s": round(c.wall_s, 3), "cost.attempts": c.attempts,
                   "cost.peak_mb": c.peak_mb, "cost.asked_mb": c.asked_mb, "cost.limit_s": c.limit_s,
                   "cost.resources": c.resources}
            for name, c in costs.items()}
