"""CIFAR-10 python-version batches, written here in the published format, read channels-last."""

import pickle
import tarfile

import numpy as np
import pytest

from memae_tf.data import load_cifar10
from memae_tf.data.cifar10 import TEST_BATCH, TRAIN_BATCHES

PER_BATCH = 2


def batch_data(batch: int) -> np.ndarray:
    """Row i of batch b: pixel (r, c) of channel ch holds (b + i + r + 2c + 5ch) mod 256."""
    i, ch, r, c = np.meshgrid(
        np.arange(PER_BATCH), np.arange(3), np.arange(32), np.arange(32), indexing="ij"
    )
    # Flattening (i, ch, r, c) gives the published layout: 1024 red, 1024 green, 1024 blue
    # values per image, each channel row-major.
    return ((batch + i + r + 2 * c + 5 * ch) % 256).astype(np.uint8).reshape(PER_BATCH, 3072)


def write_batches(folder):
    folder.mkdir(parents=True)
    for b, name in enumerate((*TRAIN_BATCHES, TEST_BATCH)):
        content = {b"batch_label": b"batch", b"labels": [b, 9 - b], b"data": batch_data(b)}
        (folder / name).write_bytes(pickle.dumps(content, protocol=2))


def expected_pixel(batch, i, r, c, ch):
    return (batch + i + r + 2 * c + 5 * ch) % 256


def test_batches_folder_gives_channels_last_images(tmp_path):
    write_batches(tmp_path / "cifar-10-batches-py")
    (x_train, y_train), (x_test, y_test) = load_cifar10(
        tmp_path / "cifar-10-batches-py", download=False
    )
    assert x_train.shape == (5 * PER_BATCH, 32, 32, 3) and x_train.dtype == np.uint8
    assert x_test.shape == (PER_BATCH, 32, 32, 3)
    # Image 1 of data_batch_3 is training image 2 * 2 + 1 = 5.
    assert x_train[5, 7, 11, 2] == expected_pixel(2, 1, 7, 11, 2)
    assert x_train[0, 31, 0, 1] == expected_pixel(0, 0, 31, 0, 1)
    assert x_test[1, 3, 4, 0] == expected_pixel(5, 1, 3, 4, 0)
    np.testing.assert_array_equal(y_train, [0, 9, 1, 8, 2, 7, 3, 6, 4, 5])
    np.testing.assert_array_equal(y_test, [5, 4])
    assert y_train.dtype == np.int64 and y_train.ndim == 1


def test_tar_archive_gives_same_arrays_as_folder(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    write_batches(folder)
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname="cifar-10-batches-py")
    (xa_train, ya_train), (xa_test, ya_test) = load_cifar10(archive)
    (x_train, y_train), (x_test, y_test) = load_cifar10(folder)
    np.testing.assert_array_equal(xa_train, x_train)
    np.testing.assert_array_equal(ya_train, y_train)
    np.testing.assert_array_equal(xa_test, x_test)
    np.testing.assert_array_equal(ya_test, y_test)


def test_malformed_batch_is_rejected(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    write_batches(folder)
    bad = {b"labels": [0], b"data": np.zeros((1, 100), np.uint8)}
    (folder / "data_batch_2").write_bytes(pickle.dumps(bad))
    with pytest.raises(ValueError, match=r"data_batch_2.*\(n, 3072\)"):
        load_cifar10(folder)
