"""Each job's config in a sweep, as Hydra's config loader composes it, without composing each one.

A full composition (`load_sweep_config`) costs about 50 ms, so a 2,000-job grid would spend
100 s on it before the first job is submitted. A grid mostly varies top-level hyperparameters
(`lr=0.1,0.01`): those are set on a config composed once per combination of the other overrides.
"""
from __future__ import annotations

import copy
from typing import Any, Iterator, Sequence, cast

from hydra._internal.config_loader_impl import get_overrides_dirname
from hydra.core.config_loader import ConfigLoader
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override, OverrideType
from hydra.plugins.launcher import Launcher
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from sweeper.hparams import HPARAMS
from sweeper.job.planned import PlannedJob, plan_job
from sweeper.launching.resources import job_resources


def _is_hparam(override: Override) -> bool:
    return override.type == OverrideType.CHANGE and override.package is None and override.key_or_group in HPARAMS


def job_configs(loader: ConfigLoader, master: DictConfig, job_overrides: Sequence[Sequence[str]],
                initial_job_idx: int = 0) -> Iterator[DictConfig]:
    """Yield the config of each job (`hydra.job.num` set, as the launcher sets it), in order.

    The config yielded is reused for a later job: read what you need before taking the next one.
    Raises Hydra's ConfigCompositionException for overrides that do not compose.
    """
    parser = OverridesParser.create(config_loader=loader)
    composed: dict[tuple[str, ...], tuple[DictConfig, dict[str, Any]]] = {}
    for num, overrides in enumerate(job_overrides, start=initial_job_idx):
        parsed = parser.parse_overrides(list(overrides))
        values = {o.key_or_group: o.value() for o in parsed if _is_hparam(o)}
        # the parser keeps each override's text in input_line: never None here
        rest = cast("tuple[str, ...]", tuple(o.input_line for o in parsed if not _is_hparam(o)))
        if rest not in composed:
            cfg = loader.load_sweep_config(master_config=master, sweep_overrides=list(rest))
            raw = cast("dict[str, Any]", OmegaConf.to_container(cfg, resolve=False))  # a DictConfig's: a dict
            composed[rest] = cfg, {key: raw[key] for key in HPARAMS if key in raw}
        cfg, defaults = composed[rest]
        if not values.keys() <= defaults.keys():  # a key this config lacks: Hydra's own error, or its config
            cfg = loader.load_sweep_config(master_config=master, sweep_overrides=list(overrides))
            values, defaults = {}, {}
        with read_write(cfg), open_dict(cfg):
            for key, default in defaults.items():
                cfg[key] = values.get(key, default)
            # What load_configuration sets from the overrides, and the launcher from the job number.
            cfg.hydra.overrides.task = list(overrides)
            cfg.hydra.job.override_dirname = get_overrides_dirname(
                overrides=parsed,
                kv_sep=cfg.hydra.job.config.override_dirname.kv_sep,
                item_sep=cfg.hydra.job.config.override_dirname.item_sep,
                exclude_keys=cfg.hydra.job.config.override_dirname.exclude_keys,
            )
            cfg.hydra.job.num = num
        yield cfg


def planned_jobs(loader: ConfigLoader, master: DictConfig, job_overrides: Sequence[Sequence[str]],
                 initial_job_idx: int = 0, *, keep_config: bool,
                 resources: bool) -> Iterator[tuple[PlannedJob, DictConfig]]:
    """Each job planned from its composition (job_configs): with a copy of its config where it runs
    in this process (`keep_config`), with its submitit parameters where a launcher submits it
    (`resources`). Yields the composed config beside it, for the caller to check; it is reused
    for the next job."""
    for cfg in job_configs(loader, master, job_overrides, initial_job_idx):
        job = plan_job(cfg)
        if resources:
            job.resources = job_resources(cfg)
        job.config = copy.deepcopy(cfg) if keep_config else None
        yield job, cfg


def plan_for_launcher(launcher: Launcher, job_overrides: Sequence[Sequence[str]],
                      initial_job_idx: int) -> list[PlannedJob]:
    """The jobs a stock sweeper hands a launcher of ours as overrides, planned here (our sweepers
    plan them themselves and call `launch_planned`)."""
    context = getattr(launcher, "hydra_context")
    jobs = planned_jobs(context.config_loader, getattr(launcher, "config"), job_overrides, initial_job_idx,
                        keep_config=False, resources=True)
    return [job for job, _ in jobs]
