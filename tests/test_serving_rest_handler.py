"""RestServer's HTTP handling over a stand-in core: routes, limits, connections, metrics.

The stand-in records what the REST layer asks of the core and answers as the real
`ServingCore` does (a status, or the predict request's input doubled), so that each
test checks one thing TF Serving's REST server does: the model spec parsed from the URL
(http_rest_api_handler.cc's path regex: versions/N or labels/L), the requests counted
(http_server.cc: those under /v1/, labelled with the model and method of the URL, their
latency from when a worker takes them), the body limit, keep-alive connections, and 500
for an unexpected error. tests/test_serving.py runs the same server over a real model.
"""

import http.client
import json
import logging
import threading
import types

import grpc
import pytest
import tensorflow as tf
from serving_helpers import rest_call
from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_status_pb2,
    predict_pb2,
    regression_pb2,
)

from memae_tf.serving import rest
from memae_tf.serving.errors import ServingError
from memae_tf.serving.rest import RestServer
from memae_tf.serving.tensors import encode_tensor
from memae_tf.serving.validation import RequestLimits

LIMIT = 64  # bytes of a request body


class _StandInCore:
    def __init__(self):
        self.limits = RequestLimits(max_message_bytes=LIMIT)
        self.metrics = types.SimpleNamespace(recorded=[], render=lambda: "# metrics\n")
        self.metrics.record_request = lambda *args: self.metrics.recorded.append(args)
        self.specs = []
        self.requests, self.timeouts = [], []  # of classify and regress
        self.failure = None
        self.gate = threading.Event()  # predict waits here once `hold` is set
        self.hold = False
        self.running = threading.Event()
        self.handler_daemon = None

    def get_model_status(self, request):
        self.specs.append(request.model_spec)
        if self.failure is not None:
            raise self.failure
        return get_model_status_pb2.GetModelStatusResponse()

    def signature_inputs(self, spec, signature_name):
        return {"x": meta_graph_pb2.TensorInfo(dtype=types_pb2.DT_FLOAT)}

    def classify(self, request, timeout_in_ms):
        self.requests.append(request)
        self.timeouts.append(timeout_in_ms)
        response = classification_pb2.ClassificationResponse()
        response.result.classifications.add().classes.add(label="a", score=0.5)
        return response

    def regress(self, request, timeout_in_ms):
        self.requests.append(request)
        self.timeouts.append(timeout_in_ms)
        response = regression_pb2.RegressionResponse()
        response.result.regressions.add(value=0.5)
        return response

    def predict(self, request, timeout_in_ms, *, tensor_content=None):
        self.specs.append(request.model_spec)
        self.tensor_content = tensor_content
        self.handler_daemon = threading.current_thread().daemon
        if self.hold:
            self.running.set()
            self.gate.wait()
        x = tf.make_ndarray(request.inputs["x"])
        response = predict_pb2.PredictResponse(model_spec=request.model_spec)
        response.outputs["y"].CopyFrom(encode_tensor(2 * x))
        return response


