"""The development server: TF Serving's gRPC (and optional REST) API in one process.

`start_model_server` takes TF Serving's own flags (`ModelServerOptions`) and
configuration files, as the Kubernetes Deployment passes them to
`tensorflow_model_server`; `serve` is its special case for one model base path.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import ssl
import threading
from collections.abc import Sequence
from concurrent import futures
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc
from tensorflow_serving.config import model_server_config_pb2

from memae_tf.common.checks import check_positive_int
from memae_tf.common.contract import (
    GRPC_PORT,
    SERVE_GRACE_SECONDS,
    SERVE_LOAD_RETRY_INTERVAL_SECONDS,
    SERVE_MAX_NUM_LOAD_RETRIES,
    SERVE_POLL_INTERVAL_SECONDS,
    SERVE_TAG,
)
from memae_tf.common.deprecation import renamed_argument
from memae_tf.serving.config import read_text_proto, single_model_config
from memae_tf.serving.core import ServingCore
from memae_tf.serving.errors import invalid_argument
from memae_tf.serving.flags import ModelServerOptions
from memae_tf.serving.grpc_services import ModelServicer, PredictionServicer
from memae_tf.serving.metrics import DEFAULT_PROMETHEUS_PATH, ServingMetrics
from memae_tf.serving.model_manager import (
    ModelManager,
    check_poll_seconds,
)
from memae_tf.serving.model_registry import ModelRegistry
from memae_tf.serving.proto import BatchingParameters, MonitoringConfig, SSLConfig
from memae_tf.serving.rest import RestServer
from memae_tf.serving.threads import apply_thread_pools, thread_pools
from memae_tf.serving.tls import ssl_config_credentials
from memae_tf.serving.validation import RequestLimits

logger = logging.getLogger(__name__)
PREDICTION_SERVICE = "tensorflow.serving.PredictionService"


HEALTH_SERVICE = "grpc.health.v1.Health"
# src/cpp/server/server_cc.cc: the status of an RPC that finds no thread to run on.
THREADPOOL_EXHAUSTED = "Server Threadpool Exhausted"


class _GrpcThreadQuota(grpc.ServerInterceptor):
    """TF Serving's `--grpc_max_threads`: gRPC C++'s sync-server thread quota, on this server.

    server.cc (`Server::BuildAndStart`) passes the flag to the gRPC server as
    `ResourceQuota::SetMaxThreads`. gRPC's sync server keeps one of those
    threads polling (src/cpp/thread_manager/thread_manager.cc,
    `ThreadManager::MainWorkLoop`, one poller at least): at most
    `max_threads - 1` RPCs run at once, and one that arrives while they run
    is answered RESOURCE_EXHAUSTED "Server Threadpool Exhausted" at once
    instead of waiting. The health service passes untouched: gRPC C++'s
    default health service does not answer on the sync server's threads.
    """

    def __init__(self, max_threads: int) -> None:
        self._free = threading.Semaphore(max_threads - 1)

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if handler is None or handler_call_details.method.startswith(f"/{HEALTH_SERVICE}/"):
            return handler
        behavior = handler.unary_unary

        def run(request, context):
            if not self._free.acquire(blocking=False):
                context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, THREADPOOL_EXHAUSTED)
            try:
                return behavior(request, context)
            finally:
                self._free.release()

        return handler._replace(unary_unary=run)


_ATOI = re.compile(r"[ \t\n\v\f\r]*[+-]?[0-9]+[ \t\n\v\f\r]*")


def _channel_arguments(text: str) -> list[tuple[str, int | str]]:
    """`--grpc_channel_arguments` as server.cc (`parseGrpcChannelArgs`) reads it.

    The text is split at every comma, each piece at every '=' (TensorFlow's
    `str_util::Split`: nothing for an empty text, empty pieces kept): the
    first part is the key, the second the value (a third is dropped, as there);
    a value `absl::SimpleAtoi` reads as an int32 (spaces around it and a sign
    allowed) is passed as that number, any other as a string.
    """
    arguments = []
    for piece in text.split(",") if text else []:
        parts = piece.split("=")
        if len(parts) < 2:
            # server.cc indexes key_val[1] unchecked: out of bounds for such a piece.
            raise invalid_argument(
                f"--grpc_channel_arguments: {piece!r} is not key=value, which TF Serving "
                "reads past the end of (server.cc parseGrpcChannelArgs); expected a "
                "comma-separated list of key=value.")
        key, value = parts[0], parts[1]
        if _ATOI.fullmatch(value) and -2**31 <= int(value) < 2**31:
            arguments.append((key, int(value)))
        else:
            arguments.append((key, value))
    return arguments


def _check_grpc_max_threads(threads: int) -> None:
    if threads < 0:
        raise invalid_argument(
            f"--grpc_max_threads is negative ({threads}), which gRPC's thread quota does "
            "not take as a count (older releases abort, newer ones read it as unsigned: no "
            "limit); expected a positive number of threads.")
    if threads == 0:
        # thread_manager.cc ThreadManager::Initialize crashes the process here.
        raise invalid_argument(
            "--grpc_max_threads=0: No thread quota available to even create the minimum "
            "required polling threads (i.e 1). Unable to start the thread manager; expected "
            "a positive number of threads.")
    if threads == 1:
        logger.warning("--grpc_max_threads=1 leaves gRPC only its polling thread: every RPC "
                       "is answered RESOURCE_EXHAUSTED '%s', as in TF Serving.",
                       THREADPOOL_EXHAUSTED)


def _check_loading(options: ModelServerOptions) -> None:
    """`--num_load_threads`, `--num_unload_threads` and `--max_num_load_retries`."""
    if options.max_num_load_retries < 0:
        # TF Serving stores the flag in a uint32 (basic_manager.h): -1 would mean about
        # four billion retries, a minute apart by default.
        raise invalid_argument(
            f"--max_num_load_retries is negative ({options.max_num_load_retries}), which "
            "TF Serving reads as an unsigned count of about four billion retries; expected "
            "0 (load once) or a positive number of retries.")
    for name in ("num_load_threads", "num_unload_threads"):
        threads = getattr(options, name)
        if threads < 0:
            # basic_manager.h stores both in a uint32; CreateExecutor (basic_manager.cc)
            # passes it to a thread pool taking an int, which CHECKs for one thread.
            raise invalid_argument(
                f"Check failed: num_threads >= 1 ({threads} vs. 1): --{name} is negative, "
                "which TF Serving passes to its thread pool as that count; expected 0 "
                "(no thread pool) or a positive number of threads.")


def _check_saved_model_tags(text: str) -> None:
    """`--saved_model_tags`: the development server loads the MetaGraph tagged "serve" only."""
    # server.cc splits the flag at commas (nothing for an empty text) into the tag set that
    # TensorFlow's LoadSavedModel (cc/saved_model/loader.cc FindMetaGraphDefToLoad) must
    # find exactly on a MetaGraph.
    if set(text.split(",") if text else []) != {SERVE_TAG}:
        raise invalid_argument(
            f"--saved_model_tags={text}: the development server loads the MetaGraph tagged "
            f"'{SERVE_TAG}' only (TF Serving loads the one whose tag set is exactly this "
            f"list's); expected --saved_model_tags={SERVE_TAG}, the default.")


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
        port: The bound gRPC port, or None when gRPC listens on a UNIX socket
            only (`--port=0` with `--grpc_socket_path`).
        rest_port: The bound REST port, or None without REST.
        models: The served models (`ModelRegistry`: name → `ModelManager`).
        health: The gRPC health servicer, None without one (`memae serve`:
            SERVING only while every model has a version loaded; `memae
            model-server`: TF Serving's, with `--enable_grpc_healthcheck_service`).
        metrics: TF Serving's metrics of this server (`ServingMetrics`).
    """

    port: int | None
    rest_port: int | None
    models: ModelRegistry
    health: health.HealthServicer | None
    metrics: ServingMetrics
    _core: ServingCore
    _grpc_server: grpc.Server
    _rest_server: RestServer | None

    @property
    def manager(self) -> ModelManager:
        """The `ModelManager` of the one model served (ValueError with several)."""
        if len(self.models) != 1:
            raise ValueError(
                f"`manager` needs exactly one model; this server has {sorted(self.models)}. "
                "Use `models[name]`."
            )
        return next(iter(self.models.values()))

    def stop(self, grace: float | None = 1.0) -> None:
        """Stops accepting requests, lets those in flight finish for `grace` seconds.

        Health (if served) turns NOT_SERVING first; both ports close to new connections at
        once and drain together, so the whole stop takes at most about `grace`;
        then the batches still queued run and the batch threads end.
        """
        if self.health is not None:
            self.health.enter_graceful_shutdown()
        stopped = self._grpc_server.stop(grace)
        if self._rest_server is not None:
            self._rest_server.stop(grace)
        stopped.wait()
        self._core.stop(grace)
        self.models.stop()

    def __enter__(self) -> ServingHandle:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _bind(
    server: grpc.Server, address: str, credentials: grpc.ServerCredentials | None
) -> int:
    """Binds `address` and returns its port, or raises TF Serving's start failure."""
    try:
        port = (server.add_insecure_port(address) if credentials is None
                else server.add_secure_port(address, credentials))
    except RuntimeError:  # grpcio raises where older releases returned 0
        port = 0
    if port == 0:
        # server.cc BuildAndStart: ServerBuilder::BuildAndStart returns no server when
        # a listening port does not bind.
        logger.error("Could not bind the gRPC address %s.", address)
        raise invalid_argument("Failed to BuildAndStart gRPC server")
    return port


