"""Commands refused before anything is written: one line on stderr (`error: ...`) and exit status 2.

What is refused: a misspelt key (with the nearest known one), a hyperparameter that applies to none
of the jobs, a nested key that bypasses a hyperparameter (`optimizer.learning_rate`), a grid preset
without `-m`, and a search space on the grid sweeper. A single run is checked by a Hydra callback
before Hydra creates its run directory (conf/config.yaml, `hydra.callbacks`); a multirun by the
`checked` sweeper before it claims the sweep directory.
"""
from __future__ import annotations

import contextlib
import difflib
import functools
import inspect
import io
import json
import os
import sys
from pathlib import Path
from typing import Any, Container, Iterable, Sequence, cast

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from sweeper.launching.settings import SlurmConf
from sweeper.words import command as shell_command, counted
from sweeper.hparams import DECLARATIONS, NOT_HPARAMS, applicable_hparams, check_or_exit, interpolated_key
from sweeper.outcome import FRAMEWORK_ARGUMENTS
from sweeper.job.planned import preset_of
from sweeper.job.task import data_checks
from sweeper import schema
from sweeper.errors import refuse
from sweeper.hydra_private import grid_of, parse_args
from sweeper.paths import command, conf_dir
from sweeper.training.tf import locate_quietly

CONF = conf_dir()


def _parse(overrides: Sequence[str]) -> list[Any]:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return OverridesParser.create().parse_overrides(list(overrides))


# -- misspelt keys (run.py, before Hydra composes) ------------------------------------------------

def _files(dirs: tuple[Path, ...], pattern: str) -> list[Path]:
    return [path for directory in dirs for path in sorted(directory.glob(pattern))]


def _load(path: Path) -> dict[str, Any]:
    """A config file's content, unresolved; {} for one that is not a mapping."""
    try:
        loaded = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    except Exception:  # Hydra says what is wrong with the file itself
        return {}
    return {str(key): value for key, value in loaded.items()} if isinstance(loaded, dict) else {}


def _global_files(dirs: tuple[Path, ...]) -> list[dict[str, Any]]:
    """config.yaml and every group's file whose keys are top-level (`# @package _global_`): the task,
    optimizer and preset files, the project's and those of the user's --config-dir."""
    found = [_load(path) for path in _files(dirs, "config.yaml")]
    for path in _files(dirs, "*/*.yaml"):
        with path.open() as text:
            if "@package _global_" in text.readline():
                found.append(_load(path))
    return found


@functools.cache
def _known_keys(dirs: tuple[Path, ...] = (CONF,)) -> tuple[list[str], list[str]]:
    """The top-level keys that config.yaml and the task, optimizer and preset files set (a task's own
    hyperparameters among them), and the config groups (conf/<group>/)."""
    keys = {key: None for content in _global_files(dirs) for key in content
            if key not in ("defaults", "hydra", "task", "optimizer", DECLARATIONS)}
    groups = sorted({path.name for directory in dirs for path in directory.iterdir() if path.is_dir()})
    return list(keys), groups


@functools.cache
def _aliases(dirs: tuple[Path, ...] = (CONF,)) -> dict[str, str]:
    """What the optimizer and task files call a hyperparameter (`learning_rate: ${lr}` -> lr)."""
    keys = set(_known_keys(dirs)[0])
    aliases = {}
    for content in _global_files(dirs):
        for name in ("optimizer", "task"):
            node = content.get(name)
            run = node.get("run") if isinstance(node, dict) and name == "task" else node
            for field, value in (run.items() if isinstance(run, dict) else []):
                if (hparam := interpolated_key(value)) in keys and field != hparam:
                    aliases[str(field)] = hparam
    return aliases


