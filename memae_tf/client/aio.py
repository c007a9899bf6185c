"""asyncio gRPC client (`grpc.aio`) with the same behaviour as `MemAEClient`."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import grpc
import numpy as np

from memae_tf.client._protocol import (
    Call,
    CallTiming,
    ModelInfo,
    ModelMetadata,
    VersionStatus,
    next_retry,
    retry_delays,
)
from memae_tf.client.client import BaseClient, Exchange, warn_predict_renamed
from memae_tf.client.errors import MemAEClientError
from memae_tf.common.contract import SCORE_OUTPUT


class AsyncMemAEClient(BaseClient):
    """The asyncio twin of `MemAEClient`, on a `grpc.aio` channel.

    Same arguments, splitting, input scaling and checks, deadlines, retries and
    errors as `MemAEClient`; the methods are coroutines, and the requests of
    one call run as tasks, at most `concurrency` at a time. Create it inside
    the running event loop.

    Args:
        target: Server address, `"host:port"`.
        model_name: The served model name.
        version: A specific version, or None for the latest (or the label's).
        signature: Default signature of `run_signature` and `score`.
        timeout: Deadline of each RPC in seconds.
        credentials: `grpc.ssl_channel_credentials(...)` for TLS; None for plaintext.
        max_message_mib: Largest gRPC message sent or received, in MiB.
        retries: How many times a call failing with UNAVAILABLE is retried.
        version_label: A version label, e.g. `"canary"`; exclusive with `version`.
        max_batch_size: Most rows in one request (64 by default; None: no limit).
        concurrency: How many requests of one call are in flight at once.
        deadline: Seconds for a whole `run_signature`/`score` call; None for none.
        check_range: Whether float inputs outside the input range are refused.
        channel_options: Extra gRPC channel arguments.
        max_message_mb: Deprecated name of `max_message_mib`.

    Example:

    >>> async with AsyncMemAEClient("localhost:8500", "memae") as client:  # doctest: +SKIP
    ...     scores = await client.score(images)
    """

    _channels = grpc.aio

    async def _invoke(self, call: Call, timing: CallTiming) -> Any:
        rpc = self._rpcs[call.method]
        delays = iter(retry_delays(self._config.retries))
        while True:
            try:
                return await rpc(call.request, timeout=timing.rpc_timeout())
            except grpc.RpcError as error:
                await asyncio.sleep(next_retry(error, delays, timing))

    async def _invoke_all(self, calls: list[Call], timing: CallTiming) -> list[Any]:
        if len(calls) == 1:
            return [await self._invoke(calls[0], timing)]
        slots = asyncio.Semaphore(self._config.concurrency)

        async def bounded(call: Call) -> Any:
            async with slots:
                return await self._invoke(call, timing)

        tasks = [asyncio.ensure_future(bounded(call)) for call in calls]
        try:
            return await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            raise

    async def _run(self, exchange: Exchange, timing: CallTiming) -> Any:
        try:
            calls = next(exchange)
            while True:
                try:
                    answers = await self._invoke_all(calls, timing)
                except MemAEClientError as error:
                    calls = exchange.throw(error)  # the exchange recovers, or it is raised
                    continue
                calls = exchange.send(answers)
        except StopIteration as finished:
            return finished.value

    async def run_signature(
        self,
        x: Any,
        *,
        signature: str | None = None,
        output_filter: Sequence[str] | None = None,
        timeout: float | None = None,
        deadline: float | None = None,
    ) -> dict[str, np.ndarray]:
        """Runs a signature on a batch: its outputs; see `MemAEClient.run_signature`."""
        return await self._run(self._predict_exchange(x, signature, output_filter),
                               self._timing(timeout, deadline))

    async def score(
        self, x: Any, *, timeout: float | None = None, deadline: float | None = None
    ) -> np.ndarray:
        """Returns the anomaly scores (float32, `(batch,)`, higher = more anomalous)."""
        outputs = await self.run_signature(x, output_filter=[SCORE_OUTPUT], timeout=timeout,
                                           deadline=deadline)
        return outputs[SCORE_OUTPUT]

    async def predict(self, x: Any, **options: Any) -> dict[str, np.ndarray]:
        """Deprecated name of `run_signature` (it is not `MemAE.predict`)."""
        warn_predict_renamed(type(self).__name__)
        return await self.run_signature(x, **options)

    async def metadata(self, *, timeout: float | None = None) -> ModelMetadata:
        """Returns the served version and its signatures (`GetModelMetadata`)."""
        return await self._run(self._metadata_exchange(), self._timing(timeout, None))

    async def model_info(self, *, timeout: float | None = None) -> ModelInfo | None:
        """Returns the served version's `model_info` (cached), or None if it has none."""
        return await self._run(self._model_info_exchange(), self._timing(timeout, None))

    async def status(self, *, timeout: float | None = None) -> list[VersionStatus]:
        """Returns the state of each version, sorted by version (`GetModelStatus`)."""
        return await self._run(self._status_exchange(), self._timing(timeout, None))

    async def close(self) -> None:
        """Closes the channel."""
        await self._channel.close()

    async def __aenter__(self) -> AsyncMemAEClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
