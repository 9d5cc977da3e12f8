"""Exercise 3: the course's convolutional network on MNIST; exercise 4: the same on N GPUs."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweeper.job.outcome import Outcome
from sweeper.training import devices as replica_devices
from sweeper.training import fit
from tasks import mnist

if TYPE_CHECKING:
    import keras

INPUT_SHAPE = (28, 28, 1)


def make_model() -> keras.Model:
    """Conv 5x5x32, pool, conv 5x5x64, pool, dense 1024, dropout 0.5, softmax 10: 3,274,634 weights."""
    import keras  # here, so that a data error is reported before TensorFlow starts
    from keras import layers

    return keras.Sequential([
        keras.Input(INPUT_SHAPE),
        layers.Conv2D(32, 5, padding="same", activation="relu"),
        layers.MaxPooling2D(2, padding="same"),
        layers.Conv2D(64, 5, padding="same", activation="relu"),
        layers.MaxPooling2D(2, padding="same"),
        layers.Flatten(),
        layers.Dense(1024, activation="relu"),
        layers.Dropout(0.5),
        layers.Dense(10, activation="softmax"),
    ])


def run(*, optimizer: dict[str, Any], data: dict[str, Any], batch_size: int, epochs: int, seed: int,
        gpus: int = 0, devices: str = "gpu", logging: dict[str, Any] | None = None,
        job_dir: Path | None = None) -> Outcome:
    """Train on MNIST (the `data` node) with `batch_size` images per replica on `gpus` devices."""
    splits = mnist.load(**data)
    replicas = replica_devices.strategy(gpus, devices)
    outcome, _ = fit.train(make_model, splits, optimizer=optimizer, batch_size=batch_size, epochs=epochs,
                             seed=seed, input_shape=INPUT_SHAPE, strategy=replicas, job_dir=job_dir,
                             logging=logging)
    outcome.metrics.update(replicas=replicas.num_replicas_in_sync, devices=replica_devices.device_names(replicas))
    return outcome
