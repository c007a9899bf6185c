"""TensorFlow Datasets as inputs: dict elements (`{"image", "label"}`) to model inputs.

`tfds.load(...)` yields dictionaries of features, with uint8 images under
`"image"`. `MemAE.fit`, `score` and `infer_threshold` accept such datasets as
they are (the detector calls `from_tfds` and `dataset_array`); other code can
use the one-line adapter

```python
images = memae_tf.data.from_tfds(tfds.load("mnist", split="train"))
```

and `load_tfds` reads a whole split into numpy arrays (what `memae train
--data tfds:NAME[:SPLIT]` does). TensorFlow Datasets is imported only by
`load_tfds`, and it never downloads unless asked to.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import tensorflow as tf

from memae_tf.data.sources import DatasetNotFoundError

# Feature keys tried, in order, for the model inputs of a dict element.
INPUT_KEYS = ("image", "video", "features", "x")
LABEL_KEY = "label"
_READ_BATCH = 1024


def input_key(element_spec: dict[str, Any], key: str | None = None) -> str:
    """The feature holding the inputs of a dict-element dataset.

    Args:
        element_spec: A dataset's `element_spec` (a dict of `tf.TensorSpec`).
        key: The key to use; None picks the first of `INPUT_KEYS` present, or
            the only feature other than `"label"`.

    Returns:
        The key.

    Raises:
        ValueError: If `key` is absent or no input feature can be told apart.
    """
    if key is not None:
        if key not in element_spec:
            raise ValueError(
                f"The dataset elements have no feature {key!r}. Received features: "
                f"{sorted(element_spec)}"
            )
        return key
    for candidate in INPUT_KEYS:
        if candidate in element_spec:
            return candidate
    others = [name for name in element_spec if name != LABEL_KEY]
    if len(others) == 1:
        return others[0]
    raise ValueError(
        f"Cannot tell which feature holds the inputs: expected one of {INPUT_KEYS} or a "
        f"single feature besides {LABEL_KEY!r}. Received features: {sorted(element_spec)}; "
        "pass `key=`."
    )


def from_tfds(dataset: tf.data.Dataset, key: str | None = None) -> tf.data.Dataset:
    """Maps a dataset of feature dicts (as `tfds.load` returns) to its inputs.

    Batched or not, uint8 or float: the inputs keep their dtype, so `MemAE`
    scales uint8 images into its input range as it does for arrays. Datasets
    whose elements are not dicts are returned unchanged.

    Args:
        dataset: A `tf.data.Dataset`, e.g. `tfds.load("mnist", split="train")`.
        key: Feature holding the inputs (see `input_key`; default `"image"`).

    Returns:
        A `tf.data.Dataset` of the inputs alone.

    Example:

    >>> ds = tf.data.Dataset.from_tensor_slices(
    ...     {"image": np.zeros((4, 28, 28, 1), np.uint8), "label": np.arange(4)})
    >>> from_tfds(ds).element_spec
    TensorSpec(shape=(28, 28, 1), dtype=tf.uint8, name=None)
    """
    if not isinstance(dataset, tf.data.Dataset):
        raise TypeError(f"Expected a tf.data.Dataset. Received: {type(dataset).__name__}")
    if not isinstance(dataset.element_spec, dict):
        return dataset
    name = input_key(dataset.element_spec, key)
    return dataset.map(lambda element: element[name])


def dataset_array(dataset: tf.data.Dataset, key: str | None = None) -> np.ndarray:
    """Reads all inputs of a finite dataset into one numpy array.

    Elements may be inputs, `(inputs, ...)` tuples or feature dicts, batched
    (a leading axis of unknown size) or not.

    Args:
        dataset: A finite `tf.data.Dataset`.
        key: Feature holding the inputs of dict elements (see `input_key`).

    Returns:
        The inputs, `(n, ...)`, in the dataset's dtype.
    """
    dataset = from_tfds(dataset, key)
    if isinstance(dataset.element_spec, tuple):
        dataset = dataset.map(lambda x, *_: x)
    shape = dataset.element_spec.shape
    batched = shape.rank is not None and shape.rank > 0 and shape[0] is None
    parts = list(dataset.as_numpy_iterator())
    if not parts:
        raise ValueError("The dataset is empty: received 0 elements, expected at least 1.")
    return np.concatenate(parts) if batched else np.stack(parts)


def parse_tfds_spec(spec: str) -> tuple[str, str | None]:
    """Splits `tfds:NAME[:SPLIT]` (the CLI's `--data`) into `(name, split or None)`.

    Example:

    >>> parse_tfds_spec("tfds:mnist:test[:50%]")
    ('mnist', 'test[:50%]')
    """
    prefix, _, rest = spec.partition(":")
    name, _, split = rest.partition(":")
    if prefix != "tfds" or not name:
        raise ValueError(
            f"Expected a TFDS dataset as 'tfds:NAME' or 'tfds:NAME:SPLIT'. Received: {spec!r}"
        )
    return name, split or None


def load_tfds(
    name: str,
    split: str = "train",
    data_dir: str | os.PathLike | None = None,
    download: bool = False,
    key: str | None = None,
    label_key: str | None = LABEL_KEY,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Loads one split of a TFDS dataset into numpy arrays, offline by default.

    Args:
        name: TFDS name, e.g. `"mnist"`, `"fashion_mnist"`, `"cifar10"`
            (optionally with a version or config, `"mnist:3.*.*"`).
        split: TFDS split, e.g. `"train"`, `"test"`, `"train[:10%]"`.
        data_dir: TFDS data folder (default: TFDS's own, `~/tensorflow_datasets`).
        download: Whether TFDS may download and prepare the dataset.
        key: Feature holding the inputs (see `input_key`; default `"image"`).
        label_key: Feature holding the labels, or None for no labels.

    Returns:
        `(x, y)`: the inputs (uint8 images stay uint8) and the labels, or None
        when the dataset has no `label_key` feature.

    Raises:
        DatasetNotFoundError: If the dataset is not prepared in `data_dir` and
            `download` is False.
    """
    import tensorflow_datasets as tfds_lib

    try:
        builder = tfds_lib.builder(name, data_dir=data_dir)
    except tfds_lib.core.registered.DatasetNotFoundError as error:
        raise ValueError(f"TFDS has no dataset {name!r}: {error}") from error
    if download:
        builder.download_and_prepare()
    elif not builder.is_prepared():
        raise DatasetNotFoundError(
            f"TFDS {name}", [f"{builder.data_dir} (not prepared; download=False)"]
        )
    dataset = builder.as_dataset(split=split)
    inputs = input_key(dataset.element_spec, key)
    labelled = label_key is not None and label_key in dataset.element_spec
    columns = (inputs, label_key) if labelled else (inputs,)
    batches = list(
        dataset.map(lambda element: tuple(element[column] for column in columns))
        .batch(_READ_BATCH).as_numpy_iterator()
    )
    if not batches:
        raise ValueError(f"TFDS {name} split {split!r} is empty.")
    arrays = [np.concatenate([batch[i] for batch in batches]) for i in range(len(columns))]
    return arrays[0], (arrays[1] if labelled else None)
