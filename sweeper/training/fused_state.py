"""A fused group's per-epoch training state, each copy's in its own job's directory and in a lone
job's format (sweeper/training/checkpoint.py), so that a stopped group continues at its next epoch,
fused or alone, and a job stopped alone continues in a group.

A lone job's state is a checkpoint of its compiled Keras model and optimizer. For each copy this
module fills such a model, compiled with that job's optimizer config (fit.compiled), with the copy's
rows of the fused variables: its weights, its optimizer slots (Keras' own slot lists, e.g. Adam's
`_momentums` and `_velocities`, matched by attribute and position), the optimizer's iteration
count and the job's learning rate; and saves it with checkpoint.save, beside that copy's counters.
Restoring goes the other way: checkpoint.restore into such a model, then into the copy's rows.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

import numpy as np

from sweeper.training import checkpoint, fit
from sweeper.training.tf import import_tensorflow

# The Keras optimizers' arguments a fused group's copies may differ in, one value per copy
# (fused_loop.optimizer_for); jobs that differ in any other argument train apart (fused_groups.fusion_key).
FUSED_ARGS = ("learning_rate", "momentum", "beta_1", "beta_2", "epsilon")
# The optimizers whose fused training is tested equal to each copy's alone (tests/test_fused.py);
# a job with another trains unfused (fused_groups.fusion_key).
FUSED_OPTIMIZERS = ("keras.optimizers.SGD", "keras.optimizers.Adam", "keras.optimizers.Adagrad",
                    "keras.optimizers.AdamW")
# Those that Keras' optimizers use otherwise than as a plain float.
LEARNING_RATE, MOMENTUM, EPSILON = "learning_rate", "momentum", "epsilon"

if TYPE_CHECKING:
    import keras
    import tensorflow as tf


def _slot_lists(optimizer: keras.optimizers.Optimizer) -> dict[str, list[tf.Variable]]:
    """A built Keras optimizer's slot variables by attribute, one per variable it updates, in the
    order it was built on (Adam: `_momentums`, `_velocities`; SGD with momentum: `momentums`;
    Adagrad: `_accumulators`). Empty lists (SGD without momentum) are left out."""
    own = {id(v) for v in optimizer.variables}
    count = len(optimizer._trainable_variables)
    return {name: list(value) for name, value in vars(optimizer).items()
            if name != "_variables" and isinstance(value, list) and len(value) == count and count
            and all(id(v) in own for v in value)}


def _layout(config: dict[str, Any]) -> str:
    """What shapes a lone optimizer's saved state: its class and options less the hyperparameters
    (the learning rate, a variable, is set before each save; the others are Python floats that a
    checkpoint does not hold), and whether SGD has momentum (it keeps momentum slots only then)."""
    options = {k: v for k, v in config.items() if k not in FUSED_ARGS and k != "name"}
    return json.dumps([options, bool(config.get(MOMENTUM))], sort_keys=True, default=str)


def _numpy(variable: Any) -> np.ndarray:
    """A copy of a TensorFlow or Keras variable's value."""
    return np.array(import_tensorflow().convert_to_tensor(variable).numpy())


class CopyStates:
    """Save and restore each copy's state in its job's directory, as a lone job's."""

    def __init__(self, make_model: Callable[[], keras.Model], optimizers: Sequence[dict[str, Any]],
                 job_dirs: Sequence[Path], weights: Sequence[tf.Variable],
                 updating: Sequence[tuple[keras.optimizers.Optimizer, list[tf.Variable]]]):
        """`weights`: the fused variables, one per weight of `make_model()`, the copy axis first;
        `updating`: their (fused optimizer, its variables) pairs (sweeper/training/fused_loop.py)."""
        self.make_model, self.optimizers, self.job_dirs = make_model, list(optimizers), list(job_dirs)
        self.weights = list(weights)
        self.updating = list(updating)
        # weight j: its fused optimizer and its place among that optimizer's variables
        self.placement = [next((optimizer, [v is w for v in variables].index(True))
                               for optimizer, variables in updating if any(v is w for v in variables))
                          for w in weights]
        self.lone: dict[str, keras.Model] = {}    # one lone model per optimizer layout, built when first needed
        self.managers: dict[int, Any] = {}        # copy -> its CheckpointManager

    def _model(self, copy: int) -> keras.Model:
        """A lone job's compiled model with copy `copy`'s optimizer (shared by the copies of one
        layout), its learning rate set to that copy's."""
        config = self.optimizers[copy]
        key = _layout(config)
        if key not in self.lone:
            model = fit.compiled(self.make_model, config, fit.CROSS_ENTROPY, [fit.ACCURACY])
            model.optimizer.build(model.trainable_variables)
            self.lone[key] = model
        model = self.lone[key]
        model.optimizer.learning_rate = float(config[LEARNING_RATE])
        return model

    def _pairs(self, model: keras.Model) -> Iterable[tuple[Any, Any]]:
        """(lone variable, fused variable holding every copy's, copy axis first) for each weight and
        each slot of the lone model's optimizer."""
        lone_slots = _slot_lists(model.optimizer)
        for j, (mine, together) in enumerate(zip(model.trainable_variables, self.weights)):
            yield mine, together
            optimizer, position = self.placement[j]
            fused_slots = _slot_lists(optimizer)
            for name, variables in lone_slots.items():
                yield variables[j], fused_slots[name][position]

    def _iterations(self) -> Any:
        return self.updating[0][0].iterations

    def save(self, epochs: int, copies: Iterable[int], counters: Sequence[dict[str, Any]]) -> None:
        """After `epochs` finished epochs: the state of each of `copies` (their `counters` beside it)."""
        arrays: dict[int, np.ndarray] = {}
        iterations = int(_numpy(self._iterations()))
        for copy in copies:
            model = self._model(copy)
            for mine, together in self._pairs(model):
                if id(together) not in arrays:
                    arrays[id(together)] = _numpy(together)
                mine.assign(np.reshape(arrays[id(together)][copy], mine.shape))
            model.optimizer.iterations.assign(iterations)
            if copy not in self.managers:
                self.managers[copy] = checkpoint.manager(self.job_dirs[copy], model)
            checkpoint.save(self.managers[copy], self.job_dirs[copy], epochs, counters[copy])

    def restore(self) -> tuple[int, list[dict[str, Any] | None]]:
        """Load each copy's saved state into its rows. Returns (the epochs done, each copy's saved
        counters), or (0, [None, ...]) where none was saved. The copies of a group saved the same
        number of epochs (sweeper/job/fused_groups.py plans them so)."""
        done = {checkpoint.saved_epoch(d) for d in self.job_dirs}
        if done == {0}:
            return 0, [None] * len(self.job_dirs)
        if len(done) > 1:
            raise ValueError(f"the copies of a fused group saved different epochs ({sorted(done)}): "
                             "each job must be run again on its own")
        arrays: dict[int, tuple[Any, np.ndarray]] = {}
        saved = []
        for copy, job_dir in enumerate(self.job_dirs):
            model = self._model(copy)
            _, counters = checkpoint.restore(job_dir, model)
            saved.append(counters)
            for mine, together in self._pairs(model):
                if id(together) not in arrays:
                    arrays[id(together)] = (together, _numpy(together))
                arrays[id(together)][1][copy] = np.reshape(_numpy(mine), -1)
            iterations = int(_numpy(model.optimizer.iterations))
        for together, values in arrays.values():
            together.assign(values)
        for optimizer, _ in self.updating:
            optimizer.iterations.assign(iterations)
        return done.pop(), saved
