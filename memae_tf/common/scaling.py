"""uint8 images → the model's input range, one formula for the detector and the client."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def scale_uint8(x: Any, input_range: Sequence[float]) -> Any:
    """Maps uint8 values from `[0, 255]` linearly onto `input_range`, in float32.

    `x * float32((high - low) / 255) + float32(low)`, computed in float32, so
    that `MemAE.preprocess` and `memae_tf.client` (which both call this)
    produce the same bits for the same image. It works on the array's own
    methods and types, so that `memae_tf.common` imports no third-party module.

    Args:
        x: uint8 numpy array of any shape.
        input_range: `(low, high)` range the model expects.

    Returns:
        Float32 array of the shape of `x`; 0 maps to `low`, 255 to `high`.

    Example:

    >>> import numpy as np
    >>> scale_uint8(np.array([0, 255], np.uint8), (-1.0, 1.0))
    array([-1.,  1.], dtype=float32)
    """
    low, high = (float(value) for value in input_range)
    values = x.astype("float32")
    float32 = values.dtype.type
    return values * float32((high - low) / 255.0) + float32(low)
