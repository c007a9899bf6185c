"""SIGTERM drains the requests in flight (gRPC and REST) of a real `memae serve` process."""

import json
import os
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from reliability_helpers import (
    FEATURES,
    export_gated_model,
    tensor_proto,
    wait_for,
)
from serving_helpers import free_port
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from memae_tf.client.tensors import to_ndarray
from memae_tf.serving import rest


def _batch(tag: int, held: bool) -> np.ndarray:
    x = np.full((3, FEATURES), 0.25, np.float32)
    x[0, 0], x[0, 1] = tag, float(held)
    return x


def _predict(port: int, x: np.ndarray, timeout: float = 120) -> np.ndarray:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "gated"
    request.inputs["x"].CopyFrom(tensor_proto(x))
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        return to_ndarray(stub.Predict(request, timeout=timeout).outputs["score"])


def _serving(port: int) -> bool:
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            check = health_pb2_grpc.HealthStub(channel).Check
            status = check(health_pb2.HealthCheckRequest(), timeout=5).status
            return status == health_pb2.HealthCheckResponse.SERVING
    except grpc.RpcError:
        return False


def _refused(port: int) -> bool:
    """Whether a new Predict is refused (UNAVAILABLE) rather than run."""
    try:
        _predict(port, _batch(0, held=False), timeout=60)
    except grpc.RpcError as error:
        return error.code() == grpc.StatusCode.UNAVAILABLE
    return False


def _rest_refused(rest_port: int) -> bool:
    """Whether the REST port refuses new connections."""
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{rest_port}/v1/models/gated", timeout=5)
    except OSError:
        return True
    return False


@pytest.fixture
def gated_server(tmp_path):
    """`memae serve` on a gated model, in its own process."""
    gate = tmp_path / "gate"
    gate.mkdir()
    export_gated_model(tmp_path / "gated", gate)
    port, rest_port = free_port(), free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "memae_tf.cli", "serve", "--model-base-path",
         str(tmp_path / "gated"), "--port", str(port), "--rest-port", str(rest_port),
         "--grace", "120"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        # The server gets TensorFlow's default thread pools even when the tests run
        # with one thread each: the held requests spin in their ops, and with one
        # inter-op thread the first would keep the second from starting.
        env={**{k: v for k, v in os.environ.items()
                if k not in ("TF_NUM_INTEROP_THREADS", "TF_NUM_INTRAOP_THREADS")},
             "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    try:
        wait_for(lambda: _serving(port) or process.poll() is not None, timeout=300)
        assert process.poll() is None, process.stdout.read()
        yield process, port, rest_port, gate
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=60)


def test_sigterm_lets_requests_in_flight_finish_and_refuses_new_ones(gated_server):
    process, port, rest_port, gate = gated_server
    answers, failures = {}, []

    def grpc_call():
        try:
            answers["grpc"] = _predict(port, _batch(1, held=True))
        except Exception as error:  # collected for the assertion below
            failures.append(error)

    def rest_call():
        body = json.dumps({"instances": _batch(2, held=True).tolist()}).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{rest_port}/v1/models/gated:predict", data=body, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                answers["rest"] = np.array([p["score"] for p in
                                            json.loads(response.read())["predictions"]])
        except Exception as error:  # collected for the assertion below
            failures.append(error)

    threads = [threading.Thread(target=grpc_call), threading.Thread(target=rest_call)]
    for thread in threads:
        thread.start()
    wait_for(lambda: {p.name for p in gate.iterdir()} >= {"started-1", "started-2"},
             timeout=300)

    process.send_signal(signal.SIGTERM)
    wait_for(lambda: not _serving(port), timeout=300)  # health turns NOT_SERVING first
    wait_for(lambda: _refused(port), timeout=300)
    wait_for(lambda: _rest_refused(rest_port), timeout=60)  # closes within a poll interval
    assert process.poll() is None  # still draining the two held requests

    (gate / "release").touch()
    for thread in threads:
        thread.join(timeout=120)
    assert failures == []
    np.testing.assert_allclose(answers["grpc"], _batch(1, True).mean(axis=1), rtol=1e-6)
    np.testing.assert_allclose(answers["rest"], _batch(2, True).mean(axis=1), rtol=1e-6)
    assert process.wait(timeout=120) == 0
    assert "Stopped." in process.stdout.read()


def test_rest_stop_waits_until_an_answer_is_written(monkeypatch):
    # The window that SIGTERM once hit under load: the answer computed, its body not
    # yet written. `stop` must count that request as in flight until the body is out.
    in_reply, release = threading.Event(), threading.Event()
    end_headers = rest._Handler.end_headers

    def slow_end_headers(handler):
        end_headers(handler)
        in_reply.set()
        release.wait(30)

    monkeypatch.setattr(rest._Handler, "end_headers", slow_end_headers)
    server = rest.RestServer(None, "127.0.0.1", 0)  # an unknown path needs no model
    server.start()
    answer = {}

    def get():
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{server.port}/nowhere", timeout=60)
        except urllib.error.HTTPError as error:  # 404, with its JSON body
            answer["status"], answer["body"] = error.code, json.loads(error.read())

    client = threading.Thread(target=get)
    client.start()
    assert in_reply.wait(30)
    stopper = threading.Thread(target=server.stop)
    stopper.start()
    stopper.join(0.5)
    assert stopper.is_alive(), "stop returned while an answer was half written"
    release.set()
    stopper.join(30)
    client.join(30)
    assert not stopper.is_alive()
    assert answer["status"] == 404 and "/v1/" in answer["body"]["error"]
