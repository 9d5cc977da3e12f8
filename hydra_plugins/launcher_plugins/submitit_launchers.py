"""`hydra/launcher=slurm` and `hydra/launcher=local`: the stock submitit launchers, with each job's
resources taken from its own config (`gpus=1,2,4` gives three jobs with 1, 2 and 4 GPUs).

The classes reuse the stock plugin's job side (`__call__`, with the planned job sent beside its
overrides, and `checkpoint`); their `launch` is in sweeper/launching/ (slurm.py, local.py), their
settings in sweeper/launching/settings.py. Settings:
`python run.py -m hydra/launcher=slurm hydra.launcher.partition=gpu`;
`python run.py hydra/launcher=slurm --cfg hydra -p hydra.launcher` shows them all.

Our sweepers hand them planned jobs (`launch_planned`: each job's config composed once, in the
sweeper); Hydra's own sweepers call `launch` with overrides, and the jobs are planned here.
"""
from typing import Dict, List, Optional, Sequence

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn
from hydra_plugins.hydra_submitit_launcher import submitit_launcher

from sweeper.job import context as run_context
from sweeper.job.context import RunContext
from sweeper.job.planned import PlannedJob
from sweeper.launching import local, slurm
from sweeper.launching.compose import plan_for_launcher


class SentPlannedJob(submitit_launcher.BaseSubmititLauncher):
    """The job side of both: the stock one (`__call__`, in the job's process), with the job as the
    sweep planned it around it, so that its fingerprint is the planned one, not computed again."""

    def __call__(self, sweep_overrides: List[str], job_dir_key: str, job_num: int, job_id: str,
                 singleton_state: Dict[type, Singleton], planned: Optional[PlannedJob] = None) -> JobReturn:
        """The stock job side, with the job as the sweep planned it (collect.job_args sends it)."""
        with run_context.active(run_context.sent(planned)):
            return super().__call__(sweep_overrides, job_dir_key, job_num, job_id, singleton_state)


class SlurmLauncher(SentPlannedJob, submitit_launcher.SlurmLauncher):
    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        return self.launch_planned(plan_for_launcher(self, job_overrides, initial_job_idx), RunContext())

    def launch_planned(self, jobs: List[PlannedJob], context: RunContext) -> List[JobReturn]:
        return slurm.launch(self, jobs, context)


class LocalLauncher(SentPlannedJob, submitit_launcher.LocalLauncher):
    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        return self.launch_planned(plan_for_launcher(self, job_overrides, initial_job_idx), RunContext())

    def launch_planned(self, jobs: List[PlannedJob], context: RunContext) -> List[JobReturn]:
        return local.launch(self, jobs, context)
