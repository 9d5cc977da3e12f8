"""Each job's config in a sweep, as Hydra's config loader composes it, without composing each one.

A full composition (`load_sweep_config`) costs about 50 ms, so a 2,000-job grid would spend
100 s on it before the first job is submitted. A grid mostly varies top-level keys (`lr=0.1,0.01`,
a task's own `hidden=8,32`): those are set on a config composed once per combination of the other
overrides (config groups, nested keys).

Resolving a config costs about 5 ms too, so a 100,000-job grid does not resolve each job's either:
each combination is resolved twice, with every hyperparameter set to a probe value, and the places
where each probe lands are noted; a job's resolved config is then the combination's with its own
values put in those places (a dictionary merge). Where a probe does not land as itself (a value
computed from a hyperparameter, a hyperparameter that is an interpolation), each job of that
combination is resolved in full, as before.

Why not Hydra's and OmegaConf's public routes: Hydra composes only whole configs
(`ConfigLoader.load_sweep_config`, the ~50 ms above), and OmegaConf resolves only whole configs
(`OmegaConf.to_container(resolve=True)`, `OmegaConf.resolve`: the ~5 ms above) and tells no one
which values an interpolation reads; the two probe resolutions find that out per combination
with public calls alone. A job's config is the combination's, changed in place (`set`), because
a copy costs 5 ms (pickle) to 10 ms (deepcopy) a job: callers read it before they ask for the next
job, or copy it where a job keeps it (sweeper/sweep/planning.py `configs`). What `set` writes is
what Hydra's `load_configuration` writes for a job; `hydra.job.override_dirname` comes from
Hydra's own function (sweeper/hydra_private.py). tests/test_launchers.py compares these configs
with Hydra's full compositions.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Iterator, Sequence, cast

from hydra.core.config_loader import ConfigLoader
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override, OverrideType
from hydra.plugins.launcher import Launcher
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from sweeper.hydra_private import overrides_dirname
from sweeper.job.fingerprint import container, fingerprint_of, former_of
from sweeper.job.planned import PlannedJob, plan_job
from sweeper.job.record import RECORD_NAME
from sweeper.launching.resources import job_resources

_SUBDIR_IS_NUM = "${hydra.job.num}"


def _probes(keys: Sequence[str]) -> tuple[dict[str, float], dict[str, float]]:
    """Two sets of values no config holds, one per top-level key: where they land in a resolved config."""
    first, second = ({key: float(f"{start}{i:05d}e-299") for i, key in enumerate(keys)} for start in ("1.2345", "6.789"))
    return first, second


def _is_value(override: Override, groups: frozenset[str]) -> bool:
    """An override of one top-level key (`lr=0.1`), not of a config group or a nested key."""
    key = override.key_or_group
    return (override.type == OverrideType.CHANGE and override.package is None and "." not in key
            and "/" not in key and key not in groups)


class _NotPlain(Exception):
    """A resolved config where a hyperparameter's value is not simply copied."""


def _landings(a: Any, b: Any, where: tuple[Any, ...], found: dict[tuple[Any, ...], str],
              by_value: dict[tuple[Any, Any], str]) -> None:
    """The paths where two resolutions (probes 0 and 1) differ, each with the hyperparameter whose
    probe is there; _NotPlain where they differ otherwise."""
    if isinstance(a, dict) and isinstance(b, dict) and a.keys() == b.keys():
        for key in a:
            _landings(a[key], b[key], (*where, key), found, by_value)
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            _landings(x, y, (*where, i), found, by_value)
    elif type(a) is not type(b) or a != b:
        key = by_value.get((a, b)) if isinstance(a, float) and isinstance(b, float) else None
        if key is None:
            raise _NotPlain(".".join(map(str, where)))
        found[where] = key


def _put(content: Any, values: dict[tuple[Any, ...], Any]) -> Any:
    """`content` with the value at each path replaced, copying only the containers on those paths."""
    heads: dict[Any, dict[tuple[Any, ...], Any]] = {}
    for path, value in values.items():
        if not path:
            return value
        heads.setdefault(path[0], {})[path[1:]] = value
    copied = list(content) if isinstance(content, list) else dict(content)
    for head, inner in heads.items():
        copied[head] = _put(content[head], inner)
    return copied


@dataclasses.dataclass
class SweepPoint:
    """A job as the planner knows it before any config of its own: its number, overrides, the
    hyperparameter values it sets, and the combination of the other overrides it belongs to."""

    num: int
    overrides: list[str]
    values: dict[str, Any]
    combination: Combination


