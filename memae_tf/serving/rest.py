"""TF Serving's REST API (`/v1/models/...`) on `http.server`, over the shared core.

Paths, JSON formats and status codes follow TF Serving:

- `GET /v1/models/NAME[/versions/N]` → model status;
- `GET /v1/models/NAME[/versions/N]/metadata` → signature definitions;
- `POST /v1/models/NAME[/versions/N]:predict` with `{"instances": [...]}` (row
  format, answered with `{"predictions": ...}`) or `{"inputs": ...}` (columnar
  format, answered with `{"outputs": ...}`), and an optional `signature_name`,
  read with TF Serving's checks and messages (see `memae_tf.serving.rest_predict`);
- `POST /v1/models/NAME[/versions/N]:classify` and `:regress` with
  `{"examples": [{feature: value(s)}, ...]}`, an optional `context` example and
  `signature_name`, answered with `{"results": ...}` (see
  `memae_tf.serving.rest_examples`); a MemAE export has no classification or regression
  signature, so it answers 400 with TF Serving's message;
- predict, classify and regress answers, and errors as `{"error": "..."}`, written
  byte for byte as TF Serving writes them (see `memae_tf.serving.json_writer`),
  errors with the HTTP status of the gRPC code (http_server.cc `ToHTTPStatusCode`);
- each predict runs with the server's timeout (`--rest_api_timeout_in_ms`,
  30000 by default) as its `RunOptions.timeout_in_ms`: a request whose batch
  waited past it in the batching queue gets 429 (RESOURCE_EXHAUSTED), one
  whose run took longer 504 (DEADLINE_EXCEEDED), with TensorFlow's messages
  (see `memae_tf.serving.deadlines`);
- `GET <monitoring_path>` → TF Serving's metrics in Prometheus' text format,
  when the server is given a path (`prometheus_config`);
- at most `--rest_api_num_threads` requests are handled at once (4 per
  schedulable CPU by default); the others wait for a worker, none is refused;
- `OPTIONS` under /v1/ answers a CORS preflight with an empty body, and with
  `--rest_api_enable_cors_support` every answer under /v1/ carries TF
  Serving's CORS headers.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import socket
import ssl
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
import tensorflow as tf
from google.protobuf import json_format
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_pb2,
    predict_pb2,
    regression_pb2,
)

from memae_tf.common.checks import check_bool, check_positive_int
from memae_tf.common.contract import SIGNATURE_DEF_FIELD
from memae_tf.serving.core import ServingCore
from memae_tf.serving.errors import ServingError, invalid_argument, not_found
from memae_tf.serving.flags import default_threads
from memae_tf.serving.json_writer import (
    classification_json,
    error_json,
    predict_json,
    regression_json,
)
from memae_tf.serving.metrics import PROMETHEUS_CONTENT_TYPE
from memae_tf.serving.rest_examples import parse_examples_body
from memae_tf.serving.rest_predict import parse_predict_body
from memae_tf.serving.tensors import encode_tensor

logger = logging.getLogger(__name__)
# model_servers/http_rest_api_util.cc AddCORSHeaders.
CORS_HEADERS = (("Access-Control-Allow-Origin", "*"),
                ("Access-Control-Allow-Methods", "POST, GET"),
                ("Access-Control-Allow-Headers", "Content-Type"))

_SPEC = r"/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>\d+)|/labels/(?P<label>[^/:]+))?"
_PREDICT_PATH = re.compile(_SPEC + r":(?P<method>classify|regress|predict)", re.IGNORECASE)
_MODEL_PATH = re.compile(_SPEC + r"(?P<metadata>/metadata)?", re.IGNORECASE)

HTTP_STATUS = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
    grpc.StatusCode.UNAUTHENTICATED: 401,
}


def _model_spec(match: re.Match) -> model_pb2.ModelSpec:
    spec = model_pb2.ModelSpec(name=match["name"])
    if match["version"] is not None:
        spec.version.value = int(match["version"])
    if match["label"] is not None:
        spec.version_label = match["label"]
    return spec


def _to_dict(message: Any) -> dict:
    return json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


class _Handler(BaseHTTPRequestHandler):
    server: RestServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s - " + format, self.address_string(), *args)

    # A request stays in flight (`tracking_request`) until its answer is written:
    # `stop` waits for it, and the process must not exit between the headers and
    # the body.

    def do_GET(self) -> None:
        monitoring_path = self.server.monitoring_path
        with self.server.tracking_request():
            if monitoring_path is not None and (
                    urllib.parse.urlsplit(self.path).path == monitoring_path):
                with self.server.workers:
                    self._send(200, self.server.core.metrics.render().encode("utf-8"),
                               PROMETHEUS_CONTENT_TYPE)
            else:
                self._reply(self._get)

    def do_POST(self) -> None:
        with self.server.tracking_request():
            # The body is read before a worker takes the request, as TF Serving's
            # event loop reads a whole request before its thread pool runs it: a
            # slow upload holds no worker.
            try:
                body = self._read_body()
            except ServingError as error:
                refusal = error

                def handler(path: str) -> bytes:
                    raise refusal
            else:
                def handler(path: str) -> bytes:
                    return self._post(path, body)
            self._reply(handler)

    def do_OPTIONS(self) -> None:
        path = urllib.parse.urlsplit(self.path).path
        with self.server.tracking_request():
            if not path.lower().startswith("/v1/"):
                self._reply(self._unrouted)
                return
            with self.server.workers:
                # http_server.cc ProcessRequest answers a CORS preflight under /v1/
                # whatever --rest_api_enable_cors_support, with an empty body and no
                # model: OK if the Origin header names an http(s) origin, else
                # FAILED_PRECONDITION ("Origin header is missing in CORS preflight").
                started = time.perf_counter()
                code = (grpc.StatusCode.OK
                        if re.search("https?://", self.headers.get("Origin", ""))
                        else grpc.StatusCode.FAILED_PRECONDITION)
                self.server.core.metrics.record_request(
                    "", "", "REST", code, (time.perf_counter() - started) * 1e6)
                self._send(HTTP_STATUS[code], b"", None, cors=True)

    def _unrouted(self, path: str) -> bytes:
        raise self._malformed(path)

    def _read_body(self) -> bytes:
        """Reads the body, refused from its Content-Length before reading when too large."""
        # Until the body is read, the connection cannot carry another request.
        keep_open, self.close_connection = not self.close_connection, True
        body = self.rfile.read(self._content_length())
        self.close_connection = not keep_open
        return body

    def _content_length(self) -> int:
        if self.headers.get("Transfer-Encoding"):
            raise invalid_argument(
                "Chunked request bodies are not supported; expected a Content-Length header."
            )
        text = self.headers.get("Content-Length") or "0"
        if not text.isdigit():
            raise invalid_argument(
                f"Expected Content-Length to be a non-negative integer. Received: {text!r}"
            )
        limit = self.server.core.limits.max_message_bytes
        if limit is not None and int(text) > limit:
            raise ServingError(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"Request body of {int(text)} bytes is larger than the limit; expected at "
                f"most {limit} bytes (max message size).",
            )
        return int(text)

    def _reply(self, handler) -> None:
        path = urllib.parse.urlsplit(self.path).path
        # The latency counts from when a worker takes the request, as http_server.cc
        # measures it.
        with self.server.workers:
            started = time.perf_counter()
            code = grpc.StatusCode.OK
            try:
                status, answer = 200, handler(path)
            except ServingError as error:
                code = error.code
                status, answer = HTTP_STATUS[error.code], error_json(error.message)
            except Exception as error:  # the server must outlive any request
                logger.exception("REST request %s %s failed.", self.command, path)
                code = grpc.StatusCode.INTERNAL
                status, answer = 500, error_json(f"{type(error).__name__}: {error}")
            labels = self._metric_labels(path)
            if labels is not None:
                self.server.core.metrics.record_request(
                    *labels, "REST", code, (time.perf_counter() - started) * 1e6)
            self._send(status, answer, "application/json", cors=path.lower().startswith("/v1/"))

    def _metric_labels(self, path: str) -> tuple[str, str] | None:
        """`(model_name, API)` of a request TF Serving counts, or None for one it does not.

        As http_server.cc: requests under /v1/ are counted, with the model name
        and method parsed from the URL (`predict`; empty for status and metadata).
        """
        if not path.lower().startswith("/v1/"):
            return None
        pattern = _PREDICT_PATH if self.command == "POST" else _MODEL_PATH
        match = pattern.fullmatch(path)
        if match is None:
            return "", ""
        return match["name"], match["method"] if self.command == "POST" else ""

    def _send(
        self, status: int, payload: bytes, content_type: str | None, *, cors: bool = False
    ) -> None:
        """Writes an answer; `cors` marks one of TF Serving's REST API (under /v1/)."""
        if self.server.stopping:
            self.close_connection = True
        self.send_response(status)
        if content_type is not None:
            self.send_header("Content-Type", content_type)
        if cors and self.server.enable_cors_support:
            for name, value in CORS_HEADERS:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(payload)

    def _malformed(self, path: str) -> ServingError:
        if path.lower().startswith("/v1/"):
            return invalid_argument(f"Malformed request: {self.command} {path}")
        return not_found(f"No handler for {self.command} {path}; the REST API is under /v1/.")

    def _get(self, path: str) -> bytes:
        match = _MODEL_PATH.fullmatch(path)
        if match is None:
            raise self._malformed(path)
        spec = _model_spec(match)
        core = self.server.core
        if match["metadata"]:
            request = get_model_metadata_pb2.GetModelMetadataRequest(
                model_spec=spec, metadata_field=[SIGNATURE_DEF_FIELD]
            )
            response = core.get_model_metadata(request)
            signatures = get_model_metadata_pb2.SignatureDefMap()
            response.metadata[SIGNATURE_DEF_FIELD].Unpack(signatures)
            answer = {"model_spec": _to_dict(response.model_spec),
                      "metadata": {SIGNATURE_DEF_FIELD: _to_dict(signatures)}}
        else:
            request = get_model_status_pb2.GetModelStatusRequest(model_spec=spec)
            answer = _to_dict(core.get_model_status(request))
        return json.dumps(answer).encode("utf-8")

    def _post(self, path: str, body: bytes) -> bytes:
        match = _PREDICT_PATH.fullmatch(path)
        if match is None:
            raise self._malformed(path)
        # http_rest_api_handler.cc ProcessRequest: the path matches any case of the
        # method, the dispatch only the lower case; another stays "Malformed request".
        if match["method"] in ("classify", "regress"):
            return self._post_examples(match, body)
        if match["method"] != "predict":
            raise self._malformed(path)
        # ProcessPredictRequest: the body is read, and the model looked up for the
        # signature's inputs, before the request runs.
        spec = _model_spec(match)
        core = self.server.core
        spec.signature_name, inputs, row_format = parse_predict_body(
            body, lambda signature_name: core.signature_inputs(spec, signature_name))
        request = predict_pb2.PredictRequest(model_spec=spec)
        for name, array in inputs.items():
            request.inputs[name].CopyFrom(encode_tensor(array, tensor_content=True))
        response = core.predict(request, self.server.timeout_in_ms, tensor_content=True)
        outputs = {name: tf.make_ndarray(proto) for name, proto in response.outputs.items()}
        return predict_json(outputs, row_format)


    def _post_examples(self, match: re.Match, body: bytes) -> bytes:
        # ProcessClassifyRequest / ProcessRegressRequest: the body is read before the
        # model is looked up.
        signature_name, request_input = parse_examples_body(body)
        spec = _model_spec(match)
        if signature_name is not None:
            spec.signature_name = signature_name
        core = self.server.core
        if match["method"] == "classify":
            request = classification_pb2.ClassificationRequest(model_spec=spec,
                                                               input=request_input)
            return classification_json(core.classify(request, self.server.timeout_in_ms).result)
        request = regression_pb2.RegressionRequest(model_spec=spec, input=request_input)
        return regression_json(core.regress(request, self.server.timeout_in_ms).result)


