"""Exercise 3: the course's convolutional network on MNIST; exercise 4: the same on N GPUs, and on
several nodes (one worker per Slurm task: sweeper/training/workers.py)."""
from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweeper.outcome import Outcome
from sweeper.trial import Reporter
from sweeper.training import devices as replica_devices
from sweeper.training import fit, fused_loop, worker_loop, workers as slurm_workers
from sweeper.training.tf import import_keras, import_tensorflow
from tasks import mnist

if TYPE_CHECKING:
    import keras

    from sweeper.training.workers import Workers

INPUT_SHAPE = (28, 28, 1)


def make_model(dropout: float = 0.5) -> keras.Model:
    """Conv 5x5x32, pool, conv 5x5x64, pool, dense 1024, dropout 0.5, softmax 10: 3,274,634 weights.
    `dropout`: the course's 0.5; 0 makes a step draw no random numbers (tests compare fused runs so)."""
    keras = import_keras()  # here, so that a data error is reported before TensorFlow starts
    layers = keras.layers

    return keras.Sequential([
        keras.Input(INPUT_SHAPE),
        layers.Conv2D(32, 5, padding="same", activation="relu"),
        layers.MaxPooling2D(2, padding="same"),
        layers.Conv2D(64, 5, padding="same", activation="relu"),
        layers.MaxPooling2D(2, padding="same"),
        layers.Flatten(),
        layers.Dense(1024, activation="relu"),
        layers.Dropout(dropout),
        layers.Dense(10, activation="softmax"),
    ])


def run(*, optimizer: dict[str, Any], data: mnist.Splits, batch_size: int, epochs: int, seed: int,
        gpus: int = 0, devices: str = "gpu", nodes: int = 1, logging: dict[str, Any] | None = None,
        job_dir: Path | None = None, dropout: float = 0.5, trial: Reporter | None = None,
        progress: str | None = None, workers: Workers | None = None) -> Outcome:
    """Train on MNIST (`data`: tasks.mnist.load's) with `batch_size` images per replica on `gpus` devices.
    `dropout` is not in conf/task/cnn.yaml (a job's fingerprint stays): `+task.run.dropout=0`.
    `workers`: this process's place among the Slurm tasks of a job over several (the framework's):
    every task trains, data-parallel (`nodes`: how many nodes the job asked for)."""
    if workers is not None:
        return _run_on_workers(workers, optimizer=optimizer, data=data, batch_size=batch_size, epochs=epochs,
                               seed=seed, gpus=gpus, devices=devices, logging=logging, job_dir=job_dir,
                               dropout=dropout, progress=progress)
    if nodes > 1:
        raise replica_devices.DeviceError(f"nodes={nodes} but this process is the only task of its job: "
                                          "run it with -m hydra/launcher=slurm")
    replicas = replica_devices.strategy(gpus, devices)
    outcome, _ = fit.train(functools.partial(make_model, dropout), data.train, data.test, optimizer=optimizer,
                           loss=fit.CROSS_ENTROPY, metrics=[fit.ACCURACY], prepare=fit.images(INPUT_SHAPE),
                           batch_size=batch_size, epochs=epochs, seed=seed, strategy=replicas, job_dir=job_dir,
                           trial=trial, logging=logging, progress=progress)
    outcome.metrics.update(replicas=replicas.num_replicas_in_sync, devices=replica_devices.device_names(replicas))
    return outcome


def _run_on_workers(workers: Workers, *, optimizer: dict[str, Any], data: mnist.Splits, batch_size: int,
                    epochs: int, seed: int, gpus: int, devices: str, logging: dict[str, Any] | None,
                    job_dir: Path | None, dropout: float, progress: str | None) -> Outcome:
    """`run` as one worker of several; each prints its final weights' checksum (equal on every worker)."""
    replicas = slurm_workers.strategy(workers, gpus, devices)  # before TensorFlow runs anything else
    outcome, model = worker_loop.train(functools.partial(make_model, dropout), data.train, data.test, optimizer=optimizer,
                                       batch_size=batch_size, epochs=epochs, seed=seed, input_shape=INPUT_SHAPE,
                                       strategy=replicas, workers=workers, job_dir=job_dir, logging=logging,
                                       progress=progress)
    print(f"{workers.name(workers.rank)}: final weights sha256 {worker_loop.checksum(model)}", flush=True)
    outcome.metrics.update(workers=workers.count, nodes=workers.nodes, replicas=replicas.num_replicas_in_sync,
                           devices=replica_devices.device_names(replicas))
    return outcome


