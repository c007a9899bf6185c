"""The IDX file format of MNIST and Fashion-MNIST.

An IDX file is a 4-byte magic number, then one big-endian uint32 per dimension,
then the values in C order, big-endian. The magic number's bytes are
`0x00 0x00 <type code> <number of dimensions>`, with type codes:

| code | type                  |
| ---- | --------------------- |
| 0x08 | unsigned byte         |
| 0x09 | signed byte           |
| 0x0B | short (2 bytes)       |
| 0x0C | int (4 bytes)         |
| 0x0D | float (4 bytes)       |
| 0x0E | double (8 bytes)      |
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

# File stems of the four files of an MNIST-style IDX dataset folder.
IDX_SPLIT_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Reads an IDX file, gzip-compressed (name ending in `.gz`) or raw.

    Args:
        path: The IDX file.

    Returns:
        The array, with the file's shape and its type in native byte order
        (e.g. `uint8` for MNIST images).

    Raises:
        ValueError: If the magic number is malformed, the type code unknown,
            the data size does not match the dimensions in the header (e.g. a
            truncated file), or a `.gz` file is truncated or not gzip.

    Example:

    ```python
    images = read_idx("train-images-idx3-ubyte.gz")  # uint8, (60000, 28, 28)
    ```
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as stream:
            content = stream.read()
    except (EOFError, gzip.BadGzipFile, zlib.error) as error:
        raise ValueError(
            f"Invalid IDX file {path}: expected a complete gzip stream (truncated or not "
            f"gzip). Received: {type(error).__name__}: {error}"
        ) from error
    if len(content) < 4 or content[0] != 0 or content[1] != 0:
        raise ValueError(
            f"Invalid IDX file {path}: expected a magic number starting with bytes 0x00 0x00. "
            f"Received: {content[:4].hex(' ')}"
        )
    type_code, ndim = content[2], content[3]
    if type_code not in IDX_DTYPES:
        known = ", ".join(f"0x{code:02X}" for code in IDX_DTYPES)
        raise ValueError(
            f"Invalid IDX file {path}: expected a type code in ({known}). "
            f"Received: 0x{type_code:02X}"
        )
    header_size = 4 + 4 * ndim
    if len(content) < header_size:
        raise ValueError(
            f"Invalid IDX file {path}: expected {ndim} dimension sizes after the magic number, "
            f"the file ends after {len(content)} bytes."
        )
    shape = tuple(int(n) for n in np.frombuffer(content, ">u4", count=ndim, offset=4))
    dtype = IDX_DTYPES[type_code]
    expected = int(np.prod(shape)) * dtype.itemsize
    received = len(content) - header_size
    if received != expected:
        raise ValueError(
            f"Invalid IDX file {path}: expected {expected} data bytes for shape {shape} of "
            f"{dtype.name}. Received: {received} bytes"
        )
    data = np.frombuffer(content, dtype, offset=header_size).reshape(shape)
    return data.astype(dtype.newbyteorder("="))


def read_idx_dataset(
    directory: str | os.PathLike,
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Reads a folder of MNIST-style IDX files into train and test arrays.

    The folder holds `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`,
    `t10k-images-idx3-ubyte` and `t10k-labels-idx1-ubyte`, each gzip-compressed
    (`.gz`) or raw.

    Args:
        directory: The folder.

    Returns:
        `(x_train, y_train), (x_test, y_test)`: images as stored (uint8 for MNIST
        and Fashion-MNIST), labels as int64.

    Raises:
        FileNotFoundError: If one of the four files is missing.
        ValueError: If a file is not valid IDX, images are not 3-D or labels
            not 1-D, or images and labels disagree in count.

    Example:

    ```python
    (x_train, y_train), (x_test, y_test) = read_idx_dataset("/usr/share/datasets/fashion-mnist")
    ```
    """
    directory = Path(directory)
    arrays = {}
    for key, stem in IDX_SPLIT_FILES.items():
        candidates = (directory / f"{stem}.gz", directory / stem)
        file = next((candidate for candidate in candidates if candidate.exists()), None)
        if file is None:
            raise FileNotFoundError(
                f"Missing IDX file in {directory}: expected {stem}.gz or {stem}."
            )
        arrays[key] = read_idx(file)
        rank = 1 if key.startswith("y") else 3
        if arrays[key].ndim != rank:
            raise ValueError(
                f"Invalid IDX file {file}: expected {'labels' if rank == 1 else 'images'} of "
                f"rank {rank}. Received: shape={arrays[key].shape}"
            )
    for split in ("train", "test"):
        n_images, n_labels = len(arrays[f"x_{split}"]), len(arrays[f"y_{split}"])
        if n_images != n_labels:
            raise ValueError(
                f"IDX {split} split in {directory}: expected as many labels as images. "
                f"Received: {n_images} images, {n_labels} labels"
            )
    return (
        (arrays["x_train"], arrays["y_train"].astype(np.int64)),
        (arrays["x_test"], arrays["y_test"].astype(np.int64)),
    )