def _unknown_key_hint(key: str, value: str, dirs: tuple[Path, ...] = (CONF,), rest: str = "") -> str | None:
    """`did you mean lr=0.1?` for a top-level key that is neither a key nor a group; None if known.
    `rest`: the dotted key's remainder, kept in the suggestion (`loging.tensorboard` -> `logging.tensorboard`)."""
    keys, groups = _known_keys(dirs)
    if key in keys or key in groups or key == "hydra":
        return None
    if key in _aliases(dirs):
        return f"did you mean {_aliases(dirs)[key]}{rest}={value}?"
    near_key = difflib.get_close_matches(key, keys, n=1)
    near_group = difflib.get_close_matches(key, groups, n=1)
    if near_group and (not near_key or difflib.SequenceMatcher(None, key, near_group[0]).ratio()
                       >= difflib.SequenceMatcher(None, key, near_key[0]).ratio()):
        return f"did you mean {near_group[0]}{rest}={value}?"
    if near_key:
        return f"did you mean {near_key[0]}{rest}={value}?"
    return f"the keys are {', '.join(keys)} ({command()} --help lists the groups)"


@functools.cache
def _nodes(dirs: tuple[Path, ...] = (CONF,)) -> dict[str, tuple[str, ...]]:
    """Each nested node of the config and its keys (`data` -> dir, train_samples, test_samples),
    from conf/config.yaml, every task and optimizer file and every data group's (whichever option a
    job chooses)."""
    nodes: dict[str, set[str]] = {}

    def add(node: Any, prefix: str) -> None:
        for key, value in node.items():
            if isinstance(value, dict) and key != "defaults":
                nodes.setdefault(f"{prefix}{key}", set()).update(str(k) for k in value)
                add(value, f"{prefix}{key}.")

    paths = [*_files(dirs, "config.yaml"), *_files(dirs, "task/*.yaml"), *_files(dirs, "optimizer/*.yaml")]
    for path in paths:
        add({key: value for key, value in _load(path).items() if key not in ("hydra", DECLARATIONS)}, "")
    for path in _files(dirs, "data/*.yaml"):  # a data group's file is the `data` node
        add({"data": _load(path)}, "")
    return {node: tuple(sorted(keys)) for node, keys in nodes.items()}


def _nested_key_hint(key: str, value: str, dirs: tuple[Path, ...] = (CONF,), task: str | None = None) -> str | None:
    """`did you mean data.train_samples=100?` for a nested key that no option's node has; None if
    some option's node has it, or the node is not known here (Hydra says). Of `task.run`, the chosen
    task's keys (`task`: its name, where the command chooses one) and the arguments its function
    takes besides them, to add with `+`."""
    node, _, leaf = key.rpartition(".")
    keys = _nodes(dirs).get(node)
    if not node or keys is None or leaf in keys:
        return None
    added: tuple[str, ...] = ()
    if node == "task.run" and task is not None and (run := _task_run(task, dirs)) is not None:
        keys, added = run
    near = difflib.get_close_matches(leaf, [*keys, *added], n=1)
    if near:
        return f"did you mean {'+' if near[0] in added else ''}{node}.{near[0]}={value}?"
    return f"the keys of {node} are {', '.join(k for k in keys if not k.startswith('_'))}"


def _task_run(task: str, dirs: tuple[Path, ...]) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """A task's `run` keys (its file's) and the other arguments its function takes; None if not found."""
    path = next((p for p in _files(dirs, f"task/{task}.yaml")), None)
    run = (_load(path).get("task") or {}).get("run") if path else None
    if not isinstance(run, dict):
        return None
    keys = tuple(sorted(str(k) for k in run))
    taken = schema.arguments(str(run.get("_target_", ""))) or {}
    return keys, tuple(sorted(a for a in taken if a not in run))


def check_argv(argv: Sequence[str]) -> None:
    """Refuse an override of a top-level key the config does not have (Hydra would say `not in
    struct`), naming the nearest key or group. Anything unusual is left to Hydra."""
    try:
        with contextlib.redirect_stderr(io.StringIO()):  # a bad flag: Hydra's parser says it, once
            args, _ = parse_args(argv)
        if args.config_name or args.config_path:
            return
        dirs = (CONF, Path(args.config_dir).resolve()) if args.config_dir else (CONF,)
        parsed = _parse(args.overrides)
    except (Exception, SystemExit):  # Hydra says what is wrong with the command line itself
        return
    if args.config_dir:
        _check_shadowed(Path(args.config_dir))
    for override in parsed:
        if override.type.name != "CHANGE" or override.package is not None:
            continue  # +key, ++key, ~key: Hydra's own meaning
        _check_search_option(override)
        top = override.key_or_group.split(".")[0].split("/")[0]
        value = override.input_line.partition("=")[2]
        rest = override.key_or_group[len(top):] if "/" not in override.key_or_group else ""
        hint = _unknown_key_hint(top, value, dirs, rest) or (
            _nested_key_hint(override.key_or_group, value, dirs, _chosen_task(parsed)) if top != "hydra" else None)
        if hint:
            refuse(f"{override.key_or_group} is not a key of the config: {hint}")


