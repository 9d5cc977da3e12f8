"""A request the cluster can never satisfy: a job asking for more CPUs, memory or GPUs than any
node of its partition has. Some clusters accept such a job and keep it pending forever (reason
`PartitionConfig`); here it is refused before anything is submitted, with the setting to change.
"""
from __future__ import annotations

from typing import Any

from sweeper.words import counted

# Pending reasons after which Slurm will never start the job as it is.
NEVER = frozenset({"PartitionConfig", "PartitionNodeLimit", "PartitionTimeLimit", "BadConstraints",
                   "QOSMaxCpuPerJobLimit", "QOSMaxGRESPerJob", "QOSMaxMemoryPerJob"})


def _request(params: dict[str, Any]) -> dict[str, int]:
    """What one node must hold: every task's CPUs on it (tasks_per_node), the node's memory and GPUs."""
    tasks = int(params.get("tasks_per_node") or 1)
    return {"cpus": int(params.get("cpus_per_task") or 1) * tasks, "mem_mb": int((params.get("mem_gb") or 0) * 1024),
            "gpus": int(params.get("gpus_per_node") or 0)}


def _fix(short: str, params: dict[str, Any], settings: dict[str, Any], most: dict[str, int]) -> str:
    """The setting that makes the request smaller."""
    if short == "cpus":
        if params.get("gpus_per_node") and (settings.get("cpus_per_gpu") or 0) * params["gpus_per_node"] > (
                settings.get("cpus_per_task") or 1):
            return f"lower hydra.launcher.cpus_per_gpu (now {settings.get('cpus_per_gpu')} CPUs per GPU)"
        return f"lower hydra.launcher.cpus_per_task (now {settings.get('cpus_per_task')})"
    if short == "mem_mb":
        return f"lower hydra.launcher.mem_gb (now {settings.get('mem_gb')})"
    return (f"ask for at most {most['gpus']} GPUs per task (gpus=..., or hydra.launcher.gpus_per_node; "
            f"now {params.get('gpus_per_node')})")


def _text(amounts: dict[str, int]) -> str:
    return f"{counted(amounts['cpus'], 'CPU')}, {round(amounts['mem_mb'] / 1024, 1):g} GB, {counted(amounts['gpus'], 'GPU')}"


def impossible(params: dict[str, Any], nodes: dict[str, dict[str, int]], settings: dict[str, Any]) -> str | None:
    """Why no node can run a task with these submitit parameters, and what to change; None if one can.

    settings: the launcher's own (cpus_per_task, cpus_per_gpu, mem_gb), to name the one to change.
    """
    wanted = _request(params)
    if any(all(node[key] >= wanted[key] for key in wanted) for node in nodes.values()):
        return None
    most = {key: max(node[key] for node in nodes.values()) for key in wanted}
    # GPUs first: the CPUs a task asks for follow from its GPUs (cpus_per_gpu), so more GPUs than
    # any node has is the mistake to name, not the CPUs that come with them.
    short = next((key for key in ("gpus", "cpus", "mem_mb") if wanted[key] > most[key]), None)
    if short is None:  # each alone fits some node, not all together on one
        short = next(key for key in wanted if wanted[key] > min(node[key] for node in nodes.values()))
    partition = params.get("partition") or "the default partition"
    per = "per node" if int(params.get("tasks_per_node") or 1) > 1 else "per task"
    return (f"asks for {_text(wanted)} {per}; the nodes of {partition} have at most {_text(most)}: "
            f"{_fix(short, params, settings, most)}")