def _get(server, path: str) -> tuple[int, str, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type"), response.read()
    finally:
        connection.close()


@pytest.fixture
def core():
    return _StandInCore()


@pytest.fixture
def server(core):
    server = RestServer(core, "127.0.0.1", 0, monitoring_path="/metrics", num_threads=2)
    server.start()
    yield server
    server.stop(grace=0)  # every request of these tests has its answer


@pytest.mark.parametrize(("path", "spec"), [
    ("/v1/models/kdd", {"name": "kdd"}),
    ("/v1/models/kdd/versions/7", {"name": "kdd", "version": "7"}),
    ("/v1/models/kdd/labels/stable", {"name": "kdd", "version_label": "stable"}),
])
def test_the_url_names_the_model_version_or_label(server, core, path, spec):
    assert rest_call(server.port, "GET", path) == (200, {"model_version_status": []})
    (received,) = core.specs
    assert rest._to_dict(received) == {**{"signature_name": ""}, **spec}


def test_requests_under_v1_are_counted_with_the_model_and_method_of_the_url(server, core):
    rest_call(server.port, "POST", "/v1/models/kdd/versions/2:predict", {"instances": [[1.0]]})
    rest_call(server.port, "GET", "/v1/models/kdd/metadata/extra")  # malformed, still /v1/
    rest_call(server.port, "GET", "/v1/models/kdd")
    rest_call(server.port, "GET", "/elsewhere")  # not counted
    _get(server, "/metrics")  # not counted
    assert [args[:4] for args in core.metrics.recorded] == [
        ("kdd", "predict", "REST", grpc.StatusCode.OK),
        ("", "", "REST", grpc.StatusCode.INVALID_ARGUMENT),
        ("kdd", "", "REST", grpc.StatusCode.OK),
    ]


def test_a_request_latency_is_counted_in_microseconds_from_the_worker_clock(
        server, core, monkeypatch):
    clock = iter([10.0, 10.25])
    monkeypatch.setattr(rest, "time", types.SimpleNamespace(perf_counter=lambda: next(clock)))
    rest_call(server.port, "GET", "/v1/models/kdd")
    ((*_, latency),) = core.metrics.recorded
    assert latency == 250_000.0  # 0.25 s, exact in binary


def test_an_unexpected_error_is_500_naming_it_and_the_server_answers_on(server, core):
    core.failure = RuntimeError("disk on fire")
    assert rest_call(server.port, "GET", "/v1/models/kdd") == (
        500, {"error": "RuntimeError: disk on fire"})
    assert core.metrics.recorded[-1][3] == grpc.StatusCode.INTERNAL
    core.failure = ServingError(grpc.StatusCode.UNAVAILABLE, "draining")
    assert rest_call(server.port, "GET", "/v1/models/kdd") == (503, {"error": "draining"})


def test_the_predict_answer_is_the_core_output_in_the_request_format(server, core):
    assert rest_call(server.port, "POST", "/v1/models/kdd:predict",
                     {"instances": [[1.0, 2.0], [3.0, 4.0]]}) == (
        200, {"predictions": [[2.0, 4.0], [6.0, 8.0]]})
    assert rest_call(server.port, "POST", "/v1/models/kdd:predict",
                     {"inputs": [[1.5]], "signature_name": "doubled"}) == (
        200, {"outputs": [[3.0]]})
    assert core.specs[-1].signature_name == "doubled"
    assert core.tensor_content is True  # raw bytes: the JSON is made from them at once


@pytest.mark.parametrize(("method", "answer"), [
    ("classify", {"results": [[["a", 0.5]]]}), ("regress", {"results": [0.5]})])
def test_classify_and_regress_pass_the_examples_and_the_spec_to_the_core(server, core, method,
                                                                          answer):
    # http_rest_api_handler.cc ProcessClassifyRequest / ProcessRegressRequest: the URL's
    # spec and the body's signature_name, with the REST timeout; the result as JSON.
    body = {"signature_name": "s", "examples": [{"f": 1}]}
    assert rest_call(server.port, "POST", f"/v1/models/kdd/labels/l:{method}", body) == (
        200, answer)
    request = core.requests[-1]
    assert (request.model_spec.version_label, request.model_spec.signature_name) == ("l", "s")
    assert list(request.input.example_list.examples[0].features.feature["f"].int64_list.value) == [
        1]
    assert core.timeouts[-1] == server.timeout_in_ms


def test_a_body_of_exactly_the_limit_is_read(server):
    body = json.dumps({"instances": [[1.0]]}).encode().ljust(LIMIT)
    assert len(body) == LIMIT
    assert rest_call(server.port, "POST", "/v1/models/kdd:predict", body) == (
        200, {"predictions": [[2.0]]})
    status, answer = rest_call(server.port, "POST", "/v1/models/kdd:predict", body + b" ")
    assert status == 429
    assert answer["error"] == (f"Request body of {LIMIT + 1} bytes is larger than the limit; "
                               f"expected at most {LIMIT} bytes (max message size).")


def test_a_keep_alive_connection_carries_several_posts(server):
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        for value in (1.0, 2.0, 3.0):
            connection.request("POST", "/v1/models/kdd:predict",
                               json.dumps({"instances": [[value]]}))
            response = connection.getresponse()
            assert (response.status, json.loads(response.read())) == (
                200, {"predictions": [[2 * value]]})
            assert response.getheader("Connection") is None
    finally:
        connection.close()


def test_a_post_asking_to_close_is_answered_and_closed(server):
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        connection.request("POST", "/v1/models/kdd:predict", json.dumps({"instances": [[1.0]]}),
                           headers={"Connection": "close"})
        response = connection.getresponse()
        assert json.loads(response.read()) == {"predictions": [[2.0]]}
        assert response.getheader("Connection") == "close"
    finally:
        connection.close()


def test_the_monitoring_path_answers_the_metrics_text(server):
    status, content_type, body = _get(server, "/metrics?name=x")
    assert (status, body) == (200, b"# metrics\n")
    assert content_type.startswith("text/plain")


@pytest.mark.parametrize(("options", "message"), [
    ({"num_threads": 0}, "num_threads"),
    ({"timeout_in_ms": 1.5}, "expected an integer number of milliseconds"),
    ({"timeout_in_ms": True}, "expected an integer number of milliseconds"),
    ({"monitoring_path": "metrics"}, "expected None or a path starting with '/'"),
    ({"enable_cors_support": 1}, "expected True or False"),
])
def test_invalid_server_arguments_say_what_was_expected(core, options, message):
    with pytest.raises(ValueError, match=message):
        RestServer(core, "127.0.0.1", 0, **options)


def test_an_ipv6_host_is_served(core):
    try:
        server = RestServer(core, "::1", 0)
    except OSError:
        pytest.skip("no IPv6 loopback here")
    server.start()
    try:
        connection = http.client.HTTPConnection("::1", server.port, timeout=30)
        connection.request("GET", "/v1/models/kdd")
        assert connection.getresponse().status == 200
        connection.close()
    finally:
        server.stop(grace=30)


def test_default_threads_and_timeout_are_tf_servings(core, monkeypatch):
    # server.h: rest_api_num_threads from the CPUs (flags.default_threads),
    # rest_api_timeout_in_ms 30000.
    monkeypatch.setattr(rest, "default_threads", lambda: 12)
    server = RestServer(core, "127.0.0.1", 0)
    try:
        assert (server.num_threads, server.timeout_in_ms) == (12, 30000)
    finally:
        server.server_close()



# -------------------------------------------------------------- CORS (http_server.cc)


def _request(server, method: str, path: str, headers=None):
    """(status, headers, body) of one request."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        connection.request(method, path, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


_CORS = {"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Methods": "POST, GET",
         "Access-Control-Allow-Headers": "Content-Type"}


def _cors_headers(headers: dict) -> dict:
    return {k: v for k, v in headers.items() if k.startswith("Access-Control-")}


@pytest.fixture
def cors_server(core):
    server = RestServer(core, "127.0.0.1", 0, monitoring_path="/metrics", num_threads=2,
                        enable_cors_support=True)
    server.start()
    yield server
    server.stop(grace=0)


def test_with_cors_support_every_answer_under_v1_carries_tf_servings_cors_headers(
        cors_server, server):
    # http_server.cc ProcessRequest: AddCORSHeaders (http_rest_api_util.cc) for every
    # request the /v1/ dispatcher takes, whatever its status, when enable_cors_support;
    # none for the Prometheus handler or paths the dispatcher does not take.
    for method, path, status, cors in [
            ("GET", "/v1/models/kdd", 200, _CORS),
            ("GET", "/v1/models/kdd/metadata/extra", 400, _CORS),  # an error answer too
            ("OPTIONS", "/v1/models/kdd:predict", 400, _CORS),  # a preflight without Origin
            ("GET", "/metrics", 200, {}), ("GET", "/elsewhere", 404, {})]:
        answered, headers, _ = _request(cors_server, method, path)
        assert (answered, _cors_headers(headers)) == (status, cors), path
        answered, headers, _ = _request(server, method, path)  # the default: none
        assert (answered, _cors_headers(headers)) == (status, {}), path


def test_a_cors_preflight_under_v1_is_answered_from_its_origin_with_an_empty_body(
        server, core):
    # http_server.cc ProcessRequest: OPTIONS is answered without the handler (no model
    # named), OK when RE2::PartialMatch(Origin, "https?://"), else FAILED_PRECONDITION
    # "Origin header is missing in CORS preflight"; the output written is empty.
    origins = {"https://app.example.com": (200, grpc.StatusCode.OK),
               "http://localhost:3000": (200, grpc.StatusCode.OK),
               "app.example.com": (400, grpc.StatusCode.FAILED_PRECONDITION),
               None: (400, grpc.StatusCode.FAILED_PRECONDITION)}
    for origin, (status, code) in origins.items():
        headers = {} if origin is None else {"Origin": origin}
        answered, _, body = _request(server, "OPTIONS", "/v1/models/kdd:predict", headers)
        assert (answered, body, core.metrics.recorded[-1][:4]) == (
            status, b"", ("", "", "REST", code)), origin
    assert len(core.metrics.recorded) == len(origins) and core.specs == []
    # The dispatcher takes only paths matching (?i)/v1/.*: elsewhere, 404.
    assert _request(server, "OPTIONS", "/elsewhere")[0] == 404


# ------------------------------------------------------------------ stopping (stop(grace))


def _post_in_thread(server, answers):
    def post():
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        connection.request("POST", "/v1/models/kdd:predict", json.dumps({"instances": [[1.0]]}))
        response = connection.getresponse()
        answers.append((response.status, json.loads(response.read()),
                        response.getheader("Connection")))
        connection.close()

    thread = threading.Thread(target=post)
    thread.start()
    return thread


def test_stop_of_a_server_whose_requests_finished_waits_for_nothing(core, caplog):
    server = RestServer(core, "127.0.0.1", 0)
    server.start()
    body = {"instances": [[1.0]]}
    assert rest_call(server.port, "POST", "/v1/models/kdd:predict", body)[0] == 200
    assert rest_call(server.port, "GET", "/v1/models/kdd")[0] == 200
    with caplog.at_level(logging.WARNING, logger="memae_tf.serving.rest"):
        server.stop(grace=0)
    assert caplog.records == []


def test_stop_lets_the_request_in_flight_finish_and_closes_its_connection(core, caplog):
    server = RestServer(core, "127.0.0.1", 0)
    before = set(threading.enumerate())  # another test's server may still be ending
    server.start()
    (serving,) = [t for t in set(threading.enumerate()) - before if t.name == "rest"]
    core.hold = True
    answers = []
    client = _post_in_thread(server, answers)
    assert core.running.wait(timeout=60)
    stopper = threading.Thread(target=server.stop)  # grace None: as long as it takes
    with caplog.at_level(logging.WARNING, logger="memae_tf.serving.rest"):
        stopper.start()
        stopper.join(timeout=0.5)
        assert stopper.is_alive()  # still waiting for the request
        core.gate.set()
        client.join(timeout=60)
        stopper.join(timeout=60)
    assert not stopper.is_alive()
    assert answers == [(200, {"predictions": [[2.0]]}, "close")]
    assert caplog.records == []
    assert serving.daemon and core.handler_daemon  # neither holds up the process's exit


def test_stop_after_the_grace_period_warns_of_the_requests_still_running(core, caplog):
    server = RestServer(core, "127.0.0.1", 0)
    server.start()
    core.hold = True
    answers = []
    client = _post_in_thread(server, answers)
    assert core.running.wait(timeout=60)
    with caplog.at_level(logging.WARNING, logger="memae_tf.serving.rest"):
        server.stop(grace=0)
    core.gate.set()
    client.join(timeout=60)
    assert [r.getMessage() for r in caplog.records] == [
        "Stopping REST with 1 requests still running."]
    assert answers == [(200, {"predictions": [[2.0]]}, "close")]


def test_an_idle_keep_alive_connection_does_not_hold_up_stop(core):
    server = RestServer(core, "127.0.0.1", 0)
    server.start()
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        connection.request("GET", "/v1/models/kdd")
        assert connection.getresponse().read()
        stopper = threading.Thread(target=server.stop)
        stopper.start()
        stopper.join(timeout=60)
        assert not stopper.is_alive()
    finally:
        connection.close()