def _chosen_task(parsed: Sequence[Any]) -> str | None:
    """The task a command names (`task=cnn`); None where a default or a preset chooses it."""
    chosen = [o.value() for o in parsed if o.key_or_group == "task" and isinstance(o.value(), str)]
    return str(chosen[-1]) if chosen else None


def _check_shadowed(config_dir: Path) -> None:
    """Refuse a file of the user's --config-dir that one of the project's hides: Hydra searches the
    project's conf first, so the user's `conf/task/linear.yaml` would silently not be used."""
    for path in sorted(config_dir.glob("*/**/*.yaml")):
        relative = path.relative_to(config_dir)
        if (CONF / relative).is_file():
            group, option = relative.parent.as_posix(), relative.stem
            refuse(f"{path} is hidden by the project's {group}={option}, which Hydra reads first: rename yours "
                   f"(e.g. {relative.parent / f'my_{option}.yaml'}) and choose {group}=my_{option}")


def _check_search_option(override: Any) -> None:
    """Refuse an unknown sampler or pruner of the search sweeper (conf/hydra/sweeper/<group>/)."""
    group = override.key_or_group
    if group not in ("hydra/sweeper/sampler", "hydra/sweeper/pruner"):
        return
    options = sorted(path.stem for path in (CONF / group).glob("*.yaml"))
    value = override.input_line.partition("=")[2]
    if value not in options:
        kind = group.rsplit("/", 1)[1]
        example = {"sampler": "tpe", "pruner": "median"}[kind]
        refuse(f"unknown {kind} {value!r}: the {kind}s are {', '.join(options)} ({group}={example})")


# -- hyperparameters that apply to no job ---------------------------------------------------------

def value_keys(cfg: DictConfig) -> frozenset[str]:
    """The config's top-level keys that hold one value (not a node, not a config group's)."""
    groups = OmegaConf.select(cfg, "hydra.runtime.choices", default=None) or {}
    return frozenset(str(key) for key in cfg if key not in groups and key != "hydra" and not OmegaConf.is_config(cfg[key]))


def given_hparams(overrides: Iterable[str], values: Container[str]) -> dict[str, str]:
    """The top-level keys among a job's overrides that hold one value (`values`: value_keys), a
    hyperparameter where one applies (`lr=0.1` -> {"lr": "0.1"}; not `task=cnn`, not a nested key)."""
    given = {}
    for override in overrides:
        key, sep, value = override.partition("=")
        if sep and key in values:
            given[key] = value
    return given


def _choice(cfg: DictConfig, group: str) -> str:
    return f"{group}={OmegaConf.select(cfg, f'hydra.runtime.choices.{group}', default='?')}"


def takes(cfg: DictConfig) -> str:
    """`task=linear optimizer=gd take lr, steps`."""
    return f"{_choice(cfg, 'task')} {_choice(cfg, 'optimizer')} take {', '.join(applicable_hparams(cfg))}"


def not_applying(cfg: DictConfig, overrides: Iterable[str]) -> list[str]:
    """The hyperparameters the user gave that this job's task and optimizer do not read."""
    used = applicable_hparams(cfg)
    return [key for key in given_hparams(overrides, value_keys(cfg)) if key not in used and key not in NOT_HPARAMS]


