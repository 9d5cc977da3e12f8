"""Reading MNIST's IDX files: good files raw and gzipped, and every kind of broken one."""
from __future__ import annotations

import gzip
import os

import numpy as np
import pytest

from tasks import mnist
from tasks.mnist import FILES, DataError
from tests.conftest import run_cli
from tests.mnist_files import digits, idx_bytes, real_mnist_dir, write_idx, write_mnist

FIX = "set data.dir=DIR or MNIST_DIR"


@pytest.fixture
def mnist_dir(tmp_path):
    return write_mnist(tmp_path / "mnist", train=30, test=20)


def test_raw_and_gzipped_files_read_alike(tmp_path):
    raw = mnist.load(str(write_mnist(tmp_path / "raw", train=30, test=20, gz=False)))
    packed = mnist.load(str(write_mnist(tmp_path / "gz", train=30, test=20, gz=True)))
    images, labels = digits(30, seed=1)
    for splits in (raw, packed):
        assert splits.train_images.shape == (30, 28, 28) and splits.train_images.dtype == np.uint8
        assert splits.test_images.shape == (20, 28, 28) and splits.test_labels.shape == (20,)
        np.testing.assert_array_equal(splits.train_images, images)
        np.testing.assert_array_equal(splits.train_labels, labels)


def test_raw_file_wins_over_gz_and_the_two_can_mix(mnist_dir):
    images, _ = digits(30, seed=1)
    write_idx(mnist_dir / FILES["train_images"], images[::-1])  # a raw copy beside the .gz, reversed
    np.testing.assert_array_equal(mnist.load(str(mnist_dir)).train_images, images[::-1])


def test_subsets_take_the_first_images_and_files_are_read_once(mnist_dir):
    full = mnist.load(str(mnist_dir))
    part = mnist.load(str(mnist_dir), train_samples=7, test_samples=3)
    assert np.shares_memory(part.train_images, full.train_images)  # the same arrays: read once
    assert len(part.train_images) == 7 and len(part.test_labels) == 3
    np.testing.assert_array_equal(part.train_labels, full.train_labels[:7])
    assert np.shares_memory(part.train_images, full.train_images)  # a view: no copy per job


@pytest.mark.parametrize("key,count", [("train_samples", 31), ("test_samples", 21), ("train_samples", 0)])
def test_more_samples_than_the_set_has_is_an_error(mnist_dir, key, count):
    with pytest.raises(DataError, match=f"data.{key}={count} is invalid: this set has"):
        mnist.load(str(mnist_dir), **{key: count})


def _break(directory, name, how):
    """Damage one file of a good MNIST directory the way `how` says; return the file's path."""
    path = directory / f"{FILES[name]}.gz"
    data = gzip.decompress(path.read_bytes())
    images, labels = digits(30, seed=1)
    if how == "missing":
        path.unlink()
    elif how == "truncated":
        path.write_bytes(gzip.compress(data[:-5]))
    elif how == "too long":
        path.write_bytes(gzip.compress(data + b"\0"))
    elif how == "truncated gz":
        path.write_bytes(path.read_bytes()[:-40])
    elif how == "not gzip":
        path.write_bytes(data)  # raw bytes under a .gz name
    elif how == "header cut":
        path.write_bytes(gzip.compress(data[:6]))
    elif how == "wrong magic":
        path.write_bytes(gzip.compress(idx_bytes(labels)))  # a labels file where images belong
    elif how == "count mismatch":
        path.write_bytes(gzip.compress(idx_bytes(labels[:-1])))
    elif how == "not 28x28":
        path.write_bytes(gzip.compress(idx_bytes(images[:, :27, :])))
    elif how == "bad label":
        path.write_bytes(gzip.compress(idx_bytes(np.where(labels == 3, 12, labels))))
    return path


