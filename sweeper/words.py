"""English for counts, durations and sizes: `1 job`, `2 jobs`, `25 min`, `0.62 GB`; one helper for
each, for every figure the user reads."""
from __future__ import annotations


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
