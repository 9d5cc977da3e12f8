"""MNIST for exercises 2 and 3: the four IDX files, read and checked with NumPy.

conf/data/mnist.yaml names `load` as its loader and `check` as its check: a task whose `run` node
takes `data: ${data}` (softmax.py, cnn.py) gets the `Splits` that `load` returns, and trains on them
with sweeper/training/fit.py. Loading needs NumPy only, and comes first: a data error is reported
before TensorFlow starts.
"""
from __future__ import annotations

import functools
import gzip
import math
import zlib
from pathlib import Path
from typing import NamedTuple

import numpy as np

from sweeper.training.tf import import_keras

FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
FIX = "set data.dir=DIR or MNIST_DIR to a directory holding the four MNIST IDX files (raw or .gz)"
IMAGE_SHAPE = (28, 28)
CLASSES = 10


class DataError(ValueError):
    """MNIST cannot be read; the message is one line naming the file or the cause, and the fix."""


class Splits(NamedTuple):
    """MNIST as NumPy arrays: uint8 images (N, 28, 28) and uint8 labels (N,)."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray

    @property
    def train(self) -> tuple[np.ndarray, np.ndarray]:
        """The training set as sweeper.train takes it: (images, labels)."""
        return self.train_images, self.train_labels

    @property
    def test(self) -> tuple[np.ndarray, np.ndarray]:
        return self.test_images, self.test_labels


# ---- IDX files -------------------------------------------------------------------------------

def _read_bytes(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path) as f:
                return f.read()
        return path.read_bytes()
    except (OSError, EOFError, zlib.error) as e:  # gzip.BadGzipFile is an OSError
        reason = "truncated" if isinstance(e, EOFError) else str(e).strip() or type(e).__name__
        raise DataError(f"{path}: cannot be read ({reason}): {FIX}") from None


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """An IDX file of unsigned bytes with `ndim` dimensions (raw or gzip) as a uint8 array.

    Checks the magic number (0x0000 08 ndim), that the data is exactly as long as the dimensions
    say, and raises DataError naming the file otherwise.
    """
    raw = _read_bytes(path)
    header = 4 + 4 * ndim
    expected_magic = 0x0800 | ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated: {len(raw)} bytes, shorter than an IDX header: {FIX}")
    magic = int.from_bytes(raw[:4], "big")
    if magic != expected_magic:
        raise DataError(f"{path}: wrong magic number 0x{magic:08x}, expected 0x{expected_magic:08x} "
                        f"(unsigned bytes, {ndim} dimensions): {FIX}")
    dims = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    size = math.prod(dims)
    if len(raw) - header != size:
        problem = "truncated" if len(raw) - header < size else "too long"
        raise DataError(f"{path}: {problem}: {len(raw) - header} data bytes for dimensions "
                        f"{'x'.join(map(str, dims))} ({size} bytes): {FIX}")
    return np.frombuffer(raw, np.uint8, offset=header).reshape(dims)


def _find(directory: Path, name: str) -> Path:
    for candidate in (directory / name, directory / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    raise DataError(f"{directory / name}(.gz): no such file: {FIX}")


def _pair(directory: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    images_path = _find(directory, FILES[f"{split}_images"])
    labels_path = _find(directory, FILES[f"{split}_labels"])
    images, labels = read_idx(images_path, 3), read_idx(labels_path, 1)
    if images.shape[1:] != IMAGE_SHAPE:
        raise DataError(f"{images_path}: images are {images.shape[1]}x{images.shape[2]}, not 28x28: {FIX}")
    if len(images) != len(labels):
        raise DataError(f"{images_path} has {len(images)} images but {labels_path} has "
                        f"{len(labels)} labels: {FIX}")
    if labels.size and labels.max() >= CLASSES:
        raise DataError(f"{labels_path}: a label is {labels.max()}, not a digit 0-9: {FIX}")
    return images, labels


@functools.cache
def _load_directory(directory: Path) -> Splits:
    if not directory.is_dir():
        problem = "not a directory" if directory.exists() else "no such directory"
        raise DataError(f"{directory}: {problem}: {FIX}")
    return Splits(*_pair(directory, "train"), *_pair(directory, "test"))


@functools.cache
def _load_keras() -> Splits:
    """The Keras copy, downloaded once into ~/.keras/datasets (or $KERAS_HOME)."""
    keras = import_keras()

    try:
        (train_images, train_labels), (test_images, test_labels) = keras.datasets.mnist.load_data()
    except Exception as e:  # Keras raises a bare Exception for a failed download
        lines = [line.strip() for line in str(e).splitlines() if line.strip()]
        raise DataError(f"no data.dir and the download failed ({lines[-1] if lines else type(e).__name__}): "
                        f"{FIX}") from None
    return Splits(train_images, train_labels, test_images, test_labels)


def _keras_copy() -> Path:
    """Where Keras keeps its downloaded copy (keras.utils.get_file: $KERAS_HOME or ~/.keras)."""
    import os

    return Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras") / "datasets" / "mnist.npz"


def check(dir: str | None = None) -> None:
    """Raise DataError (one line) when `load(dir)` could not read the data: the files of `dir`
    read and checked (once per process: a sweep in this process reuses them), or, without a dir,
    Keras' copy there or downloaded now."""
    if dir:
        _load_directory(Path(dir).expanduser().resolve())
    elif not _keras_copy().is_file():
        import contextlib
        import io

        with contextlib.redirect_stdout(io.StringIO()):  # Keras' "Downloading data from ...": the error says it
            _load_keras()


def _first(count: int | None, images: np.ndarray, labels: np.ndarray, key: str) -> tuple[np.ndarray, np.ndarray]:
    if count is None:
        return images, labels
    if not 0 < count <= len(images):
        raise DataError(f"data.{key}={count} is invalid: this set has {len(images)} images; "
                        f"give 1..{len(images)} or null for all")
    return images[:count], labels[:count]


def load(dir: str | None = None, train_samples: int | None = None, test_samples: int | None = None) -> Splits:
    """MNIST from `dir` (the four IDX files, raw or .gz), or from Keras when `dir` is null.

    The keyword arguments are the config's `data` node. Files are read once per process (an
    in-process sweep shares them); `train_samples`/`test_samples` take the first N of each set.
    """
    splits = _load_directory(Path(dir).expanduser().resolve()) if dir else _load_keras()
    train = _first(train_samples, splits.train_images, splits.train_labels, "train_samples")
    test = _first(test_samples, splits.test_images, splits.test_labels, "test_samples")
    return Splits(*train, *test)
