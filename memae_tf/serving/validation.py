"""Checks of request tensors against a signature and the server's limits.

Everything a request carries is checked here before TensorFlow sees it, most of
it on the `TensorProto` itself so that a refused request allocates nothing:
dtype, rank and shape, an empty batch, the batch size limit, the byte length of
`tensor_content`, the decoded size, and (once decoded) NaN or Inf values. The
status codes and messages follow TF Serving's and name the expected value.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import grpc
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2
from tensorflow.core.protobuf import meta_graph_pb2

from memae_tf.common.checks import check_positive_int
from memae_tf.serving.batching import check_task_size
from memae_tf.serving.errors import ServingError, invalid_argument

# gRPC's own ceiling on a message, and so on any tensor a request can carry.
GRPC_MAX_MESSAGE_BYTES = 2**31 - 1
# The repeated fields of TensorProto that hold values when `tensor_content` is empty.
_VALUE_FIELDS = ("half_val", "float_val", "double_val", "int_val", "string_val",
                 "scomplex_val", "int64_val", "bool_val", "dcomplex_val",
                 "resource_handle_val", "variant_val", "uint32_val", "uint64_val")


@dataclass(frozen=True)
class RequestLimits:
    """Size limits of one request, checked before anything is allocated.

    Attributes:
        max_batch_size: Largest batch (first dimension) of a request, checked
            here on the proto with the batch scheduler's message; None for no
            limit beyond the message size. `ServingCore` sets it from its
            batching options, the one source of this limit when batching is on.
        max_message_bytes: Largest request message (gRPC) or body (REST), and
            largest decoded input tensor; None for gRPC's own 2 GiB.
    """

    max_batch_size: int | None = None
    max_message_bytes: int | None = None

    def __post_init__(self) -> None:
        for field in ("max_batch_size", "max_message_bytes"):
            check_positive_int(field, getattr(self, field), allow_none=True)

    @property
    def tensor_bytes(self) -> int:
        """Largest decoded input tensor, in bytes."""
        return self.max_message_bytes or GRPC_MAX_MESSAGE_BYTES


def _shape_text(dims: Sequence[int]) -> str:
    return str(tuple(None if size < 0 else size for size in dims))


def _dtype_text(dtype: Any) -> str:
    try:
        return tf.dtypes.as_dtype(dtype).name
    except (TypeError, ValueError):
        return f"unknown DataType {dtype!r}"


def check_dtype(key: str, signature: str, info: meta_graph_pb2.TensorInfo, dtype: Any) -> None:
    """Raises INVALID_ARGUMENT unless `dtype` (enum or numpy dtype) is the input's dtype."""
    try:
        same = tf.dtypes.as_dtype(dtype).as_datatype_enum == info.dtype
    except (TypeError, ValueError):
        same = False
    if not same:
        raise invalid_argument(
            f"Input '{key}' of signature '{signature}' expects dtype "
            f"{_dtype_text(info.dtype)}. Received: dtype={_dtype_text(dtype)}"
        )


def check_shape(
    key: str, signature: str, info: meta_graph_pb2.TensorInfo, shape: Sequence[int]
) -> None:
    """Raises INVALID_ARGUMENT unless `shape` fits the input's, with at least one sample."""
    if not info.tensor_shape.unknown_rank:
        dims = [dim.size for dim in info.tensor_shape.dim]
        if len(dims) != len(shape) or any(
            want >= 0 and want != got for want, got in zip(dims, shape, strict=True)
        ):
            raise invalid_argument(
                f"Input '{key}' of signature '{signature}' expects shape {_shape_text(dims)} "
                f"(None: any size). Received: shape={tuple(shape)}"
            )
    if len(shape) and shape[0] == 0:
        raise invalid_argument(
            f"Input '{key}' of signature '{signature}' is an empty batch; expected at least "
            f"one sample. Received: shape={tuple(shape)}"
        )


def check_finite(key: str, signature: str, array: np.ndarray) -> None:
    """Raises INVALID_ARGUMENT if a floating-point input holds NaN or Inf values.

    A sample with a non-finite value cannot be scored; the exported graph would
    call it an anomaly with score +inf, this server refuses it outright.
    """
    if not np.issubdtype(array.dtype, np.floating):
        return
    finite = np.isfinite(array)
    if finite.all():
        return
    rows = np.flatnonzero(~finite.reshape(len(array), -1).all(axis=1)) if array.ndim else []
    listed = [int(row) for row in rows[:10]] + (["..."] if len(rows) > 10 else [])
    raise invalid_argument(
        f"Input '{key}' of signature '{signature}' contains {finite.size - finite.sum()} "
        f"NaN or Inf values (in samples {listed}); "
        "expected finite numbers. (The exported model scores such a sample +inf, an anomaly.)"
    )


def check_tensor_proto(
    key: str,
    signature: str,
    info: meta_graph_pb2.TensorInfo,
    proto: tensor_pb2.TensorProto,
    limits: RequestLimits,
) -> None:
    """Checks a request `TensorProto` without decoding it.

    Raises:
        ServingError: INVALID_ARGUMENT for a wrong dtype or shape, an empty or
            too large batch, or values that disagree with the shape;
            RESOURCE_EXHAUSTED when the decoded tensor would exceed the limit.
    """
    check_dtype(key, signature, info, proto.dtype)
    if proto.tensor_shape.unknown_rank:
        raise invalid_argument(
            f"Input '{key}' of signature '{signature}' has an unknown rank; expected a "
            "fully defined shape."
        )
    shape = [dim.size for dim in proto.tensor_shape.dim]
    if any(size < 0 for size in shape):
        raise invalid_argument(
            f"Input '{key}' of signature '{signature}' has a negative dimension; expected "
            f"sizes >= 0. Received: shape={tuple(shape)}"
        )
    check_shape(key, signature, info, shape)
    if limits.max_batch_size is not None and shape:
        check_task_size(shape[0], limits.max_batch_size)
    itemsize = tf.dtypes.as_dtype(proto.dtype).size
    count = math.prod(shape)
    if count * itemsize > limits.tensor_bytes:
        raise ServingError(
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            f"Input '{key}' of signature '{signature}' would take {count * itemsize} bytes "
            f"once decoded; expected at most {limits.tensor_bytes} bytes. "
            f"Received: shape={tuple(shape)}",
        )
    content_bytes = len(proto.tensor_content)  # each read copies the bytes out of the proto
    if content_bytes:
        if content_bytes != count * itemsize:
            raise invalid_argument(
                f"Input '{key}' of signature '{signature}': tensor_content holds "
                f"{content_bytes} bytes; expected {count * itemsize} "
                f"({count} values of {itemsize} bytes for shape {tuple(shape)})."
            )
        return
    values = sum(len(getattr(proto, field)) for field in _VALUE_FIELDS)
    if values > count:
        raise invalid_argument(
            f"Input '{key}' of signature '{signature}' holds {values} values; expected at "
            f"most {count} for shape {tuple(shape)}."
        )
