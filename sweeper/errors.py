"""A command refused: one line on stderr, `error: ...`, and exit status 2, before anything is
written or while nothing more can be done. Every refusal of the project raises `Refused` (through
`refuse`), whichever layer finds the command wrong (its words, the config's values, Slurm's
answer); the entry points (`python run.py`, `python -m sweeper`, a job started in another
process) say it, once, through `said`.

`Refused` is a SystemExit, not an Exception: it must pass Hydra's `run_and_report` (which prints
an Exception's traceback), submitit's job handlers and the sweep's "a failing job is a result"."""
from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import NoReturn


class Refused(SystemExit):
    """A refusal: exit status 2, its one line (`message`) said where the command started."""

    def __init__(self, message: str) -> None:
        super().__init__(2)
        self.message = message
        self.said = False


def refuse(message: str) -> NoReturn:
    raise Refused(message)


@contextlib.contextmanager
def said() -> Iterator[None]:
    """Around an entry point: a refusal from below is said here as `error: message` on stderr,
    once: the innermost entry it passes says it (a job's, run in the sweep's process), the
    entries around it see it said."""
    try:
        yield
    except Refused as refusal:
        if not refusal.said:
            refusal.said = True
            print(f"error: {refusal.message}", file=sys.stderr, flush=True)
        raise
