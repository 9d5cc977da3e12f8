"""Packing's pieces with no cluster: what a partition's nodes offer (fake `sinfo`), the request
no node can satisfy, pending reasons (fake `squeue`), a packed job's status, CPU shares."""
from __future__ import annotations

import pytest

from sweeper.errors import Refused
from sweeper.status import ACTIVE, NEEDS_RERUN, Status, decide
from sweeper.launching.backend import SLURM
from sweeper.launching.capacity import impossible
from sweeper.launching.packed import cpu_shares
from sweeper.launching.slurm_queries import node_offers, pending_reasons
from tests.fake_slurm import slurm  # noqa: F401  (the fake Slurm commands)

SINFO = ("debug*|vm|2|21694|gpu:4\n"
         "gpu|g1|32|256000|gpu:a100:4(S:0-1),shard:8\n"
         "gpu|g2|16+|128000|(null)\n")


def test_node_offers_of_the_default_and_a_named_partition(slurm):
    slurm.command("sinfo", SINFO)
    assert node_offers(None) == {"vm": {"cpus": 2, "mem_mb": 21694, "gpus": 4}}
    assert node_offers("gpu") == {"g1": {"cpus": 32, "mem_mb": 256000, "gpus": 4},
                                  "g2": {"cpus": 16, "mem_mb": 128000, "gpus": 0}}
    assert node_offers("nosuch") is None  # sbatch will say what is wrong
    slurm.command("sinfo", stderr="slurm_load_partitions: Unable to contact slurm controller\n", code=1)
    assert node_offers(None) is None


SETTINGS = {"cpus_per_task": 1, "cpus_per_gpu": 4, "mem_gb": 8}
VM = {"vm": {"cpus": 2, "mem_mb": 21694, "gpus": 4}}


@pytest.mark.parametrize("params, fix", [
    ({"cpus_per_task": 4, "gpus_per_node": 1, "mem_gb": 8}, "lower hydra.launcher.cpus_per_gpu (now 4 CPUs per GPU)"),
    ({"cpus_per_task": 3, "gpus_per_node": None, "mem_gb": 8}, "lower hydra.launcher.cpus_per_task (now 1)"),
    ({"cpus_per_task": 1, "gpus_per_node": None, "mem_gb": 64}, "lower hydra.launcher.mem_gb (now 8)"),
    ({"cpus_per_task": 1, "gpus_per_node": 5, "mem_gb": 8},
     "ask for at most 4 GPUs per task (gpus=..., or hydra.launcher.gpus_per_node; now 5)"),
    # More GPUs than a node has, and their CPUs (cpus_per_gpu x 8) too: the GPUs are the mistake.
    ({"cpus_per_task": 32, "gpus_per_node": 8, "mem_gb": 8},
     "ask for at most 4 GPUs per task (gpus=..., or hydra.launcher.gpus_per_node; now 8)"),
])
def test_a_request_no_node_has_names_the_setting_to_change(params, fix):
    why = impossible(params, VM, SETTINGS)
    assert why.startswith("asks for ") and "the nodes of the default partition have at most 2 CPUs, 21.2 GB, 4 GPUs" in why
    assert why.endswith(fix)


def test_a_request_one_node_has_passes():
    assert impossible({"cpus_per_task": 2, "gpus_per_node": 4, "mem_gb": 16}, VM, SETTINGS) is None
    # Each resource alone is somewhere, not all on one node: still impossible.
    nodes = {"a": {"cpus": 32, "mem_mb": 1024, "gpus": 0}, "b": {"cpus": 2, "mem_mb": 512000, "gpus": 8}}
    assert impossible({"cpus_per_task": 8, "gpus_per_node": 1, "mem_gb": 8}, nodes, SETTINGS) is not None


def test_the_workers_on_a_node_need_their_cpus_together():
    two = {"cpus_per_task": 2, "gpus_per_node": None, "mem_gb": 8, "tasks_per_node": 2}
    why = impossible(two, VM, SETTINGS)
    assert why is not None and why.startswith("asks for 4 CPUs, 8 GB, 0 GPUs per node;")
    assert impossible({**two, "cpus_per_task": 1}, VM, SETTINGS) is None


def test_pending_reasons_from_squeue(slurm):
    slurm.command("squeue", "12_0|PartitionConfig\n12_[1-2]|Priority\n")
    assert pending_reasons(["12_0", "12_2"]) == {"12_0": "PartitionConfig", "12_2": "Priority"}
    assert "squeue -h -r -t PENDING -o %i|%r -j 12" in slurm.calls()[-1]


def test_a_packed_job_waits_while_its_task_runs_another():
    assert decide(scheduled=SLURM.status_of("RUNNING"), packed=True) == Status.WAITING
    assert decide(scheduled=SLURM.status_of("RUNNING"), packed=True, owner_alive=True) == Status.RUNNING
    assert decide(scheduled=SLURM.status_of("PENDING"), packed=True) == Status.PENDING
    assert decide(Status.OK, scheduled=SLURM.status_of("RUNNING"), packed=True) == Status.OK
    assert decide(Status.INTERRUPTED, scheduled=SLURM.status_of("RUNNING"), packed=True) == Status.WAITING  # requeued, not its turn yet
    assert decide(scheduled=SLURM.status_of("CANCELLED by 0"), packed=True, started=False) == Status.CANCELLED
    assert decide(scheduled=SLURM.status_of("RUNNING")) == Status.RUNNING  # unpacked: the Slurm job is the job
    assert Status.WAITING in ACTIVE and Status.WAITING not in NEEDS_RERUN


def test_cpu_shares():
    assert cpu_shares([0, 1, 2, 3], 2) == [[0, 2], [1, 3]]
    assert cpu_shares([5, 7], 3) == [[5], [7], [5]]


def test_the_waiting_launcher_stops_at_a_pending_reason_that_never_passes(slurm, tmp_path, capsys):
    from submitit.slurm.slurm import SlurmJob

    from sweeper.job.context import RunContext
    from sweeper.job.planned import PlannedJob
    from sweeper.launching.collect import SubmittedTask, collect

    slurm.command("sacct", "77_0|PENDING\n")
    slurm.command("squeue", "77_0|PartitionConfig\n")
    todo = [PlannedJob(0, tmp_path / "0", "0", ["gpus=1"], "f", None, resources={})]
    task = SubmittedTask([0], SlurmJob(tmp_path / ".submitit" / "%j", "77_0"), packed=False)
    with pytest.raises(Refused) as stopped:
        collect(todo, [task], RunContext())
    assert stopped.value.code == 2 and capsys.readouterr().err == ""  # said once, by the command's entry point
    line = stopped.value.message
    assert line.startswith("Slurm keeps job 0 (gpus=1, Slurm job 77_0) pending for reason PartitionConfig")
    assert "scancel 77" in line and "\n" not in line
