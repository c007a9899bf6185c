"""What the clients send and how they read answers, independent of the transport.

Each operation is a generator ("exchange") that yields the `Call`s to make and
receives their responses, so that the blocking and the asyncio client drive
the same logic and differ only in how a call is awaited.
"""

from __future__ import annotations

import math
import random
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
import numpy as np
from google.protobuf.message import Message

from memae_tf.client.errors import InvalidArgumentError
from memae_tf.client.proto import tf_serving_pb2 as pb
from memae_tf.client.tensors import numpy_dtype, to_ndarray, to_tensor_proto
from memae_tf.common.checks import check_positive_int
from memae_tf.common.contract import INPUT_NAME as INPUT_NAME
from memae_tf.common.contract import SERVING_SIGNATURE, SIGNATURE_DEF_FIELD

# What TF Serving packs in GetModelMetadataResponse.metadata["signature_def"].
_SIGNATURE_DEF_MAP_TYPE = "tensorflow.serving.SignatureDefMap"
# TF Serving's method paths, with the (project-owned) request and response messages.
METHODS: dict[str, tuple[str, type[Message], type[Message]]] = {
    "Predict": ("/tensorflow.serving.PredictionService/Predict",
                pb.PredictRequest, pb.PredictResponse),
    "GetModelMetadata": ("/tensorflow.serving.PredictionService/GetModelMetadata",
                         pb.GetModelMetadataRequest, pb.GetModelMetadataResponse),
    "GetModelStatus": ("/tensorflow.serving.ModelService/GetModelStatus",
                       pb.GetModelStatusRequest, pb.GetModelStatusResponse),
}
# Room for everything in a PredictRequest/Response besides the tensor bytes.
_ENVELOPE_BYTES = 64 * 1024
_INITIAL_BACKOFF_S = 0.1
_MAX_BACKOFF_S = 5.0
_STATUS_NAMES = {code.value[0]: code.name for code in grpc.StatusCode}


@dataclass(frozen=True)
class TensorInfo:
    """Dtype and shape of a signature input or output (None where unknown)."""

    dtype: np.dtype | None
    shape: tuple[int | None, ...] | None


@dataclass(frozen=True)
class SignatureInfo:
    """Inputs and outputs of one signature of the served model."""

    inputs: dict[str, TensorInfo]
    outputs: dict[str, TensorInfo]
    method_name: str


@dataclass(frozen=True)
class ModelMetadata:
    """The answer of `GetModelMetadata`: the version that answered and its signatures."""

    name: str
    version: int
    signatures: dict[str, SignatureInfo]


@dataclass(frozen=True)
class VersionStatus:
    """One entry of `GetModelStatus`, e.g. `VersionStatus(2, "AVAILABLE", "OK", "")`."""

    version: int
    state: str
    error_code: str
    error_message: str


@dataclass(frozen=True)
class Call:
    """One RPC to make: the method name and its request."""

    method: str
    request: Message


@dataclass(frozen=True)
class ClientConfig:
    """The validated settings shared by `MemAEClient` and `AsyncMemAEClient`."""

    model_name: str
    version: int | None
    signature: str
    timeout: float
    max_message_bytes: int
    retries: int

    @classmethod
    def create(
        cls,
        model_name: str,
        version: int | None,
        signature: str,
        timeout: float,
        max_message_mb: float,
        retries: int,
    ) -> ClientConfig:
        """Checks the client arguments and returns the config, or raises ValueError."""
        if not isinstance(model_name, str) or not model_name:
            raise ValueError(
                "Received an invalid value for `model_name`, expected a non-empty string. "
                f"Received: model_name={model_name!r}"
            )
        version = check_positive_int("version", version, allow_none=True)
        check_signature(signature)
        check_timeout(timeout)
        if isinstance(max_message_mb, bool) or not (
            isinstance(max_message_mb, (int, float)) and 0 < max_message_mb < 2048
        ):
            raise ValueError(
                "Received an invalid value for `max_message_mb`, expected a number in "
                f"(0, 2048). Received: max_message_mb={max_message_mb!r}"
            )
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ValueError(
                "Received an invalid value for `retries`, expected a non-negative integer. "
                f"Received: retries={retries!r}"
            )
        return cls(model_name, version, signature, float(timeout),
                   int(max_message_mb * 2**20), retries)

    def channel_options(self, extra: Sequence[tuple[str, Any]]) -> list[tuple[str, Any]]:
        """gRPC channel arguments: the message limits, then `extra`."""
        return [("grpc.max_send_message_length", self.max_message_bytes),
                ("grpc.max_receive_message_length", self.max_message_bytes), *extra]

    def model_spec(self, version: int | None, signature: str = "") -> pb.ModelSpec:
        """The `ModelSpec` of a request for `version` (None: latest)."""
        spec = pb.ModelSpec(name=self.model_name, signature_name=signature)
        if version is not None:
            spec.version.value = version
        return spec


