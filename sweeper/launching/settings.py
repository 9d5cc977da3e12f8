"""The settings of the `slurm` and `local` launchers: the stock submitit launchers' settings and
this project's. Here, below the plugin: the framework (this folder, the job's spec, the refusals)
reads them, and the plugin (hydra_plugins/launcher_plugins/config.py) registers them with Hydra as
`hydra/launcher=slurm` and `hydra/launcher=local`.
"""
from dataclasses import dataclass, field
from typing import Any, List, Optional

from hydra_plugins.hydra_submitit_launcher.config import LocalQueueConf, SlurmQueueConf


@dataclass
class SlurmConf(SlurmQueueConf):
    # A preset's packing (conf/packing/), applied here only: in process and locally nothing changes.
    defaults: List[Any] = field(default_factory=lambda: ["_self_", {"optional /hydra/packing@_here_": "${oc.select:packing,none}"}])
    _target_: str = "hydra_plugins.launcher_plugins.submitit_launchers.SlurmLauncher"
    timeout_min: int = 120                   # each job's time limit
    gpus_per_node: Optional[int] = None      # None: the job's own `gpus`
    cpus_per_task: int = 1                   # CPUs of a job without GPUs
    cpus_per_gpu: int = 4                    # a job with N GPUs gets max(cpus_per_task, N x cpus_per_gpu)
    mem_gb: int = 8                          # memory of each job
    # Empty unless set here or in the environment (sbatch's own variables).
    partition: Optional[str] = "${oc.env:SBATCH_PARTITION,null}"
    account: Optional[str] = "${oc.env:SBATCH_ACCOUNT,null}"
    qos: Optional[str] = "${oc.env:SBATCH_QOS,null}"
    constraint: Optional[str] = "${oc.env:SBATCH_CONSTRAINT,null}"
    setup: List[str] = field(default_factory=list)   # shell lines run first, e.g. "module load cuda"
    max_num_timeout: int = 3                 # requeues of a job after a time limit or preemption
    max_array_size: Optional[int] = None     # jobs per array; None: the cluster's MaxArraySize
    wait: bool = True                        # false: submit, print the Slurm job ids, return at once
    jobs_per_task: int = 1                   # jobs run one after the other in one Slurm task (packing)
    jobs_in_parallel: int = 1                # of a packed task's jobs, how many run at once (worker processes)
    # A job over several workers (nodes > 1, tasks_per_node > 1): a worker silent this long (a
    # collective waiting on it) ends the job, `failed`, naming it (docs/slurm.md#several-nodes).
    worker_timeout_s: int = 120
    # true: once 3 jobs of a request have finished ok, the others ask for the memory and time those
    # used plus a margin (docs/slurm.md#right-sized-requests). Off by default: what a user asks for
    # is what each job gets unless they opt in (a course's own limits, a job that needs more later).
    right_size: bool = False


@dataclass
class LocalConf(LocalQueueConf):
    _target_: str = "hydra_plugins.launcher_plugins.submitit_launchers.LocalLauncher"
    timeout_min: int = 1440                  # each job's time limit
    gpus_per_node: Optional[int] = None      # None: the job's own `gpus` (CUDA_VISIBLE_DEVICES=0,...)
    max_parallel: Optional[int] = None       # processes running at once; None: the number of CPUs
    jobs_per_task: int = 1                   # jobs run one after the other in one process (packing)
    jobs_in_parallel: int = 1                # of a packed process's jobs, how many run at once (worker processes)
