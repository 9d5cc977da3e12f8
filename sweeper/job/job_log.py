"""A job's own lines: printed for the user as they are, and written to the job's log file
(Hydra's `run.log` in the job directory), so that the directory keeps what the job said.

Hydra's job logging (`hydra/job_logging`) gives the root logger a console handler and a file
handler for each job it runs, also each job of an in-process sweep. The line goes to the file
handlers only: the console already has it, printed without Hydra's log format.
"""
from __future__ import annotations

import logging
import sys

_log = logging.getLogger("sweeper.job")


def _job_log_files() -> list[logging.Handler]:
    return [handler for handler in logging.getLogger().handlers if isinstance(handler, logging.FileHandler)]


def echo(line: str, *, warning: bool = False) -> None:
    """Print `line` (a warning or error to stderr) and add it to the job's log file."""
    print(line, file=sys.stderr if warning else sys.stdout, flush=True)
    level = logging.WARNING if warning else logging.INFO
    record = _log.makeRecord(_log.name, level, __file__, 0, line, (), None)
    for handler in _job_log_files():
        if level >= handler.level:
            handler.handle(record)