class Combination:
    """One combination of the overrides that are not hyperparameters: composed once, resolved twice."""

    def __init__(self, loader: ConfigLoader, master: DictConfig, rest: tuple[str, ...]) -> None:
        self.cfg = loader.load_sweep_config(master_config=master, sweep_overrides=list(rest))
        raw = cast("dict[str, Any]", OmegaConf.to_container(self.cfg, resolve=False))  # a DictConfig's: a dict
        # the top-level keys that hold one plain value: those a job of this combination may set
        self.defaults = {key: value for key, value in raw.items() if key != "hydra" and not isinstance(value, (dict, list))
                         and not (isinstance(value, str) and "${" in value)}
        self.subdir_is_num = raw["hydra"]["sweep"]["subdir"] == _SUBDIR_IS_NUM
        self.sweep_dir = Path(str(self.cfg.hydra.sweep.dir))
        self.first: PlannedJob | None = None    # its first job, planned from its config: what jobs share
        self.resources: dict[Any, dict[str, Any]] = {}
        self.landings: dict[tuple[Any, ...], str] | None = None
        self.resolved: dict[Any, Any] = {}
        self.launcher_shared = False            # its launcher's settings the same for all its jobs
        self._probe()

    def _probe(self) -> None:
        """Where each hyperparameter lands in the resolved config (None: not simply copied somewhere);
        Hydra's per-job keys differ between the probes too, so a key that reads them is seen."""
        resolved, launchers = [], []
        probes = _probes(list(self.defaults))
        for i, probe in enumerate(probes):
            overrides = [f"probe_{i}={i}"]
            try:
                self.set(-1 - i, overrides, {key: probe[key] for key in self.defaults},
                         OverridesParser.create().parse_overrides(overrides))
                resolved.append(container(self.cfg))
            except Exception:  # a resolver or a typed node that takes no probe: each job resolved alone
                return
            try:
                launchers.append(OmegaConf.to_container(self.cfg.hydra.launcher, resolve=True))
            except Exception:  # unresolvable here: each job's resources from its own config (and error)
                launchers.append(i)
        self.launcher_shared = launchers[0] == launchers[1]
        by_value = {(probes[0][key], probes[1][key]): key for key in self.defaults}
        landings: dict[tuple[Any, ...], str] = {}
        try:
            _landings(resolved[0], resolved[1], (), landings, by_value)
        except _NotPlain:
            return
        self.landings, self.resolved = landings, resolved[0]

    def set(self, num: int, overrides: Sequence[str], values: dict[str, Any],
            parsed: Sequence[Override] | None = None) -> DictConfig:
        """The combination's config made the job's (reused: copy it to keep it): its values, and what
        load_configuration sets from the overrides and the launcher from the job number."""
        cfg = self.cfg
        with read_write(cfg), open_dict(cfg):
            for key, default in self.defaults.items():
                cfg[key] = values.get(key, default)
            cfg.hydra.overrides.task = list(overrides)
            cfg.hydra.job.override_dirname = overrides_dirname(parsed or [], cfg)
            cfg.hydra.job.num = num
        return cfg

    def resolved_of(self, job: SweepPoint, parsed: Sequence[Override]) -> dict[Any, Any]:
        """The job's resolved config (fingerprint.container): the probes' places filled with its values."""
        if self.landings is None or any(isinstance(v, str) and "${" in v for v in job.values.values()):
            return container(self.set(job.num, job.overrides, job.values, parsed))  # `lr='${beta1}'` too
        values = {**self.defaults, **job.values}
        return cast("dict[Any, Any]", _put(self.resolved, {path: values[key] for path, key in self.landings.items()}))


