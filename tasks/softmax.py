"""Exercise 2: softmax regression on MNIST, one dense layer 784 -> 10 starting at zero."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweeper.outcome import Outcome
from sweeper.trial import Reporter
from sweeper.training import fit, fused_loop
from sweeper.training.tf import import_keras, import_tensorflow
from tasks import mnist

if TYPE_CHECKING:
    import keras

INPUT_SHAPE = (784,)  # the course's flat images


def make_model() -> keras.Model:
    """y = softmax(x W + b), W and b zero to start, as in the course."""
    keras = import_keras()  # here, so that a data error is reported before TensorFlow starts
    return keras.Sequential([
        keras.Input(INPUT_SHAPE),
        keras.layers.Dense(10, activation="softmax", kernel_initializer="zeros", bias_initializer="zeros"),
    ])


def run(*, optimizer: dict[str, Any], data: mnist.Splits, batch_size: int, epochs: int, seed: int,
        logging: dict[str, Any] | None = None, job_dir: Path | None = None, trial: Reporter | None = None,
        progress: str | None = None) -> Outcome:
    """Train on MNIST (`data`: what the data node's loader, tasks.mnist.load, returned) with
    cross-entropy, its accuracy measured."""
    outcome, _ = fit.train(make_model, data.train, data.test, optimizer=optimizer, loss=fit.CROSS_ENTROPY,
                           metrics=[fit.ACCURACY], prepare=fit.images(INPUT_SHAPE), batch_size=batch_size,
                           epochs=epochs, seed=seed, job_dir=job_dir, logging=logging, trial=trial,
                           progress=progress)
    return outcome


def fused_logits(weights: list[Any], x: Any, training: bool = False, seed: Any = None) -> Any:
    """Every copy's logits at once, [N, B, 10]: one einsum (a batched matmul) over the copies'
    kernels [N, 784, 10] and biases [N, 10], the Dense layer's `x W + b` without its softmax
    (nothing random: `seed` unused)."""
    tf = import_tensorflow()
    kernel, bias = weights
    return tf.einsum("bi,nio->nbo", x, kernel) + bias[:, None, :]


def run_fused(*, optimizers: list[dict[str, Any]], data: mnist.Splits, batch_size: int, epochs: int, seed: int,
              logging: dict[str, Any] | None = None, job_dirs: list[Path] | None = None,
              progress: str | None = None) -> list[Outcome]:
    """`run` for each optimizer config (one family), trained as one computation (sweeper.training.fused_loop)."""
    return fused_loop.train(make_model, fused_logits, data.train, data.test, optimizers=optimizers, batch_size=batch_size,
                       epochs=epochs, seed=seed, input_shape=INPUT_SHAPE, job_dirs=job_dirs, logging=logging,
                       progress=progress)
