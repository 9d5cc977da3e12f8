"""The search (`hydra/sweeper=optuna_search`): Optuna (>= 4) asks the trials, hopeless ones are
pruned, and a crash loses nothing.

Its settings are those of the stock hydra-optuna-sweeper (`sampler`, `direction`, `storage`,
`study_name`, `n_trials`, `n_jobs`, `max_failure_rate`, `params` in Hydra's override syntax:
`interval(...)`, `tag(log, interval(...))`, `choice(...)`, ranges), plus `pruner`
(conf/hydra/sweeper/pruner/). Trial N runs as job N, planned, checked and added to the sweep's job
list as a grid's jobs are (sweeper/sweep/planning.py); a job reports its objective to its trial
(sweeper/trial.py) and ends `pruned` when the pruner stops it. The study lives in a journal
file in the sweep directory unless `storage` names a database, so that `python -m sweeper resume
DIR` continues it: trials that finished are kept, and trials that were running when it stopped or
died run again to their end, their jobs continuing from their checkpoints.
"""
from __future__ import annotations

import math
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Literal, Mapping, Optional, Sequence, Tuple, cast

from hydra.core.plugins import Plugins
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

from sweeper.hparams import check_or_exit, declarations
from sweeper.job.context import JobCounter, RunContext
from sweeper.job.display import label, objective
from sweeper.job.record import RECORD_NAME, Record, read_record
from sweeper.status import FINISHED, Status
from sweeper.trial import DEFAULT_STUDY, StorageError, open_storage, storage_spec
from sweeper.words import number
from sweeper.job import manifest
from sweeper.sweep import progress
from sweeper.sweep.repeats import repeats_of
from sweeper.launching.collect import raise_outside_task
from sweeper.launching.compose import job_configs
from sweeper.errors import refuse
from sweeper.refusals import check_sweep_dir, check_workers
from sweeper.sweep.planning import launch, plan_sweep

if TYPE_CHECKING:  # optuna is the `optuna` extra: imported where a search runs
    from optuna import Study
    from optuna.distributions import BaseDistribution
    from optuna.pruners import BasePruner
    from optuna.samplers import BaseSampler
    from optuna.trial import FrozenTrial


# -- the search space -----------------------------------------------------------------------------

def _distribution(override: Any) -> Tuple[BaseDistribution, Optional[List[Any]]]:
    """An override's Optuna distribution, and its values where it lists them (choice, range)."""
    from hydra.core.override_parser.types import Transformer
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    value = override.value()
    if override.is_choice_sweep() or (override.is_range_sweep() and value.shuffle):
        values = list(override.sweep_iterator(transformer=Transformer.encode))
        return CategoricalDistribution(values), values
    if override.is_range_sweep():
        values = list(override.sweep_iterator())
        if len(values) < 2:
            refuse(f"{override.input_line} lists {len(values)} value(s): give a range of two or more")
        kind = FloatDistribution if any(isinstance(v, float) for v in values) else IntDistribution
        return kind(values[0], values[-1], step=values[1] - values[0]), values
    log = "log" in value.tags
    if isinstance(value.start, int) and isinstance(value.end, int):
        return IntDistribution(value.start, value.end, log=log), None
    return FloatDistribution(float(value.start), float(value.end), log=log), None


def search_space(params: List[str], loader: Any) -> Tuple[Dict[str, BaseDistribution], Dict[str, List[Any]], List[str]]:
    """`hydra.sweeper.params` and the command line's overrides, parsed by Hydra: the distribution
    of each searched key, the values of those that list them, and the fixed overrides."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import Glob

    space: Dict[str, BaseDistribution] = {}
    listed: Dict[str, List[Any]] = {}
    fixed: Dict[str, str] = {}
    for override in OverridesParser.create(config_loader=loader).parse_overrides(params):
        key = override.get_key_element()  # a later override of a key replaces an earlier one
        for known in (space, listed, fixed):
            known.pop(key, None)
        if not override.is_sweep_override():
            assert override.input_line is not None, "the parser keeps each override's text"
            fixed[key] = override.input_line
            continue
        if isinstance(override.value(), Glob):
            refuse(f"{override.input_line}: glob(...) is not a search space: give choice(...)")
        space[key], values = _distribution(override)
        if values is not None:
            listed[key] = values
    return space, listed, list(fixed.values())


DECLARED = "declared"  # a search's `params: {hidden: declared}`: the space its file declares (sweeper/hparams.py)


def declared_distribution(key: str, cfg: DictConfig) -> Tuple[BaseDistribution, Optional[List[Any]]]:
    """The distribution of a hyperparameter from its declaration: its `values`, or its bounds `ge` and
    `le` (`log: true`: on a log scale), an integer range where the key is typed int."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    hparam = next((h for h in declarations(cfg) if h.name == key), None)
    if hparam is None:
        refuse(f"{key}: declared is a search over the range a file declares, and no file declares {key}: "
              f"give a space ({key}: interval(0.01, 0.1)) or declare it (hparams: {{{key}: {{ge: 1, le: 64}}}})")
    if hparam.values is not None:
        return CategoricalDistribution(list(hparam.values)), list(hparam.values)
    bounds = dict(hparam.bounds)
    low, high = bounds.get("ge"), bounds.get("le")
    if low is None or high is None:  # Optuna draws between two ends it may reach (gt, lt: it may not)
        refuse(f"{key}: its declaration ({hparam.allowed}) has no two ends a search may reach: declare ge and le "
              f"or values, or give a space ({key}: interval(...))")
    if hparam.type is int:
        return IntDistribution(int(low), int(high), log=hparam.log), None
    return FloatDistribution(float(low), float(high), log=hparam.log), None


