"""What the scheduler running this process gave it: the scheduler's job id, the CPUs and GPUs, the
variables a record keeps, and this task's place in its job step (a job over several tasks).

A job's own process reads it (its owner marker, its record, its usage, its workers), so it sits in
the bottom layer, below the launchers (sweeper/launching/: they submit, and ask the scheduler
about its jobs afterwards), which job/ and training/ may not import. It is the one module outside
sweeper/launching/ that reads a scheduler's variables (tests/test_imports.py checks): another
scheduler's go here too, beside Slurm's.

A step's tasks come from Slurm's own variables: its nodes (`SLURM_STEP_NODELIST`, expanded by
`scontrol show hostnames`, as Slurm expands it), the tasks on each (`SLURM_STEP_TASKS_PER_NODE`;
srun's block distribution: ranks fill a node before the next), this task's rank (`SLURM_PROCID`).
TensorFlow's `tf.distribute.cluster_resolver.SlurmClusterResolver` reads the same variables but
gives other workers: it orders the nodes as text (node10 before node9, while `SLURM_PROCID` follows
Slurm's order), numbers the ports of each node from one base (two jobs on a node clash; ours are
drawn from the job id, sweeper/training/workers.py), fails for workers without GPUs (a range of
step 0) and sets CUDA_VISIBLE_DEVICES itself unless told not to; it also needs TensorFlow imported
(3 s) before a worker has chosen its GPUs, and had bugs with job steps (TensorFlow #36094).
"""
from __future__ import annotations

import dataclasses
import os
import re
import subprocess
from pathlib import Path
from typing import Mapping

SLURM = "slurm"  # the scheduler's name as a job list and an owner marker write it (sweeper/launching/backend.py)

# A record's `environment`: these, where set (docs/records.md).
RECORDED = ("SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID", "SLURM_CPUS_PER_TASK",
            "SLURM_GPUS_ON_NODE", "CUDA_VISIBLE_DEVICES")


def recorded(env: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The variables a record keeps of where its job ran (those of RECORDED that are set)."""
    return {key: env[key] for key in RECORDED if key in env}


def ran_under_scheduler(environment: Mapping[str, str]) -> bool:
    """Whether a record's `environment` (`recorded`) is a scheduler's job's."""
    return bool(environment.get("SLURM_JOB_ID"))


def scheduler_job(env: Mapping[str, str] = os.environ) -> tuple[str, str] | None:
    """(scheduler, job id) of the job running this process, None outside one: an array task's id
    is `ARRAYID_TASKID`, as the job list names it."""
    array = env.get("SLURM_ARRAY_JOB_ID") and f"{env['SLURM_ARRAY_JOB_ID']}_{env.get('SLURM_ARRAY_TASK_ID')}"
    job_id = array or env.get("SLURM_JOB_ID")
    return (SLURM, job_id) if job_id else None


def gpus() -> int:
    """The GPUs this process may use: CUDA_VISIBLE_DEVICES's where set (Slurm sets it), else the
    driver's count (none on a machine without NVIDIA's driver)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([d for d in visible.split(",") if d.strip() and d.strip() != "-1"])
    try:
        return len(list(Path("/proc/driver/nvidia/gpus").iterdir()))
    except OSError:
        return 0


def cpus() -> int:
    """The CPUs this process may run on (its Slurm allocation's on a node, or the machine's)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


@dataclasses.dataclass(frozen=True)
class Step:
    """This task's place among the tasks of its job step."""
    rank: int                    # this task's, 0 to len(hosts) - 1
    local_rank: int              # its index among the step's tasks on its node
    hosts: tuple[str, ...]       # each task's node, by rank
    job_id: str                  # the scheduler's job id


def tasks_per_node(text: str) -> list[int]:
    """Slurm's compressed count of tasks on each node: "2(x3),1" -> [2, 2, 2, 1]."""
    counts = []
    for part in text.split(","):
        match = re.fullmatch(r"(\d+)(?:\(x(\d+)\))?", part.strip())
        if match is None:
            raise ValueError(f"not a Slurm tasks-per-node list: {text!r}")
        counts += [int(match.group(1))] * int(match.group(2) or 1)
    return counts


def hostnames(nodelist: str) -> list[str]:
    """A Slurm node list ("node[1-3],gpu7") expanded, as Slurm expands it."""
    out = subprocess.run(["scontrol", "show", "hostnames", nodelist], capture_output=True, text=True,
                         timeout=30, check=True)
    return out.stdout.split()


def step(env: Mapping[str, str] = os.environ) -> Step | None:
    """This process's place among the tasks of its Slurm job step (srun's variables; a batch script
    or an allocation's shell has none); None where it is the only task or runs outside a step.
    ValueError where the variables do not agree."""
    count = int(env.get("SLURM_STEP_NUM_TASKS") or 1)
    if count < 2:
        return None
    nodes = hostnames(env["SLURM_STEP_NODELIST"])
    per_node = tasks_per_node(env["SLURM_STEP_TASKS_PER_NODE"])
    hosts = tuple(node for node, tasks in zip(nodes, per_node) for _ in range(tasks))
    if len(hosts) != count:
        raise ValueError(f"Slurm lists {len(hosts)} tasks on nodes {','.join(nodes)} for a step of {count}")
    return Step(rank=int(env["SLURM_PROCID"]), local_rank=int(env.get("SLURM_LOCALID") or 0), hosts=hosts,
                job_id=env["SLURM_JOB_ID"])
