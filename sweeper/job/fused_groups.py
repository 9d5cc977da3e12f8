"""Fused groups: the jobs of one batch that differ only in optimizer hyperparameters train as one
computation (the task's `run_fused`, built on sweeper/training/fused_loop.py), and every job still runs
through `execute` and ends with its own directory, record, logs and `[k/N]` line.

Whoever runs a batch of jobs in one process plans the groups first (a `FusedPlan` of the planned
jobs, in the run context it hands to `execute`): the in-process grid sweeper does, before it runs
a batch (sweeper/sweep/grid.py), and a packed task does before it runs its jobs
(sweeper/launching/packed.py). Then, when `execute` calls the first job of a group, `call_task`
asks the plan's `outcome_of`, which trains the whole group and keeps the other jobs' outcomes
until `execute` comes to them. A job done before, or held by another live run, is left out of its group.

Each copy saves its training state at every epoch end in its own directory, as a lone job does
(sweeper/training/fused_state.py); jobs that continue from saved state are grouped by the epochs
they saved, so a group starts its copies at one epoch. When Ctrl-C or a signal stops a group, every
member ends with the record a lone job stopped so would have: `interrupted`, its history up to its
saved state. A search's jobs are not fused (the search plans no groups): each reports to its own
trial every epoch (trial.py).
"""
from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from omegaconf import DictConfig, OmegaConf

from sweeper.hparams import optimizer_arguments, optimizer_hparams
from sweeper.job import environment, owner, task
from sweeper.job.context import RunContext
from sweeper.job.display import group_label
from sweeper.job.fingerprint import MismatchError, container, finished_record
from sweeper.outcome import Outcome, offered
from sweeper.job.planned import PlannedJob
from sweeper.job.recording import record_stopped
from sweeper.job.usage import Meter
from sweeper.training import checkpoint
from sweeper.training.fused_state import FUSED_ARGS, FUSED_OPTIMIZERS
from sweeper.training.tf import locate_quietly, traces_freed

# The optimizer node's keys that fused jobs may differ in (and the top-level keys they read).
OPTIMIZER_KEYS = ("name", *FUSED_ARGS)


@dataclasses.dataclass
class FusedGroup:
    members: list[PlannedJob]
    outcomes: dict[Path, Outcome] | None = None   # once trained: by job directory
    error: Exception | None = None                 # the group's training raised this


def fused_function(cfg: DictConfig) -> Callable[..., list[Outcome]] | None:
    """The task's `run_fused` (beside its `run`, same module), where it has one."""
    target = OmegaConf.select(cfg, "task.run._target_")
    if not target or "." not in target:
        return None
    module, _ = target.rsplit(".", 1)
    return getattr(locate_quietly(module), "run_fused", None)


def fusion_key(cfg: DictConfig, resolved: dict[Any, Any] | None = None) -> str | None:
    """Jobs with the same key train the same model on the same batches with one optimizer family:
    the resolved config less the optimizer hyperparameters (and Hydra's own node). None: the task
    does not fuse. `resolved`: the config's fingerprint.container where the caller has it (a
    sweep's planner, without resolving each job's config)."""
    if (fused_function(cfg) is None or OmegaConf.select(cfg, "task.run.gpus", default=0)
            or OmegaConf.select(cfg, "task.run.nodes", default=1) != 1):
        return None  # a fused group trains on one device: jobs on several train apart
    if OmegaConf.select(cfg, "optimizer._target_") not in FUSED_OPTIMIZERS:
        _say_unfused(str(OmegaConf.select(cfg, "optimizer._target_")), str(OmegaConf.select(cfg, "optimizer.name")))
        return None
    resolved = container(cfg) if resolved is None else resolved
    # The seed stays in the key: repeats (sweeper/sweep/repeats.py) train apart, since a group's copies
    # share one data order (fused_loop.py feeds every copy the same batches) and a repeat draws its own.
    varied = {key for argument, key in optimizer_hparams(cfg).items() if argument in FUSED_ARGS}
    content = {key: value for key, value in resolved.items() if key not in varied}
    optimizer = content.get("optimizer")
    if isinstance(optimizer, dict):
        content["optimizer"] = {key: value for key, value in optimizer.items() if key not in OPTIMIZER_KEYS}
    return json.dumps(content, sort_keys=True, default=str)


_said: set[str] = set()  # the optimizers this process said it trains unfused


def _say_unfused(target: str, name: str) -> None:
    """Say once per process that an optimizer's jobs train one by one, and why."""
    if target not in _said:
        _said.add(target)
        print(f"note: optimizer={name} ({target}) is not fused: its jobs train one by one "
              f"(fused training knows {', '.join(t.rsplit('.', 1)[1] for t in FUSED_OPTIMIZERS)})",
              file=sys.stderr, flush=True)


