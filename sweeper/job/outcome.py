"""What a task function returns to the framework."""
from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass
class Outcome:
    status: str                       # ok | diverged | pruned
    metrics: dict[str, Any]           # final figures (final_loss, test_accuracy, ...)
    history: dict[str, list]          # curves (loss per step, per-epoch metrics, ...)
    train_time_s: float               # training alone, excluding imports and set-up
    fused: int | None = None          # trained in a fused group of this many jobs: train_time_s is its share
    started: str | None = None        # a fused job: when its group started training (the record's `started`)
