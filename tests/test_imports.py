"""The house's imports: no import cycle hidden in a function, no module reaching into another's
private names."""
from __future__ import annotations

import ast
import re

import pytest

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


def test_training_imports_nothing_of_the_job_folder():
    """One way between the two folders: a job runs its training (sweeper/job imports
    sweeper/training), training never imports a job's modules; what both use (the task contract:
    outcome.py, status.py, trial.py; job_log.py, words.py) sits in sweeper/ itself."""
    training = sorted((ROOT / "sweeper" / "training").glob("*.py"))
    found = [f"{path.relative_to(ROOT)}: {module} {names}" for path in training
             for module, names in _project_imports(ast.parse(path.read_text()))
             if module == "sweeper.job" or module.startswith("sweeper.job.")
             or (module == "sweeper" and "job" in names)]
    assert found == []
