"""A command refused: one line on stderr, `error: ...`, and exit status 2, before anything is
written or while nothing more can be done. Every refusal of the project goes through `refuse`,
whichever layer finds the command wrong (its words, the config's values, Slurm's answer)."""
from __future__ import annotations

import sys
from typing import NoReturn


def refuse(message: str) -> NoReturn:
    """Say `error: message` on stderr and exit 2 (SystemExit passes Hydra's and submitit's handlers)."""
    print(f"error: {message}", file=sys.stderr, flush=True)
    raise SystemExit(2)
