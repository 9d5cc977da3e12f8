"""MNIST files for tests: tiny IDX files written on the spot, and the real data when present."""
from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import pytest

from tasks.mnist import FILES


def idx_bytes(array: np.ndarray) -> bytes:
    """An IDX file of unsigned bytes: magic 0x0000 08 ndim, the dimensions, the data."""
    header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    return header + np.ascontiguousarray(array, np.uint8).tobytes()


def write_idx(path: Path, array: np.ndarray) -> Path:
    """Write `array` as an IDX file, gzip-compressed when the name ends in .gz."""
    data = idx_bytes(array)
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


def digits(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Learnable stand-ins for MNIST: digit k is a bright 6x6 square in place k, over noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, count).astype(np.uint8)
    images = rng.integers(0, 60, (count, 28, 28)).astype(np.uint8)
    for image, label in zip(images, labels):
        row, col = (label // 5) * 14 + 4, (label % 5) * 5 + 2
        image[row:row + 6, col:col + 6] = 255
    return images, labels


def write_mnist(directory: Path, train: int = 300, test: int = 100, gz: bool = True) -> Path:
    """The four MNIST files, holding `train` and `test` synthetic digits."""
    directory.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    for split, count, seed in (("train", train, 1), ("test", test, 2)):
        images, labels = digits(count, seed)
        write_idx(directory / f"{FILES[split + '_images']}{suffix}", images)
        write_idx(directory / f"{FILES[split + '_labels']}{suffix}", labels)
    return directory


def real_mnist_dir() -> Path:
    """The real MNIST directory (MNIST_DIR); skips the test when it is absent, fails in CI."""
    directory = os.environ.get("MNIST_DIR")
    if directory and all(any((Path(directory) / f"{name}{s}").is_file() for s in ("", ".gz"))
                         for name in FILES.values()):
        return Path(directory)
    reason = f"real MNIST not found (MNIST_DIR={directory!r}): set MNIST_DIR to the four IDX files"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; CI must run this test")
    pytest.skip(reason)
