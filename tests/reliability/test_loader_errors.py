"""Loaders refuse missing, truncated and mis-shaped files with messages naming file and problem."""

import gzip
import pickle
import struct

import numpy as np
import pytest

from memae_tf.cli import load_split
from memae_tf.data.idx import read_idx, read_idx_dataset
from memae_tf.data.pickles import load_pickle
from memae_tf.data.tabular import read_table


def _idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", n)
                                                       for n in array.shape)
    return header + array.astype(">u1").tobytes()


def _mnist_folder(folder, train_labels=5, label_shape=None):
    images = np.zeros((5, 4, 4), np.uint8)
    labels = np.zeros(label_shape or (train_labels,), np.uint8)
    for stem, array in (("train-images-idx3-ubyte", images), ("train-labels-idx1-ubyte", labels),
                        ("t10k-images-idx3-ubyte", images),
                        ("t10k-labels-idx1-ubyte", np.zeros(5, np.uint8))):
        (folder / f"{stem}.gz").write_bytes(gzip.compress(_idx_bytes(array)))
    return folder


def test_truncated_gzip_idx_file_is_named_as_truncated(tmp_path):
    path = tmp_path / "images.gz"
    path.write_bytes(gzip.compress(_idx_bytes(np.zeros((5, 4, 4), np.uint8)))[:30])
    with pytest.raises(ValueError, match=r"images\.gz: expected a complete gzip stream"):
        read_idx(path)


def test_file_named_gz_that_is_not_gzip_is_refused(tmp_path):
    path = tmp_path / "labels.gz"
    path.write_bytes(b"plain text")
    with pytest.raises(ValueError, match=r"labels\.gz: .*BadGzipFile"):
        read_idx(path)


def test_truncated_raw_idx_data_is_refused_with_expected_and_received_sizes(tmp_path):
    path = tmp_path / "images"
    path.write_bytes(_idx_bytes(np.zeros((5, 4, 4), np.uint8))[:-7])
    with pytest.raises(ValueError, match=r"expected 80 data bytes for shape .* Received: 73"):
        read_idx(path)


def test_missing_idx_file_names_the_file_expected(tmp_path):
    folder = _mnist_folder(tmp_path)
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError, match=r"expected t10k-labels-idx1-ubyte\.gz"):
        read_idx_dataset(folder)


def test_idx_labels_that_do_not_match_the_images_are_refused(tmp_path):
    with pytest.raises(ValueError, match="Received: 5 images, 4 labels"):
        read_idx_dataset(_mnist_folder(tmp_path, train_labels=4))


def test_idx_labels_of_the_wrong_rank_are_refused(tmp_path):
    with pytest.raises(ValueError, match=r"train-labels.*expected labels of rank 1"):
        read_idx_dataset(_mnist_folder(tmp_path, label_shape=(5, 2)))


def test_truncated_gzip_pickle_is_named(tmp_path):
    path = tmp_path / "mnist.pkl.gz"
    path.write_bytes(gzip.compress(pickle.dumps((np.arange(300), np.arange(300))))[:-40])
    with pytest.raises(ValueError, match=r"mnist\.pkl\.gz: expected a complete pickle"):
        load_pickle(path)


@pytest.mark.parametrize("content", [b"RDX2\nX\n" + b"\x00" * 10,
                                     gzip.compress(b"RDX2\nX\n" + b"\x00" * 100)[:40]],
                         ids=["truncated rda", "truncated gzip rda"])
def test_truncated_rda_file_is_named(tmp_path, content):
    path = tmp_path / "Shuttle.rda"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=r"Shuttle\.rda: could not be read as R data"):
        read_table(path)


def test_missing_table_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_table(tmp_path / "absent.csv")


@pytest.mark.parametrize("arrays, message", [
    ({"x_train": np.zeros((5, 3)), "y_train": np.zeros(4)},
     r"expected array 'y_train' to hold one label per sample of 'x_train', shape \(5,\)"),
    ({"x_train": np.array([["a", "b"]])}, r"'x_train' to hold numbers .* dtype=<U1"),
    ({"x_train": np.zeros(5)}, r"with a batch axis.*shape=\(5,\)"),
], ids=["labels do not match", "strings", "no batch axis"])
def test_array_file_with_wrong_dtype_shape_or_labels_is_refused(tmp_path, arrays, message):
    path = tmp_path / "data.npz"
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match=message):
        load_split(str(path), "train")


def test_truncated_array_file_is_named(tmp_path):
    path = tmp_path / "data.npz"
    np.savez(path, x_train=np.zeros((50, 3)))
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ValueError, match=r"data\.npz' could not be read as a numpy .npz file"):
        load_split(str(path), "train")
