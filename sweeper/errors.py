"""A command that stops with one line on stderr, `error: ...`: refused (exit status 2, before
anything is written or while nothing more can be done) or ended with jobs unfinished (exit status 1).
Every refusal of the project raises `Refused` (through `refuse`), whichever layer finds the command
wrong (its words, the config's values, Slurm's answer), and a reader that finds its input wrong
raises a `BadInput`; the entry points (`python run.py`, `python -m sweeper`, a job started in
another process) say it, once, through `said`.

`Stop` is a SystemExit, not an Exception: it must pass Hydra's `run_and_report` (which prints
an Exception's traceback), submitit's job handlers and the sweep's "a failing job is a result"."""
from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import NoReturn


class Stop(SystemExit):
    """The command stops with exit status `code`, its one line (`message`) said where it started."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(code)
        self.message = message
        self.said = False


class Refused(Stop):
    """A refusal: exit status 2."""

    def __init__(self, message: str) -> None:
        super().__init__(message, 2)


class Unfinished(Stop):
    """A sweep that ran to its end with jobs that did not finish: exit status 1."""

    def __init__(self, message: str) -> None:
        super().__init__(message, 1)


class BadInput(ValueError):
    """Input the user can mend (a folder that is no sweep, a damaged job list, an unknown profile):
    its message is the one line that says what is wrong and what to do. Readers raise it; callers
    that can go on catch it, and an entry point refuses the command with it."""


def refuse(message: str) -> NoReturn:
    raise Refused(message)


@contextlib.contextmanager
def said() -> Iterator[None]:
    """Around an entry point: a stop from below is said here as `error: message` on stderr,
    once: the innermost entry it passes says it (a job's, run in the sweep's process), the
    entries around it see it said. A BadInput that reaches it refuses the command with its message."""
    try:
        yield
    except Stop as stop:
        _say(stop)
        raise
    except BadInput as e:
        refusal = Refused(str(e))
        _say(refusal)
        raise refusal from None


def _say(stop: Stop) -> None:
    if not stop.said:
        stop.said = True
        print(f"error: {stop.message}", file=sys.stderr, flush=True)