def _open_ports(
    models: ModelRegistry,
    port: int | None,
    rest_port: int | None,
    *,
    host: str,
    max_workers: int,
    server_credentials: grpc.ServerCredentials | None,
    limits: RequestLimits,
    rest_ssl_context: ssl.SSLContext | None,
    batching: BatchingParameters | None = None,
    monitoring_path: str | None = None,
    rest_timeout_in_ms: int = 30000,
    rest_num_threads: int | None = None,
    rest_cors: bool = False,
    rest_required: bool = True,
    signature_method_name_check: bool = False,
    tensor_content: bool = False,
    health_servicer: health.HealthServicer | None,
    socket_path: str = "",
    thread_quota: bool = False,
    channel_arguments: Sequence[tuple[str, int | str]] = (),
) -> ServingHandle:
    """Serves started `models` on the gRPC port (and REST port); stops them on failure.

    gRPC listens on `port` (None: none) and, if `socket_path` is not empty,
    on that UNIX socket too, with the same credentials; an address that does
    not bind is INVALID_ARGUMENT "Failed to BuildAndStart gRPC server", as in TF
    Serving. A REST port that does not bind raises, unless `rest_required` is
    False: then an error is logged and gRPC serves alone, as in TF Serving.

    `max_workers` gRPC requests run at once and more wait for a worker; with
    `thread_quota`, `max_workers` is TF Serving's `--grpc_max_threads`
    instead (`_GrpcThreadQuota`: one less run, more are refused);
    `channel_arguments` go to the gRPC server before the message limits and
    override them (gRPC's core keeps the first value of an argument); the
    gRPC port serves `health_servicer` unless it is None; `batching` merges
    concurrent Predicts, `signature_method_name_check` checks the signature's
    method and `tensor_content` sets how outputs are serialized (`ServingCore`);
    `monitoring_path` serves the models' metrics (`models.metrics`) on the REST
    port; `rest_timeout_in_ms` is each REST predict's timeout, `rest_num_threads`
    the REST requests handled at once and `rest_cors` whether its answers carry
    CORS headers (`RestServer`).
    """
    limit = -1 if limits.max_message_bytes is None else limits.max_message_bytes
    grpc_server = grpc.server(
        # With the quota max_workers - 1 RPCs run; the spare worker answers refusals.
        futures.ThreadPoolExecutor(max_workers=max_workers),
        interceptors=[_GrpcThreadQuota(max_workers)] if thread_quota else [],
        # A message limit among the channel arguments applies, as it does in TF Serving
        # with the gRPC releases whose ServerBuilder sets its own limit after them.
        options=[*channel_arguments, ("grpc.max_receive_message_length", limit),
                 ("grpc.max_send_message_length", limit)],
    )
    try:
        core = ServingCore(models, limits, batching=batching, metrics=models.metrics,
                           signature_method_name_check=signature_method_name_check,
                           tensor_content=tensor_content)
    except BaseException:
        models.stop()
        raise
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionServicer(core), grpc_server
    )
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelServicer(core), grpc_server)
    if health_servicer is not None:
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, grpc_server)
    addresses = [] if port is None else [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    if socket_path:
        addresses.append(f"unix:{socket_path}")
    rest_server = None
    try:
        bound = [_bind(grpc_server, address, server_credentials) for address in addresses]
        if rest_port is not None:
            try:
                rest_server = RestServer(core, host, rest_port, rest_ssl_context,
                                         monitoring_path=monitoring_path,
                                         timeout_in_ms=rest_timeout_in_ms,
                                         num_threads=rest_num_threads,
                                         enable_cors_support=rest_cors)
            except OSError as error:
                if rest_required:
                    raise
                # server.cc BuildAndStart logs this and returns OK: gRPC serves alone.
                logger.error("Failed to start HTTP Server at localhost:%d", rest_port)
                logger.debug("The REST port did not bind: %s", error)
    except BaseException:
        core.stop()
        models.stop()
        raise
    grpc_server.start()
    if rest_server is not None:
        rest_server.start()
    grpc_port = None if port is None else bound[0]
    listening = ([] if grpc_port is None else [f"{host}:{grpc_port}"]) + (
        [f"UNIX socket {socket_path}"] if socket_path else [])
    logger.info("Serving %s: gRPC on %s%s.", sorted(models), " and ".join(listening),
                "" if rest_server is None else f", REST on {host}:{rest_server.port}")
    return ServingHandle(grpc_port, None if rest_server is None else rest_server.port, models,
                         health_servicer, core.metrics, core, grpc_server, rest_server)


def _availability_health(models: ModelRegistry) -> health.HealthServicer:
    """`memae serve`'s health: "" and the PredictionService SERVING while every model serves."""
    servicer = health.HealthServicer()

    def report(available: bool) -> None:
        status = (health_pb2.HealthCheckResponse.SERVING if available
                  else health_pb2.HealthCheckResponse.NOT_SERVING)
        for service in ("", PREDICTION_SERVICE):
            servicer.set(service, status)

    models.add_listener(report)
    return servicer


def _tf_serving_health() -> health.HealthServicer:
    """The health service of `--enable_grpc_healthcheck_service`, as TF Serving's.

    gRPC C++'s `DefaultHealthCheckService` starts with "" SERVING
    (src/cpp/server/health/default_health_check_service.cc) and server.cc
    (`Server::BuildAndStart`) sets "ModelService" and "PredictionService",
    those short names, SERVING once the models are loaded; nothing changes
    them afterwards, whatever the models, until `Shutdown` turns every one
    NOT_SERVING (`ServingHandle.stop`). Other names are NOT_FOUND.
    """
    servicer = health.HealthServicer()
    for service in ("", "ModelService", "PredictionService"):
        servicer.set(service, health_pb2.HealthCheckResponse.SERVING)
    return servicer


def serve(
    model_base_path: str | os.PathLike,
    model_name: str,
    port: int = GRPC_PORT,
    rest_port: int | None = None,
    *,
    host: str = "127.0.0.1",
    poll_interval: float = SERVE_POLL_INTERVAL_SECONDS,
    max_workers: int = 8,
    server_credentials: grpc.ServerCredentials | None = None,
    max_message_mib: float | None = None,
    max_batch_size: int | None = None,
    rest_ssl_context: ssl.SSLContext | None = None,
    max_message_mb: float | None = None,
    max_num_load_retries: int = SERVE_MAX_NUM_LOAD_RETRIES,
    load_retry_interval: float = SERVE_LOAD_RETRY_INTERVAL_SECONDS,
) -> ServingHandle:
    """Starts a TF Serving-compatible server for one model, once a version of it serves.

    The one-model case of `start_model_server` (TF Serving's
    `--model_name`/`--model_base_path`): the latest version under
    `model_base_path` is loaded (and warmed up) before the ports open, and
    while there is none (or no `model_base_path`) the call waits, listing it
    every `poll_interval` seconds and logging TF Serving's warning each time,
    until a version is published (interrupt it with Ctrl-C); later versions
    are picked up by polling and swapped in without dropping requests. The
    gRPC port serves `tensorflow.serving.PredictionService`,
    `tensorflow.serving.ModelService` and `grpc.health.v1.Health`; `rest_port`
    adds TF Serving's REST API. This is a development server: in production
    run TF Serving itself (see `serving/README.md`); clients work unchanged
    against both.

    Args:
        model_base_path: Directory of the model's integer version directories.
        model_name: Name clients ask for.
        port: gRPC port; 0 picks a free one (see `ServingHandle.port`).
        rest_port: REST port, 0 for a free one, None for no REST.
        host: Interface to bind both ports on: loopback by default, so that
            nothing outside the machine reaches the server unless asked
            (`"0.0.0.0"` or `"::"` for every interface).
        poll_interval: Seconds between two listings of `model_base_path`
            (0 lists once: then a start without a version waits for ever).
        max_workers: Requests handled concurrently on the gRPC port.
        server_credentials: `grpc.ssl_server_credentials(...)` for TLS on the
            gRPC port (mutual TLS with `root_certificates=` and
            `require_client_auth=True`); None serves plaintext.
        max_message_mib: Largest gRPC message accepted or sent and largest REST
            body accepted, in MiB, refused before it is read; None means no
            limit beyond gRPC's own 2 GiB, as in TF Serving.
        max_batch_size: Largest batch of one request: a larger one is refused
            with INVALID_ARGUMENT and TF Serving's batching message, as TF
            Serving with `--enable_batching` and this `max_batch_size`
            answers; None for no limit. Requests are not merged: for
            server-side batching use `start_model_server` with
            `--enable_batching` (`memae model-server`).
        rest_ssl_context: A server-side `ssl.SSLContext` for HTTPS on the REST
            port (see `tls.server_ssl_context`); None serves plain HTTP.
        max_message_mb: Deprecated name of `max_message_mib`.
        max_num_load_retries: Tries of a failed version load after the first,
            as TF Serving's `--max_num_load_retries` (default 5); 0 tries once.
        load_retry_interval: Seconds between two tries, as TF Serving's
            `--load_retry_interval_micros` (default 1 minute): with the
            defaults a broken export takes about 5 minutes to be reported.

    Returns:
        A `ServingHandle`.

    Raises:
        ServingError: UNKNOWN, with TF Serving's message, when the newest version
            the policy serves fails to load after its retries (TF Serving does
            not start then); INVALID_ARGUMENT "Failed to BuildAndStart gRPC
            server" when the gRPC port does not bind.
        KeyboardInterrupt: When interrupted while it waits for a version (no
            polling thread is left).

    Example:

    >>> with serve("models/memae", "memae", port=0) as server:  # doctest: +SKIP
    ...     client = MemAEClient(f"127.0.0.1:{server.port}", "memae")
    """
    _check_port("port", port)
    if rest_port is not None:
        _check_port("rest_port", rest_port)
    check_positive_int("max_workers", max_workers)
    max_message_mib = renamed_argument("max_message_mb", "max_message_mib", max_message_mb,
                                       max_message_mib)
    if max_message_mib is not None and not (
        isinstance(max_message_mib, (int, float)) and max_message_mib > 0
    ):
        raise ValueError(
            "Received an invalid value for `max_message_mib`, expected None or a positive "
            f"number. Received: max_message_mib={max_message_mib!r}"
        )
    if not isinstance(model_name, str) or not model_name or "/" in model_name:
        raise ValueError(
            "Received an invalid value for `model_name`, expected a non-empty name "
            f"without '/'. Received: model_name={model_name!r}"
        )
    limits = RequestLimits(
        max_batch_size=max_batch_size,
        max_message_bytes=None if max_message_mib is None else int(max_message_mib * 2**20),
    )
    models = ModelRegistry(check_poll_seconds("poll_interval", poll_interval),
                           metrics=ServingMetrics(),
                           max_num_load_retries=max_num_load_retries,
                           load_retry_interval=load_retry_interval)
    _load_models(models, single_model_config(model_name, os.path.abspath(model_base_path)))
    return _open_ports(models, port, rest_port, host=host, max_workers=max_workers,
                       server_credentials=server_credentials, limits=limits,
                       rest_ssl_context=rest_ssl_context,
                       health_servicer=_availability_health(models))


def _load_models(models: ModelRegistry, config: model_server_config_pb2.ModelServerConfig,
                 config_file: str = "", config_poll_seconds: float = 0) -> None:
    """Loads `config` into `models` (and polls `config_file` when both are set), or stops them.

    A start that fails or is interrupted leaves no polling thread behind.
    """
    try:
        models.reload_config(config)
        if config_file and config_poll_seconds > 0:
            models.poll_config_file(config_file, config_poll_seconds)
    except BaseException:
        models.stop()
        raise


def _batching_parameters(options: ModelServerOptions) -> BatchingParameters | None:
    """`--enable_batching` and `--batching_parameters_file`, as server.cc combines them."""
    if not options.enable_batching:
        if options.batching_parameters_file:
            raise invalid_argument(
                "server_options.batching_parameters_file is set without setting "
                "server_options.enable_batching to true."
            )
        return None
    if not options.batching_parameters_file:
        return BatchingParameters(thread_pool_name={"value": "model_server_batch_threads"})
    return read_text_proto(options.batching_parameters_file, BatchingParameters)


def _monitoring_path(options: ModelServerOptions) -> str | None:
    """The Prometheus path on the REST port, or None when metrics are not exposed."""
    if not options.monitoring_config_file:
        return None
    config = read_text_proto(options.monitoring_config_file, MonitoringConfig)
    if not config.prometheus_config.enable:
        return None
    return config.prometheus_config.path or DEFAULT_PROMETHEUS_PATH


def _ssl_credentials(options: ModelServerOptions) -> grpc.ServerCredentials | None:
    if not options.ssl_config_file:
        return None
    config = read_text_proto(options.ssl_config_file, SSLConfig)
    try:
        return ssl_config_credentials(config)
    except ValueError as error:
        raise invalid_argument(f"{options.ssl_config_file}: {error}") from error


def start_model_server(options: ModelServerOptions, *, host: str = "0.0.0.0") -> ServingHandle:
    """Starts the server that `tensorflow_model_server` would start with these flags.

    Follows `Server::BuildAndStart` (tensorflow_serving/model_servers/server.cc):
    the models come from `--model_config_file` (else one model from
    `--model_name`/`--model_base_path`) and are loaded before the ports open, the
    start waiting without timeout while a model has no version (or no base path),
    as TF Serving's `ServerCore` does, and logging TF Serving's warning or error at
    each listing; one thread lists every base path at once, and one base path that
    does not exist leaves every model without new versions in that listing
    (`ModelRegistry.poll`); the config file is re-read every
    `--model_config_file_poll_wait_seconds` (when positive) and the base paths
    listed every `--file_system_poll_wait_seconds`, each new version warmed up
    from its `assets.extra` records (each replayed
    `--num_request_iterations_for_warmup` times when positive) unless
    `--enable_model_warmup=false`; `--enable_batching` merges concurrent Predicts
    with the settings of `--batching_parameters_file` (TF Serving's defaults without
    one); gRPC listens on `--port` (unless 0) and on the UNIX socket
    `--grpc_socket_path` (if set), both secured by `--ssl_config_file`; the
    `--tensorflow_*_parallelism` flags size TensorFlow's op thread pools
    (`memae_tf.serving.threads`); `--rest_api_port` 0 serves no REST, and a REST
    port equal to the gRPC port is skipped with an error logged, as TF Serving does;
    the REST port serves TF Serving's metrics at the Prometheus path of
    `--monitoring_config_file` when it enables them, handles at most
    `--rest_api_num_threads` requests at once, and gives each REST predict the
    timeout `--rest_api_timeout_in_ms` and, with `--rest_api_enable_cors_support`,
    TF Serving's CORS headers to every REST API answer; the gRPC port runs at most
    `--grpc_max_threads` - 1 RPCs at once and refuses more with RESOURCE_EXHAUSTED,
    as gRPC's thread quota does in TF Serving, and takes the
    `--grpc_channel_arguments` as TF Serving's server does; it serves gRPC's health
    service only with `--enable_grpc_healthcheck_service`, as TF Serving's (SERVING
    from start, whatever the models). At start the versions listed load
    concurrently on 4 threads per schedulable CPU, as TF Serving's fast initial
    load (`ModelRegistry`); later versions load on `--num_load_threads` threads,
    or one at a time for 0 (TF Serving's manager thread), while the base paths are
    listed and configs reloaded; `--num_unload_threads` takes any count, since an
    unload here only takes the version out of service.

    Args:
        options: The flags, e.g. `parse_flags(container_args)`.
        host: Interface to bind; every interface by default, as TF Serving.

    Returns:
        A `ServingHandle`.

    Raises:
        ServingError: With TF Serving's status and message for flags or files it
            refuses (the file is named), and UNKNOWN `N servable(s) did not become
            available: ...` when, for a model, a version failed to load before any
            newer one and before any version became available (TF Serving does not
            start then either, even if an older version loads later; an older version
            available while the newest still loads or waits to retry starts it),
            and INVALID_ARGUMENT "Failed to BuildAndStart gRPC server" when a gRPC
            address does not bind (a REST port that does not bind is logged, and
            gRPC serves alone, as in TF Serving).
        KeyboardInterrupt: When interrupted while it waits for the models (no
            polling thread is left; `tensorflow_model_server` waits until killed).

    Example:

    >>> from memae_tf.serving import parse_flags, start_model_server
    >>> options = parse_flags(["--port=8500", "--rest_api_port=8501",
    ...                        "--model_config_file=/etc/tfserving/models.config"])
    >>> with start_model_server(options) as server:  # doctest: +SKIP
    ...     ...
    """
    if options.port == 0 and not options.grpc_socket_path:
        raise invalid_argument(
            "At least one of server_options.grpc_port or server_options.grpc_socket_path "
            "must be set."
        )
    _check_port("port", options.port)
    _check_port("rest_api_port", options.rest_api_port)
    _check_grpc_max_threads(options.grpc_max_threads)
    _check_loading(options)
    _check_saved_model_tags(options.saved_model_tags)
    channel_arguments = _channel_arguments(options.grpc_channel_arguments)
    if not (options.model_base_path or options.model_config_file):
        raise invalid_argument(
            "Both server_options.model_base_path and server_options.model_config_file are "
            "empty!"
        )
    for name in ("file_system_poll_wait_seconds", "model_config_file_poll_wait_seconds"):
        if getattr(options, name) < 0:
            raise invalid_argument(
                f"--{name} is negative ({getattr(options, name)}), which TF Serving reserves "
                "for its tests; expected 0 (read once) or a positive number of seconds."
            )
    if options.model_config_file:
        config = read_text_proto(options.model_config_file,
                                 model_server_config_pb2.ModelServerConfig)
    else:
        config = single_model_config(options.model_name, options.model_base_path)
    batching = _batching_parameters(options)
    intra_op_threads, inter_op_threads = thread_pools(options)
    credentials = _ssl_credentials(options)
    rest_port = options.rest_api_port or None
    if rest_port == options.port:
        logger.error("server_options.http_port cannot be same as grpc_port. Please use a "
                     "different port for HTTP/REST API. Skipped exporting HTTP/REST API.")
        rest_port = None
    if rest_port is not None and options.rest_api_num_threads < 1:
        # TF Serving aborts here: its REST thread pool CHECKs for at least one thread
        # (tensorflow/core/platform/threadpool.cc). A REST port of 0 builds no pool.
        raise invalid_argument(
            f"Check failed: num_threads >= 1 ({options.rest_api_num_threads} vs. 1): "
            "--rest_api_num_threads sizes the REST thread pool; expected a positive number "
            f"of threads. Received: --rest_api_num_threads={options.rest_api_num_threads}"
        )
    monitoring_path = None if rest_port is None else _monitoring_path(options)
    apply_thread_pools(intra_op_threads, inter_op_threads)
    models = ModelRegistry(options.file_system_poll_wait_seconds,
                           options.allow_version_labels_for_unavailable_models,
                           metrics=ServingMetrics(),
                           max_num_load_retries=options.max_num_load_retries,
                           # retrier.cc: a negative interval does not wait.
                           load_retry_interval=max(options.load_retry_interval_micros, 0) / 1e6,
                           enable_model_warmup=options.enable_model_warmup,
                           # server.cc sets ModelWarmupOptions.num_request_iterations only
                           # for a positive flag; saved_model_warmup_util.cc replays once
                           # without it.
                           warmup_iterations=max(options.num_request_iterations_for_warmup, 1),
                           # util.cc SetSignatureMethodNameCheckFeature: process-wide, so
                           # the warmup's requests are checked as the RPCs are.
                           signature_method_name_check=options.enable_signature_method_name_check,
                           num_load_threads=options.num_load_threads)
    _load_models(models, config, options.model_config_file,
                 options.model_config_file_poll_wait_seconds)
    return _open_ports(models, options.port or None, rest_port, host=host,
                       socket_path=options.grpc_socket_path,
                       max_workers=options.grpc_max_threads, thread_quota=True,
                       health_servicer=(_tf_serving_health()
                                        if options.enable_grpc_healthcheck_service else None),
                       channel_arguments=channel_arguments,
                       server_credentials=credentials, limits=RequestLimits(),
                       rest_ssl_context=None, batching=batching,
                       monitoring_path=monitoring_path,
                       rest_timeout_in_ms=options.rest_api_timeout_in_ms,
                       rest_num_threads=options.rest_api_num_threads,
                       rest_cors=options.rest_api_enable_cors_support, rest_required=False,
                       signature_method_name_check=options.enable_signature_method_name_check,
                       tensor_content=options.enable_serialization_as_tensor_content)


def wait_for_signal(handle: ServingHandle, grace: float = SERVE_GRACE_SECONDS) -> None:
    """Serves until SIGINT or SIGTERM, then stops `handle` gracefully.

    On the signal, health turns NOT_SERVING, both ports stop accepting new
    requests, and the requests in flight get up to `grace` seconds to finish
    (keep it below the orchestrator's kill timeout, e.g. Kubernetes'
    `terminationGracePeriodSeconds`, 30 s by default).

    Args:
        handle: A started server.
        grace: Seconds in-flight requests get to finish after the signal.
    """
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


def run_server(
    model_base_path: str | os.PathLike,
    model_name: str,
    port: int = GRPC_PORT,
    rest_port: int | None = None,
    *,
    grace: float = SERVE_GRACE_SECONDS,
    **options,
) -> None:
    """Runs `serve(...)` until SIGINT or SIGTERM, then stops gracefully (`wait_for_signal`).

    Args:
        model_base_path: Directory of the model's integer version directories.
        model_name: Name clients ask for.
        port: gRPC port.
        rest_port: REST port, or None for no REST.
        grace: Seconds in-flight requests get to finish after the signal.
        **options: Further keyword arguments of `serve`.
    """
    wait_for_signal(serve(model_base_path, model_name, port, rest_port, **options), grace)
