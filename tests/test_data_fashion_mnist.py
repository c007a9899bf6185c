"""Fashion-MNIST from an IDX folder, the Keras cache layout, and the Debian package."""

import numpy as np
import pytest
from test_data_idx import write_idx_dataset

from memae_tf.data import DatasetNotFoundError, load_fashion_mnist
from memae_tf.data.fashion_mnist import DEBIAN_DIR
from memae_tf.data.sources import DATA_DIR_ENV


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    return tmp_path / "home"


def small_dataset(folder):
    x = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    write_idx_dataset(folder, x, np.array([9, 0]), x[::-1], np.array([5, 7]))
    return x


def test_explicit_folder_is_read(tmp_path):
    x = small_dataset(tmp_path / "fm")
    (x_train, y_train), (x_test, y_test) = load_fashion_mnist(tmp_path / "fm", download=False)
    np.testing.assert_array_equal(x_train, x)
    np.testing.assert_array_equal(x_test, x[::-1])
    np.testing.assert_array_equal(y_train, [9, 0])
    assert y_test.dtype == np.int64


def test_keras_cache_folder_is_found(home):
    x = small_dataset(home / ".keras" / "datasets" / "fashion-mnist")
    (x_train, _), _ = load_fashion_mnist(download=False)
    np.testing.assert_array_equal(x_train, x)


def test_missing_everywhere_names_debian_folder(home, monkeypatch):
    monkeypatch.setattr("memae_tf.data.fashion_mnist.DEBIAN_DIR", home / "absent")
    with pytest.raises(DatasetNotFoundError, match="dataset-fashion-mnist"):
        load_fashion_mnist(download=False)


@pytest.mark.skipif(not DEBIAN_DIR.is_dir(), reason="Debian dataset-fashion-mnist not installed")
def test_debian_package_copy_matches_published_fashion_mnist(home):
    (x_train, y_train), (x_test, y_test) = load_fashion_mnist(download=False)
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert x_train.dtype == np.uint8
    # Published facts: first labels of each split, and 6000 / 1000 images per class.
    np.testing.assert_array_equal(y_train[:10], [9, 0, 0, 3, 0, 2, 7, 2, 5, 5])
    np.testing.assert_array_equal(y_test[:10], [9, 2, 1, 1, 6, 1, 4, 6, 5, 7])
    np.testing.assert_array_equal(np.bincount(y_train), [6000] * 10)
    np.testing.assert_array_equal(np.bincount(y_test), [1000] * 10)
