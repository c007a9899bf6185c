"""Fashion-MNIST (Zalando article images), found locally or offline before any download.

Search order (see `memae_tf.data.sources`): the explicit `path` (a folder of the
four IDX files); a `fashion-mnist/` folder in the local data folders (the layout
`keras.datasets.fashion_mnist` caches into); the files installed by the Debian
package `dataset-fashion-mnist` in `/usr/share/datasets/fashion-mnist`; then
`keras.datasets.fashion_mnist.load_data()` when downloads are allowed.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from memae_tf.data.idx import read_idx_dataset
from memae_tf.data.sources import Download, resolve

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")

CLASS_NAMES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)


def load_fashion_mnist(
    path: str | os.PathLike | None = None, download: bool = True
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Loads Fashion-MNIST as `keras.datasets.fashion_mnist.load_data()` does.

    Args:
        path: Explicit folder holding `train-images-idx3-ubyte[.gz]`,
            `train-labels-idx1-ubyte[.gz]`, `t10k-images-idx3-ubyte[.gz]` and
            `t10k-labels-idx1-ubyte[.gz]`. When given, nothing else is searched.
        download: Whether `keras.datasets.fashion_mnist.load_data()` may be tried
            when no local or offline copy is found.

    Returns:
        `(x_train, y_train), (x_test, y_test)`: images uint8 of shape
        `(60000, 28, 28)` and `(10000, 28, 28)`, labels int64 in `0..9`
        (names in `CLASS_NAMES`).

    Raises:
        DatasetNotFoundError: If the dataset is found nowhere; the message lists
            each place tried.

    Example:

    ```python
    (x_train, y_train), (x_test, y_test) = load_fashion_mnist(download=False)
    ```
    """
    return resolve(
        "Fashion-MNIST",
        read_idx_dataset,
        path=path,
        filenames=("fashion-mnist",),
        offline={"Debian package dataset-fashion-mnist": DEBIAN_DIR},
        download=Download("keras.datasets.fashion_mnist.load_data()", _download),
        allow_download=download,
    )


def _download() -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    import keras

    (x_train, y_train), (x_test, y_test) = keras.datasets.fashion_mnist.load_data()
    return (x_train, y_train.astype(np.int64)), (x_test, y_test.astype(np.int64))
