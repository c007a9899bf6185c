"""TensorProto ↔ numpy conversion on the server side, with request-level errors."""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, types_pb2

from memae_tf.serving.errors import invalid_argument

# DataType → the repeated field of TensorProto that TensorFlow's Tensor::AsProtoField
# fills (tensorflow/core/framework/tensor.cc, ProtoHelper); half-precision values go
# into half_val as their 16-bit patterns.
_FIELDS = {
    types_pb2.DT_FLOAT: "float_val", types_pb2.DT_DOUBLE: "double_val",
    types_pb2.DT_HALF: "half_val", types_pb2.DT_INT8: "int_val",
    types_pb2.DT_INT16: "int_val", types_pb2.DT_INT32: "int_val",
    types_pb2.DT_UINT8: "int_val", types_pb2.DT_UINT16: "int_val",
    types_pb2.DT_INT64: "int64_val", types_pb2.DT_UINT32: "uint32_val",
    types_pb2.DT_UINT64: "uint64_val", types_pb2.DT_BOOL: "bool_val",
}


def decode_tensor(name: str, proto: tensor_pb2.TensorProto) -> np.ndarray:
    """Returns the array of an input `TensorProto`, or raises INVALID_ARGUMENT."""
    try:
        return tf.make_ndarray(proto)
    except Exception as error:  # a malformed proto is the caller's mistake
        raise invalid_argument(f"Input '{name}' is not a valid TensorProto: {error}") from error


def encode_tensor(array: np.ndarray, tensor_content: bool = False) -> tensor_pb2.TensorProto:
    """Returns the `TensorProto` of an output array, as TF Serving serializes a Predict's.

    By default every value goes into the dtype's repeated field (`float_val`,
    `bool_val`, ...), TensorFlow's `Tensor::AsProtoField`, which TF Serving's
    Predict uses unless `--enable_serialization_as_tensor_content`
    (servables/tensorflow/predict_util.cc); `tensor_content=True` writes the raw
    bytes instead (`AsProtoTensorContent`). Types without a repeated field
    here (strings) take `tf.make_tensor_proto`'s encoding.

    Example:

    >>> proto = encode_tensor(np.array([0.5, 2.0], np.float32))
    >>> list(proto.float_val), proto.tensor_content
    ([0.5, 2.0], b'')
    >>> len(encode_tensor(np.zeros(2, np.float32), tensor_content=True).tensor_content)
    8
    >>> list(encode_tensor(np.array([b"a", b"b"])).string_val)
    [b'a', b'b']
    """
    proto = tf.make_tensor_proto(array)
    field = _FIELDS.get(proto.dtype)
    if field is None:
        return proto
    values = np.asarray(array, tf.dtypes.as_dtype(proto.dtype).as_numpy_dtype).ravel()
    proto.ClearField("tensor_content")
    proto.ClearField(field)
    if tensor_content:
        proto.tensor_content = values.tobytes()
    else:
        getattr(proto, field).extend(
            (values.view(np.uint16) if field == "half_val" else values).tolist())
    return proto