# -- sampler, pruner, storage ---------------------------------------------------------------------

def make_sampler(settings: DictConfig, space: Dict[str, BaseDistribution],
                 listed: Dict[str, List[Any]]) -> Tuple[BaseSampler, Optional[int]]:
    """The sampler, and the grid's size where it is the grid sampler (None otherwise)."""
    import hydra.utils

    target = str(settings.get("_target_", ""))
    if target.endswith("GridSampler"):
        ranged = [key for key in space if key not in listed]
        if ranged:
            refuse(f"the grid sampler cannot list {', '.join(ranged)} (an interval): give values "
                  f"({ranged[0]}=choice(0.1,0.01)) or another sampler (hydra/sweeper/sampler=tpe)")
        if not listed:
            refuse("the grid sampler has no values to list: give hydra.sweeper.params, e.g. lr: choice(0.1,0.01)")
        return _made("sampler", lambda: hydra.utils.instantiate(settings)(listed)), math.prod(map(len, listed.values()))
    if target.endswith("CmaEsSampler"):
        try:
            import cmaes  # noqa: F401  Optuna imports it only at the first trial
        except ImportError:
            refuse("the cmaes sampler needs the cmaes package: pip install cmaes, or hydra/sweeper/sampler=tpe")
    return _made("sampler", lambda: hydra.utils.instantiate(settings)), None


def _made(kind: str, make: Callable[[], Any]) -> Any:
    """make(), or one line naming what is wrong with hydra.sweeper.<kind>'s settings."""
    try:
        return make()
    except Exception as e:
        cause = _cause(e)
        unexpected = re.search(r"unexpected keyword argument '(\w+)'", cause)
        fix = f"remove it: ~hydra.sweeper.{kind}.{unexpected.group(1)}" if unexpected else "check its settings"
        refuse(f"hydra.sweeper.{kind} cannot be made ({cause}): {fix}")


def make_pruner(settings: DictConfig) -> BasePruner:
    import hydra.utils

    pruner: BasePruner = _made("pruner", lambda: hydra.utils.instantiate(settings))
    return pruner


def _cause(e: BaseException) -> str:
    """The innermost cause's last line: Hydra wraps instantiation errors."""
    while e.__cause__ is not None:
        e = e.__cause__
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    return f"{type(e).__name__}: {lines[-1] if lines else ''}"


# -- telling the study how a trial ended ---------------------------------------------------------

def _job_record(sweep_dir: Path, directory: str) -> Record | None:
    try:
        return read_record(sweep_dir / directory / RECORD_NAME)
    except ValueError:
        return None


def tell(study: Study, number: int, record: Record | None) -> bool:
    """Tell the study how trial `number` ended, from its job's record; True when it finished
    (ok, diverged or pruned: a result, not a failure)."""
    from optuna.trial import TrialState

    status = record.status if record is not None else Status.MISSING
    value = objective(record)
    try:
        if status == Status.PRUNED:
            study.tell(number, state=TrialState.PRUNED)
        elif status == Status.OK and math.isfinite(value):
            study.tell(number, value)
        else:
            study.tell(number, state=TrialState.FAIL)
    except RuntimeError as e:  # the grid sampler stops the study when its grid is done
        if "Study.stop" not in str(e):
            raise
    return status in FINISHED


def _consecutive(trials: List[FrozenTrial]) -> List[List[FrozenTrial]]:
    """The trials in runs of consecutive numbers: a batch's jobs are planned from its first number."""
    runs: List[List[FrozenTrial]] = []
    for trial in sorted(trials, key=lambda t: t.number):
        if runs and runs[-1][-1].number + 1 == trial.number:
            runs[-1].append(trial)
        else:
            runs.append([trial])
    return runs


