"""IDX files written byte by byte here are read back with their shape, type and values."""

import gzip
import struct

import numpy as np
import pytest

from memae_tf.data.idx import read_idx, read_idx_dataset


def idx_bytes(type_code: int, shape: tuple, payload: bytes) -> bytes:
    """An IDX file: magic 00 00 <type> <ndim>, big-endian uint32 sizes, then the payload."""
    return bytes([0, 0, type_code, len(shape)]) + struct.pack(f">{len(shape)}I", *shape) + payload


@pytest.mark.parametrize(
    ("type_code", "fmt", "values", "dtype"),
    [
        (0x08, "B", [0, 7, 128, 255], np.uint8),
        (0x09, "b", [-128, -1, 0, 127], np.int8),
        (0x0B, "h", [-32768, -2, 3, 32767], np.int16),
        (0x0C, "i", [-(2**31), -5, 6, 2**31 - 1], np.int32),
        (0x0D, "f", [-1.5, 0.0, 0.25, 3.0e38], np.float32),
        (0x0E, "d", [-2.5, 1e-300, 0.1, 1e300], np.float64),
    ],
)
def test_reads_every_idx_type_big_endian(tmp_path, type_code, fmt, values, dtype):
    path = tmp_path / "values.idx"
    path.write_bytes(idx_bytes(type_code, (2, 2), struct.pack(f">4{fmt}", *values)))
    array = read_idx(path)
    assert array.dtype == dtype
    assert array.dtype.isnative
    np.testing.assert_array_equal(array, np.array(values, dtype).reshape(2, 2))


def test_reads_gzip_compressed_file_with_three_dimensions(tmp_path):
    pixels = bytes(range(24))
    path = tmp_path / "images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(idx_bytes(0x08, (2, 3, 4), pixels)))
    array = read_idx(path)
    assert array.shape == (2, 3, 4)
    assert array[1, 2, 3] == 23 and array[0, 1, 0] == 4


def test_rejects_bad_magic_prefix(tmp_path):
    path = tmp_path / "bad.idx"
    path.write_bytes(b"\x01\x00\x08\x01" + struct.pack(">I", 1) + b"\x00")
    with pytest.raises(ValueError, match="magic number"):
        read_idx(path)


def test_rejects_unknown_type_code(tmp_path):
    path = tmp_path / "bad.idx"
    path.write_bytes(idx_bytes(0x0A, (1,), b"\x00"))
    with pytest.raises(ValueError, match="0x0A"):
        read_idx(path)


def test_rejects_data_size_not_matching_header(tmp_path):
    path = tmp_path / "short.idx"
    path.write_bytes(idx_bytes(0x08, (3, 2), b"\x00" * 5))
    with pytest.raises(ValueError, match="expected 6 data bytes"):
        read_idx(path)


def test_rejects_header_cut_short(tmp_path):
    path = tmp_path / "cut.idx"
    path.write_bytes(bytes([0, 0, 0x08, 3]) + struct.pack(">I", 2))
    with pytest.raises(ValueError, match="3 dimension sizes"):
        read_idx(path)


def test_a_file_holding_only_the_magic_number_is_refused_for_its_missing_sizes(tmp_path):
    # The magic number is whole (4 bytes); what is missing is the 2 dimension sizes.
    path = tmp_path / "magic-only.idx"
    path.write_bytes(bytes([0, 0, 0x08, 2]))
    with pytest.raises(ValueError, match=r"2 dimension sizes .* ends after 4 bytes"):
        read_idx(path)


def test_a_dimension_of_size_zero_reads_as_an_empty_array(tmp_path):
    # The header alone (4 + 4 * 3 bytes) is a complete file: 0 images of 28 x 28.
    path = tmp_path / "empty-idx3-ubyte"
    path.write_bytes(idx_bytes(0x08, (0, 28, 28), b""))
    array = read_idx(path)
    assert array.shape == (0, 28, 28)
    assert array.dtype == np.uint8


def write_idx_dataset(folder, images_train, labels_train, images_test, labels_test, gz=True):
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    for stem, array in (
        ("train-images-idx3-ubyte", images_train),
        ("train-labels-idx1-ubyte", labels_train),
        ("t10k-images-idx3-ubyte", images_test),
        ("t10k-labels-idx1-ubyte", labels_test),
    ):
        content = idx_bytes(0x08, array.shape, array.astype(np.uint8).tobytes())
        (folder / f"{stem}{suffix}").write_bytes(gzip.compress(content) if gz else content)


@pytest.mark.parametrize("gz", [True, False])
def test_dataset_folder_gives_train_and_test_splits(tmp_path, gz):
    images = np.arange(3 * 28 * 28, dtype=np.uint8).reshape(3, 28, 28)
    write_idx_dataset(tmp_path, images, np.array([4, 0, 9]), images[:1], np.array([7]), gz=gz)
    (x_train, y_train), (x_test, y_test) = read_idx_dataset(tmp_path)
    np.testing.assert_array_equal(x_train, images)
    np.testing.assert_array_equal(y_train, [4, 0, 9])
    assert y_train.dtype == np.int64
    np.testing.assert_array_equal(x_test, images[:1])
    np.testing.assert_array_equal(y_test, [7])


def test_dataset_folder_with_label_count_mismatch_is_rejected(tmp_path):
    images = np.zeros((3, 28, 28), np.uint8)
    write_idx_dataset(tmp_path, images, np.array([1, 2]), images, np.array([1, 2, 3]))
    with pytest.raises(ValueError, match="3 images, 2 labels"):
        read_idx_dataset(tmp_path)


def test_dataset_folder_missing_a_file_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        read_idx_dataset(tmp_path)
