"""The house's imports: no import cycle hidden in a function, no module reaching into another's
private names."""
from __future__ import annotations

import ast
import re

import pytest
from hydra.core.config_loader import ConfigLoader
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.types import Override
from hydra.core.utils import JobReturn, JobRuntime
from hydra.plugins.launcher import Launcher
from hydra.plugins.sweeper import Sweeper
from omegaconf import Container, DictConfig, ListConfig, Node, OmegaConf, ValueNode

from sweeper.hydra_private import BasicLauncher, BasicSweeper
from tests.conftest import ROOT


# Every module of the project; only the command line imports its commands' modules when it runs
# one (pandas and matplotlib for `report` cost a second), and type-only imports sit under
# TYPE_CHECKING. Lazy imports are for TensorFlow, submitit and Optuna. The entry point
# (sweeper/run.py) imports inside main too, so that Ctrl-C while importing ends in its one line.
MODULES = sorted(path.relative_to(ROOT).as_posix() for folder in ("sweeper", "tasks", "hydra_plugins")
                 for path in (ROOT / folder).rglob("*.py")
                 if path.name != "__main__.py" and path.relative_to(ROOT).as_posix() != "sweeper/run.py")


OURS = ("sweeper", "tasks", "hydra_plugins")


def _project_imports(tree: ast.AST) -> list[tuple[str, list[str]]]:
    """(module, imported names) of every import of the project's own modules within `tree`."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in OURS:
            found.append((node.module, [alias.name for alias in node.names]))
        elif isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names if alias.name.split(".")[0] in OURS]
    return found


def _project_modules_imported(module: str) -> list[str]:
    """The project's modules that `module` imports inside a function, except the third-party
    `hydra_plugins.hydra_submitit_launcher` (the stock launcher's package)."""
    tree = ast.parse((ROOT / module).read_text())
    functions = [node for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))]
    return [name for function in functions for name, _ in _project_imports(function)
            if not name.startswith("hydra_plugins.hydra_submitit_launcher")]


@pytest.mark.parametrize("module", MODULES)
def test_the_project_is_imported_at_module_level(module):
    """No import cycle hidden in a function (fused_loop <-> fused_state, execute <-> fused groups and
    the launcher plugin <-> submit.py once were)."""
    assert _project_modules_imported(module) == []


def test_no_module_imports_another_modules_private_name():
    paths = [path for folder in ("sweeper", "tasks") for path in (ROOT / folder).rglob("*.py")]
    private = [f"{path.relative_to(ROOT)}: {module}.{name}" for path in paths
               for module, names in _project_imports(ast.parse(path.read_text())) for name in names
               if name.startswith("_")]
    assert private == []


def test_no_test_module_imports_another():
    """What tests share lives in helper modules (conftest.py, cluster.py, fake_slurm.py, fused_jobs.py,
    synthetic.py, ...): a test module imported by another (in its code, or in a script it runs)
    would run its module-level set-up there too, and its fixtures would be collected twice."""
    imports = re.compile(r"(?:from|import) tests\.(test_\w+)")
    found = [f"{path.name}: tests.{name}" for path in sorted((ROOT / "tests").glob("test_*.py"))
             for name in imports.findall(path.read_text())]
    assert found == []


# The layers, lowest first: a module imports its own layer's and those below, never above (the
# folder graph has no cycle). A job runs its training: training never imports a job's modules; what
# both use (the task contract: outcome.py, status.py, trial.py; job_log.py) sits below job.
# The sweeper's refusals and a course's runner sit with the sweeps; the package's __init__ (its
# public names), the entry points and Hydra's plugins (thin: they call the sweeper) on top.
LAYERS = [
    {"sweeper.errors", "sweeper.files", "sweeper.paths", "sweeper.words", "sweeper.schema", "sweeper.hydra_private",
     "sweeper.allocation"},  # what the scheduler gave a job's own process: read by job/ and training/
    {"sweeper.hparams", "sweeper.hparams_table", "sweeper.new_task"},
    {"sweeper.status", "sweeper.trial", "sweeper.job_log"},
    {"sweeper.training", "sweeper.outcome"},  # the contract offers a job's workers (training/workers.py)
    {"sweeper.job"},
    {"sweeper.launching"},
    {"sweeper.refusals"},
    {"sweeper.sweep", "sweeper.course_runner"},
    {"sweeper.report"},
    {"sweeper.serve"},
    {"sweeper", "sweeper.__main__", "sweeper.run", "hydra_plugins"},
]
LAYER_OF = {unit: number for number, units in enumerate(LAYERS) for unit in units}


def _unit(module: str) -> str:
    """The layer's unit a module belongs to: its folder under sweeper/, else itself; Hydra's plugins one."""
    parts = module.split(".")
    if parts[0] == "hydra_plugins":
        return "hydra_plugins"
    if len(parts) > 1 and (ROOT / "sweeper" / parts[1]).is_dir():
        return ".".join(parts[:2])
    return ".".join(parts[:2]) if parts[1:] and parts[1] != "__init__" else "sweeper"


