"""Blocking gRPC client for MemAE models served by TF Serving or the development server."""

from __future__ import annotations

import time
from collections.abc import Generator, Sequence
from typing import Any

import grpc
import numpy as np

from memae_tf.client._protocol import (
    METHODS,
    Call,
    ClientConfig,
    ModelMetadata,
    VersionStatus,
    as_batch,
    check_signature,
    check_timeout,
    is_retryable,
    metadata_exchange,
    predict_exchange,
    retry_delays,
    status_exchange,
)
from memae_tf.client.errors import error_from_rpc
from memae_tf.common.contract import SCORE_OUTPUT, SERVING_SIGNATURE

Exchange = Generator[Call, Any, Any]


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
        max_message_mb: float = 64,
        retries: int = 3,
        *,
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
        self._config = ClientConfig.create(model_name, version, signature, timeout,
                                           max_message_mb, retries)
        self._metadata: ModelMetadata | None = None
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

    def _timeout(self, timeout: float | None) -> float:
        return self._config.timeout if timeout is None else check_timeout(timeout)

    def _predict_exchange(
        self, x: Any, signature: str | None, output_filter: Sequence[str] | None
    ) -> Exchange:
        batch = as_batch(x)
        signature = self._config.signature if signature is None else check_signature(signature)
        output_filter = _check_output_filter(output_filter)
        if self._metadata is None:
            self._metadata = yield from metadata_exchange(self._config)
        return (yield from predict_exchange(self._config, batch, signature, output_filter,
                                            self._metadata))

    def _metadata_exchange(self) -> Exchange:
        self._metadata = yield from metadata_exchange(self._config)
        return self._metadata

    def _status_exchange(self) -> Exchange:
        return (yield from status_exchange(self._config))


class MemAEClient(BaseClient):
    """Scores samples with a MemAE model served over gRPC by TF Serving.

    Works unchanged against TF Serving and the development server
    (`memae serve`). Large batches are split so that every request and response
    stays under `max_message_mb`, and the results are reassembled in order. Each
    RPC gets a deadline of `timeout` seconds; calls failing with UNAVAILABLE are
    retried up to `retries` times with exponential backoff; failures raise a
    `MemAEClientError` subclass carrying the gRPC code and the server's message.

    Args:
        target: Server address, `"host:port"` (any gRPC target, e.g.
            `"dns:///memae-serving-headless:8500"`).
        model_name: The served model name.
        version: A specific version, or None for the latest.
        signature: Default signature of `predict` and `score`.
        timeout: Deadline of each RPC in seconds.
        credentials: `grpc.ssl_channel_credentials(...)` for TLS; None for plaintext.
        max_message_mb: Largest gRPC message sent or received, in MiB.
        retries: How many times a call failing with UNAVAILABLE is retried.
        channel_options: Extra gRPC channel arguments, e.g.
            `[("grpc.lb_policy_name", "round_robin")]`.

    Example:

    >>> with MemAEClient("localhost:8500", "memae") as client:  # doctest: +SKIP
    ...     scores = client.score(images)                       # float32 (batch,)
    ...     outputs = client.predict(images)                    # score, is_anomaly, ...
    """

    def _invoke(self, call: Call, timeout: float) -> Any:
        rpc = self._rpcs[call.method]
        delays = iter(retry_delays(self._config.retries))
        while True:
            try:
                return rpc(call.request, timeout=timeout)
            except grpc.RpcError as error:
                delay = next(delays, None) if is_retryable(error) else None
                if delay is None:
                    raise error_from_rpc(error) from error
                time.sleep(delay)

    def _run(self, exchange: Exchange, timeout: float | None) -> Any:
        timeout = self._timeout(timeout)
        try:
            call = next(exchange)
            while True:
                call = exchange.send(self._invoke(call, timeout))
        except StopIteration as finished:
            return finished.value

    def predict(
        self,
        x: Any,
        *,
        signature: str | None = None,
        output_filter: Sequence[str] | None = None,
        timeout: float | None = None,
    ) -> dict[str, np.ndarray]:
        """Runs a signature on a batch.

        Args:
            x: Float array `(batch, *input_shape)` (cast to float32).
            signature: Signature name; None uses the client's default.
            output_filter: Output names to return; None returns all.
            timeout: Deadline of each RPC in seconds; None uses the client's.

        Returns:
            Output name → array with `batch` rows, e.g. `score`, `is_anomaly`
            and `reconstruction` for `serving_default`.
        """
        return self._run(self._predict_exchange(x, signature, output_filter), timeout)

    def score(self, x: Any, *, timeout: float | None = None) -> np.ndarray:
        """Returns the anomaly scores (float32, `(batch,)`, higher = more anomalous)."""
        return self.predict(x, output_filter=[SCORE_OUTPUT], timeout=timeout)[SCORE_OUTPUT]

    def metadata(self, *, timeout: float | None = None) -> ModelMetadata:
        """Returns the served version and its signatures (`GetModelMetadata`)."""
        return self._run(self._metadata_exchange(), timeout)

    def status(self, *, timeout: float | None = None) -> list[VersionStatus]:
        """Returns the state of each version, sorted by version (`GetModelStatus`)."""
        return self._run(self._status_exchange(), timeout)

    def close(self) -> None:
        """Closes the channel."""
        self._channel.close()

    def __enter__(self) -> MemAEClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
