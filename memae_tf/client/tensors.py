"""numpy ↔ `TensorProto` without TensorFlow.

The messages are the project's own (`memae_tf/client/proto/tf_serving.proto`),
wire-compatible with TensorFlow's `tensorflow.TensorProto`. Requests carry the
raw little-endian bytes in `tensor_content`. Responses are read from
`tensor_content` or from the typed repeated fields (`float_val`, `bool_val`,
...) that TF Serving fills by default, including TensorFlow's shorthand of
fewer values than elements (the last value repeats).
"""

from __future__ import annotations

import math

import numpy as np

from memae_tf.client.proto import tf_serving_pb2 as pb

# DataType → (numpy dtype, typed field of TensorProto holding its values).
_TYPES: dict[int, tuple[np.dtype, str]] = {
    pb.DT_FLOAT: (np.dtype(np.float32), "float_val"),
    pb.DT_DOUBLE: (np.dtype(np.float64), "double_val"),
    pb.DT_HALF: (np.dtype(np.float16), "half_val"),
    pb.DT_INT8: (np.dtype(np.int8), "int_val"),
    pb.DT_INT16: (np.dtype(np.int16), "int_val"),
    pb.DT_INT32: (np.dtype(np.int32), "int_val"),
    pb.DT_INT64: (np.dtype(np.int64), "int64_val"),
    pb.DT_UINT8: (np.dtype(np.uint8), "int_val"),
    pb.DT_UINT16: (np.dtype(np.uint16), "int_val"),
    pb.DT_UINT32: (np.dtype(np.uint32), "uint32_val"),
    pb.DT_UINT64: (np.dtype(np.uint64), "uint64_val"),
    pb.DT_BOOL: (np.dtype(np.bool_), "bool_val"),
}
_DATA_TYPES: dict[np.dtype, int] = {dtype: enum for enum, (dtype, _) in _TYPES.items()}


def _type_name(data_type: int) -> str:
    try:
        return pb.DataType.Name(data_type)
    except ValueError:  # a TensorFlow type this client has no name for
        return f"DataType({data_type})"


def numpy_dtype(data_type: int) -> np.dtype:
    """Returns the numpy dtype of a TensorFlow `DataType` enum value.

    Raises:
        ValueError: For a type without a numeric numpy equivalent (e.g. strings).
    """
    if data_type not in _TYPES:
        raise ValueError(
            f"Unsupported tensor dtype {_type_name(data_type)}; expected one "
            f"of {sorted(_type_name(t) for t in _TYPES)}."
        )
    return _TYPES[data_type][0]


def to_tensor_proto(array: np.ndarray) -> pb.TensorProto:
    """Encodes a numeric or boolean array as a `TensorProto`.

    Args:
        array: Array whose dtype is a TensorFlow numeric type or bool.

    Returns:
        A `TensorProto` with the shape and the raw bytes in `tensor_content`.

    Example:

    >>> proto = to_tensor_proto(np.zeros((2, 3), np.float32))
    >>> [d.size for d in proto.tensor_shape.dim], len(proto.tensor_content)
    ([2, 3], 24)
    """
    array = np.asarray(array)
    if array.dtype.newbyteorder("=") not in _DATA_TYPES:
        raise ValueError(
            f"Unsupported array dtype {array.dtype}; expected one of "
            f"{sorted(str(d) for d in _DATA_TYPES)}."
        )
    native = array.dtype.newbyteorder("=")
    proto = pb.TensorProto(dtype=_DATA_TYPES[native])
    proto.tensor_shape.dim.extend(
        pb.TensorShapeProto.Dim(size=size) for size in array.shape
    )
    proto.tensor_content = np.ascontiguousarray(array, dtype=native.newbyteorder("<")).tobytes()
    return proto


def to_ndarray(proto: pb.TensorProto) -> np.ndarray:
    """Decodes a `TensorProto` into a numpy array.

    Args:
        proto: Tensor with a numeric or boolean dtype and a known shape.

    Returns:
        A writable array of the proto's dtype and shape.

    Raises:
        ValueError: For unsupported dtypes or values that do not fit the shape.
    """
    dtype, field = _TYPES[proto.dtype] if proto.dtype in _TYPES else (numpy_dtype(proto.dtype), "")
    shape = tuple(dim.size for dim in proto.tensor_shape.dim)
    count = math.prod(shape)
    if proto.tensor_content:
        values = np.frombuffer(proto.tensor_content, dtype=dtype.newbyteorder("<"))
        if values.size != count:
            raise ValueError(
                f"The tensor holds {values.size} values, expected {count} for shape {shape}."
            )
        return values.astype(dtype).reshape(shape)
    if field == "half_val":
        values = np.asarray(proto.half_val, dtype=np.uint16).view(np.float16)
    else:
        values = np.asarray(getattr(proto, field), dtype=dtype)
    if values.size > count:
        raise ValueError(
            f"The tensor holds {values.size} values, expected at most {count} for shape {shape}."
        )
    if values.size == 0:
        return np.zeros(shape, dtype=dtype)
    # TensorFlow's shorthand: fewer values than elements means the last one repeats.
    return np.pad(values, (0, count - values.size), mode="edge").reshape(shape)
