"""Shared fixtures: compose the project's config as Hydra would, and run the entry point."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Callable

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture
def compose_cfg() -> Callable[..., DictConfig]:
    """compose_cfg("optimizer=adam", "lr=0.1") -> the job config `python run.py ...` would get."""

    def _compose(*overrides: str) -> DictConfig:
        with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
            return compose(config_name="config", overrides=list(overrides), return_hydra_config=True)

    yield _compose
    GlobalHydra.instance().clear()


def run_cli(*args: str, cwd: Path = ROOT, timeout: float = 300, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run `python <args>` from the repository root as a user would, capturing the output."""
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


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


@pytest.fixture(autouse=True)
def _slurm_marked_tests_need_the_cluster(request):
    if request.node.get_closest_marker("slurm"):
        request.getfixturevalue("slurm_cluster")
