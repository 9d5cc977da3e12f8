"""Shared fixtures: compose the project's config as Hydra would, and run the entry point."""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from typing import Callable

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, OmegaConf

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# submitit configures its loggers (logging.config.dictConfig) when first imported. dictConfig
# first closes every handler there is, and absl's handler (made when TensorFlow is imported, by a
# test or at collection) closes its stream on close unless that stream is sys.stderr *then*: its
# stream was pytest's capture of the moment, so an import of submitit inside a test with
# capsys/capfd closed pytest's own capture file, and the session died ("lost sys.stderr").
# Imported here, before any test, submitit configures its logging once, with no absl handler yet.
import submitit  # noqa: E402,F401


@pytest.fixture
def compose_cfg() -> Callable[..., DictConfig]:
    """compose_cfg("optimizer=adam", "lr=0.1") -> the job config `python run.py ...` would get."""

    def _compose(*overrides: str) -> DictConfig:
        with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
            return compose(config_name="config", overrides=list(overrides), return_hydra_config=True)

    yield _compose
    GlobalHydra.instance().clear()


def checkout_env(without_prefix: str | None = None) -> dict[str, str]:
    """This process's environment with PYTHONPATH set to this checkout, so that a child process
    (run.py's job processes, submitit's workers) imports this checkout's sweeper and hydra_plugins
    and not those of another install; without the variables starting with `without_prefix`."""
    env = {k: v for k, v in os.environ.items() if not (without_prefix and k.startswith(without_prefix))}
    env["PYTHONPATH"] = str(ROOT)
    return env


def run_cli(*args: str, cwd: Path = ROOT, timeout: float = 300, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run `python <args>` from the repository root as a user would, capturing the output; the
    environment is checkout_env() unless given."""
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env=checkout_env() if env is None else env)


@pytest.fixture
def sweeper_cli(capfd) -> Callable[..., subprocess.CompletedProcess]:
    """sweeper_cli("report", DIR): `python -m sweeper report DIR` run in this process through
    sweeper.__main__.main, for tests where the process is not the subject. Its output is read at
    the file descriptors (capfd: `resume` runs run.py in a child that writes there), its exit
    status is main's return value (or argparse's SystemExit code)."""

    def _run(*args: str) -> subprocess.CompletedProcess:
        from sweeper.__main__ import main

        capfd.readouterr()  # what the test printed before is not the command's
        try:
            code = main(list(args))
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        out, err = capfd.readouterr()
        return subprocess.CompletedProcess(["python", "-m", "sweeper", *args], code, out, err)

    return _run


@pytest.fixture(scope="session")
def tiny(tmp_path_factory) -> str:
    """300 training and 100 test images of synthetic digits, as MNIST's four .gz files."""
    from tests.mnist_files import write_mnist

    return str(write_mnist(tmp_path_factory.mktemp("mnist"), train=300, test=100))


def records(sweep: Path, by: str = "overrides") -> dict:
    """Each job's record under `sweep`, read as collate and status read it (read_sweep: the job
    list, then each job's result.json), keyed by its overrides joined with spaces (by="overrides"),
    its job number (by="number") or its record's path (by="path"). Jobs without a record are left out."""
    from sweeper.job.record import RECORD_NAME
    from sweeper.sweep.jobs import read_sweep

    keys = {"overrides": lambda job: " ".join(job.record.overrides), "number": lambda job: int(job.path.name),
            "path": lambda job: job.path / RECORD_NAME}
    return {keys[by](job): job.record for job in read_sweep(sweep).jobs if job.record is not None}


