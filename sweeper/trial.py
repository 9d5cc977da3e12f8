"""A search's trial, seen from the job that runs it: the job reports its objective to the trial
through the study's storage and stops when the study's pruner says so.

The search (sweeper/sweep/search.py) runs trial N as job N; the job
finds its study from its own Hydra config (`hydra.sweeper`: storage, study name, pruner), so a job
on a Slurm node reports to the same journal file as the sweeper, with nothing passed beside the
config. With the pruner `none` a job does not open the storage at all.
"""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any, Mapping, cast

from omegaconf import OmegaConf

from sweeper.status import Status

JOURNAL_NAME = "optuna.journal"  # the study's default storage, in the sweep directory
DEFAULT_STUDY = "search"         # the study's name where hydra.sweeper.study_name is null
SWEEPER_TARGET = "hydra_plugins.sweeper_plugins.optuna_search.OptunaSweeper"
NO_PRUNER = "optuna.pruners.NopPruner"


class StorageError(ValueError):
    """The study's storage cannot be opened; the message says which and why."""


@dataclasses.dataclass
class TrialLink:
    """Where a job's trial lives."""

    storage: str                # a database URL, or the journal file's path
    study_name: str
    number: int                 # the trial's number: its job's number
    pruner: dict[str, Any]      # hydra.sweeper.pruner, for hydra.utils.instantiate
    objective: str              # the metric reported: the task's objective


def storage_spec(storage: str | None, sweep_dir: Path) -> str:
    """The storage a search uses: its `storage` setting, or the journal file in its sweep directory."""
    return str(storage) if storage else str(Path(sweep_dir).resolve() / JOURNAL_NAME)


def open_storage(spec: str) -> Any:
    """An Optuna storage: a database URL as Optuna takes it (sqlite:///..., postgresql://...), or
    else a journal file (created if missing). Raises StorageError."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    try:
        if "://" in spec:
            return optuna.storages.RDBStorage(spec)
        Path(spec).parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(spec))
    except Exception as e:  # SQLAlchemy, OS and Optuna errors alike: the storage is not usable
        lines = [line.strip() for line in str(e).splitlines() if line.strip()]
        cause = f"{type(e).__name__}: {lines[0] if lines else ''}"
        raise StorageError(f"storage {spec} cannot be opened ({cause})") from None


def link_of(hydra_cfg: Any, objective: str | None) -> TrialLink | None:
    """The trial of the job whose Hydra config is `hydra_cfg`; None outside a search, or where the
    search prunes nothing (then the job has nothing to report)."""
    sweeper = hydra_cfg.get("sweeper") or {}
    pruner = sweeper.get("pruner") or {}
    if sweeper.get("_target_") != SWEEPER_TARGET or pruner.get("_target_", NO_PRUNER) == NO_PRUNER or not objective:
        return None
    sweep_dir = Path(str(hydra_cfg.runtime.cwd)) / str(hydra_cfg.sweep.dir)
    return TrialLink(storage=storage_spec(sweeper.get("storage"), sweep_dir),
                     study_name=str(sweeper.get("study_name") or DEFAULT_STUDY), number=int(hydra_cfg.job.num),
                     pruner=cast("dict[str, Any]", OmegaConf.to_container(pruner, resolve=True)),  # a mapping's: a dict
                     objective=objective)


class Reporter:
    """The running trial: `report` gives it the objective after a step (epoch, stretch of steps)."""

    def __init__(self, link: TrialLink):
        import hydra.utils
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        storage = open_storage(link.storage)
        study = optuna.load_study(study_name=link.study_name, storage=storage,
                                  pruner=hydra.utils.instantiate(link.pruner))
        study_id = storage.get_study_id_from_name(link.study_name)
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, link.number)
        self.trial = optuna.trial.Trial(study, trial_id)
        self.objective = link.objective
        self.pruned = False

    def report(self, metrics: Mapping[str, float], step: int, last: bool = False) -> bool:
        """Report the objective at `step`; True when the pruner stops the trial here. At the `last`
        step the job has trained in full: it is reported (other trials are judged against it) and
        ends `ok`, not pruned."""
        value = metrics.get(self.objective)
        if value is None or not math.isfinite(value):
            return False  # a diverged job stops by itself
        self.trial.report(float(value), step)
        self.pruned = not last and self.trial.should_prune()
        return self.pruned


def status_of(finished: Status, reporter: Reporter | None) -> Status:
    """A task's status: `pruned` where its trial's pruner stopped it, else what training said."""
    return Status.PRUNED if reporter is not None and reporter.pruned else finished
