"""TensorProto ↔ numpy conversion on the server side, with request-level errors."""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2

from memae_tf.serving.errors import invalid_argument


def decode_tensor(name: str, proto: tensor_pb2.TensorProto) -> np.ndarray:
    """Returns the array of an input `TensorProto`, or raises INVALID_ARGUMENT."""
    try:
        return tf.make_ndarray(proto)
    except Exception as error:  # a malformed proto is the caller's mistake
        raise invalid_argument(f"Input '{name}' is not a valid TensorProto: {error}") from error


def encode_tensor(array: np.ndarray) -> tensor_pb2.TensorProto:
    """Returns the `TensorProto` of an output array."""
    return tf.make_tensor_proto(array)