class FusedPlan:
    """The fused groups planned for the jobs one process runs: each job's group, by its directory,
    until the job's `execute` comes to it."""

    def __init__(self, jobs: Iterable[PlannedJob] = (), max_fused: int | None = None,
                 resolved: Callable[[PlannedJob], dict[Any, Any]] | None = None):
        self._planned: dict[Path, FusedGroup] = {}
        self.groups = self.plan(jobs, max_fused, resolved)

    def plan(self, jobs: Iterable[PlannedJob], max_fused: int | None = None,
             resolved: Callable[[PlannedJob], dict[Any, Any]] | None = None) -> list[list[PlannedJob]]:
        """Group the jobs that fuse (in their order, at most `max_fused` a group) and keep each group
        of two or more for `outcome_of`. Jobs with saved training state fuse with those that saved as
        many epochs. Returns those groups. `resolved`: each job's resolved config (fusion_key)."""
        by_key: dict[tuple[str, int], list[PlannedJob]] = {}
        for job in jobs:
            key = fusion_key(job.cfg, resolved(job) if resolved is not None else None)
            if key is not None:
                by_key.setdefault((key, checkpoint.saved_epoch(job.directory)), []).append(job)
        groups = []
        for same in by_key.values():
            size = max_fused or len(same)
            groups += [same[i:i + size] for i in range(0, len(same), size) if len(same[i:i + size]) > 1]
        for members in groups:
            group = FusedGroup(members)
            for job in members:
                self._planned[_key(job.directory)] = group
        return groups

    def outcome_of(self, job: PlannedJob, context: RunContext) -> Outcome | None:
        """This job's outcome from its fused group, training the group when it is the first to come;
        None when the job is in no group (it runs alone). Re-raises what the group's training raised."""
        caller = _key(job.directory)
        group = self._planned.pop(caller, None)
        if group is None:
            return None
        if group.outcomes is None and group.error is None:
            self._train(group, caller, job.fingerprint, context)
        if group.error is not None:
            raise group.error
        assert group.outcomes is not None
        return group.outcomes.pop(caller, None)

    def _still_to_run(self, group: FusedGroup, caller: Path, fingerprint: str) -> list[PlannedJob]:
        """The members to train now: the caller (`execute` holds its directory) and each other member
        that is not done and whose directory this process takes (it keeps it until `execute` comes)."""
        members = []
        for member in group.members:
            directory = _key(member.directory)
            if directory == caller:
                if member.fingerprint == fingerprint:
                    members.append(member)
            elif not _done(member) and owner.take(directory) is None:
                members.append(member)
            else:
                self._planned.pop(directory, None)  # its own `execute` says why it is skipped
        return members

    def _train(self, group: FusedGroup, caller: Path, fingerprint: str, context: RunContext) -> None:
        members = self._still_to_run(group, caller, fingerprint)
        group.outcomes = {}
        if len(members) < 2 or caller not in {_key(m.directory) for m in members}:
            for member in members:
                self._planned.pop(_key(member.directory), None)  # alone after all: `execute` runs it so
            return
        started, meter = environment.now(), Meter.start()
        try:
            outcomes = train_group([m.cfg for m in members], [m.directory for m in members],
                                   progress=group_label([m.overrides for m in members]))  # one line for the group
        except Exception as e:  # every member's record says so; the sweep goes on
            group.error = e
            return
        except BaseException as stop:  # Ctrl-C, or a signal's SystemExit: each member ends as alone
            _record_stopped([m for m in members if _key(m.directory) != caller], stop, started, context)
            raise  # the caller's own `execute` records it
        usage = meter.stop(shared_by=len(outcomes))
        for outcome in outcomes:
            outcome.started = started  # the record's `started`: when its training began
            outcome.usage = usage
        group.outcomes = {_key(m.directory): o for m, o in zip(members, outcomes)}


def _key(directory: Path) -> Path:
    return Path(directory).resolve()


def _done(member: PlannedJob) -> bool:
    """Finished before, or another configuration's record (its own `execute` refuses it)."""
    try:
        return finished_record(member.directory, member.fingerprint, member.overrides, member.former,
                               member.config) is not None
    except MismatchError:
        return True


def _record_stopped(members: Sequence[PlannedJob], stop: BaseException, started: str, context: RunContext) -> None:
    """The records of the members that `stop` interrupted while the caller's `execute` trained
    them (recording.record_stopped); their directories are given back."""
    for member in members:
        try:
            record_stopped(member, stop, started, context)
        finally:
            owner.give_back(member.directory)


def train_group(configs: Sequence[DictConfig], job_dirs: Sequence[Path], progress: str | None = None) -> list[Outcome]:
    """Train the jobs of `configs` (one fusion key) as one computation: the task's `run_fused`
    with the arguments of its `run` node and every job's optimizer (`progress`: the name of the
    group's progress line, where the task shows one). One outcome per job, in order."""
    run = task.build(configs[0])
    optimizers = [optimizer_arguments(c) for c in configs]
    fused = fused_function(configs[0])
    assert fused is not None, "jobs are fused only where the task has a run_fused (fusion_key)"
    with traces_freed():  # the group's traces die with it: so does what TensorFlow keeps of them
        return fused(optimizers=optimizers, job_dirs=list(job_dirs), **run.keywords, **offered(fused, progress=progress))
