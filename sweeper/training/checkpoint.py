"""A Keras job's training state in its directory, saved at every epoch end, so that a restarted
job (requeued by Slurm, resumed after Ctrl-C or a crash) continues from its last finished epoch.

`<job_dir>/state/` holds a TensorFlow checkpoint of the model and its optimizer (weights, slots,
iteration counter: tf.train.Checkpoint restores them all, where Keras' BackupAndRestore lost the
optimizer state or the epoch in some Keras 3 releases, keras#19179 and keras#19389) and
`progress.json`: the epoch count and the task's own counters (its history so far), written
atomically after the checkpoint. The framework deletes the state once the job's record is written,
unless `logging.keep_state=true`.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from sweeper.job.record import write_atomic
from sweeper.training.tf import import_tensorflow

if TYPE_CHECKING:
    import keras

STATE_DIR = "state"
_PROGRESS = "progress.json"


def _checkpoint(model: keras.Model):
    tf = import_tensorflow()

    return tf.train.Checkpoint(model=model, optimizer=model.optimizer)


def restore(job_dir: Path | None, model: keras.Model) -> tuple[int, dict[str, Any] | None]:
    """Load the saved state into a compiled `model` (call it in the strategy's scope).

    Returns (epochs already done, the counters saved with them), or (0, None) for a fresh start.
    """
    if job_dir is None:
        return 0, None
    path = Path(job_dir) / STATE_DIR / _PROGRESS
    if not path.exists():
        return 0, None
    progress = json.loads(path.read_text())
    model.optimizer.build(model.trainable_variables)  # its slots must exist to take saved values
    _checkpoint(model).restore(str(path.parent / progress["checkpoint"])).assert_existing_objects_matched()
    return progress["epoch"], progress["counters"]


def saver(job_dir: Path, model: keras.Model, counters: Callable[[], dict[str, Any]]) -> keras.callbacks.Callback:
    """A callback saving the state at every epoch end; `counters()` gives what to keep beside it
    (put it after the callback that updates those counters)."""
    tf = import_tensorflow()
    import keras

    directory = Path(job_dir) / STATE_DIR
    # Two kept: progress.json names the newer only once it is written in full.
    manager = tf.train.CheckpointManager(_checkpoint(model), str(directory), max_to_keep=2)

    class SaveState(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            prefix = Path(manager.save(checkpoint_number=epoch + 1))
            progress = {"epoch": epoch + 1, "checkpoint": prefix.name, "counters": counters()}
            write_atomic(directory / _PROGRESS, json.dumps(progress) + "\n")

    return SaveState()


def saved_history(job_dir: Path) -> tuple[dict[str, list], float | None]:
    """The history saved at the last finished epoch (the counters that are curves) and the training
    time up to it, over every attempt: what the record of a job interrupted later keeps.
    ({}, None) where no state was saved."""
    path = Path(job_dir) / STATE_DIR / _PROGRESS
    try:
        counters = json.loads(path.read_text())["counters"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}, None
    history = {name: value for name, value in counters.items() if isinstance(value, list)}
    return history, counters.get("fit_time_s")


def discard(job_dir: Path) -> None:
    """Delete a finished job's training state."""
    shutil.rmtree(Path(job_dir) / STATE_DIR, ignore_errors=True)
