"""`python -m sweeper new-task NAME`: a task of one's own, its config and its test, which pass as
written with the project installed; what it refuses, writing nothing."""
from __future__ import annotations

from pathlib import Path

import pytest

from sweeper.new_task import files


def _tree(directory: Path) -> dict[Path, bytes]:
    return {path: path.read_bytes() for path in directory.rglob("*") if path.is_file()}


@pytest.mark.slow
def test_new_task_writes_a_task_whose_test_passes_with_the_project_installed(installed, tmp_path):
    done = installed.run(installed.python, "-m", "sweeper", "new-task", "mine", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert set(_tree(tmp_path)) == {tmp_path / "mine.py", tmp_path / "conf" / "task" / "mine.yaml",
                                    tmp_path / "conf" / "hparams_search" / "mine_search.yaml", tmp_path / "test_mine.py"}
    assert done.stdout.splitlines()[:4] == ["wrote mine.py", "wrote conf/task/mine.yaml",
                                            "wrote conf/hparams_search/mine_search.yaml", "wrote test_mine.py"]
    tested = installed.run(installed.python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_mine.py",
                           cwd=tmp_path)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "2 passed" in tested.stdout


def test_the_config_declares_the_tasks_own_hyperparameter(tmp_path, monkeypatch):
    """The YAML is the format the framework reads: the task's hyperparameter a top-level key that its
    `run` node reads, its range declared under `hparams`, its type the function's annotation."""
    from omegaconf import OmegaConf

    from sweeper.hparams import declared, interpolated_key
    from sweeper.schema import run_types

    for path, text in files("mine").items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    monkeypatch.syspath_prepend(str(tmp_path))
    config = OmegaConf.to_container(OmegaConf.load(tmp_path / "conf" / "task" / "mine.yaml"), resolve=False)
    assert interpolated_key(config["task"]["run"]["hidden"]) == "hidden" and config["hidden"] == 16
    assert run_types("mine.run")["hidden"] is int
    hidden = declared("hidden", config["hparams"]["hidden"], int)
    assert hidden.allowed == "an integer in [1, 256]" and hidden.check(16) and not hidden.check(1.5)
    search = OmegaConf.load(tmp_path / "conf" / "hparams_search" / "mine_search.yaml")
    assert search.hydra.sweeper.params.hidden == "declared"
    assert "__NAME__" not in "".join(files("mine").values())


@pytest.mark.parametrize("name, says", [
    ("3x", "'3x' cannot name a Python module"),
    ("my-task", "'my-task' cannot name a Python module"),
    ("class", "'class' cannot name a Python module"),
    ("json", "'json' is the name of a module there is already: choose another, e.g. my_json"),
    ("keras", "'keras' is the name of a module there is already"),
    ("cnn", "the project has a task 'cnn' already, whose config would be used, not yours"),
])
def test_new_task_refuses_a_name_that_cannot_be_its_module(sweeper_cli, tmp_path, name, says):
    done = sweeper_cli("new-task", name, "--dir", str(tmp_path))
    assert done.returncode == 2
    assert done.stderr.startswith(f"error: {says}") and done.stderr.count("\n") == 1, done.stderr
    assert not any(tmp_path.iterdir())


def test_new_task_overwrites_nothing(sweeper_cli, tmp_path):
    (tmp_path / "conf" / "task").mkdir(parents=True)
    (tmp_path / "conf" / "task" / "mine.yaml").write_text("mine: 1\n")
    before = _tree(tmp_path)
    done = sweeper_cli("new-task", "mine", "--dir", str(tmp_path))
    assert done.returncode == 2
    assert done.stderr == (f"error: {tmp_path / 'conf' / 'task' / 'mine.yaml'} exists already: new-task writes no "
                           "file over another (choose another name, or --dir)\n")
    assert _tree(tmp_path) == before  # nor the other two files
    again = sweeper_cli("new-task", "other", "--dir", str(tmp_path / "new"))  # a folder that is not there: made
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "new" / "other.py").is_file() and (tmp_path / "new" / "conf" / "task" / "other.yaml").is_file()
    (tmp_path / "a_file").write_text("")
    blocked = sweeper_cli("new-task", "third", "--dir", str(tmp_path / "a_file"))
    assert blocked.returncode == 2 and blocked.stderr.startswith("error: cannot write ") and \
        blocked.stderr.count("\n") == 1, blocked.stderr