@pytest.mark.parametrize(
    "name,how,message",
    [
        ("test_labels", "missing", r"t10k-labels-idx1-ubyte\(.gz\): no such file"),
        ("train_images", "truncated", "train-images-idx3-ubyte.gz: truncated: 23515 data bytes for dimensions 30x28x28"),
        ("train_images", "too long", "train-images-idx3-ubyte.gz: too long: 23521 data bytes"),
        ("train_images", "truncated gz", r"train-images-idx3-ubyte.gz: cannot be read \(truncated\)"),
        ("test_images", "not gzip", r"t10k-images-idx3-ubyte.gz: cannot be read \(Not a gzipped file"),
        ("train_labels", "header cut", "train-labels-idx1-ubyte.gz: truncated: 6 bytes, shorter than an IDX header"),
        ("train_images", "wrong magic", "train-images-idx3-ubyte.gz: wrong magic number 0x00000801, expected 0x00000803"),
        ("train_labels", "count mismatch", "train-images-idx3-ubyte.gz has 30 images but .*train-labels-idx1-ubyte.gz has 29 labels"),
        ("train_images", "not 28x28", "train-images-idx3-ubyte.gz: images are 27x28, not 28x28"),
        ("train_labels", "bad label", "train-labels-idx1-ubyte.gz: a label is 12, not a digit 0-9"),
    ],
)
def test_broken_files_raise_one_line_naming_the_file_and_the_fix(mnist_dir, name, how, message):
    _break(mnist_dir, name, how)
    with pytest.raises(DataError, match=message) as error:
        mnist.load(str(mnist_dir))
    assert str(mnist_dir) in str(error.value) and FIX in str(error.value)
    assert "\n" not in str(error.value)


def test_missing_directory_or_a_file_instead(tmp_path):
    with pytest.raises(DataError, match=f"{tmp_path / 'nowhere'}: no such directory: {FIX}"):
        mnist.load(str(tmp_path / "nowhere"))
    (tmp_path / "file").write_text("")
    with pytest.raises(DataError, match=f"{tmp_path / 'file'}: not a directory: {FIX}"):
        mnist.load(str(tmp_path / "file"))


def test_bad_data_dir_on_the_command_line_is_one_line(tmp_path):
    result = run_cli("run.py", "task=softmax", f"data.dir={tmp_path}/nowhere", f"hydra.run.dir={tmp_path}/run")
    assert result.returncode == 1
    assert result.stdout.strip().splitlines() == [
        f"task=softmax -> failed DataError: {tmp_path}/nowhere: no such "
        f"directory: {FIX} to a directory holding the four MNIST IDX files (raw or .gz)",
        f"run directory: {tmp_path}/run"]
    assert result.stderr.strip() == ""  # TensorFlow has not even started
    assert "Traceback" in (tmp_path / "run" / "error.txt").read_text()


@pytest.mark.slow
def test_no_data_dir_and_no_network_is_one_line(tmp_path):
    # Keras would download; a proxy that refuses connections makes that fail here and everywhere.
    env = {k: v for k, v in os.environ.items() if k not in ("MNIST_DIR", "no_proxy", "NO_PROXY")}
    env.update(KERAS_HOME=str(tmp_path / "keras"), https_proxy="http://127.0.0.1:9", HTTPS_PROXY="http://127.0.0.1:9")
    result = run_cli("run.py", "task=softmax", f"hydra.run.dir={tmp_path}/run", env=env)
    assert result.returncode == 1
    last, where = result.stdout.strip().splitlines()[-2:]
    assert where == f"run directory: {tmp_path}/run"
    assert last.startswith("task=softmax -> failed DataError: no data.dir and "
                           "the download failed (")
    assert last.endswith(f"{FIX} to a directory holding the four MNIST IDX files (raw or .gz)")
    assert "Traceback" not in result.stderr


@pytest.mark.mnist
def test_the_real_mnist():
    splits = mnist.load(str(real_mnist_dir()))
    assert [len(a) for a in splits] == [60000, 60000, 10000, 10000]
    assert np.bincount(splits.train_labels).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert np.bincount(splits.test_labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
