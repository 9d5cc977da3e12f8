"""English for counts, durations, sizes and numbers: `1 job`, `2 jobs`, `25 min`, `0.62 GB`,
`0.1235`, one helper for each figure the user reads; and the commands the user is told to type,
quoted for the shell."""
from __future__ import annotations

import math
import shlex
from typing import Any


def number(value: Any) -> str:
    """A number as a line shows it: 4 significant digits; one that is not finite as `inf`, whether
    the job holds it (in process) or its record (read back: JSON stores it as null)."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "inf"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def counted(number: int, noun: str, plural: str | None = None) -> str:
    """`1 job`, `0 jobs`, `3 jobs`; `plural` where adding an `s` is wrong (`1 GPU`, `2 GPUs` need none)."""
    return f"{number} {noun if number == 1 else plural or noun + 's'}"


def duration(seconds: float | None) -> str:
    """3 s, 25 min, 2 h, 1.5 d."""
    if seconds is None:
        return "no limit"
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            return f"{seconds / size:.3g} {unit}"
    return f"{seconds:.3g} s"


def gigabytes(mb: float) -> str:
    """MB -> `0.623 GB` (1024 MB a GB, as Slurm counts)."""
    return f"{mb / 1024:.3g} GB"


def command(*words: object) -> str:
    """A command the user may paste: each word shell-quoted (`python -m sweeper resume 'my sweep'`),
    so that a space or `$(...)` in a path stays part of it; a plain path prints as it is."""
    return " ".join(shlex.quote(str(word)) for word in words)


def sweeper_command(verb: str, *words: object) -> str:
    """`python -m sweeper VERB ...`, quoted as `command` quotes it."""
    return command("python", "-m", "sweeper", verb, *words)