class Search:
    """The search: asks the study for trials in batches, plans and claims them as a grid's jobs
    (sweeper/sweep/planning.py), launches them and tells the study how each ended."""

    def __init__(self, sampler: Any, pruner: Any, direction: Any, storage: Optional[str], study_name: Optional[str],
                 n_trials: int, n_jobs: int, max_failure_rate: float, params: Optional[DictConfig]) -> None:
        self.params: Mapping[str, Any] = params or {}
        self.sampler_settings, self.pruner_settings = sampler, pruner
        self.direction, self.storage, self.study_name = direction, storage, study_name or DEFAULT_STUDY
        self.n_trials, self.n_jobs, self.max_failure_rate = n_trials, max(1, n_jobs), max_failure_rate

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.hydra_context, self.config = hydra_context, config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: List[str]) -> None:
        try:
            self._sweep(arguments)
        except KeyboardInterrupt:  # at any moment: the study and the job list hold what was done
            progress.stopped(Path(str(self.config.hydra.sweep.dir)), self.config, "continue the search")

    def _sweep(self, arguments: List[str]) -> None:
        """Ask trials in batches of n_jobs until the study holds n_trials (failures included, but not
        the trials a crash interrupted); each batch is checked and listed, launched, and told."""
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        if repeats_of(self.config) > 1:  # a trial is one job: its objective one run's
            refuse(f"repeats={repeats_of(self.config)}: a search runs each trial once; sweep its best points with "
                  "repeats afterwards (python run.py -m task=... lr=... repeats=5, docs/repeats.md)")
        check_sweep_dir(str(self.config.hydra.sweep.dir))
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        params = [f"{key}={value}" for key, value in self.params.items() if value != DECLARED]
        space, listed, fixed = search_space(params + list(arguments), self.hydra_context.config_loader)
        # what every trial shares (`data.dir=3`, `nodes=2`): refused before the study's journal is written
        shared = next(job_configs(self.hydra_context.config_loader, self.config, [fixed]))
        for key in (key for key, value in self.params.items() if value == DECLARED):
            space[key], values = declared_distribution(key, shared)
            if values is not None:
                listed[key] = values
        sampler, grid_size = make_sampler(self.sampler_settings, space, listed)
        pruner = make_pruner(self.pruner_settings)
        self._check_direction()
        if not OmegaConf.select(self.config, "hydra.launcher.wait", default=True):
            refuse("a search asks its next trials from the results of the last: it cannot run with "
                  "hydra.launcher.wait=false (leave it out)")
        self._check_directory(sweep_dir)
        check_or_exit(shared)
        check_workers(shared, search=True)
        study = self._open_study(sweep_dir, sampler, pruner)
        sweep_dir.mkdir(parents=True, exist_ok=True)  # the journal made it; a database did not
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        total = min(self.n_trials, grid_size) if grid_size else self.n_trials
        before = [trial.number for trial in study.get_trials(deepcopy=False)]
        unfinished = self._unfinished(study)
        if before and self.sampler_settings.get("seed") is not None:
            # A seeded sampler made afresh would draw its first points again: its seed moves on by
            # the trials done, so that a resumed search asks new points, the same ones at every resume.
            moved = cast(DictConfig, OmegaConf.merge(self.sampler_settings,  # a DictConfig's merge: a DictConfig
                                                     {"seed": int(self.sampler_settings.seed) + len(before)}))
            study.sampler = make_sampler(moved, space, listed)[0]
        counted = self._counted(study)
        counter = progress.start(total, min(counted, total))
        to_ask = max(0, total - counted - len(unfinished))
        if before:
            print(f"search {self.study_name}: {counted} of {total} trials done, "
                  f"{len(unfinished)} to finish, asking {to_ask} more", flush=True)
        start = time.perf_counter()
        for run in _consecutive(unfinished):  # a stopped trial runs again to its end: its job continues
            self._run_batch(study, run, fixed, sweep_dir, total, counter)
        self._run_trials(study, space, fixed, sweep_dir, to_ask, total, counter)
        self._write_best(study, sweep_dir, counter)
        rerun = {trial.number for trial in unfinished}
        progress.end(sweep_dir, time.perf_counter() - start, set(before) - rerun)

    def _check_direction(self) -> None:
        if str(self.direction) not in ("minimize", "maximize"):
            refuse(f"hydra.sweeper.direction={self.direction}: give minimize or maximize (one objective)")

    def _check_directory(self, sweep_dir: Path) -> None:
        """Refuse a directory that holds another kind of sweep (a grid's job list)."""
        try:
            listed = manifest.read_manifest(sweep_dir)
        except manifest.DamagedManifest as e:
            refuse(str(e))
        if listed is not None and (not listed.search or listed.sweeper != manifest.SEARCH):
            refuse(f"{sweep_dir} holds a sweep of hydra/sweeper={listed.sweeper}, not a search: use a new hydra.sweep.dir")

    def _open_study(self, sweep_dir: Path, sampler: BaseSampler, pruner: BasePruner) -> Study:
        """The study, created or loaded (a resumed search) in its storage; a storage that cannot be
        opened is refused before the sweep directory is made, where it is a database."""
        import optuna

        spec = storage_spec(self.storage, sweep_dir)
        try:
            storage = open_storage(spec)
            study = optuna.create_study(study_name=self.study_name, storage=storage, sampler=sampler,
                                        pruner=pruner, load_if_exists=True,  # direction: as _check_direction allows
                                        direction=cast(Literal["minimize", "maximize"], str(self.direction)))
        except StorageError as e:
            refuse(f"{e}: give hydra.sweeper.storage a database URL Optuna can open (sqlite:///search.db), "
                  "or null for a journal file in the sweep directory")
        except ValueError as e:  # the study exists with another direction
            refuse(f"study {self.study_name} in {spec}: {e}; use a new hydra.sweep.dir or study_name")
        return study

    @staticmethod
    def _unfinished(study: Study) -> List[FrozenTrial]:
        """The trials a previous run left `running` (it was stopped or died): they are run again
        (a job that finished meanwhile, on Slurm, is only read) and told, so that every trial ends."""
        from optuna.trial import TrialState

        return [trial for trial in study.get_trials(deepcopy=False) if trial.state == TrialState.RUNNING]

    @staticmethod
    def _counted(study: Study) -> int:
        """Trials that count towards n_trials: every finished one but those a crash interrupted."""
        return sum(1 for t in study.get_trials(deepcopy=False)
                   if t.state.is_finished() and not t.user_attrs.get("interrupted"))

    def _run_trials(self, study: Study, space: Dict[str, BaseDistribution], fixed: List[str], sweep_dir: Path, to_go: int,
                    total: int, counter: JobCounter) -> None:
        while to_go > 0:
            trials = [study.ask(space) for _ in range(min(self.n_jobs, to_go))]
            numbers = [trial.number for trial in trials]
            if numbers != list(range(numbers[0], numbers[0] + len(numbers))):
                refuse(f"study {self.study_name} gets trials from another process too ({numbers}): "
                      "run one search per study")
            failed = self._run_batch(study, trials, fixed, sweep_dir, total, counter)
            to_go -= len(trials)
            if failed > self.max_failure_rate * len(trials):
                print(f"error: {failed} of {len(trials)} trials failed (max_failure_rate={self.max_failure_rate}): "
                      "search stopped", flush=True)
                break

    def _run_batch(self, study: Study, trials: Sequence[Any], fixed: List[str], sweep_dir: Path, total: int,
                   counter: JobCounter) -> int:
        """Plan, list and launch the jobs of trials of consecutive numbers, and tell the study how
        each ended; the number that failed. A job found finished is not run again."""
        numbers = [trial.number for trial in trials]
        jobs = [[*(f"{key}={value}" for key, value in trial.params.items()), *fixed] for trial in trials]
        planned, done = plan_sweep(self.hydra_context, self.config, self.launcher, jobs, sweep_dir,
                                   sweeper=manifest.SEARCH, first=numbers[0], total=total)  # checked, listed
        for num, job_dir in done.items():  # a stopped batch's jobs that had finished
            print(counter.next_line(f"{label(jobs[num - numbers[0]])} -> skipped: done ({job_dir})", num), flush=True)
        in_process = {job.num: job for job in planned if job.config is not None}
        results = launch(self.launcher, planned, RunContext(progress=counter, planned=in_process))
        for result in results:
            raise_outside_task(result)
        listed = manifest.read_manifest(sweep_dir)
        assert listed is not None, "plan_sweep listed the jobs"
        dirs = {job.num: job.dir for job in listed.jobs}
        return sum(not tell(study, n, _job_record(sweep_dir, dirs[n])) for n in numbers)

    def _write_best(self, study: Study, sweep_dir: Path, counter: JobCounter) -> None:
        """optimization_results.yaml, as the stock sweeper writes it, and one line: `best: trial 7
        ([8/12]): lr=0.01568 ... -> 0.913; ...`, naming the trial's `[k/N]` line (trials count from 0,
        lines from 1), or `an earlier run` for a resumed search's trial that this run did not print."""
        try:
            best = study.best_trial
        except ValueError:
            print("search: no trial finished with a value: no best trial", flush=True)
            return
        results = {"name": "optuna", "best_params": best.params, "best_value": best.value,
                   "best_trial": best.number, "study_name": self.study_name}
        OmegaConf.save(OmegaConf.create(results), sweep_dir / "optimization_results.yaml")
        params = label([f"{key}={value}" for key, value in best.params.items()])
        k = counter.lines.get(best.number)
        where = f"[{k}/{counter.total}]" if k is not None else "an earlier run"
        print(f"best: trial {best.number} ({where}): {params} -> {number(best.value)}; "
              f"{sweep_dir / 'optimization_results.yaml'}", flush=True)