class Planner:
    """A sweep's jobs planned from their overrides: one composition per combination of the overrides
    that are not hyperparameters, and per job a dictionary merge, not a config."""

    def __init__(self, loader: ConfigLoader, master: DictConfig, *, resources: bool = False) -> None:
        self.loader, self.master, self.resources = loader, master, resources
        self.parser = OverridesParser.create(config_loader=loader)
        self.parsed: dict[str, Override] = {}       # each distinct override's parse (a grid has few)
        self.combinations: dict[tuple[str, ...], Combination] = {}
        self.groups = frozenset(loader.list_groups(""))  # top-level config groups: `task=...` is no value

    def _parse(self, overrides: Sequence[str]) -> list[Override]:
        missing = [o for o in overrides if o not in self.parsed]
        if missing:
            self.parsed.update(zip(missing, self.parser.parse_overrides(missing)))
        return [self.parsed[o] for o in overrides]

    def job(self, num: int, overrides: Sequence[str]) -> SweepPoint:
        """The job's values and combination (composing the combination the first time it is seen).
        Raises Hydra's ConfigCompositionException for overrides that do not compose."""
        parsed = self._parse(overrides)
        values = {o.key_or_group: o.value() for o in parsed if _is_value(o, self.groups)}
        # the parser keeps each override's text in input_line: never None here
        rest = cast("tuple[str, ...]", tuple(o.input_line for o in parsed if not _is_value(o, self.groups)))
        if not values.keys() <= self._combination(rest).defaults.keys():
            rest, values = tuple(overrides), {}  # a key this config lacks: Hydra's own error, or its config
        return SweepPoint(num, list(overrides), values, self._combination(rest))

    def _combination(self, rest: tuple[str, ...]) -> Combination:
        if rest not in self.combinations:
            self.combinations[rest] = Combination(self.loader, self.master, rest)
        return self.combinations[rest]

    def config(self, job: SweepPoint) -> DictConfig:
        """The job's composed config, as Hydra would compose it (reused for the next job: copy it to keep it)."""
        return job.combination.set(job.num, job.overrides, job.values, self._parse(job.overrides))

    def plan(self, job: SweepPoint) -> tuple[PlannedJob, dict[Any, Any]]:
        """The planned job (without its config) and its resolved config (fingerprint.container)."""
        combination = job.combination
        resolved = combination.resolved_of(job, self._parse(job.overrides))
        fingerprint = fingerprint_of(resolved)  # the job's one fingerprint: its record and jobs.json carry it
        if combination.first is None or not combination.subdir_is_num or combination.landings is None:
            planned = plan_job(self.config(job), known=(fingerprint, ()))
            planned.config = None
            planned.former = self._former(planned.directory, resolved)
            combination.first = combination.first or planned
            if self.resources:
                planned.resources = job_resources(combination.cfg)
            return planned, resolved
        first = combination.first
        trial = dataclasses.replace(first.trial, number=job.num) if first.trial is not None else None
        directory = combination.sweep_dir / str(job.num)
        planned = dataclasses.replace(first, num=job.num, directory=directory, dir=str(job.num), hparams=None,
                                      overrides=job.overrides, fingerprint=fingerprint,
                                      former=self._former(directory, resolved), trial=trial)
        if self.resources:
            planned.resources = self._resources(job, resolved)
        return planned, resolved

    @staticmethod
    def _former(directory: Path, resolved: dict[Any, Any]) -> tuple[str, ...]:
        """The former fingerprints only where a record may be of one (three hashes a job otherwise)."""
        return former_of(resolved) if (directory / RECORD_NAME).exists() else ()

    def _resources(self, job: SweepPoint, resolved: dict[Any, Any]) -> dict[str, Any]:
        """job_resources of the job's config: one per value of `gpus` where the launcher's settings
        take no hyperparameter (the usual case), else from the job's own config."""
        combination = job.combination
        if combination.launcher_shared:
            key = resolved.get("gpus")
            if key not in combination.resources:
                combination.resources[key] = job_resources(self.config(job))
            return dict(combination.resources[key])
        return job_resources(self.config(job))

    def resolved(self, planned: PlannedJob) -> dict[Any, Any]:
        """A job's resolved config (fingerprint.container), from the job this planner planned."""
        job = self.job(planned.num, planned.overrides)
        return job.combination.resolved_of(job, self._parse(job.overrides))

    def former(self, job: SweepPoint) -> tuple[str, ...]:
        """The job's former fingerprints (fingerprint.former_of): asked only where an earlier job
        list is compared, so that planning a fresh sweep does not hash each job three times."""
        return former_of(job.combination.resolved_of(job, self._parse(job.overrides)))


def job_configs(loader: ConfigLoader, master: DictConfig, job_overrides: Sequence[Sequence[str]],
                initial_job_idx: int = 0) -> Iterator[DictConfig]:
    """Yield the config of each job (`hydra.job.num` set, as the launcher sets it), in order.

    The config yielded is reused for a later job: read what you need before taking the next one.
    Raises Hydra's ConfigCompositionException for overrides that do not compose.
    """
    planner = Planner(loader, master)
    for num, overrides in enumerate(job_overrides, start=initial_job_idx):
        yield planner.config(planner.job(num, overrides))


def plan_for_launcher(launcher: Launcher, job_overrides: Sequence[Sequence[str]],
                      initial_job_idx: int) -> list[PlannedJob]:
    """The jobs a stock sweeper hands a launcher of ours as overrides, planned here (our sweepers
    plan them themselves and call `launch_planned`)."""
    context = getattr(launcher, "hydra_context")
    planner = Planner(context.config_loader, getattr(launcher, "config"), resources=True)
    return [planner.plan(planner.job(num, overrides))[0]
            for num, overrides in enumerate(job_overrides, start=initial_job_idx)]
