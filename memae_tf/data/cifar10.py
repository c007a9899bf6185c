"""CIFAR-10 (32×32 colour images, 10 classes), found locally before any download.

Search order (see `memae_tf.data.sources`): the explicit `path`; a
`cifar-10-batches-py/` folder, or the `cifar-10-python.tar.gz` archive, in the
local data folders (including where `keras.datasets.cifar10` extracts it); then
`keras.datasets.cifar10.load_data()` when downloads are allowed.

The "python version" of CIFAR-10 is five training batches `data_batch_1` ..
`data_batch_5` and one `test_batch`, each a pickled dict whose `b"data"` is a
uint8 array `(n, 3072)`: the 1024 red, then 1024 green, then 1024 blue values
of each image in row-major order (channels first), and whose `b"labels"` is a
list of n ints.
"""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

import numpy as np

from memae_tf.data.pickles import load_pickle
from memae_tf.data.sources import Download, resolve

Splits = tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]

BATCH_FOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"

CLASS_NAMES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)


def load_cifar10(path: str | os.PathLike | None = None, download: bool = True) -> Splits:
    """Loads CIFAR-10 with images channels-last and labels as a flat vector.

    Args:
        path: Explicit `cifar-10-batches-py` folder or `cifar-10-python.tar.gz`
            archive. When given, nothing else is searched.
        download: Whether `keras.datasets.cifar10.load_data()` may be tried when
            no local copy is found.

    Returns:
        `(x_train, y_train), (x_test, y_test)`: images uint8 of shape
        `(n, 32, 32, 3)`, labels int64 of shape `(n,)` (Keras returns `(n, 1)`
        uint8 labels; they are flattened here to match the MNIST loaders).

    Raises:
        DatasetNotFoundError: If CIFAR-10 is found nowhere; the message lists
            each place tried.
        ValueError: If a batch is not in the CIFAR-10 python format.

    Example:

    ```python
    (x_train, y_train), (x_test, y_test) = load_cifar10(download=False)
    x_train.shape  # (50000, 32, 32, 3)
    ```
    """
    return resolve(
        "CIFAR-10",
        read_cifar10,
        path=path,
        filenames=(
            BATCH_FOLDER,
            # Where keras.datasets.cifar10 (Keras 3) extracts its download.
            f"{BATCH_FOLDER}-target/{BATCH_FOLDER}",
            "cifar-10-python.tar.gz",
        ),
        download=Download("keras.datasets.cifar10.load_data()", _download),
        allow_download=download,
    )


def read_cifar10(path: str | os.PathLike) -> Splits:
    """Reads the CIFAR-10 python-version batches from their folder or their `.tar.gz` archive.

    Args:
        path: The `cifar-10-batches-py` folder, or a tar archive holding it.

    Returns:
        `(x_train, y_train), (x_test, y_test)` as in `load_cifar10`.
    """
    path = Path(path)
    if path.is_dir():
        batches = {name: load_pickle(path / name) for name in (*TRAIN_BATCHES, TEST_BATCH)}
    else:
        batches = _batches_from_archive(path)
    train = [_decode_batch(batches[name], name) for name in TRAIN_BATCHES]
    x_train = np.concatenate([x for x, _ in train])
    y_train = np.concatenate([y for _, y in train])
    return (x_train, y_train), _decode_batch(batches[TEST_BATCH], TEST_BATCH)


def _batches_from_archive(path: Path) -> dict[str, dict]:
    wanted = {*TRAIN_BATCHES, TEST_BATCH}
    batches = {}
    with tarfile.open(path) as archive:
        for member in archive:
            name = Path(member.name).name
            if member.isfile() and name in wanted:
                batches[name] = load_pickle(archive.extractfile(member))
    missing = sorted(wanted - batches.keys())
    if missing:
        raise ValueError(f"CIFAR-10 archive {path}: expected batches {missing}, not found.")
    return batches


def _decode_batch(batch: dict, name: str) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(batch, dict) or not {b"data", b"labels"} <= batch.keys():
        raise ValueError(f"CIFAR-10 batch {name}: expected a dict with keys b'data' and b'labels'.")
    data = np.asarray(batch[b"data"], np.uint8)
    labels = np.asarray(batch[b"labels"], np.int64)
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(labels) != len(data):
        raise ValueError(
            f"CIFAR-10 batch {name}: expected data of shape (n, 3072) and n labels. "
            f"Received: data {data.shape}, labels {labels.shape}"
        )
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels


def _download() -> Splits:
    import keras

    (x_train, y_train), (x_test, y_test) = keras.datasets.cifar10.load_data()
    return (x_train, y_train.reshape(-1).astype(np.int64)), (
        x_test,
        y_test.reshape(-1).astype(np.int64),
    )
