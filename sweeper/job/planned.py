"""A planned job: one job of a sweep as it is known before it runs, made once from its composed
config. The sweeper makes it (or a launcher, or a packed task, for jobs a stock sweeper hands
them), the job list stores its serialisable part (sweeper/job/manifest.py), and launchers,
packed tasks, fused groups and `execute` take it as it is.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from sweeper.job.fingerprint import identity
from sweeper.trial import TrialLink, link_of

PRESET_GROUPS = ("experiment", "hparams_search")  # the config groups whose options are presets


def preset_of(choices: Any) -> str | None:
    """`experiment=ex1_adam` / `hparams_search=ex1_optuna`: the preset a job's config came from,
    from its `hydra.runtime.choices`."""
    for group in PRESET_GROUPS:
        if choices.get(group) not in (None, "null"):
            return f"{group}={choices[group]}"
    return None


@dataclasses.dataclass
class PlannedJob:
    num: int                          # hydra.job.num: its place in the sweep
    directory: Path                   # where it runs: its record, state and logs
    dir: str                          # that directory, relative to the sweep directory
    overrides: list[str]              # the command-line overrides that made it
    fingerprint: str                  # sweeper/job/fingerprint.py: computed once, where it is planned
    config: DictConfig | None         # its composed config (None once it is sent to another process)
    preset: str | None = None         # experiment=... / hparams_search=...
    trial: TrialLink | None = None    # a search's trial it reports to (sweeper/trial.py)
    resources: dict[str, Any] | None = None  # submitit parameters, for the launchers that submit
    former: tuple[str, ...] = ()      # its fingerprints as records written before data.dir left them hold them
    hparams: dict[str, Any] | None = None  # its record's hparams, where its sweep's planner has them
                                           # (sweeper/hparams.py recorded_hparams: the same, not computed again)

    @property
    def cfg(self) -> DictConfig:
        """The composed config, which the job's own process always has."""
        if self.config is None:
            raise ValueError(f"job {self.num} ({self.dir}) was planned without its config here")
        return self.config

    def sent(self) -> PlannedJob:
        """The job without its config: what goes to another process (a Slurm task), which composes
        its own and keeps the rest, its fingerprint included (spec.py, packed.py)."""
        return dataclasses.replace(self, config=None)

    def composed(self, cfg: DictConfig, directory: Path) -> PlannedJob:
        """The job as it runs in `directory` with `cfg`, its config composed there (a sent job's
        process) or kept from planning (None: the config it was planned with)."""
        return dataclasses.replace(self, directory=directory, config=self.config if self.config is not None else cfg)


def plan_job(cfg: DictConfig, hydra_cfg: Any | None = None, directory: Path | None = None,
             known: tuple[str, tuple[str, ...]] | None = None) -> PlannedJob:
    """The planned job of a composed config: `cfg` with Hydra's node, or without it and `hydra_cfg`
    beside it with the `directory` Hydra runs it in (a job's own process, where Hydra keeps its node
    apart). Its directory is `hydra.sweep.dir`/`hydra.sweep.subdir`: the one place that says.
    `known`: its fingerprint and former ones where the planner has them; else computed here."""
    hydra_cfg = cfg.hydra if hydra_cfg is None else hydra_cfg
    subdir = str(hydra_cfg.sweep.subdir)
    directory = Path(str(hydra_cfg.sweep.dir)) / subdir if directory is None else directory
    now, former = identity(cfg) if known is None else known
    return PlannedJob(num=int(hydra_cfg.job.num), directory=directory, dir=subdir,
                      overrides=list(hydra_cfg.overrides.task), fingerprint=now, config=cfg,
                      former=former, preset=preset_of(hydra_cfg.runtime.choices),
                      trial=link_of(hydra_cfg, OmegaConf.select(cfg, "task.objective")))
