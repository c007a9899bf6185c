"""Blocking gRPC client for MemAE models served by TF Serving or the development server."""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Generator, Sequence
from concurrent import futures
from typing import Any

import grpc
import numpy as np

from memae_tf.client._protocol import (
    METHODS,
    Call,
    CallTiming,
    ClientConfig,
    ModelInfo,
    ModelMetadata,
    ServedModel,
    VersionStatus,
    check_deadline,
    check_signature,
    check_timeout,
    next_retry,
    predict_exchange,
    refresh_exchange,
    retry_delays,
    status_exchange,
)
from memae_tf.client.errors import MemAEClientError
from memae_tf.common.contract import DEFAULT_MAX_BATCH_SIZE, SCORE_OUTPUT, SERVING_SIGNATURE
from memae_tf.common.deprecation import renamed_argument

Exchange = Generator[list[Call], Any, Any]


def _check_output_filter(output_filter: Sequence[str] | None) -> list[str]:
    if output_filter is None:
        return []
    if isinstance(output_filter, str) or not all(
        isinstance(name, str) and name for name in output_filter
    ):
        raise ValueError(
            "Received an invalid value for `output_filter`, expected None or a list of "
            f"output names such as ['score']. Received: output_filter={output_filter!r}"
        )
    return list(output_filter)


def _failure(future: futures.Future) -> BaseException | None:
    """The error a chunk ends its call with; None while it runs or once answered."""
    if future.cancelled():  # by close(), before it was sent: as gRPC ends one in flight
        return MemAEClientError(grpc.StatusCode.CANCELLED, "Channel closed!")
    return future.exception() if future.done() else None


def warn_predict_renamed(client: str) -> None:
    """The DeprecationWarning of the clients' former `predict`."""
    warnings.warn(
        f"{client}.predict is renamed run_signature: it returns the served signature's "
        "outputs, not MemAE.predict's 0/1 labels; predict will be removed.",
        DeprecationWarning, stacklevel=3,
    )


class BaseClient:
    """What the blocking and the asyncio client share: settings, stubs and exchanges."""

    # The module whose channels the client opens: `grpc`, or `grpc.aio` for asyncio.
    _channels: Any = grpc

    def __init__(
        self,
        target: str,
        model_name: str,
        version: int | None = None,
        signature: str = SERVING_SIGNATURE,
        timeout: float = 10.0,
        credentials: grpc.ChannelCredentials | None = None,
        max_message_mib: float = 64,
        retries: int = 3,
        *,
        max_message_mb: float | None = None,
        version_label: str | None = None,
        max_batch_size: int | None = DEFAULT_MAX_BATCH_SIZE,
        concurrency: int = 4,
        deadline: float | None = None,
        check_range: bool = True,
        channel_options: Sequence[tuple[str, Any]] = (),
    ) -> None:
        if not isinstance(target, str) or not target:
            raise ValueError(
                "Received an invalid value for `target`, expected 'host:port'. "
                f"Received: target={target!r}"
            )
        if credentials is not None and not isinstance(credentials, grpc.ChannelCredentials):
            raise TypeError(
                "Expected `credentials` to be None or grpc.ChannelCredentials, e.g. "
                "grpc.ssl_channel_credentials(root_certificates=...). "
                f"Received: {type(credentials).__name__}"
            )
        self.target = target
        self._config = ClientConfig.create(
            model_name, version, signature, timeout,
            renamed_argument("max_message_mb", "max_message_mib", max_message_mb,
                             max_message_mib, default=64),
            retries,
            version_label=version_label, max_batch_size=max_batch_size,
            concurrency=concurrency, deadline=deadline, check_range=check_range,
        )
        self._served = ServedModel()
        options = self._config.channel_options(channel_options)
        if credentials is None:
            self._channel = self._channels.insecure_channel(target, options=options)
        else:
            self._channel = self._channels.secure_channel(target, credentials, options=options)
        # Generic unary calls on TF Serving's method paths: no generated stubs needed.
        self._rpcs: dict[str, Any] = {
            name: self._channel.unary_unary(
                path, request_serializer=request.SerializeToString,
                response_deserializer=response.FromString)
            for name, (path, request, response) in METHODS.items()
        }

    def _timing(self, timeout: float | None, deadline: float | None) -> CallTiming:
        return CallTiming(
            self._config.timeout if timeout is None else check_timeout(timeout),
            self._config.deadline if deadline is None else check_deadline(deadline),
        )

    def _predict_exchange(
        self, x: Any, signature: str | None, output_filter: Sequence[str] | None
    ) -> Exchange:
        signature = self._config.signature if signature is None else check_signature(signature)
        output_filter = _check_output_filter(output_filter)
        return (yield from predict_exchange(self._config, self._served, x, signature,
                                            output_filter))

    def _metadata_exchange(self) -> Exchange:
        served = yield from refresh_exchange(self._config, self._served)
        return served.metadata

    def _model_info_exchange(self) -> Exchange:
        if self._served.metadata is None:
            yield from refresh_exchange(self._config, self._served)
        return self._served.info

    def _status_exchange(self) -> Exchange:
        return (yield from status_exchange(self._config))


