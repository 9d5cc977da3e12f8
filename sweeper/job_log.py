"""A job's own lines: printed for the user as they are, and written to the job's log file
(Hydra's `run.log` in the job directory), so that the directory keeps what the job said.

Hydra's job logging (`hydra/job_logging`) gives the root logger a console handler and a file
handler for each job it runs, also each job of an in-process sweep. The line goes to the file
handlers only: the console already has it, printed without Hydra's log format.

On a terminal a running job may also show one line updated in place (`in_place`: its progress,
sweeper/training/progress_line.py); it goes to the terminal only, and the next line echoed
replaces it.
"""
from __future__ import annotations

import logging
import shutil
import sys

_log = logging.getLogger("sweeper.job")
_shown = False  # a line shown in place on standard output, not yet replaced


def _job_log_files() -> list[logging.Handler]:
    return [handler for handler in logging.getLogger().handlers if isinstance(handler, logging.FileHandler)]


def on_terminal() -> bool:
    """Whether standard output is a terminal (not a log file, a pipe, or a Slurm job's output)."""
    try:
        return bool(sys.stdout.isatty())
    except (AttributeError, ValueError):  # no stream, or a closed one
        return False


def echo(line: str, *, warning: bool = False, terminal: bool = True) -> None:
    """Print `line` (a warning or error to stderr) and add it to the job's log file; with
    `terminal=False`, add it to the log file only."""
    if terminal:
        clear_in_place()
        print(line, file=sys.stderr if warning else sys.stdout, flush=True)
    level = logging.WARNING if warning else logging.INFO
    record = _log.makeRecord(_log.name, level, __file__, 0, line, (), None)
    for handler in _job_log_files():
        if level >= handler.level:
            handler.handle(record)


def in_place(text: str) -> None:
    """Show `text` on standard output (a terminal) in place of the line shown there before, cut
    to the terminal's width (a line that wraps could not be replaced). Not in the log file."""
    global _shown
    width = max(shutil.get_terminal_size().columns - 1, 20)
    sys.stdout.write(f"\r{text[:width]}\x1b[K")
    sys.stdout.flush()
    _shown = True


def clear_in_place() -> None:
    """Remove the line shown in place, if there is one."""
    global _shown
    if _shown:
        _shown = False
        sys.stdout.write("\r\x1b[K")
        sys.stdout.flush()
