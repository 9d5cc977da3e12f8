"""The project installed as a user installs it, not as this checkout: `pip install` of a copy of the
checkout (a wheel, built here, no download) into a fresh virtual environment whose other packages
(TensorFlow, Hydra, ...) are this environment's. Used by tests/test_user_dir.py and
tests/test_new_task.py through conftest's `installed` fixture."""
from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

# What a copy of the checkout leaves out: git's, build outputs, and what no install reads.
LEFT_OUT = shutil.ignore_patterns(".git", ".venv", "outputs", "build", "*.egg-info", "__pycache__", ".mypy_cache",
                                  ".pytest_cache", "site", "tests", "docs", "benchmarks")


@dataclasses.dataclass(frozen=True)
class Installed:
    python: Path        # the environment's Python
    command: Path       # its installed `hpc-sweeper`
    site: Path          # where the project went: its site-packages

    def env(self) -> dict[str, str]:
        """This process's environment without PYTHONPATH (it names the checkout), the
        environment's bin first on PATH, as after `source bin/activate`."""
        env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
        env["PATH"] = f"{self.python.parent}{os.pathsep}{env.get('PATH', '')}"
        return env

    def run(self, *args: str | Path, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """`args` (the first: a program, e.g. self.command or self.python) run in `cwd`, output captured."""
        return subprocess.run([str(arg) for arg in args], cwd=cwd, env=self.env(), capture_output=True, text=True,
                              timeout=timeout)


def install(checkout: Path, where: Path) -> Installed:
    """Copy the checkout, make a virtual environment and pip install the copy into it: not editable,
    without dependencies (a .pth file names this environment's site-packages instead; Python reads
    the .pth files of a site directory only, so the editable install's, which names a checkout, is
    not read there)."""
    source, venv = where / "source", where / "venv"
    shutil.copytree(checkout, source, symlinks=True, ignore=LEFT_OUT)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    # --ignore-installed: pip sees the editable install's metadata through that .pth; it must
    # neither count it as installed nor try to uninstall it
    pip = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps",
                          "--no-index", "--no-build-isolation", "--ignore-installed", str(source)],
                         capture_output=True, text=True, timeout=300)
    if pip.returncode != 0:
        raise RuntimeError(f"pip install of the checkout failed:\n{pip.stderr}")
    return Installed(python=python, command=venv / "bin" / "hpc-sweeper", site=site)
