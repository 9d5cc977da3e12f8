"""One job over several scheduler tasks (`nodes=N`, `hydra.launcher.tasks_per_node=K`): each task is
a worker that runs the whole job, and the workers train one model data-parallel under
`tf.distribute.MultiWorkerMirroredStrategy` (sweeper/training/worker_loop.py).

Workers find each other from their job step as the scheduler gave it (sweeper/allocation.py: the
step's nodes, the tasks on each, this task's rank; why not TensorFlow's `SlurmClusterResolver`
is said there). Each worker listens on a port derived from the scheduler's job id, as submitit
derives PyTorch's master port (`submitit.helpers.TorchDistributedEnvironment`), plus its rank: two
jobs on one node do not clash, nor two workers of one job.
"""
from __future__ import annotations

import dataclasses
import os
import random
import re
import sys
from typing import TYPE_CHECKING, Mapping

from sweeper import allocation
from sweeper.training.devices import DeviceError
from sweeper.training.tf import import_tensorflow

if TYPE_CHECKING:
    import tensorflow as tf

PORTS = (20000, 60000)       # the range a job's first port is drawn from (submitit's for PyTorch)
DEFAULT_TIMEOUT_S = 120      # a collective waiting longer for a worker fails: hydra.launcher.worker_timeout_s


@dataclasses.dataclass(frozen=True)
class Workers:
    """This task's place among the workers of its job."""
    rank: int                    # 0: the chief, which alone writes the record, logs and state
    hosts: tuple[str, ...]       # each worker's node, by rank
    port: int                    # worker 0's port; worker r listens on port + r
    local_rank: int              # this worker's index among those on its node
    timeout_s: int = DEFAULT_TIMEOUT_S

    @property
    def count(self) -> int:
        return len(self.hosts)

    @property
    def nodes(self) -> list[str]:
        return list(dict.fromkeys(self.hosts))

    @property
    def on_this_node(self) -> int:
        return self.hosts.count(self.hosts[self.rank])

    def addresses(self) -> list[str]:
        return [f"{host}:{self.port + rank}" for rank, host in enumerate(self.hosts)]

    def name(self, rank: int) -> str:
        """`worker 1 (node2)`."""
        return f"worker {rank} ({self.hosts[rank]})"


def port_of(job_id: str, workers: int) -> int:
    """Worker 0's port for a scheduler's job: drawn from the job id, room left above it for the others."""
    return random.Random(job_id).randint(PORTS[0], PORTS[1] - workers)


def from_allocation(env: Mapping[str, str] = os.environ, timeout_s: int = DEFAULT_TIMEOUT_S) -> Workers | None:
    """This process's place among the workers of its job: its job step's tasks (sweeper/allocation.py);
    None where it is the only task or runs outside a step: a job of one worker trains as it always has."""
    try:
        step = allocation.step(env)
    except ValueError as error:
        raise DeviceError(str(error)) from error
    if step is None:
        return None
    return Workers(rank=step.rank, hosts=step.hosts, port=port_of(step.job_id, len(step.hosts)),
                   local_rank=step.local_rank, timeout_s=timeout_s)


def _gpus_of_this_worker(workers: Workers, gpus: int) -> None:
    """Several workers on one node share its GPUs: each keeps its own `gpus` of those the scheduler
    gave the node (CUDA_VISIBLE_DEVICES), before TensorFlow starts and sees them all."""
    visible = [d for d in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if d]
    if workers.on_this_node < 2 or len(visible) < gpus * workers.on_this_node or "tensorflow" in sys.modules:
        return
    start = workers.local_rank * gpus
    os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(visible[start:start + gpus])


def strategy(workers: Workers, gpus: int, devices: str = "gpu") -> tf.distribute.Strategy:
    """MultiWorkerMirroredStrategy over the workers: `gpus` replicas on each (devices=gpu), or one
    on its CPU (gpus 0, or devices=cpu: logical CPUs do not span processes). Its collectives give
    up after `workers.timeout_s`, so a lost worker ends the job instead of hanging it. Make it
    before TensorFlow runs anything else in this process (TensorFlow's rule)."""
    if devices == "cpu" and gpus > 1:
        raise DeviceError(f"gpus={gpus} devices=cpu over several workers: each worker trains one CPU replica; "
                          "use gpus=1 (or 0) with devices=cpu")
    if gpus and devices == "gpu":
        _gpus_of_this_worker(workers, gpus)
    tf = import_tensorflow()
    accelerators = None
    if gpus and devices == "gpu":
        have = len(tf.config.list_physical_devices("GPU"))
        if have < gpus:
            raise DeviceError(f"gpus={gpus} but {have} GPU(s) visible to {workers.name(workers.rank)} "
                              f"(CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')}): request "
                              "the GPUs from Slurm, lower gpus, or add devices=cpu")
        accelerators = {"GPU": gpus}
    resolver = tf.distribute.cluster_resolver.SimpleClusterResolver(
        tf.train.ClusterSpec({"worker": workers.addresses()}), task_type="worker", task_id=workers.rank,
        num_accelerators=accelerators, rpc_layer="grpc")
    options = tf.distribute.experimental.CommunicationOptions(timeout_seconds=float(workers.timeout_s))
    return tf.distribute.MultiWorkerMirroredStrategy(cluster_resolver=resolver, communication_options=options)


def lost_worker(workers: Workers, error: BaseException) -> str:
    """What a collective's error says of the lost worker: `worker 1 (node2) was lost` where it names
    a task, else the error's last line."""
    text = str(error)
    named = sorted({int(rank) for rank in re.findall(r"/job:worker/replica:0/task:(\d+)", text)} - {workers.rank})
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    detail = f"{type(error).__name__}: {lines[-1] if lines else ''}"
    if named and named[0] < workers.count:
        return f"{workers.name(named[0])} was lost ({detail})"
    return f"a worker of {workers.count} was lost ({detail})"