def check_signature(signature: str) -> str:
    """Returns `signature` if it is a non-empty string, else raises ValueError."""
    if not isinstance(signature, str) or not signature:
        raise ValueError(
            "Received an invalid value for `signature`, expected a non-empty string such "
            f"as {SERVING_SIGNATURE!r}. Received: signature={signature!r}"
        )
    return signature


def check_timeout(timeout: float) -> float:
    """Returns `timeout` if it is a positive number of seconds, else raises ValueError."""
    if isinstance(timeout, bool) or not (isinstance(timeout, (int, float)) and timeout > 0):
        raise ValueError(
            "Received an invalid value for `timeout`, expected a positive number of "
            f"seconds. Received: timeout={timeout!r}"
        )
    return float(timeout)


def retry_delays(retries: int) -> list[float]:
    """Seconds to wait before each retry: exponential backoff with jitter."""
    return [min(_INITIAL_BACKOFF_S * 2**attempt, _MAX_BACKOFF_S) * random.uniform(0.5, 1.0)
            for attempt in range(retries)]


def is_retryable(error: grpc.RpcError) -> bool:
    """Only UNAVAILABLE is retried: the request did not reach a working server."""
    return error.code() == grpc.StatusCode.UNAVAILABLE


def as_batch(x: Any) -> np.ndarray:
    """Returns `x` as a float32 array with a batch axis.

    Raises:
        ValueError: If `x` is not numeric or has no batch axis.
        InvalidArgumentError: If the batch is empty or holds NaN or Inf values,
            which the server refuses (INVALID_ARGUMENT) and the exported model
            scores +inf; the request is not sent.
    """
    try:
        batch = np.asarray(x, dtype=np.float32)
    except (TypeError, ValueError) as error:
        raise ValueError(
            "Expected `x` to be a numeric array of shape (batch, *input_shape). "
            f"Received: {type(x).__name__} that cannot be read as float32 ({error})"
        ) from error
    if batch.ndim < 1:
        raise ValueError(
            "Expected `x` to have a batch axis, shape (batch, *input_shape). "
            f"Received: x.shape={batch.shape}"
        )
    if len(batch) == 0:
        raise InvalidArgumentError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"Expected at least one sample. Received: x.shape={batch.shape} (not sent)",
        )
    finite = np.isfinite(batch).reshape(len(batch), -1).all(axis=1)
    if not finite.all():
        rows = np.flatnonzero(~finite)
        raise InvalidArgumentError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"Expected finite numbers; samples {[int(r) for r in rows[:10]]}"
            f"{'...' if len(rows) > 10 else ''} of {len(batch)} hold NaN or Inf values "
            "(not sent; the exported model would score them +inf, an anomaly).",
        )
    return batch


def _tensor_info(info: pb.TensorInfo) -> TensorInfo:
    try:
        dtype = numpy_dtype(info.dtype)
    except ValueError:
        dtype = None
    if info.tensor_shape.unknown_rank:
        return TensorInfo(dtype, None)
    return TensorInfo(dtype, tuple(d.size if d.size >= 0 else None
                                   for d in info.tensor_shape.dim))


