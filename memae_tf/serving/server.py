"""The development server: TF Serving's gRPC (and optional REST) API in one process."""

from __future__ import annotations

import logging
import os
import signal
import ssl
import threading
from concurrent import futures
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

from memae_tf.common.checks import check_positive_int
from memae_tf.serving.core import ServingCore
from memae_tf.serving.grpc_services import ModelServicer, PredictionServicer
from memae_tf.serving.model_manager import ModelManager
from memae_tf.serving.rest import RestServer
from memae_tf.serving.validation import RequestLimits

logger = logging.getLogger(__name__)
PREDICTION_SERVICE = "tensorflow.serving.PredictionService"


def _check_port(name: str, port: int) -> None:
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError(
            f"Received an invalid value for `{name}`, expected an integer in [0, 65535] "
            f"(0 picks a free port). Received: {name}={port!r}"
        )


@dataclass
class ServingHandle:
    """A running development server; stop it with `stop()` or a `with` block.

    Attributes:
        port: The bound gRPC port.
        rest_port: The bound REST port, or None without REST.
        manager: The `ModelManager` of the served model.
        health: The gRPC health servicer (SERVING only while a version is loaded).
    """

    port: int
    rest_port: int | None
    manager: ModelManager
    health: health.HealthServicer
    _grpc_server: grpc.Server
    _rest_server: RestServer | None

    def stop(self, grace: float | None = 1.0) -> None:
        """Stops accepting requests, lets those in flight finish for `grace` seconds.

        Health turns NOT_SERVING first; both ports close to new connections at
        once and drain together, so the whole stop takes at most about `grace`.
        """
        self.health.enter_graceful_shutdown()
        stopped = self._grpc_server.stop(grace)
        if self._rest_server is not None:
            self._rest_server.stop(grace)
        stopped.wait()
        self.manager.stop()

    def __enter__(self) -> ServingHandle:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def serve(
    model_base_path: str | os.PathLike,
    model_name: str,
    port: int = 8500,
    rest_port: int | None = None,
    *,
    host: str = "127.0.0.1",
    poll_interval: float = 1.0,
    max_workers: int = 8,
    server_credentials: grpc.ServerCredentials | None = None,
    max_message_mb: float | None = None,
    max_batch_size: int | None = None,
    rest_ssl_context: ssl.SSLContext | None = None,
) -> ServingHandle:
    """Starts a TF Serving-compatible server for one model and returns at once.

    The latest version under `model_base_path` is loaded (and warmed up) before
    the ports open; later versions are picked up by polling and swapped in
    without dropping requests. The gRPC port serves
    `tensorflow.serving.PredictionService`, `tensorflow.serving.ModelService`
    and `grpc.health.v1.Health`; `rest_port` adds TF Serving's REST API. This
    is a development server: in production run TF Serving itself (see
    `serving/README.md`); clients work unchanged against both.

    Args:
        model_base_path: Directory of the model's integer version directories.
        model_name: Name clients ask for.
        port: gRPC port; 0 picks a free one (see `ServingHandle.port`).
        rest_port: REST port, 0 for a free one, None for no REST.
        host: Interface to bind both ports on: loopback by default, so that
            nothing outside the machine reaches the server unless asked
            (`"0.0.0.0"` or `"::"` for every interface).
        poll_interval: Seconds between two listings of `model_base_path`.
        max_workers: Requests handled concurrently on the gRPC port.
        server_credentials: `grpc.ssl_server_credentials(...)` for TLS on the
            gRPC port (mutual TLS with `root_certificates=` and
            `require_client_auth=True`); None serves plaintext.
        max_message_mb: Largest gRPC message accepted or sent and largest REST
            body accepted, in MiB, refused before it is read; None means no
            limit beyond gRPC's own 2 GiB, as in TF Serving.
        max_batch_size: Largest batch of one request (INVALID_ARGUMENT above
            it, as TF Serving's batching answers); None for no limit.
        rest_ssl_context: A server-side `ssl.SSLContext` for HTTPS on the REST
            port (see `tls.server_ssl_context`); None serves plain HTTP.

    Returns:
        A `ServingHandle`.

    Example:

    >>> with serve("models/memae", "memae", port=0) as server:  # doctest: +SKIP
    ...     client = MemAEClient(f"127.0.0.1:{server.port}", "memae")
    """
    _check_port("port", port)
    if rest_port is not None:
        _check_port("rest_port", rest_port)
    check_positive_int("max_workers", max_workers)
    if max_message_mb is not None and not (
        isinstance(max_message_mb, (int, float)) and max_message_mb > 0
    ):
        raise ValueError(
            "Received an invalid value for `max_message_mb`, expected None or a positive "
            f"number. Received: max_message_mb={max_message_mb!r}"
        )
    limits = RequestLimits(
        max_batch_size=max_batch_size,
        max_message_bytes=None if max_message_mb is None else int(max_message_mb * 2**20),
    )
    manager = ModelManager(model_name, model_base_path, poll_interval)
    health_servicer = health.HealthServicer()

    def report(available: bool) -> None:
        status = (health_pb2.HealthCheckResponse.SERVING if available
                  else health_pb2.HealthCheckResponse.NOT_SERVING)
        for service in ("", PREDICTION_SERVICE):
            health_servicer.set(service, status)

    manager.add_listener(report)
    manager.start()
    limit = -1 if limits.max_message_bytes is None else limits.max_message_bytes
    grpc_server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers),
        options=[("grpc.max_receive_message_length", limit),
                 ("grpc.max_send_message_length", limit)],
    )
    core = ServingCore({model_name: manager}, limits)
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionServicer(core), grpc_server
    )
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelServicer(core), grpc_server)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, grpc_server)
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    rest_server = None
    try:
        if server_credentials is None:
            bound = grpc_server.add_insecure_port(address)
        else:
            bound = grpc_server.add_secure_port(address, server_credentials)
        if bound == 0:
            raise OSError(f"Could not bind the gRPC port {address}.")
        if rest_port is not None:
            rest_server = RestServer(core, host, rest_port, rest_ssl_context)
    except BaseException:
        manager.stop()
        raise
    grpc_server.start()
    if rest_server is not None:
        rest_server.start()
    handle = ServingHandle(bound, None if rest_server is None else rest_server.port, manager,
                           health_servicer, grpc_server, rest_server)
    logger.info("Serving %s from %s: gRPC on %s:%d%s.", model_name, model_base_path, host,
                bound, "" if rest_server is None else f", REST on {host}:{rest_server.port}")
    return handle


