"""What the clients send and how they read answers, independent of the transport.

Each operation is a generator ("exchange") that yields lists of `Call`s, the
calls of one list to be made concurrently, and receives their responses in the
same order, so that the blocking and the asyncio client drive the same logic
and differ only in how calls are awaited.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
import numpy as np
from google.protobuf.message import Message

from memae_tf.client.errors import (
    DeadlineExceededError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    error_from_rpc,
)
from memae_tf.client.proto import tf_serving_pb2 as pb
from memae_tf.client.tensors import numpy_dtype, to_ndarray, to_tensor_proto
from memae_tf.common.checks import check_bool, check_positive_int
from memae_tf.common.contract import (
    DEFAULT_MAX_BATCH_SIZE,
    EXPECTED_RATE_OUTPUT,
    FLAGGED_FRAME_SCORES,
    INPUT_RANGE_OUTPUT,
    MODEL_INFO_SIGNATURE,
    REFERENCE_QUANTILES_OUTPUT,
    SERVING_SIGNATURE,
    SIGNATURE_DEF_FIELD,
    TAKES_UINT8_OUTPUT,
    THRESHOLD_OUTPUT,
    frame_threshold_output,
    uint8_signature,
)
from memae_tf.common.contract import INPUT_NAME as INPUT_NAME
from memae_tf.common.scaling import scale_uint8

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


@dataclass(frozen=True, eq=False)
class ModelInfo:
    """What the export's `model_info` signature says about a served version.

    Attributes:
        version: The version that answered.
        input_range: `(low, high)`: uint8 inputs are scaled into it, float
            inputs outside it are refused; None when the export does not say
            (a bare `export_saved_model` without `input_range`).
        threshold: The score above which `is_anomaly` is true: the largest
            float32 not above the detector's `threshold_`, so that a served
            score is above it exactly when it is flagged.
        expected_rate: Share of reference samples above the threshold (the
            `fpr` or `contamination` given to `infer_threshold`), or None when
            the threshold was set by hand.
        reference_quantiles: Float64 `(101,)`, the scores at levels 0, 0.01,
            ..., 1 of the data the threshold was set on, or None (as above).
        frame_thresholds: For a video model exported with frame thresholds,
            frame score (`"last"`, `"patch"`, `"relative"`,
            `"last_plus_temporal"`) → the score of the `frame_score`
            signature above which its `is_anomaly_<name>` is true (as
            `threshold`, of `MemAE.frame_thresholds_`); None for other exports.
        takes_uint8: Whether the export has the uint8 twins of its scoring
            signatures (`serving_default_uint8`, `frame_score_uint8`), which
            scale uint8 pixels into the input range themselves.
    """

    version: int
    input_range: tuple[float, float] | None
    threshold: float
    expected_rate: float | None
    reference_quantiles: np.ndarray | None
    frame_thresholds: dict[str, float] | None = None
    takes_uint8: bool = False


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


@dataclass
class ServedModel:
    """The client's cache of the served version: its metadata and `model_info`.

    Refreshed when a response comes from another version than the cached one.
    """

    metadata: ModelMetadata | None = None
    info: ModelInfo | None = None


@dataclass(frozen=True)
class ClientConfig:
    """The validated settings shared by `MemAEClient` and `AsyncMemAEClient`."""

    model_name: str
    version: int | None
    signature: str
    timeout: float
    max_message_bytes: int
    retries: int
    version_label: str | None = None
    max_batch_size: int | None = DEFAULT_MAX_BATCH_SIZE
    concurrency: int = 4
    deadline: float | None = None
    check_range: bool = True

    @classmethod
    def create(
        cls,
        model_name: str,
        version: int | None,
        signature: str,
        timeout: float,
        max_message_mib: float,
        retries: int,
        *,
        version_label: str | None = None,
        max_batch_size: int | None = DEFAULT_MAX_BATCH_SIZE,
        concurrency: int = 4,
        deadline: float | None = None,
        check_range: bool = True,
    ) -> ClientConfig:
        """Checks the client arguments and returns the config, or raises ValueError."""
        if not isinstance(model_name, str) or not model_name:
            raise ValueError(
                "Received an invalid value for `model_name`, expected a non-empty string. "
                f"Received: model_name={model_name!r}"
            )
        version = check_positive_int("version", version, allow_none=True)
        if version_label is not None and (not isinstance(version_label, str) or not version_label):
            raise ValueError(
                "Received an invalid value for `version_label`, expected None or a label "
                f"such as 'stable' or 'canary'. Received: version_label={version_label!r}"
            )
        if version is not None and version_label is not None:
            raise ValueError(
                "Give `version` or `version_label`, not both (ModelSpec's version_choice). "
                f"Received: version={version!r}, version_label={version_label!r}"
            )
        check_signature(signature)
        check_timeout(timeout)
        check_deadline(deadline)
        if isinstance(max_message_mib, bool) or not (
            isinstance(max_message_mib, (int, float)) and 0 < max_message_mib < 2048
        ):
            raise ValueError(
                "Received an invalid value for `max_message_mib`, expected a number in "
                f"(0, 2048). Received: max_message_mib={max_message_mib!r}"
            )
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ValueError(
                "Received an invalid value for `retries`, expected a non-negative integer. "
                f"Received: retries={retries!r}"
            )
        max_batch_size = check_positive_int("max_batch_size", max_batch_size, allow_none=True)
        concurrency = check_positive_int("concurrency", concurrency)
        check_bool("check_range", check_range)
        return cls(model_name, version, signature, float(timeout),
                   int(max_message_mib * 2**20), retries, version_label, max_batch_size,
                   concurrency, None if deadline is None else float(deadline), check_range)

    def channel_options(self, extra: Sequence[tuple[str, Any]]) -> list[tuple[str, Any]]:
        """gRPC channel arguments: the message limits, then `extra`."""
        return [("grpc.max_send_message_length", self.max_message_bytes),
                ("grpc.max_receive_message_length", self.max_message_bytes), *extra]

    def model_spec(self, version: int | None, signature: str = "") -> pb.ModelSpec:
        """The `ModelSpec` of a request: `version`, else the configured label, else latest."""
        spec = pb.ModelSpec(name=self.model_name, signature_name=signature)
        if version is not None:
            spec.version.value = version
        elif self.version_label is not None:
            spec.version_label = self.version_label
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


def check_deadline(deadline: float | None) -> float | None:
    """Returns `deadline` if it is None or a positive number of seconds, else raises."""
    if deadline is not None and (isinstance(deadline, bool) or not (
        isinstance(deadline, (int, float)) and deadline > 0
    )):
        raise ValueError(
            "Received an invalid value for `deadline`, expected None or a positive number "
            f"of seconds for the whole call. Received: deadline={deadline!r}"
        )
    return None if deadline is None else float(deadline)


@dataclass
class CallTiming:
    """The clock of one client call: per-RPC `timeout` under one `deadline` for all of it.

    Args:
        timeout: Deadline of each RPC, in seconds.
        deadline: Seconds for the whole call (every chunk, retry and backoff),
            or None for no limit beyond each RPC's.
    """

    timeout: float
    deadline: float | None
    started: float = field(default_factory=time.monotonic)

    def left(self) -> float:
        """Seconds left before the whole-call deadline (inf without one)."""
        if self.deadline is None:
            return math.inf
        return self.started + self.deadline - time.monotonic()

    def expired(self, cause: str = "") -> DeadlineExceededError:
        """The error raised when the whole-call deadline has run out."""
        return DeadlineExceededError(
            grpc.StatusCode.DEADLINE_EXCEEDED,
            f"The call's deadline of {self.deadline:g} s ran out"
            f"{f' ({cause})' if cause else ''}; raise `deadline` or send fewer rows.",
        )

    def rpc_timeout(self) -> float:
        """The timeout of the next RPC: `timeout`, cut to what is left of `deadline`.

        Raises:
            DeadlineExceededError: If nothing is left.
        """
        left = self.left()
        if left <= 0:
            raise self.expired()
        return min(self.timeout, left)


def retry_delays(retries: int) -> list[float]:
    """Seconds to wait before each retry: exponential backoff with jitter."""
    return [min(_INITIAL_BACKOFF_S * 2**attempt, _MAX_BACKOFF_S) * random.uniform(0.5, 1.0)
            for attempt in range(retries)]


def is_retryable(error: grpc.RpcError) -> bool:
    """Only UNAVAILABLE is retried: the request did not reach a working server."""
    return error.code() == grpc.StatusCode.UNAVAILABLE


def next_retry(
    error: grpc.RpcError, delays: Iterator[float], timing: CallTiming
) -> float:
    """Seconds to wait before retrying a failed RPC, or raises the typed error.

    Raises:
        MemAEClientError: The error's typed class, if it is not retried or the
            retries are spent; `DeadlineExceededError` if the whole-call
            deadline ran out (or would, before the retry).
    """
    delay = next(delays, None) if is_retryable(error) else None
    if delay is not None and delay < timing.left():
        return delay
    if error.code() == grpc.StatusCode.DEADLINE_EXCEEDED and timing.left() <= 0:
        raise timing.expired() from error
    if delay is not None:
        raise timing.expired(f"before retrying {error.code().name}: {error.details()}") from error
    raise error_from_rpc(error) from error


def _not_sent(message: str) -> InvalidArgumentError:
    return InvalidArgumentError(grpc.StatusCode.INVALID_ARGUMENT, f"{message} (not sent)")


def _row_list(rows: np.ndarray, total: int) -> str:
    return f"{[int(r) for r in rows[:10]]}{'...' if len(rows) > 10 else ''} of {total}"


def as_batch(x: Any) -> np.ndarray:
    """Returns `x` as a uint8 (images) or float32 array with a batch axis.

    Raises:
        ValueError: If `x` is not numeric or has no batch axis.
        InvalidArgumentError: Without sending, if the batch is empty or holds
            NaN or Inf values (the exported model would score them +inf).
    """
    batch = np.asarray(x)
    if batch.dtype != np.uint8:
        try:
            batch = np.asarray(batch, dtype=np.float32)
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
        raise _not_sent(f"Expected at least one sample. Received: x.shape={batch.shape}")
    if batch.dtype != np.uint8:
        finite = np.isfinite(batch.reshape(len(batch), -1)).all(axis=1)
        if not finite.all():
            raise _not_sent(
                f"Expected finite numbers; samples "
                f"{_row_list(np.flatnonzero(~finite), len(batch))} hold NaN or Inf values "
                "(the exported model would score them +inf, an anomaly)"
            )
    return batch


def prepare_batch(batch: np.ndarray, info: ModelInfo | None, check_range: bool = True
                  ) -> np.ndarray:
    """Returns a batch of `as_batch` as the float32 batch the served model takes.

    uint8 images are scaled into the model's input range as `MemAE.preprocess`
    does (`memae_tf.common.scaling.scale_uint8`); float inputs must, with
    `check_range`, lie inside the range.

    Args:
        batch: uint8 images or float32 numbers, `(batch, *input_shape)`.
        info: The served version's `model_info`; None for exports without it.
        check_range: Whether float inputs outside the range are refused.

    Raises:
        InvalidArgumentError: Without sending, if the batch holds values
            outside the input range, or is uint8 for an export that does not
            say its input range.
    """
    input_range = None if info is None else info.input_range
    if batch.dtype == np.uint8:
        if input_range is None:
            raise _not_sent(
                "Received uint8 inputs, but the served model does not say its input range "
                f"(no {MODEL_INFO_SIGNATURE!r} signature, or one without "
                f"{INPUT_RANGE_OUTPUT!r}: an older export or one without a detector); "
                "scale them into the model's range yourself, e.g. with MemAE.preprocess, "
                "or export the model again with MemAE.export"
            )
        return scale_uint8(batch, input_range)
    if input_range is not None and check_range:
        rows = batch.reshape(len(batch), -1)
        low, high = input_range
        outside = ((rows < low) | (rows > high)).any(axis=1)
        if outside.any():
            raise _not_sent(
                f"Expected values in the model's input range [{low:g}, {high:g}]. Received: "
                f"min={float(rows.min()):g}, max={float(rows.max()):g}; samples "
                f"{_row_list(np.flatnonzero(outside), len(batch))} lie outside. Send uint8 "
                "images as uint8 (the client scales them), scale floats into the range, or "
                "pass check_range=False for data that may leave it (e.g. min-max scaled "
                "features)"
            )
    return batch


def request_batch(
    raw: np.ndarray, served: ServedModel, signature: str, check_range: bool = True
) -> tuple[str, np.ndarray]:
    """Returns the signature to ask and the batch to send for a batch of `as_batch`.

    A uint8 batch goes as it is to the uint8 twin of `signature`
    (`uint8_signature`) when the served version has one (`ModelInfo.takes_uint8`
    and its metadata): a quarter of the float32 bytes, scaled in the graph to
    the bits `prepare_batch` computes. Otherwise the batch goes to `signature`,
    prepared by `prepare_batch` (or as it is, uint8, if `signature` itself
    takes uint8).

    Raises:
        InvalidArgumentError: Without sending, as `prepare_batch`, or if
            `signature` takes uint8 and the batch is not uint8.
    """
    signatures = served.metadata.signatures if served.metadata is not None else {}
    if (raw.dtype == np.uint8 and served.info is not None and served.info.takes_uint8
            and uint8_signature(signature) in signatures):
        signature = uint8_signature(signature)
    served_input = signatures[signature].inputs.get(INPUT_NAME) if signature in signatures else None
    if served_input is None or served_input.dtype != np.uint8:
        return signature, prepare_batch(raw, served.info, check_range)
    if raw.dtype != np.uint8:
        raise _not_sent(
            f"Expected uint8 pixels for the signature {signature!r}, which scales them "
            f"itself. Received: dtype={raw.dtype}; send uint8 images, or float inputs to "
            f"{signature.removesuffix('_uint8')!r}"
        )
    return signature, raw


def _tensor_info(info: pb.TensorInfo) -> TensorInfo:
    try:
        dtype = numpy_dtype(info.dtype)
    except ValueError:
        dtype = None
    if info.tensor_shape.unknown_rank:
        return TensorInfo(dtype, None)
    return TensorInfo(dtype, tuple(d.size if d.size >= 0 else None
                                   for d in info.tensor_shape.dim))


def metadata_exchange(
    config: ClientConfig, version: int | None = None
) -> Generator[list[Call], Any, ModelMetadata]:
    """Asks for the signature definitions of `version` (None: the configured one)."""
    request = pb.GetModelMetadataRequest(
        model_spec=config.model_spec(config.version if version is None else version),
        metadata_field=[SIGNATURE_DEF_FIELD],
    )
    (response,) = yield [Call("GetModelMetadata", request)]
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


def model_info_exchange(
    config: ClientConfig, metadata: ModelMetadata, version: int | None
) -> Generator[list[Call], Any, ModelInfo | None]:
    """Runs the `model_info` signature on one row of zeros, asking for `version`.

    `version` None asks for the configured label or the latest version, as the
    metadata request did: the answer's `ModelInfo.version` says which version
    it came from. Returns None when `metadata` has no such signature.
    """
    signature = metadata.signatures.get(MODEL_INFO_SIGNATURE)
    if signature is None:
        return None
    shape = signature.inputs[INPUT_NAME].shape or (None,)
    row = np.zeros((1, *(size or 1 for size in shape[1:])), np.float32)
    request = pb.PredictRequest(model_spec=config.model_spec(version, MODEL_INFO_SIGNATURE))
    request.inputs[INPUT_NAME].CopyFrom(to_tensor_proto(row))
    (response,) = yield [Call("Predict", request)]
    outputs = {name: to_ndarray(proto)[0] for name, proto in response.outputs.items()}
    input_range = outputs.get(INPUT_RANGE_OUTPUT)
    rate = outputs.get(EXPECTED_RATE_OUTPUT)
    quantiles = outputs.get(REFERENCE_QUANTILES_OUTPUT)
    frame_thresholds = {name: float(outputs[frame_threshold_output(name)])
                        for name in FLAGGED_FRAME_SCORES
                        if frame_threshold_output(name) in outputs}
    return ModelInfo(
        version=response.model_spec.version.value or metadata.version,
        input_range=None if input_range is None else (float(input_range[0]),
                                                      float(input_range[1])),
        threshold=float(outputs[THRESHOLD_OUTPUT]),
        expected_rate=None if rate is None else float(rate),
        reference_quantiles=None if quantiles is None else quantiles.astype(np.float64),
        frame_thresholds=frame_thresholds or None,
        takes_uint8=bool(outputs.get(TAKES_UINT8_OUTPUT, False)),
    )


def refresh_exchange(
    config: ClientConfig, served: ServedModel, version: int | None = None
) -> Generator[list[Call], Any, ServedModel]:
    """Fetches the metadata and `model_info` of `version` into the cache `served`.

    With no version asked for (the latest, or a label), both requests ask the
    server the same way. In a rollout the version that answered the metadata
    can be unloaded before `model_info` is asked (TF Serving unloads the old
    version as soon as the new one is available); `model_info` then comes
    from the new version, and its metadata is fetched again, so that the cache
    never pairs one version's signatures with another's settings.
    """
    if version is None:
        version = config.version
    metadata = yield from metadata_exchange(config, version)
    info = yield from model_info_exchange(config, metadata, version)
    if info is not None and info.version != metadata.version:
        metadata = yield from metadata_exchange(config, info.version)
    served.metadata, served.info = metadata, info
    return served


def status_exchange(config: ClientConfig) -> Generator[list[Call], Any, list[VersionStatus]]:
    """Asks for the state of the model's versions (of the configured one if set)."""
    request = pb.GetModelStatusRequest(model_spec=config.model_spec(config.version))
    (response,) = yield [Call("GetModelStatus", request)]
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
    """How many rows one request may carry.

    At most `config.max_batch_size` rows (what a batching server accepts in
    one request), and few enough that both the request and its response stay
    under the message limit. The response size comes from the signature's
    output shapes; outputs whose sample shape is unknown are assumed to hold
    an input sample's values as float32 (a uint8 input sample is a quarter of
    its float32 reconstruction).
    """
    input_row = batch[:1].nbytes
    output_row = unknown_row = max(input_row, batch[:1].size * np.dtype(np.float32).itemsize)
    if signature is not None:
        names = output_filter or list(signature.outputs)
        infos = [signature.outputs[name] for name in names if name in signature.outputs]
        output_row = sum(
            math.prod(info.shape[1:]) * info.dtype.itemsize
            if info.dtype is not None and info.shape and None not in info.shape[1:]
            else unknown_row
            for info in infos
        )
    row = max(input_row, output_row, 1)
    rows = (config.max_message_bytes - _ENVELOPE_BYTES) // row
    if rows < 1:
        raise ValueError(
            f"One sample needs {row} bytes in a message, more than max_message_mib="
            f"{config.max_message_bytes / 2**20:g} allows; raise `max_message_mib`."
        )
    return rows if config.max_batch_size is None else min(rows, config.max_batch_size)


