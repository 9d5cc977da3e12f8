"""What a sweep was asked to run: its jobs, read back from Hydra's `multirun.yaml`.

A sweep directory holds `multirun.yaml`, the sweep's config as Hydra saved it before the first job
started. From it the jobs are expanded again the way the grid sweeper expands them (Hydra's own
override parser and `BasicSweeper.split_arguments`), so that jobs not started yet can be counted
and listed. A search sweeper (Optuna) chooses its trials while it runs: only their number,
`n_trials`, is known in advance.
"""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from sweeper.config import HPARAMS, applicable_hparams

MULTIRUN_NAME = "multirun.yaml"
# Job directories are named after the job's number only with Hydra's default subdir.
_NUMBERED_SUBDIR = "${hydra.job.num}"
_GRID_SWEEPERS = ("hydra._internal.core_plugins.basic_sweeper.BasicSweeper",
                  "hydra_plugins.sweeper_plugins.checked_sweeper.CheckedSweeper")


@dataclasses.dataclass
class PlannedJob:
    number: int                     # hydra.job.num: the job's place in the sweep
    directory: Path | None          # where it runs, when the sweep's subdir names it by number
    settings: dict[str, Any]        # task, optimizer and the hyperparameters known in advance


@dataclasses.dataclass
class Plan:
    sweep_dir: Path
    sweeper: str                    # the sweeper's class name: CheckedSweeper, OptunaSweeper, ...
    direction: str | None           # the task's direction (minimize | maximize), when it says
    jobs: list[PlannedJob]
    search: bool = False            # a search (n_trials chosen as it runs), not a grid


def _grid(cfg: DictConfig) -> list[dict[str, Any]] | None:
    """The values each job of a grid sweep sets, in job order; None if it cannot be expanded."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    params = cfg.hydra.sweeper.get("params") or {}
    lines = [f"{key}={value}" for key, value in params.items()] + list(cfg.hydra.overrides.task)
    try:  # glob() sweeps need the config loader to list a group's options: not expanded here
        overrides = OverridesParser.create().parse_overrides(lines)
    except Exception:
        return None
    if any(o.is_sweep_override() and getattr(o.value(), "shuffle", False) for o in overrides):
        return None  # shuffle(...) gives an order of its own each time
    value_of: dict[str, Any] = {}  # "key=text" -> the value the job gets
    for o in overrides:
        key = o.get_key_element()
        if o.is_sweep_override():
            if not o.is_discrete_sweep():
                return None
            pairs = zip(o.sweep_string_iterator(), o.sweep_iterator())
        else:
            pairs = [(o.get_value_element_as_str(), o.value())]
        value_of.update({f"{key}={text}": value for text, value in pairs})
    jobs = BasicSweeper.split_arguments(overrides, None)[0]
    return [{line.split("=", 1)[0]: value_of[line] for line in job} for job in jobs]


def _settings(base: dict[str, Any], hparams: dict[str, Any], values: dict[str, Any] | None) -> dict[str, Any]:
    """Task, optimizer and hyperparameters of a job from the sweep's config and its overrides.

    base: the sweep's task and optimizer; hparams: the hyperparameters those read, with the
    sweep's values.
    """
    settings = dict(base)
    if values is None:
        return settings
    if all(values.get(key, base[key]) == base[key] for key in base):
        settings.update(hparams)  # another task or optimizer may read others
    settings.update({k: v for k, v in values.items() if k in ("task", "optimizer", *HPARAMS)})
    return settings


def _search_config(sweep_dir: Path) -> tuple[Path, DictConfig] | None:
    """The sweep's config as one of its jobs saved it (`.hydra/`), when a search sweeper ran it.

    The Optuna sweeper writes no multirun.yaml; each job's `.hydra/hydra.yaml` still says which
    sweeper ran it and how many trials it has.
    """
    for job in sorted(Path(sweep_dir).glob("*/.hydra/hydra.yaml")):
        hydra = OmegaConf.load(job)
        if "n_trials" not in hydra.hydra.get("sweeper", {}):
            return None
        config = job.parent / "config.yaml"
        return job, OmegaConf.merge(OmegaConf.load(config) if config.exists() else {}, hydra)
    return None


def read_plan(sweep_dir: Path) -> Plan | None:
    """The jobs the sweep in `sweep_dir` runs, from its multirun.yaml (or, for a search, from
    one of its jobs); None when it has neither or they cannot be expanded."""
    path = Path(sweep_dir) / MULTIRUN_NAME
    try:
        if path.exists():
            cfg = OmegaConf.load(path)
        else:
            found = _search_config(Path(sweep_dir))
            if found is None:
                return None
            path, cfg = found
        sweeper = cfg.hydra.sweeper
        target = str(sweeper.get("_target_"))
        numbered = OmegaConf.to_container(cfg.hydra.sweep, resolve=False).get("subdir") == _NUMBERED_SUBDIR
        if "n_trials" in sweeper:  # a search: its trials' values are chosen as it runs
            planned = [None] * int(sweeper.n_trials)
        elif target in _GRID_SWEEPERS:
            planned = _grid(cfg)
        else:
            planned = None
        direction = OmegaConf.select(cfg, "task.direction", default=None)
        if planned is None:
            return None
        base = {"task": cfg.task.get("name"), "optimizer": cfg.optimizer.get("name")}
        hparams = applicable_hparams(cfg)
        jobs = [PlannedJob(number, Path(sweep_dir) / str(number) if numbered else None,
                           _settings(base, hparams, values)) for number, values in enumerate(planned)]
    except Exception as e:  # a broken multirun.yaml must not stop the collation of the records
        print(f"warning: {path}: cannot read the sweep's jobs from it ({type(e).__name__}: {e})", file=sys.stderr)
        return None
    return Plan(Path(sweep_dir), target.rsplit(".", 1)[-1], direction, jobs, search="n_trials" in sweeper)


