"""A Keras job's training state in its directory, saved at every epoch end, so that a restarted
job (requeued by Slurm, resumed after Ctrl-C or a crash) continues from its last finished epoch.

`<job_dir>/state/` holds a TensorFlow checkpoint of the model and its optimizer (weights, slots,
iteration counter) and of the dropout layers' seed states (tf.train.Checkpoint restores them all,
where Keras' BackupAndRestore lost the optimizer state or the epoch in some Keras 3 releases,
keras#19179 and keras#19389) and
`progress.json`: the epoch count and the task's own counters (its history so far), written
atomically after the checkpoint. The framework deletes the state once the job's record is written,
unless `logging.keep_state=true`.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from sweeper.files import write_atomic
from sweeper.training.tf import import_keras, import_tensorflow

if TYPE_CHECKING:
    import keras
    import tensorflow as tf

STATE_DIR = "state"
_PROGRESS = "progress.json"


def seed_states(model: keras.Model) -> list[tf.Variable]:
    """The states of the model's random number generators (Keras' SeedGenerators: a Dropout layer's),
    which its weights leave out: `model.variables` is `model.weights` and these (Keras 3)."""
    weights = {id(weight) for weight in model.weights}
    return [variable.value for variable in model.variables if id(variable) not in weights]


def _checkpoint(model: keras.Model, seeds: bool = True) -> tf.train.Checkpoint:
    tf = import_tensorflow()

    if not seeds:  # a state saved before the seeds were (restored so, the draws start from the seed again)
        return tf.train.Checkpoint(model=model, optimizer=model.optimizer)
    # The seed states too: a restarted job's dropout draws then go on where they were, not again
    # from the seed (each draw advances its generator's counter; tf.train.Checkpoint of the model
    # alone does not reach it).
    return tf.train.Checkpoint(model=model, optimizer=model.optimizer, seeds=seed_states(model))


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
    saved = str(path.parent / progress["checkpoint"])
    seeds = any(name.startswith("seeds/") for name, _ in import_tensorflow().train.list_variables(saved))
    _checkpoint(model, seeds).restore(saved).assert_existing_objects_matched()
    return progress["epoch"], progress["counters"]


def manager(job_dir: Path, model: keras.Model) -> tf.train.CheckpointManager:
    """Where `save` writes the state of the compiled `model` in `job_dir`."""
    tf = import_tensorflow()

    # Two kept: progress.json names the newer only once it is written in full.
    return tf.train.CheckpointManager(_checkpoint(model), str(Path(job_dir) / STATE_DIR), max_to_keep=2)


def save(saving: tf.train.CheckpointManager, job_dir: Path, epochs: int, counters: dict[str, Any]) -> None:
    """Save the state after `epochs` finished epochs, with the task's `counters` beside it."""
    prefix = Path(saving.save(checkpoint_number=epochs))
    progress = {"epoch": epochs, "checkpoint": prefix.name, "counters": counters}
    write_atomic(Path(job_dir) / STATE_DIR / _PROGRESS, json.dumps(progress) + "\n")


def saver(job_dir: Path, model: keras.Model, counters: Callable[[], dict[str, Any]]) -> keras.callbacks.Callback:
    """A callback saving the state at every epoch end; `counters()` gives what to keep beside it
    (put it after the callback that updates those counters)."""
    import_keras()
    import keras  # started quietly above; imported by name for its types

    saving = manager(job_dir, model)

    class SaveState(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            save(saving, job_dir, epoch + 1, counters())

    return SaveState()


def saved_epoch(job_dir: Path) -> int:
    """How many epochs the state saved in `job_dir` has done: 0 where none was saved."""
    try:
        return int(json.loads((Path(job_dir) / STATE_DIR / _PROGRESS).read_text())["epoch"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0


def saved_history(job_dir: Path) -> tuple[dict[str, list[Any]], float | None]:
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
