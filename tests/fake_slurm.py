"""Fake Slurm commands for the tests that need no cluster: shell scripts printing what Slurm
prints, first (and alone) on PATH."""
from __future__ import annotations

import shlex
import shutil
from pathlib import Path

import pytest


class FakeSlurm:
    """Writes fake Slurm commands into one directory, which is all of PATH (so that a real Slurm
    installed here is never reached: a command not faked is a command not installed)."""

    def __init__(self, bin_dir: Path, log: Path):
        self.bin_dir, self.log = bin_dir, log

    def command(self, name: str, stdout: str = "", stderr: str = "", code: int = 0, sleep_s: float = 0) -> None:
        """`name` prints `stdout` and `stderr` and exits with `code` (after `sleep_s`), logging
        its arguments. Only shell builtins, but `sleep`, which is exec'd so a timeout kills it."""
        lines = ["#!/bin/sh", f"printf '%s\\n' {shlex.quote(name)}\" $*\" >> {shlex.quote(str(self.log))}"]
        if sleep_s:
            lines.append(f"exec {shlex.quote(shutil.which('sleep'))} {sleep_s}")
        lines += [f"printf '%s' {shlex.quote(stdout)}", f"printf '%s' {shlex.quote(stderr)} >&2", f"exit {code}"]
        path = self.bin_dir / name
        path.write_text("\n".join(lines) + "\n")
        path.chmod(0o755)

    def calls(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []


@pytest.fixture
def slurm(tmp_path, monkeypatch) -> FakeSlurm:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.delenv("SWEEPER_SLURM_TIMEOUT_S", raising=False)
    return FakeSlurm(bin_dir, tmp_path / "calls.log")