def _upward_imports() -> list[str]:
    found = []
    for path in sorted(p for folder in ("sweeper", "hydra_plugins") for p in (ROOT / folder).rglob("*.py")):
        importer = _unit(".".join(path.relative_to(ROOT).with_suffix("").parts))
        for module, names in _project_imports(ast.parse(path.read_text())):
            if module.startswith(("hydra_plugins.hydra_submitit_launcher", "tasks")):
                continue  # the stock launcher's package; the tasks a job imports by name
            for imported in [f"{module}.{name}" for name in names] if module == "sweeper" else [module]:
                if LAYER_OF.get(_unit(imported), LAYER_OF["sweeper"]) > LAYER_OF[importer]:  # a name: the package's
                    found.append(f"{path.relative_to(ROOT)} ({importer}) -> {imported} ({_unit(imported)})")
    return found


def test_every_layer_imports_only_its_own_and_those_below():
    assert _upward_imports() == []


def test_only_the_launching_folder_knows_slurm_commands_and_modules():
    """The core asks a job's backend (sweeper/launching/backend.py) for its scheduler's states,
    reasons, cancel and accounting; Slurm's commands and submitit's Slurm package are named only
    in sweeper/launching/ (and the plugins)."""
    words = re.compile(r"\b(sacct|squeue|scancel|submitit\.slurm)\b|sweeper\.launching\.(slurm|slurm_queries)\b")
    found = [f"{path.relative_to(ROOT)}: {match.group(0)}" for path in sorted((ROOT / "sweeper").rglob("*.py"))
             if path.parent.name != "launching" for match in words.finditer(path.read_text())]
    assert found == []


ALLOCATION = "sweeper/allocation.py"


def _scheduler_variables(path) -> list[str]:
    return [f"{path.relative_to(ROOT)}: {name}" for name in re.findall(r"SLURM_\w*", path.read_text())]


def test_only_the_allocation_reads_the_schedulers_variables():
    """A job's own process reads what its scheduler gave it (its job id, its step's tasks, the
    variables a record keeps) through sweeper/allocation.py alone; the launchers may name them too
    (and the scan finds the adapter's)."""
    found = [use for path in sorted((ROOT / "sweeper").rglob("*.py"))
             if path.parent.name != "launching" and path != ROOT / ALLOCATION for use in _scheduler_variables(path)]
    assert found == []
    adapter = " ".join(_scheduler_variables(ROOT / ALLOCATION))
    for name in ("SLURM_JOB_ID", "SLURM_ARRAY_TASK_ID", "SLURM_STEP_NODELIST", "SLURM_PROCID", "SLURM_GPUS_ON_NODE"):
        assert f"{ALLOCATION}: {name}" in adapter


# Hydra's and OmegaConf's private names are used in one module, which says why for each.
HYDRA_PRIVATE = "sweeper/hydra_private.py"
THIRD_PARTY = ("hydra", "omegaconf")


def _private_attributes() -> set[str]:
    """The private names (one leading underscore) of the Hydra and OmegaConf classes the project
    handles, less the names the project itself defines (its own `_parse`, `_key`, ...)."""
    classes = (DictConfig, ListConfig, Node, ValueNode, Container, OmegaConf, JobReturn, JobRuntime, HydraConfig,
               Launcher, Sweeper, ConfigLoader, Override, BasicSweeper, BasicLauncher)
    names = {name for cls in classes for name in [*dir(cls), *getattr(cls, "__dataclass_fields__", {})]
             if name.startswith("_") and not name.startswith("__")}
    own: set[str] = set()
    for path in _SOURCES:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                own.add(node.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                own.add(node.attr)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                own.add(node.id)
    return names - own


def _private_uses(path, private: set[str]) -> list[str]:
    """Where `path` imports a private module or name of Hydra or OmegaConf, or reads or passes one
    of their classes' private names (`cfg._get_node(...)`, `JobReturn(_return_value=...)`)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        modules = []
        if isinstance(node, ast.ImportFrom) and node.module:
            modules = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        for module in modules:
            parts = module.split(".")
            if parts[0] in THIRD_PARTY and any(part.startswith("_") for part in parts):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: import {module}")
        if isinstance(node, ast.Attribute) and node.attr in private:
            found.append(f"{path.relative_to(ROOT)}:{node.lineno}: .{node.attr}")
        elif isinstance(node, ast.keyword) and node.arg in private:
            found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.arg}=")
    return found


_SOURCES = sorted(path for folder in ("sweeper", "tasks", "hydra_plugins", "benchmarks")
                  for path in (ROOT / folder).rglob("*.py")) + [ROOT / "run.py"]


def test_only_the_adapter_uses_hydras_and_omegaconfs_private_names():
    """A Hydra or OmegaConf release may change its private names: the project uses them in
    sweeper/hydra_private.py alone, which says why for each (and the scan finds those)."""
    private = _private_attributes()
    found = [use for path in _SOURCES if path != ROOT / HYDRA_PRIVATE for use in _private_uses(path, private)]
    assert found == []
    adapter = " ".join(_private_uses(ROOT / HYDRA_PRIVATE, private))
    for use in ("import hydra._internal.utils", "import omegaconf._utils", "._get_node", "._set_parent", "._return_value"):
        assert use in adapter
