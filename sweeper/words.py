"""English for counts: `1 job`, `2 jobs`, one helper for every count the user reads; and the
commands the user is told to type, quoted for the shell."""
from __future__ import annotations

import shlex


def counted(number: int, noun: str, plural: str | None = None) -> str:
    """`1 job`, `0 jobs`, `3 jobs`; `plural` where adding an `s` is wrong (`1 GPU`, `2 GPUs` need none)."""
    return f"{number} {noun if number == 1 else plural or noun + 's'}"


def command(*words: object) -> str:
    """A command the user may paste: each word shell-quoted (`python -m sweeper resume 'my sweep'`),
    so that a space or `$(...)` in a path stays part of it; a plain path prints as it is."""
    return " ".join(shlex.quote(str(word)) for word in words)


def sweeper_command(verb: str, *words: object) -> str:
    """`python -m sweeper VERB ...`, quoted as `command` quotes it."""
    return command("python", "-m", "sweeper", verb, *words)
