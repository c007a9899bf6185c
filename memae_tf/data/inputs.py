"""Input preparation: arrays, tensors or datasets → the float32 batch an autoencoder takes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from memae_tf.common.scaling import scale_uint8
from memae_tf.data.tfds import dataset_array


def prepare_inputs(
    x: Any, input_shape: Sequence[int], input_range: Sequence[float], what: str = "x"
) -> np.ndarray:
    """Validates a batch and returns it as float32 in the model's input range.

    uint8 values are scaled from `[0, 255]` into `input_range`; when the last
    axis of `input_shape` is 1, a batch given without it gets one.

    Args:
        x: Array, `tf.Tensor` or finite `tf.data.Dataset` (e.g. `tfds.load(...)`)
            of samples `(n, *input_shape)`.
        input_shape: The model's input shape without the batch axis.
        input_range: `(low, high)` range the model expects.
        what: The argument's name in error messages.

    Returns:
        Float32 array `(n, *input_shape)`.

    Raises:
        ValueError: For a wrong shape, an empty batch or NaN/Inf values.
        TypeError: For non-numeric arrays.

    Example:

    >>> prepare_inputs(np.full((2, 3), 255, np.uint8), (3,), (-1.0, 1.0))[0]
    array([1., 1., 1.], dtype=float32)
    """
    input_shape = tuple(input_shape)
    if isinstance(x, tf.Tensor):
        x = x.numpy()
    elif isinstance(x, tf.data.Dataset):  # e.g. tfds.load(...): dict elements, batched or not
        x = dataset_array(x)
    x = np.asarray(x)
    if x.dtype == np.uint8:
        x = scale_uint8(x, input_range)
    elif not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise TypeError(
            f"`{what}` must hold numbers (float, or uint8 images). Received dtype={x.dtype}"
        )
    expected = (None, *input_shape)
    if input_shape[-1] == 1 and x.shape[1:] == input_shape[:-1] and x.ndim > 1:
        x = x[..., None]  # grayscale images or clips given without a channel axis
    if x.ndim != len(expected) or tuple(x.shape[1:]) != input_shape:
        raise ValueError(
            f"`{what}` must have shape {expected} (rank {len(expected)}). "
            f"Received: shape={x.shape}"
        )
    if x.shape[0] == 0:
        raise ValueError(f"`{what}` is empty: received 0 samples, expected at least 1.")
    x = x.astype(np.float32, copy=False)
    if not np.all(np.isfinite(x)):
        bad = int(np.size(x) - np.count_nonzero(np.isfinite(x)))
        raise ValueError(f"`{what}` contains {bad} NaN or Inf values; clean them first.")
    return x
