"""Request checks at their boundaries, on hand-made protos: no server, nothing decoded.

The end-to-end codes and messages are tests/reliability/test_request_validation.py's;
these pin the limits themselves: a decoded size equal to the limit passes, one byte more
does not, and without a configured limit the ceiling is gRPC's largest message, 2³¹ - 1
bytes (its message lengths are C ints).
"""

import dataclasses

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
from tensorflow.core.protobuf import meta_graph_pb2

from memae_tf.serving.errors import ServingError
from memae_tf.serving.validation import RequestLimits, check_finite, check_tensor_proto


def _info(dtype: int, dims: list[int]) -> meta_graph_pb2.TensorInfo:
    info = meta_graph_pb2.TensorInfo(dtype=dtype)
    info.tensor_shape.dim.extend(tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in dims)
    return info


def _proto(dtype: int, shape: tuple[int, ...], **values) -> tensor_pb2.TensorProto:
    proto = tensor_pb2.TensorProto(dtype=dtype, **values)
    proto.tensor_shape.dim.extend(tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in shape)
    return proto


def _check(info, proto, limits) -> ServingError | None:
    try:
        check_tensor_proto("x", "serving_default", info, proto, limits)
    except ServingError as error:
        return error
    return None


def test_a_decoded_tensor_may_take_exactly_the_message_limit():
    info, limits = _info(types_pb2.DT_FLOAT, [-1, 4]), RequestLimits(max_message_bytes=16)
    assert _check(info, _proto(types_pb2.DT_FLOAT, (1, 4)), limits) is None  # 4 x 4 bytes
    error = _check(info, _proto(types_pb2.DT_FLOAT, (2, 4)), limits)
    assert error.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "would take 32 bytes once decoded; expected at most 16 bytes" in error.message


def test_without_a_message_limit_the_ceiling_is_grpcs_largest_message():
    info, limits = _info(types_pb2.DT_UINT8, [-1]), RequestLimits()
    assert limits.tensor_bytes == 2**31 - 1
    # Shapes alone: nothing is allocated, whatever they claim.
    assert _check(info, _proto(types_pb2.DT_UINT8, (2**31 - 1,)), limits) is None
    error = _check(info, _proto(types_pb2.DT_UINT8, (2**31,)), limits)
    assert error.code == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_shorthand_values_may_fill_the_shape_but_not_exceed_it():
    info, limits = _info(types_pb2.DT_FLOAT, [-1, 4]), RequestLimits()
    full = _proto(types_pb2.DT_FLOAT, (1, 4), float_val=[1.0, 2.0, 3.0, 4.0])
    assert _check(info, full, limits) is None
    np.testing.assert_array_equal(tf.make_ndarray(full), [[1.0, 2.0, 3.0, 4.0]])
    error = _check(info, _proto(types_pb2.DT_FLOAT, (1, 4), float_val=[0.0] * 5), limits)
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "holds 5 values; expected at most 4 for shape (1, 4)" in error.message


@pytest.mark.parametrize("bad, listed", [
    (10, "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]"),
    (11, "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, '...']"),
])
def test_the_non_finite_message_lists_ten_samples_at_most(bad, listed):
    x = np.zeros((12, 3), np.float32)
    x[:bad, 1] = np.nan
    x[0, 2] = np.inf
    with pytest.raises(ServingError) as info:
        check_finite("x", "serving_default", x)
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert f"contains {bad + 1} NaN or Inf values (in samples {listed});" in info.value.message


def test_request_limits_cannot_change_once_made():
    limits = RequestLimits(max_batch_size=8)
    with pytest.raises(dataclasses.FrozenInstanceError):
        limits.max_batch_size = 9


def test_only_a_negative_signature_dimension_means_any_size():
    # TensorShapeProto: a size of -1 is unknown; 0 is a size like any other.
    info, limits = _info(types_pb2.DT_FLOAT, [-1, 0]), RequestLimits()
    assert _check(info, _proto(types_pb2.DT_FLOAT, (3, 0)), limits) is None
    error = _check(info, _proto(types_pb2.DT_FLOAT, (3, 2)), limits)
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "expects shape (None, 0) (None: any size). Received: shape=(3, 2)" in error.message
