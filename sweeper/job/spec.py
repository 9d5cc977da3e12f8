"""The first layer of running a job: Hydra's job context turned into a plain specification.

Only here does job code read Hydra's global state (`HydraConfig`); the second layer
(sweeper/job/execute.py) runs a JobSpec with none, so that one process can run many.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from sweeper.hparams import check_or_exit
from sweeper.job.fingerprint import fingerprint
from sweeper.job.trial import TrialLink, link_of


PRESET_GROUPS = ("experiment", "hparams_search")  # the config groups whose options are presets


def preset_of(choices: Any) -> str | None:
    """`experiment=ex1_adam` / `hparams_search=ex1_optuna`: the preset a job's config came from,
    from its `hydra.runtime.choices`."""
    for group in PRESET_GROUPS:
        if choices.get(group) not in (None, "null"):
            return f"{group}={choices[group]}"
    return None


@dataclasses.dataclass
class JobSpec:
    """Everything the second layer needs to run one job and write its record."""

    directory: Path                  # the job's own directory: its record, state and logs go there
    config: DictConfig               # the job's config (as the task function gets it: no `hydra` node)
    overrides: list[str]             # the command-line overrides that made this job
    fingerprint: str                 # sweeper/job/fingerprint.py
    preset: str | None = None        # experiment=... / hparams_search=...
    single_run: bool = False         # `python run.py` without -m: print every metric, exit 1 on failure
    rank: int = 0                    # a multi-worker job's worker: only rank 0 writes in the directory
    trial: TrialLink | None = None   # a search's trial it reports to (sweeper/job/trial.py)


def spec_from_hydra(cfg: DictConfig) -> JobSpec:
    """The specification of the job Hydra is running now; a bad value exits 2 with one line."""
    check_or_exit(cfg)
    hydra_cfg = HydraConfig.get()
    return JobSpec(
        directory=Path(hydra_cfg.runtime.output_dir),
        config=cfg,
        overrides=list(hydra_cfg.overrides.task),
        fingerprint=fingerprint(cfg),
        preset=preset_of(hydra_cfg.runtime.choices),
        single_run=hydra_cfg.mode == RunMode.RUN,
        trial=link_of(hydra_cfg, cfg.task.get("objective")) if hydra_cfg.mode == RunMode.MULTIRUN else None,
    )