def metadata_exchange(config: ClientConfig) -> Generator[Call, Any, ModelMetadata]:
    """Asks for the signature definitions of the configured version."""
    request = pb.GetModelMetadataRequest(
        model_spec=config.model_spec(config.version), metadata_field=[SIGNATURE_DEF_FIELD]
    )
    response = yield Call("GetModelMetadata", request)
    packed = response.metadata.get(SIGNATURE_DEF_FIELD)
    # `Any.Unpack` compares type names, and this message's package is the project's own.
    packed_type = packed.type_url.rpartition("/")[2] if packed is not None else None
    if packed_type != _SIGNATURE_DEF_MAP_TYPE:
        raise ValueError(
            f"Expected the server's metadata[{SIGNATURE_DEF_FIELD!r}] to hold a "
            f"{_SIGNATURE_DEF_MAP_TYPE}. Received: {packed_type or 'nothing'}"
        )
    signature_map = pb.SignatureDefMap.FromString(packed.value)
    signatures = {
        name: SignatureInfo(
            inputs={k: _tensor_info(v) for k, v in signature.inputs.items()},
            outputs={k: _tensor_info(v) for k, v in signature.outputs.items()},
            method_name=signature.method_name,
        )
        for name, signature in signature_map.signature_def.items()
    }
    return ModelMetadata(response.model_spec.name, response.model_spec.version.value, signatures)


def status_exchange(config: ClientConfig) -> Generator[Call, Any, list[VersionStatus]]:
    """Asks for the state of the model's versions (of the configured one if set)."""
    request = pb.GetModelStatusRequest(model_spec=config.model_spec(config.version))
    response = yield Call("GetModelStatus", request)
    state_names = {number: name for name, number in pb.ModelVersionStatus.State.items()}
    return sorted(
        (VersionStatus(s.version, state_names.get(s.state, str(s.state)),
                       _STATUS_NAMES.get(s.status.error_code, str(s.status.error_code)),
                       s.status.error_message)
         for s in response.model_version_status),
        key=lambda status: status.version,
    )


def rows_per_request(
    config: ClientConfig,
    batch: np.ndarray,
    signature: SignatureInfo | None,
    output_filter: Sequence[str],
) -> int:
    """How many rows keep both the request and its response under the message limit.

    The response size comes from the signature's output shapes; outputs whose
    sample shape is unknown are assumed as large as an input sample.
    """
    input_row = batch[:1].nbytes
    output_row = input_row
    if signature is not None:
        names = output_filter or list(signature.outputs)
        infos = [signature.outputs[name] for name in names if name in signature.outputs]
        output_row = sum(
            math.prod(info.shape[1:]) * info.dtype.itemsize
            if info.dtype is not None and info.shape and None not in info.shape[1:]
            else input_row
            for info in infos
        )
    row = max(input_row, output_row, 1)
    rows = (config.max_message_bytes - _ENVELOPE_BYTES) // row
    if rows < 1:
        raise ValueError(
            f"One sample needs {row} bytes in a message, more than max_message_mb="
            f"{config.max_message_bytes / 2**20:g} allows; raise `max_message_mb`."
        )
    return rows


def predict_exchange(
    config: ClientConfig,
    batch: np.ndarray,
    signature: str,
    output_filter: Sequence[str],
    metadata: ModelMetadata,
) -> Generator[Call, Any, dict[str, np.ndarray]]:
    """Predicts a batch in as many requests as the message limit needs, in order.

    When no version is configured, every request after the first asks for the
    version that answered the first, so one batch never mixes two versions
    during a rollout.
    """
    rows = rows_per_request(config, batch, metadata.signatures.get(signature), output_filter)
    version = config.version
    parts = []
    for start in range(0, max(len(batch), 1), rows):
        request = pb.PredictRequest(
            model_spec=config.model_spec(version, signature), output_filter=output_filter
        )
        request.inputs[INPUT_NAME].CopyFrom(to_tensor_proto(batch[start:start + rows]))
        response = yield Call("Predict", request)
        if response.model_spec.HasField("version"):
            version = response.model_spec.version.value
        parts.append({name: to_ndarray(proto) for name, proto in response.outputs.items()})
    if len(parts) == 1:
        return parts[0]
    return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}
