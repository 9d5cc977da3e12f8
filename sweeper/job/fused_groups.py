"""Fused groups: the jobs of one batch that differ only in optimizer hyperparameters train as one
computation (the task's `run_fused`, built on sweeper/training/fused_loop.py), and every job still runs
through `execute(spec)` and ends with its own directory, record, logs and `[k/N]` line.

Whoever runs a batch of jobs in one process plans the groups first (`plan`, with each job's
directory and composed config): the in-process grid sweeper does, before it hands a batch to
Hydra's launcher (hydra_plugins/sweeper_plugins/checked_sweeper.py), and a packed task does
before it runs its jobs (sweeper/launching/packed.py). Then, when `execute` calls the first job of
a group, `call_task` asks `outcome_of`, which trains the whole group and keeps the other jobs'
outcomes until `execute` comes to them. A job done before, or held by another live run, is left out of its group.

Each copy saves its training state at every epoch end in its own directory, as a lone job does
(sweeper/training/fused_state.py); jobs that continue from saved state are grouped by the epochs
they saved, so a group starts its copies at one epoch. When Ctrl-C or a signal stops a group, every
member ends with the record a lone job stopped so would have: `interrupted`, its history up to its
saved state. A search's jobs are not fused: each reports to its own trial every epoch (trial.py).
"""
from __future__ import annotations

import copy
import dataclasses
import importlib
import json
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import hydra.utils
from omegaconf import DictConfig, OmegaConf, open_dict

from sweeper.job import environment, owner, trial
from sweeper.job.fingerprint import MismatchError, finished_record
from sweeper.job.outcome import Outcome
from sweeper.job.spec import JobSpec, preset_of
from sweeper.hparams import KERAS_ARGS, OPTIMIZER_HPARAMS
from sweeper.training import checkpoint

# The top-level keys and the optimizer node's keys that fused jobs may differ in.
HYPERPARAMETER_KEYS = OPTIMIZER_HPARAMS
OPTIMIZER_KEYS = ("name", *KERAS_ARGS)


@dataclasses.dataclass
class Member:
    directory: Path
    config: DictConfig        # the job's composed config
    fingerprint: str
    overrides: list[str]


@dataclasses.dataclass
class Group:
    members: list[Member]
    outcomes: dict[Path, Outcome] | None = None   # once trained: by job directory
    error: Exception | None = None                 # the group's training raised this


_planned: dict[Path, Group] = {}


def fused_function(cfg: DictConfig) -> Callable[..., list[Outcome]] | None:
    """The task's `run_fused` (beside its `run`, same module), where it has one."""
    target = OmegaConf.select(cfg, "task.run._target_")
    if not target or "." not in target:
        return None
    module, _ = target.rsplit(".", 1)
    return getattr(importlib.import_module(module), "run_fused", None)


def fusion_key(cfg: DictConfig) -> str | None:
    """Jobs with the same key train the same model on the same batches with one optimizer family:
    the resolved config less the optimizer hyperparameters (and Hydra's own node). None: the task
    does not fuse."""
    if fused_function(cfg) is None or OmegaConf.select(cfg, "task.run.gpus", default=0):
        return None  # a fused group trains on one device: jobs on several train apart
    if OmegaConf.select(cfg, "hydra.sweeper._target_") == trial.SWEEPER_TARGET:
        return None  # a search's trial hears from its own job every epoch: the fused loop reports to none
    content = {key: OmegaConf.to_container(cfg[key], resolve=True) if OmegaConf.is_config(cfg[key]) else cfg[key]
               for key in cfg if key != "hydra" and key not in HYPERPARAMETER_KEYS}
    optimizer = content.get("optimizer")
    if isinstance(optimizer, dict):
        for key in OPTIMIZER_KEYS:
            optimizer.pop(key, None)
    return json.dumps(content, sort_keys=True, default=str)