class Applicability:
    """Which given hyperparameters apply to which jobs of a sweep: refuse those that apply to none,
    say once those that apply to some jobs only."""

    def __init__(self) -> None:
        self.jobs = 0
        self.unused: dict[str, int] = {}    # key -> jobs it does not apply to
        self.example: dict[str, str] = {}   # key -> what a job it does not apply to takes

    def add(self, cfg: DictConfig, overrides: Sequence[str]) -> None:
        self.add_job(tuple(applicable_hparams(cfg)), takes(cfg), overrides, value_keys(cfg))

    def add_job(self, used: Sequence[str], who: str, overrides: Sequence[str], values: Container[str]) -> None:
        """A job that reads the hyperparameters `used` (applicable_hparams), `who` saying whose they
        are (takes); `values`: its config's keys that hold one value (value_keys)."""
        self.jobs += 1
        for key in given_hparams(overrides, values):
            if key in NOT_HPARAMS:
                continue
            self.unused.setdefault(key, 0)
            if key not in used:
                self.unused[key] += 1
                self.example.setdefault(key, who)

    def check(self) -> None:
        for key, count in self.unused.items():
            if count == self.jobs:
                refuse(f"{key} applies to none of the {counted(self.jobs, 'job')} ({self.example[key]}): remove it")
        partial = [f"{key} ({self.example[key]})" for key, count in self.unused.items() if 0 < count < self.jobs]
        if partial:
            print(f"note: applies to some jobs only: {'; '.join(partial)}", file=sys.stderr, flush=True)


# -- keys added with + that nothing takes ----------------------------------------------------------

def check_additions(cfg: DictConfig, overrides: Iterable[str]) -> None:
    """Refuse `+data.trian_samples=100` or `+task.run.foo=1`: a key added that the data loader or
    the task's function does not take (it would fail with a TypeError once the job runs)."""
    for override in overrides:
        if not override.startswith("+"):
            continue
        key, _, value = override.lstrip("+").partition("=")
        parts = key.split(".")
        if parts[:2] == ["task", "run"] and len(parts) == 3:
            node, target = "task.run", OmegaConf.select(cfg, "task.run._target_")
        elif parts[0] == "data" and len(parts) == 2:  # the data node's keys: its loader's arguments
            node, target = "data", OmegaConf.select(cfg, "data._target_")
        else:
            continue
        arguments = schema.arguments(str(target)) if target else None
        if arguments is None or parts[-1].startswith("_"):
            continue
        takes = [name for name in arguments if name not in FRAMEWORK_ARGUMENTS]  # the rest the framework gives
        if parts[-1] in takes:
            continue
        present = [str(k) for k in (OmegaConf.select(cfg, node) or {}) if not str(k).startswith("_")]
        near = difflib.get_close_matches(parts[-1], takes, n=1)
        hint = (f"did you mean {'' if near[0] in present else '+'}{node}.{near[0]}={value}?" if near else
                f"it takes {', '.join(takes)}")
        refuse(f"{override}: {target} takes no argument {parts[-1]!r}: {hint}")


# -- the data the jobs read ------------------------------------------------------------------------

class DataCheck:
    """The data a sweep's jobs read (each task's data node whose data group declares a `_check_`:
    MNIST's is tasks.mnist.check), checked once before the first job: a missing folder or file is
    one line, not one failed job each. Each check is called once per distinct set of the arguments
    it takes (MNIST's: once per `dir`)."""

    def __init__(self) -> None:
        self.checks: dict[str, tuple[str, dict[str, Any]]] = {}

    def add(self, cfg: DictConfig) -> None:
        for check, arguments in data_checks(cfg):
            key = json.dumps([check, arguments], sort_keys=True, default=str)
            self.checks.setdefault(key, (check, arguments))

    def check(self) -> None:
        called: set[str] = set()
        for check, arguments in self.checks.values():
            try:
                function = locate_quietly(check)
            except Exception as e:  # a misspelt `_check_`: the config's mistake, one line
                refuse(f"data check {check} cannot be imported: {_one_line(e)}")
            taken = _taken(function, arguments)
            key = json.dumps([check, taken], sort_keys=True, default=str)
            if key in called:
                continue
            called.add(key)
            try:
                function(**taken)
            except ValueError as e:  # the check's refusal (MNIST's DataError): its own line
                refuse(_one_line(e, with_type=False))
            except Exception as e:  # a check that failed otherwise: which, and why
                refuse(f"data check {check} failed: {_one_line(e)}")