class MemAEClient(BaseClient):
    """Scores samples with a MemAE model served over gRPC by TF Serving.

    Works unchanged against TF Serving and the development server (`memae
    serve`). A batch is split into requests of at most `max_batch_size` rows
    that also stay under `max_message_mib`; the first request goes alone, the
    others up to `concurrency` at a time, all to the version that answered the
    first, and the results come back in order. Each RPC gets `timeout`
    seconds, the whole call `deadline` seconds; calls failing with UNAVAILABLE
    are retried up to `retries` times with exponential backoff; failures raise
    a `MemAEClientError` subclass carrying the gRPC code and the server's
    message.

    Inputs need no knowledge of the model: the client reads the export's
    `model_info` signature once per served version and refuses (without
    sending) float batches outside the model's input range. `uint8` images
    go as uint8 to the signature's uint8 twin (`serving_default_uint8`,
    `frame_score_uint8`: a quarter of the float32 bytes) where the served
    export has one, which scales them in the graph to the very float32 bits
    of `MemAE.preprocess`; for exports without it, the client scales them
    itself as `MemAE.preprocess` does and sends float32.

    Args:
        target: Server address, `"host:port"` (any gRPC target, e.g.
            `"dns:///memae-serving-headless:8500"`).
        model_name: The served model name.
        version: A specific version, or None for the latest (or the label's).
        signature: Default signature of `run_signature` and `score`.
        timeout: Deadline of each RPC in seconds.
        credentials: `grpc.ssl_channel_credentials(...)` for TLS; None for plaintext.
        max_message_mib: Largest gRPC message sent or received, in MiB.
        retries: How many times a call failing with UNAVAILABLE is retried.
        version_label: A version label of the server's `models.config`, e.g.
            `"canary"`; exclusive with `version`.
        max_batch_size: Most rows in one request: the `max_batch_size` of the
            server's `batching_parameters.txt` (see `read_max_batch_size`);
            64, the shipped ConfigMap's, by default; None for no row limit
            (servers without batching).
        concurrency: How many requests of one call are in flight at once.
        deadline: Seconds for a whole `run_signature`/`score` call, every chunk,
            retry and backoff included; None for only the per-RPC `timeout`.
        check_range: Whether float inputs outside the model's input range are
            refused; False for data that may leave it (e.g. min-max scaled
            features of new data).
        channel_options: Extra gRPC channel arguments, e.g.
            `[("grpc.lb_policy_name", "round_robin")]`.
        max_message_mb: Deprecated name of `max_message_mib`.

    Example:

    >>> with MemAEClient("localhost:8500", "memae") as client:  # doctest: +SKIP
    ...     scores = client.score(images)                       # float32 (batch,)
    ...     outputs = client.run_signature(images)              # score, is_anomaly, ...
    """

    # The threads that send the chunks after the first, made on first use.
    _pool: futures.ThreadPoolExecutor | None = None
    _pool_lock = threading.Lock()

    def _invoke(self, call: Call, timing: CallTiming) -> Any:
        rpc = self._rpcs[call.method]
        delays = iter(retry_delays(self._config.retries))
        while True:
            try:
                return rpc(call.request, timeout=timing.rpc_timeout())
            except grpc.RpcError as error:
                time.sleep(next_retry(error, delays, timing))

    def _invoke_all(self, calls: list[Call], timing: CallTiming) -> list[Any]:
        if len(calls) == 1:
            return [self._invoke(calls[0], timing)]
        with self._pool_lock:
            if self._pool is None:
                self._pool = futures.ThreadPoolExecutor(self._config.concurrency,
                                                        thread_name_prefix="memae-client")
        pending = [self._pool.submit(self._invoke, call, timing) for call in calls]
        futures.wait(pending, return_when=futures.FIRST_EXCEPTION)
        failed = [error for error in map(_failure, pending) if error is not None]
        if failed:
            for future in pending:
                future.cancel()
            raise failed[0]
        return [future.result() for future in pending]

    def _run(self, exchange: Exchange, timing: CallTiming) -> Any:
        try:
            calls = next(exchange)
            while True:
                try:
                    answers = self._invoke_all(calls, timing)
                except MemAEClientError as error:
                    calls = exchange.throw(error)  # the exchange recovers, or it is raised
                    continue
                calls = exchange.send(answers)
        except StopIteration as finished:
            return finished.value

    def run_signature(
        self,
        x: Any,
        *,
        signature: str | None = None,
        output_filter: Sequence[str] | None = None,
        timeout: float | None = None,
        deadline: float | None = None,
    ) -> dict[str, np.ndarray]:
        """Runs a signature on a batch (TF Serving's `Predict` call): its outputs.

        Not `MemAE.predict`'s 0/1 labels: those are the `is_anomaly` output of
        `serving_default`, as booleans.

        Args:
            x: Array `(batch, *input_shape)`: uint8 images (sent as uint8 to
                the signature's uint8 twin where the export has one, else
                scaled into the model's input range here) or numbers in that
                range.
            signature: Signature name; None uses the client's default.
            output_filter: Output names to return; None returns all.
            timeout: Deadline of each RPC in seconds; None uses the client's.
            deadline: Seconds for the whole call; None uses the client's.

        Returns:
            Output name → array with `batch` rows, e.g. `score`, `is_anomaly`
            and `reconstruction` for `serving_default`.

        Raises:
            InvalidArgumentError: Before sending, for an empty batch, NaN or
                Inf values or values outside the input range; from the
                server, for inputs that do not fit the signature.
            DeadlineExceededError: When `timeout` or `deadline` runs out.
            MemAEClientError: Any other failure, typed by its gRPC code.
        """
        return self._run(self._predict_exchange(x, signature, output_filter),
                         self._timing(timeout, deadline))

    def score(
        self, x: Any, *, timeout: float | None = None, deadline: float | None = None
    ) -> np.ndarray:
        """Returns the anomaly scores (float32, `(batch,)`, higher = more anomalous).

        Same inputs, timeouts and errors as `run_signature`.
        """
        return self.run_signature(x, output_filter=[SCORE_OUTPUT], timeout=timeout,
                                  deadline=deadline)[SCORE_OUTPUT]

    def predict(self, x: Any, **options: Any) -> dict[str, np.ndarray]:
        """Deprecated name of `run_signature` (it is not `MemAE.predict`)."""
        warn_predict_renamed(type(self).__name__)
        return self.run_signature(x, **options)

    def metadata(self, *, timeout: float | None = None) -> ModelMetadata:
        """Returns the served version and its signatures (`GetModelMetadata`).

        Also refreshes the client's cache of the version's `model_info`.
        """
        return self._run(self._metadata_exchange(), self._timing(timeout, None))

    def model_info(self, *, timeout: float | None = None) -> ModelInfo | None:
        """Returns the served version's `model_info`, or None if it has none.

        Fetched with the metadata and cached; fetched again by `metadata()` and
        whenever a call is answered by another version than the cached one.

        Example:

        >>> client.model_info().input_range  # doctest: +SKIP
        (-1.0, 1.0)
        """
        return self._run(self._model_info_exchange(), self._timing(timeout, None))

    def status(self, *, timeout: float | None = None) -> list[VersionStatus]:
        """Returns the state of each version, sorted by version (`GetModelStatus`)."""
        return self._run(self._status_exchange(), self._timing(timeout, None))

    def close(self) -> None:
        """Closes the channel and stops the threads that send chunks."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        self._channel.close()

    def __enter__(self) -> MemAEClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