def fused_logits(weights: list[Any], x: Any, training: bool = False, seed: Any = None, dropout: float = 0.5) -> Any:
    """Every copy's logits at once, [N, B, 10], the HFTA way: the first convolution is one
    convolution with N x 32 filters over the shared images; the second is one grouped convolution
    (N groups of 32 input channels, tf.nn.conv2d infers the groups from the filter's depth); the
    dense layers are batched matmuls (tf.matmul, whose gradient is two more batched matmuls: an
    einsum's went through transposes and made the fused step a third slower here). Each copy draws
    its own dropout mask, from `seed` (the step's: fused_loop.Forward), so that a group continued
    from its saved state draws the masks it would have drawn without the stop."""
    tf = import_tensorflow()
    k1, b1, k2, b2, k3, b3, k4, b4 = weights
    n = k1.shape[0]

    def side_by_side(kernel: Any) -> Any:  # [N, h, w, in, out] -> [h, w, in, N * out], copy-major
        h, w, depth, out = kernel.shape[1:]
        return tf.reshape(tf.transpose(kernel, [1, 2, 3, 0, 4]), [h, w, depth, n * out])

    h = tf.nn.relu(tf.nn.conv2d(x, side_by_side(k1), 1, "SAME") + tf.reshape(b1, [-1]))
    h = tf.nn.max_pool2d(h, 2, 2, "SAME")
    h = tf.nn.relu(tf.nn.conv2d(h, side_by_side(k2), 1, "SAME") + tf.reshape(b2, [-1]))
    h = tf.nn.max_pool2d(h, 2, 2, "SAME")                      # [B, 7, 7, N * 64]
    rows, cols, depth = h.shape[1], h.shape[2], k2.shape[-1]
    h = tf.reshape(h, [-1, rows, cols, n, depth])
    h = tf.reshape(tf.transpose(h, [3, 0, 1, 2, 4]), [n, -1, rows * cols * depth])  # Keras' Flatten per copy
    h = tf.nn.relu(tf.matmul(h, k3) + b3[:, None, :])
    if training and dropout:
        h = tf.nn.experimental.stateless_dropout(h, dropout, seed=seed)
    return tf.matmul(h, k4) + b4[:, None, :]


def run_fused(*, optimizers: list[dict[str, Any]], data: mnist.Splits, batch_size: int, epochs: int, seed: int,
              gpus: int = 0, devices: str = "gpu", nodes: int = 1, logging: dict[str, Any] | None = None,
              job_dirs: list[Path] | None = None, dropout: float = 0.5,
              progress: str | None = None) -> list[Outcome]:
    """`run` for each optimizer config (one family) on one device, trained as one computation
    (sweeper.training.fused_loop); jobs on several devices are not fused (sweeper/job/fused_groups.py),
    nor jobs over several nodes (`nodes` is 1 here: those run only in a Slurm job of their own)."""
    if nodes != 1:
        raise ValueError(f"nodes={nodes}: a fused group trains on one device")
    one = replica_devices.strategy(0, devices)
    outcomes = fused_loop.train(functools.partial(make_model, dropout),
                           functools.partial(fused_logits, dropout=dropout), data.train, data.test, optimizers=optimizers,
                           batch_size=batch_size, epochs=epochs, seed=seed, input_shape=INPUT_SHAPE,
                           job_dirs=job_dirs, logging=logging, progress=progress)
    for outcome in outcomes:
        outcome.metrics.update(replicas=1, devices=replica_devices.device_names(one))
    return outcomes