def _taken(function: Any, arguments: dict[str, Any]) -> dict[str, Any]:
    """The arguments `function` takes (all of them where it takes **kwargs)."""
    parameters = inspect.signature(function).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return arguments
    return {name: value for name, value in arguments.items() if name in parameters}


def _one_line(error: BaseException, with_type: bool = True) -> str:
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if with_type else text or type(error).__name__


# -- nested keys that bypass a hyperparameter ------------------------------------------------------

def check_bypass(cfg: DictConfig, overrides: Iterable[str]) -> None:
    """Refuse `optimizer.learning_rate=0.5` where the optimizer file reads `${lr}` (or a task's
    `task.run.hidden=8` where it reads `${hidden}`): the record would not show what the job trained with."""
    for override in overrides:
        key, sep, value = override.partition("=")
        group = key.split(".")[0]
        if not sep or group not in ("optimizer", "task") or "." not in key:
            continue
        option = OmegaConf.select(cfg, f"hydra.runtime.choices.{group}")
        node: Any = _load(path) if (path := _group_file(cfg, group, str(option))) else {}
        for part in key.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        hparam = interpolated_key(node)
        if hparam is not None and hparam in cfg and not OmegaConf.is_config(cfg[hparam]):
            refuse(f"{override} bypasses {hparam}: set {hparam}={value} instead")


def _group_file(cfg: DictConfig, group: str, option: str) -> Path | None:
    """The file of a group's option, in the config's search path (the project's conf, the user's
    --config-dir): Hydra's own record of where it composed from (hydra.runtime.config_sources)."""
    sources = OmegaConf.select(cfg, "hydra.runtime.config_sources", default=None) or []
    dirs = [Path(source.path) for source in sources if source.schema == "file"] + [CONF]
    return next((path for d in dirs if (path := d / group / f"{option}.yaml").is_file()), None)


# -- one job over several workers ------------------------------------------------------------------

def check_workers(cfg: DictConfig, nodes: int | None = None, search: bool = False) -> None:
    """Refuse a job over several workers (`nodes` > 1 or `hydra.launcher.tasks_per_node` > 1) where
    it cannot run: anywhere but its own Slurm job (in process, locally, packed with other jobs; a
    fused group is planned only there), in a search (its pruner would stop the chief alone), or
    with a task that trains in one process (its `run` does not take `${nodes}`). `nodes`: the job's,
    where `cfg` is its combination's config (sweeper/sweep/planning.py), else cfg's; `search`: the
    search sweeper asks (sweeper/sweep/search.py)."""
    nodes = nodes or cfg.get("nodes") or 1
    tasks = OmegaConf.select(cfg, "hydra.launcher.tasks_per_node", default=1) or 1
    if nodes == 1 and tasks == 1:
        return
    what = f"nodes={nodes}" if nodes > 1 else f"hydra.launcher.tasks_per_node={tasks}"
    if OmegaConf.select(cfg, "hydra.launcher._target_", default=None) != SlurmConf._target_:
        refuse(f"{what} trains one job over several Slurm tasks: it runs only on the Slurm launcher "
               f"({command()} -m hydra/launcher=slurm ...)")
    if (OmegaConf.select(cfg, "hydra.launcher.jobs_per_task", default=1) or 1) > 1:
        refuse(f"{what}: a job over several workers has its Slurm job to itself, it cannot be packed with "
               "others (packing=none, or hydra.launcher.jobs_per_task=1)")
    if "nodes" not in applicable_hparams(cfg):
        refuse(f"{what}: {_choice(cfg, 'task')} trains in one process; task=cnn trains over several workers")
    if search:
        refuse(f"{what}: a search's trials report every epoch to be pruned, which a job over several workers "
               "does not do; search on one node, then train the best on several (nodes=2 without the search)")


# -- grids ------------------------------------------------------------------------------------------