def skip_or_fail(reason: str) -> None:
    """Skip a test whose resource (data, a cluster) is missing here; in CI (CI=true) fail instead."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: a missing resource is a failure, not a skip)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def slurm_cluster() -> str:
    """The name of the Slurm node when a cluster answers with a usable node (`make slurm-up`)."""
    try:
        out = subprocess.run(["sinfo", "-h", "-o", "%n %t"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as e:
        skip_or_fail(f"no Slurm cluster answers (sinfo: {e}): run `make slurm-up`")
    nodes = [line.split() for line in out.stdout.splitlines() if line.strip()]
    usable = [name for name, state in nodes if state.rstrip("*~#") in ("idle", "mix", "alloc")]
    if out.returncode != 0 or not usable:
        skip_or_fail(f"no Slurm cluster answers with a usable node (sinfo: {out.stderr.strip() or out.stdout.strip()}): "
                     "run `make slurm-up`")
    return usable[0]


def _absl_handler_on_the_real_stderr() -> None:
    """absl's handler (unused: no logger holds it) writes to, and would close, the stream that was
    sys.stderr when TensorFlow was imported, maybe a capture that pytest closes or keeps for itself.
    Point it at the process's stderr, which absl never closes."""
    absl_logging = sys.modules.get("absl.logging")
    handler = absl_logging and absl_logging.get_absl_handler().python_handler
    if handler is not None and handler.stream is not sys.__stderr__:
        handler.stream = sys.__stderr__  # not setStream: that flushes the old stream, maybe closed


@pytest.fixture(autouse=True)
def _no_handler_closes_a_capture():
    """Another in-process logging set-up (submitit's, Hydra's job logging) closes every handler;
    none of them may hold a stream of pytest's capture. Before each test (TensorFlow imported at
    collection) and after it (imported by the test)."""
    _absl_handler_on_the_real_stderr()
    yield
    _absl_handler_on_the_real_stderr()


@pytest.fixture(autouse=True)
def _slurm_marked_tests_need_the_cluster(request):
    if request.node.get_closest_marker("slurm"):
        request.getfixturevalue("slurm_cluster")


CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"  # Debian's chromium, chromium-driver


@pytest.fixture(scope="session")
def chromium() -> str:
    """The browser of the tests marked `browser`: Debian's Chromium, its driver, and Selenium."""
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not Path(path).exists()]
    if missing:
        skip_or_fail(f"no {' or '.join(missing)}: apt-get install chromium chromium-driver (.ci/run does)")
    if importlib.util.find_spec("selenium") is None:
        skip_or_fail("selenium is not installed: pip install -e '.[test]'")
    return CHROMIUM


@pytest.fixture(autouse=True)
def _browser_marked_tests_need_chromium(request):
    if request.node.get_closest_marker("browser"):
        request.getfixturevalue("chromium")


@pytest.fixture(scope="session")
def installed(tmp_path_factory):
    """The project pip-installed from a copy of this checkout (not editable) into a fresh virtual
    environment, where the checkout is not importable (tests/installed.py)."""
    from tests.installed import install

    return install(ROOT, tmp_path_factory.mktemp("installed"))


def preset(group: str, name: str) -> tuple[dict, str, str]:
    """The preset's own values (outside `defaults` and `hydra`), and the task and optimizer it picks."""
    raw = OmegaConf.to_container(OmegaConf.load(ROOT / "conf" / group / f"{name}.yaml"))
    picks = {key: value for entry in raw.pop("defaults") if isinstance(entry, dict) for key, value in entry.items()}
    raw.pop("hydra", None)
    return raw, picks["override /task"], picks["override /optimizer"]


def refused(tmp_path: Path, *args: str) -> str:
    """Run `python run.py args` in tmp_path; assert the refusal's form; return its one line."""
    result = run_cli(str(ROOT / "run.py"), *args, cwd=tmp_path, timeout=120)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert list(tmp_path.iterdir()) == [], "nothing is written"
    return lines[0]


def write_user_task(tmp_path: Path, name: str, module: str, task: str) -> Path:
    """A user's own directory, `tmp_path/mine`: the task's module `NAME.py` and its `conf/task/NAME.yaml`."""
    home = tmp_path / "mine"
    (home / "conf" / "task").mkdir(parents=True)
    (home / f"{name}.py").write_text(module)
    (home / "conf" / "task" / f"{name}.yaml").write_text(task)
    return home