def plan(members: Iterable[Member], max_fused: int | None = None) -> list[list[Member]]:
    """Group the jobs that fuse (in their order, at most `max_fused` a group) and remember each group
    of two or more for `outcome_of`. Jobs with saved training state fuse with those that saved as
    many epochs. Returns those groups."""
    by_key: dict[tuple[str, int], list[Member]] = {}
    for member in members:
        key = fusion_key(member.config)
        if key is not None:
            by_key.setdefault((key, checkpoint.saved_epoch(member.directory)), []).append(member)
    groups = []
    for same in by_key.values():
        size = max_fused or len(same)
        groups += [same[i:i + size] for i in range(0, len(same), size) if len(same[i:i + size]) > 1]
    for members_ in groups:
        group = Group(members_)
        for member in members_:
            _planned[_key(member.directory)] = group
    return groups


def _key(directory: Path) -> Path:
    return Path(directory).resolve()


def forget() -> None:
    """Drop every planned group (a sweep that ends or stops)."""
    _planned.clear()


def outcome_of(directory: Path, fingerprint: str) -> Outcome | None:
    """This job's outcome from its fused group, training the group when it is the first to come;
    None when the job is in no group (it runs alone). Re-raises what the group's training raised."""
    group = _planned.pop(_key(directory), None)
    if group is None:
        return None
    if group.outcomes is None and group.error is None:
        _train(group, _key(directory), fingerprint)
    if group.error is not None:
        raise group.error
    return group.outcomes.pop(_key(directory), None)


def _still_to_run(group: Group, caller: Path, fingerprint: str) -> list[Member]:
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
            _planned.pop(directory, None)  # its own `execute` says why it is skipped
    return members


def _done(member: Member) -> bool:
    """Finished before, or another configuration's record (its own `execute` refuses it)."""
    try:
        return finished_record(member.directory, member.fingerprint, member.overrides) is not None
    except MismatchError:
        return True


def _train(group: Group, caller: Path, fingerprint: str) -> None:
    members = _still_to_run(group, caller, fingerprint)
    group.outcomes = {}
    if len(members) < 2 or caller not in {_key(m.directory) for m in members}:
        for member in members:
            _planned.pop(_key(member.directory), None)  # alone after all: `execute` runs it so
        return
    started = environment.now()
    try:
        outcomes = train_group([m.config for m in members], [m.directory for m in members])
    except Exception as e:  # every member's record says so; the sweep goes on
        group.error = e
        return
    except BaseException as stop:  # Ctrl-C, or a signal's SystemExit: each member ends as alone
        _record_stopped([m for m in members if _key(m.directory) != caller], stop, started)
        raise  # the caller's own `execute` records it
    for outcome in outcomes:
        outcome.started = started  # the record's `started`: when its training began
    group.outcomes = {_key(m.directory): o for m, o in zip(members, outcomes)}


def _record_stopped(members: Sequence[Member], stop: BaseException, started: str) -> None:
    """The records of the members that `stop` interrupted while the caller's `execute` trained
    them (execute.record_stopped); their directories are given back."""
    from sweeper.job.execute import record_stopped

    for member in members:
        config = copy.deepcopy(member.config)  # as the task gets it: without Hydra's node
        with open_dict(config):
            config.pop("hydra", None)
        choices = OmegaConf.select(member.config, "hydra.runtime.choices", default=None) or {}
        spec = JobSpec(directory=member.directory, config=config, overrides=member.overrides,
                       fingerprint=member.fingerprint, preset=preset_of(choices))
        try:
            record_stopped(spec, stop, started)
        finally:
            owner.give_back(member.directory)


def train_group(configs: Sequence[DictConfig], job_dirs: Sequence[Path]) -> list[Outcome]:
    """Train the jobs of `configs` (one fusion key) as one computation: the task's `run_fused`
    with the arguments of its `run` node and every job's optimizer. One outcome per job, in order."""
    run = hydra.utils.instantiate(configs[0].task.run, _partial_=True, _convert_="all")
    optimizers: list[dict[str, Any]] = [OmegaConf.to_container(c.optimizer, resolve=True) for c in configs]
    return fused_function(configs[0])(optimizers=optimizers, job_dirs=list(job_dirs), **run.keywords)