def check_grid_values(parsed: Iterable[Any]) -> None:
    """Refuse a search space (`interval(...)`) on the grid sweeper, which can only list values."""
    for override in parsed:
        if override.is_sweep_override() and not override.is_discrete_sweep():
            space = override.value()
            values = f"{space.start},{space.end}" if override.is_interval_sweep() else "0.1,0.01"
            searches = ", ".join(sorted(path.stem for path in CONF.glob("hparams_search/*.yaml")))
            refuse(f"{override.input_line} is a search space, which a grid cannot list: use a search preset "
                   f"(hparams_search={searches}) or a list of values ({override.get_key_element()}={values})")


def check_grid_not_empty(parsed: Iterable[Any]) -> None:
    """Refuse a list of values that holds none (`steps=range(5,5)`): the grid would have no job."""
    for override in parsed:
        if override.is_discrete_sweep() and not list(override.sweep_string_iterator()):
            refuse(f"{override.input_line} lists no values, so the sweep would have no job: give at least one")


def check_sweep_dir(given: str) -> None:
    """Refuse a sweep directory that cannot be one, before anything is written: empty (the current
    directory), a file, or a place where nothing can be written."""
    if not given.strip():
        refuse("hydra.sweep.dir is empty: give the sweep's directory (e.g. hydra.sweep.dir=outputs/my_sweep)")
    path = Path(given).absolute()
    if path.exists() and not path.is_dir():
        refuse(f"hydra.sweep.dir={given} is a file: give a directory for the sweep")
    existing = next(p for p in (path, *path.parents) if p.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK) or _read_only(existing):
        refuse(f"hydra.sweep.dir={given}: {existing} cannot be written to (a read-only or system folder): "
               "give a directory of yours")


def _read_only(path: Path) -> bool:
    """Whether `path` lies on a file system mounted read-only or a kernel's (/proc, /sys), where even root writes nothing."""
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY) or path.resolve().parts[1:2] in (("proc",), ("sys",))
    except OSError:
        return True


def grid_size(cfg: DictConfig) -> int:
    """How many jobs `-m` would make of this run's preset grid (hydra.sweeper.params) and overrides."""
    params = OmegaConf.select(cfg, "hydra.sweeper.params") or {}
    arguments = [f"{key}={value}" for key, value in params.items()] + list(cfg.hydra.overrides.task)
    parsed = _parse(arguments)
    if any(o.is_sweep_override() and not o.is_discrete_sweep() for o in parsed):
        return 1  # a search: not a grid
    repeats = OmegaConf.select(cfg, "repeats", default=1)  # checked before (SETTINGS): each configuration's seeds
    return sum(len(batch) for batch in grid_of(parsed)) * int(repeats)


def check_reads_seed(cfg: DictConfig, hparams: Sequence[str]) -> None:
    """Refuse repeats (checked before) of a task that reads no seed: each repeat would be the same run again."""
    repeats = OmegaConf.select(cfg, "repeats", default=1)
    if repeats > 1 and "seed" not in hparams:
        refuse(f"repeats={repeats}: task {OmegaConf.select(cfg, 'task.name')} does not read the seed (no "
               "`seed: ${seed}` in its task file), so its repeats would be one run made again: remove repeats")


def _preset(cfg: DictConfig) -> str:
    return preset_of(cfg.hydra.runtime.choices) or "this command"


def check_single_run(cfg: DictConfig) -> None:
    """Everything refused in a run without -m, before Hydra writes anything."""
    check_or_exit(cfg)
    check_workers(cfg)
    overrides = list(cfg.hydra.overrides.task)
    check_reads_seed(cfg, list(applicable_hparams(cfg)))
    if str(OmegaConf.select(cfg, "hydra.sweeper._target_", default="")).endswith(".CheckedSweeper"):
        jobs = grid_size(cfg)
        if jobs > 1:
            typed = shell_command(*command().split(), "-m", *overrides)
            refuse(f"{_preset(cfg)} is a grid of {jobs} jobs: add -m ({typed})")
    check_additions(cfg, overrides)
    unused = not_applying(cfg, overrides)
    if unused:
        key = unused[0]
        refuse(f"{key}={given_hparams(overrides, value_keys(cfg))[key]} does not apply to this job ({takes(cfg)}): remove it")
    check_bypass(cfg, overrides)


class RefuseBeforeWriting(Callback):
    """Hydra callback: check a single run before Hydra creates its run directory."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        check_single_run(config)