def _predict_call(
    config: ClientConfig, rows: np.ndarray, version: int | None, signature: str,
    output_filter: Sequence[str],
) -> Call:
    request = pb.PredictRequest(
        model_spec=config.model_spec(version, signature), output_filter=output_filter
    )
    request.inputs[INPUT_NAME].CopyFrom(to_tensor_proto(rows))
    return Call("Predict", request)


def _outputs(response: pb.PredictResponse) -> dict[str, np.ndarray]:
    return {name: to_ndarray(proto) for name, proto in response.outputs.items()}


def _served_version(response: pb.PredictResponse) -> int | None:
    return response.model_spec.version.value if response.model_spec.HasField("version") else None


def _input_range(served: ServedModel) -> tuple[float, float] | None:
    return None if served.info is None else served.info.input_range


def predict_exchange(
    config: ClientConfig,
    served: ServedModel,
    x: Any,
    signature: str,
    output_filter: Sequence[str],
    restart: bool = True,
) -> Generator[list[Call], Any, dict[str, np.ndarray]]:
    """Predicts a batch in as many requests as the limits need; results in order.

    A uint8 batch goes to the uint8 twin of `signature` where the served
    version has one, else it is scaled here (`request_batch`). The first
    request goes alone and tells which version serves; if it is not the
    cached one, the metadata and `model_info` are fetched again (and the
    first request is redone if the new version takes another signature or,
    for a batch scaled here, another input range).
    The other requests then go together (the transport bounds how many run at
    once), each asking for that version, so one batch never mixes two
    versions during a rollout. If that version is unloaded before they are
    answered (NOT_FOUND; TF Serving unloads the old version as soon as the new
    one is available), or if the uint8 twin is refused as missing
    (FAILED_PRECONDITION: a version exported without it took over), the whole
    batch starts again, once, on the version serving then, unless the client
    was configured with that version number.
    """
    raw = as_batch(x)
    if served.metadata is None:
        yield from refresh_exchange(config, served)
    asked, batch = request_batch(raw, served, signature, config.check_range)
    sent = min(len(batch), rows_per_request(config, batch, served.metadata.signatures.get(
        asked), output_filter))
    try:
        (first,) = yield [_predict_call(config, batch[:sent], config.version, asked,
                                        output_filter)]
    except FailedPreconditionError:
        if not restart or config.version is not None or asked == signature:
            raise
        yield from refresh_exchange(config, served)
        return (yield from predict_exchange(config, served, x, signature, output_filter,
                                            restart=False))
    version = _served_version(first)
    if version is not None and version != served.metadata.version:
        input_range = _input_range(served)
        yield from refresh_exchange(config, served, version)
        again, batch_again = request_batch(raw, served, signature, config.check_range)
        if again != asked or (batch_again.dtype != np.uint8
                              and _input_range(served) != input_range):
            asked, batch = again, batch_again
            sent = min(sent, rows_per_request(config, batch, served.metadata.signatures.get(
                asked), output_filter))
            (first,) = yield [_predict_call(config, batch[:sent], version, asked,
                                            output_filter)]
    rows = rows_per_request(config, batch, served.metadata.signatures.get(asked),
                            output_filter)
    parts = [_outputs(first)]
    if sent < len(batch):
        pinned = config.version if version is None else version
        try:
            rest = yield [_predict_call(config, batch[start:start + rows], pinned, asked,
                                        output_filter)
                          for start in range(sent, len(batch), rows)]
        except NotFoundError:
            if not restart or config.version is not None or version is None:
                raise
            return (yield from predict_exchange(config, served, x, signature, output_filter,
                                                restart=False))
        parts.extend(_outputs(response) for response in rest)
    if len(parts) == 1:
        return parts[0]
    return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}