def run_server(
    model_base_path: str | os.PathLike,
    model_name: str,
    port: int = 8500,
    rest_port: int | None = None,
    *,
    grace: float = 30.0,
    **options,
) -> None:
    """Runs `serve(...)` until SIGINT or SIGTERM, then stops gracefully.

    On the signal, health turns NOT_SERVING, both ports stop accepting new
    requests, and the requests in flight get up to `grace` seconds to finish
    (keep it below the orchestrator's kill timeout, e.g. Kubernetes'
    `terminationGracePeriodSeconds`, 30 s by default).

    Args:
        model_base_path: Directory of the model's integer version directories.
        model_name: Name clients ask for.
        port: gRPC port.
        rest_port: REST port, or None for no REST.
        grace: Seconds in-flight requests get to finish after the signal.
        **options: Further keyword arguments of `serve`.
    """
    handle = serve(model_base_path, model_name, port, rest_port, **options)
    stopping = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stopping.set())
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        # Python runs signal handlers in the main thread only, between bytecodes: a
        # main thread blocked in an untimed lock wait never runs them when the kernel
        # hands the signal to another thread (seen under load: SIGTERM ignored for
        # minutes). Waking every half second lets the handler run.
        while not stopping.wait(timeout=0.5):
            pass
        logger.info("Stopping: draining requests in flight for up to %g s.", grace)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        handle.stop(grace)
    logger.info("Stopped.")
