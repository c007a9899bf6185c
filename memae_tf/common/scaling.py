"""uint8 images → the model's input range, one formula for the detector and the client."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def uint8_scale(input_range: Sequence[float]) -> tuple[float, float]:
    """Returns `(scale, offset)`: a uint8 value `v` maps to `v * scale + offset`.

    `((high - low) / 255, low)` as Python floats; `scale_uint8` and the
    exported uint8 signatures (`memae_tf.export`) round both to float32 and
    compute in float32, so they give the same bits.

    Example:

    >>> uint8_scale((-1.0, 1.0))
    (0.00784313725490196, -1.0)
    """
    low, high = (float(value) for value in input_range)
    return (high - low) / 255.0, low


def scale_uint8(x: Any, input_range: Sequence[float]) -> Any:
    """Maps uint8 values from `[0, 255]` linearly onto `input_range`, in float32.

    `x * float32((high - low) / 255) + float32(low)`, computed in float32, so
    that `MemAE.preprocess`, `memae_tf.client` (which both call this) and the
    exported uint8 signatures (the same two float32 operations in the graph)
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
    scale, offset = uint8_scale(input_range)
    values = x.astype("float32")
    float32 = values.dtype.type
    return values * float32(scale) + float32(offset)
