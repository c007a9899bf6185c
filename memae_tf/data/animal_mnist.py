"""Animal-MNIST: 28 × 28 white animal silhouettes on black, found locally or offline.

Ten classes of 1,000 images each, in the format of MNIST, shipped inside the
PyPI wheel `animal-mnist` (install it with `pip install --no-deps
animal-mnist==0.4`; its own loader imports TensorFlow and downloads MNIST, so
this module reads its two data files by path instead). It is the package's
second image development set: shapes on a plain background, the kind of image
MNIST is, where Fashion-MNIST's garments fill the frame.

Search order (see `memae_tf.data.sources`): the explicit `path`; an
`animal-mnist/` folder in the local data folders; the folder
`animal_mnist/data/Animal_MNIST/` of the installed wheel. There is no download.
Each folder holds `animal_data_version_3.gz` (a gzipped pickle of a uint8
array `(n, 28, 28)`) and `animal_label_version_3.gz` (int labels `(n,)`).

The set has no official split. `load_animal_mnist` drops exact duplicates
(the first copy is kept; 284 of the 10,000 images are copies) and splits each
class 80 / 20 with a fixed permutation, the same on every machine.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from memae_tf.data.pickles import load_pickle
from memae_tf.data.sources import package_folder, resolve

Splits = tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]

IMAGES_FILE = "animal_data_version_3.gz"
LABELS_FILE = "animal_label_version_3.gz"
IMAGE_SHAPE = (28, 28)
TRAIN_FRACTION = 0.8
# The split's permutation seed: fixed, so that every run sees the same test images.
SPLIT_SEED = 0

CLASS_NAMES = (
    "Bear", "Bird", "Cat", "Cow", "Dog", "Elephant", "Giraffe", "Horse", "Sheep", "Zebra",
)


def load_animal_mnist(path: str | os.PathLike | None = None) -> Splits:
    """Loads Animal-MNIST, de-duplicated and split 80 / 20 per class.

    Args:
        path: Explicit folder holding `animal_data_version_3.gz` and
            `animal_label_version_3.gz`. When given, nothing else is searched.

    Returns:
        `(x_train, y_train), (x_test, y_test)`: images uint8 of shape `(n, 28, 28)`,
        labels int64 in `0..9` (names in `CLASS_NAMES`). With the wheel's data:
        7,769 training and 1,947 test images.

    Raises:
        DatasetNotFoundError: If the files are found nowhere; the message lists
            each place tried.
        ValueError: If the files do not hold `(n, 28, 28)` images with `n` labels.

    Example:

    ```python
    (x_train, y_train), (x_test, y_test) = load_animal_mnist()
    x_train[y_train == CLASS_NAMES.index("Cat")].shape  # (793, 28, 28)
    ```
    """
    return resolve(
        "Animal-MNIST",
        read_animal_mnist,
        path=path,
        filenames=("animal-mnist",),
        offline={"PyPI wheel animal-mnist": _wheel_folder()},
    )


def read_animal_mnist(folder: str | os.PathLike) -> Splits:
    """Reads the two data files of `folder` and returns the de-duplicated 80 / 20 split.

    Args:
        folder: Folder holding `animal_data_version_3.gz` and `animal_label_version_3.gz`.

    Returns:
        `(x_train, y_train), (x_test, y_test)` as in `load_animal_mnist`.

    Raises:
        ValueError: If the arrays are not `(n, 28, 28)` images with `n` labels.
    """
    folder = Path(folder)
    images = np.asarray(load_pickle(folder / IMAGES_FILE))
    labels = np.asarray(load_pickle(folder / LABELS_FILE))
    if images.ndim != 3 or images.shape[1:] != IMAGE_SHAPE or labels.shape != images.shape[:1]:
        raise ValueError(
            f"Animal-MNIST files in {folder}: expected images of shape (n, 28, 28) and n "
            f"labels. Received: images {images.shape}, labels {labels.shape}"
        )
    images, labels = images.astype(np.uint8), labels.astype(np.int64)
    _, first = np.unique(images.reshape(len(images), -1), axis=0, return_index=True)
    kept = np.sort(first)
    return split_per_class(images[kept], labels[kept])


def split_per_class(images: np.ndarray, labels: np.ndarray) -> Splits:
    """Splits each class `TRAIN_FRACTION` / rest by a permutation seeded with `SPLIT_SEED`.

    Args:
        images: Array `(n, ...)`.
        labels: Integer labels `(n,)`.

    Returns:
        `(x_train, y_train), (x_test, y_test)`, each in the original order of `images`.
    """
    rng = np.random.default_rng(SPLIT_SEED)
    train = np.zeros(len(labels), bool)
    for label in np.unique(labels):
        rows = rng.permutation(np.flatnonzero(labels == label))
        train[rows[: int(TRAIN_FRACTION * len(rows))]] = True
    return (images[train], labels[train]), (images[~train], labels[~train])


def _wheel_folder() -> Path | None:
    # The wheel's own package imports TensorFlow; `package_folder` does not import it.
    folder = package_folder("animal_mnist")
    return None if folder is None else folder / "data" / "Animal_MNIST"
