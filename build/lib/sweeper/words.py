"""English for counts: `1 job`, `2 jobs`, one helper for every count the user reads."""
from __future__ import annotations


def counted(number: int, noun: str, plural: str | None = None) -> str:
    """`1 job`, `0 jobs`, `3 jobs`; `plural` where adding an `s` is wrong (`1 GPU`, `2 GPUs` need none)."""
    return f"{number} {noun if number == 1 else plural or noun + 's'}"
