"""asyncio gRPC client (`grpc.aio`) with the same behaviour as `MemAEClient`."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import grpc
import numpy as np

from memae_tf.client._protocol import (
    Call,
    ModelMetadata,
    VersionStatus,
    is_retryable,
    retry_delays,
)
from memae_tf.client.client import BaseClient, Exchange
from memae_tf.client.errors import error_from_rpc
from memae_tf.common.contract import SCORE_OUTPUT


class AsyncMemAEClient(BaseClient):
    """The asyncio twin of `MemAEClient`, on a `grpc.aio` channel.

    Same arguments, splitting, deadlines, retries and errors as `MemAEClient`;
    the methods are coroutines. Create it inside the running event loop.

    Args:
        target: Server address, `"host:port"`.
        model_name: The served model name.
        version: A specific version, or None for the latest.
        signature: Default signature of `predict` and `score`.
        timeout: Deadline of each RPC in seconds.
        credentials: `grpc.ssl_channel_credentials(...)` for TLS; None for plaintext.
        max_message_mb: Largest gRPC message sent or received, in MiB.
        retries: How many times a call failing with UNAVAILABLE is retried.
        channel_options: Extra gRPC channel arguments.

    Example:

    >>> async with AsyncMemAEClient("localhost:8500", "memae") as client:  # doctest: +SKIP
    ...     scores = await client.score(images)
    """

    _channels = grpc.aio

    async def _invoke(self, call: Call, timeout: float) -> Any:
        rpc = self._rpcs[call.method]
        delays = iter(retry_delays(self._config.retries))
        while True:
            try:
                return await rpc(call.request, timeout=timeout)
            except grpc.RpcError as error:
                delay = next(delays, None) if is_retryable(error) else None
                if delay is None:
                    raise error_from_rpc(error) from error
                await asyncio.sleep(delay)

    async def _run(self, exchange: Exchange, timeout: float | None) -> Any:
        timeout = self._timeout(timeout)
        try:
            call = next(exchange)
            while True:
                call = exchange.send(await self._invoke(call, timeout))
        except StopIteration as finished:
            return finished.value

    async def predict(
        self,
        x: Any,
        *,
        signature: str | None = None,
        output_filter: Sequence[str] | None = None,
        timeout: float | None = None,
    ) -> dict[str, np.ndarray]:
        """Runs a signature on a batch; see `MemAEClient.predict`."""
        return await self._run(self._predict_exchange(x, signature, output_filter), timeout)

    async def score(self, x: Any, *, timeout: float | None = None) -> np.ndarray:
        """Returns the anomaly scores (float32, `(batch,)`, higher = more anomalous)."""
        outputs = await self.predict(x, output_filter=[SCORE_OUTPUT], timeout=timeout)
        return outputs[SCORE_OUTPUT]

    async def metadata(self, *, timeout: float | None = None) -> ModelMetadata:
        """Returns the served version and its signatures (`GetModelMetadata`)."""
        return await self._run(self._metadata_exchange(), timeout)

    async def status(self, *, timeout: float | None = None) -> list[VersionStatus]:
        """Returns the state of each version, sorted by version (`GetModelStatus`)."""
        return await self._run(self._status_exchange(), timeout)

    async def close(self) -> None:
        """Closes the channel."""
        await self._channel.close()

    async def __aenter__(self) -> AsyncMemAEClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