class RestServer(ThreadingHTTPServer):
    """HTTP server of TF Serving's REST API, with at most `num_threads` requests handled at once.

    As in TF Serving (http_server.cc), a pool of `num_threads` workers handles
    the requests and a request that finds every worker busy waits for one; it
    is not refused, and its timeout starts only once a worker runs it. Each
    connection has a thread of its own that reads its requests and writes the
    answers, the part TF Serving's event loop does, so that idle keep-alive
    connections hold no worker.

    Request bodies larger than `core.limits.max_message_bytes` are refused
    from their Content-Length, before they are read. `stop` lets the requests
    in flight finish, those waiting for a worker included. With `ssl_context`,
    the port speaks HTTPS; the TLS handshake runs in the connection's thread,
    so a slow or refused client never holds up the others.

    Args:
        core: The shared request handler.
        host: Interface to bind.
        port: Port to bind; 0 picks a free one (see `port` after construction).
        ssl_context: A server-side `ssl.SSLContext` for HTTPS (set
            `verify_mode = ssl.CERT_REQUIRED` to require client certificates);
            None serves plain HTTP.
        monitoring_path: Where GET answers `core.metrics` in Prometheus' text
            format (TF Serving's `prometheus_config.path`, by default
            `/monitoring/prometheus/metrics`); None answers 404 there, as TF
            Serving does when `prometheus_config.enable` is false.
        timeout_in_ms: The timeout of each predict, in milliseconds (TF
            Serving's `--rest_api_timeout_in_ms`, default 30000); 0 or less
            for none. It is counted from when the request reaches the batching
            queue or, without batching, the signature's run: reading and
            parsing the body do not count, as in TF Serving.
        num_threads: Requests handled at once (TF Serving's
            `--rest_api_num_threads`); None for its default, 4 per schedulable
            CPU.
        enable_cors_support: Whether every answer under /v1/ carries TF
            Serving's CORS headers (`--rest_api_enable_cors_support`).
    """

    # Idle keep-alive connections must not hold up `stop`: `server_close` joins no
    # daemon thread (socketserver.ThreadingMixIn); in-flight requests are counted
    # instead (see `tracking_request`).
    daemon_threads = True

    def __init__(
        self,
        core: ServingCore,
        host: str,
        port: int,
        ssl_context: ssl.SSLContext | None = None,
        *,
        monitoring_path: str | None = None,
        timeout_in_ms: int = 30000,
        num_threads: int | None = None,
        enable_cors_support: bool = False,
    ) -> None:
        num_threads = default_threads() if num_threads is None else num_threads
        check_bool("enable_cors_support", enable_cors_support)
        check_positive_int("num_threads", num_threads)
        if isinstance(timeout_in_ms, bool) or not isinstance(timeout_in_ms, int):
            raise ValueError(
                "Received an invalid value for `timeout_in_ms`, expected an integer number of "
                f"milliseconds (0 or less for none). Received: timeout_in_ms={timeout_in_ms!r}"
            )
        if monitoring_path is not None and not monitoring_path.startswith("/"):
            raise ValueError(
                "Received an invalid value for `monitoring_path`, expected None or a path "
                f"starting with '/'. Received: monitoring_path={monitoring_path!r}"
            )
        if ":" in host:
            self.address_family = socket.AF_INET6
        super().__init__((host, port), _Handler)
        if ssl_context is not None:
            self.socket = ssl_context.wrap_socket(
                self.socket, server_side=True, do_handshake_on_connect=False
            )
        self.core = core
        self.monitoring_path = monitoring_path
        self.timeout_in_ms = timeout_in_ms
        self.num_threads = num_threads
        self.enable_cors_support = enable_cors_support
        # One permit per worker: held from when a worker takes a request until its
        # answer is written.
        self.workers = threading.Semaphore(num_threads)
        self.stopping = False
        self._in_flight = 0
        self._idle = threading.Condition()
        self._thread: threading.Thread | None = None

    @contextlib.contextmanager
    def tracking_request(self) -> Iterator[None]:
        """Counts a request as in flight while it is being answered."""
        with self._idle:
            self._in_flight += 1
        try:
            yield
        finally:
            with self._idle:
                self._in_flight -= 1
                self._idle.notify_all()

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Refused TLS handshakes and dropped connections are the client's business.
        logger.info("REST connection from %s failed: %s", client_address,
                    sys.exc_info()[1])

    @property
    def port(self) -> int:
        """The bound port."""
        return self.server_address[1]

    def start(self) -> None:
        """Serves in a background thread."""
        self._thread = threading.Thread(target=self.serve_forever, daemon=True, name="rest")
        self._thread.start()

    def stop(self, grace: float | None = None) -> None:
        """Closes the port to new connections, then waits for the requests in flight.

        Args:
            grace: Seconds to wait for requests in flight; None waits as long
                as they take.
        """
        self.stopping = True
        self.shutdown()
        self.server_close()  # new connections are refused from here on
        with self._idle:
            if not self._idle.wait_for(lambda: self._in_flight == 0, timeout=grace):
                logger.warning("Stopping REST with %d requests still running.",
                               self._in_flight)
