"""The development server with TF Serving's batching and metrics, end to end over loopback.

Requests are sent with tensorflow-serving-api's own generated stub and plain
HTTP, so nothing of this project's client is involved. Each test names the TF
Serving source whose behaviour it checks.
"""

import json
import threading
import urllib.error
import urllib.request
from concurrent import futures

import grpc
import numpy as np
import pytest
import tensorflow as tf
from google.protobuf.message import DecodeError
from serving_helpers import FEATURES, reference_outputs, small_model
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from memae_tf.export import export_saved_model
from memae_tf.serving.batching import BatchingOptions
from memae_tf.serving.config import single_model_config
from memae_tf.serving.core import ServingCore
from memae_tf.serving.grpc_services import PredictionServicer
from memae_tf.serving.metrics import DEFAULT_PROMETHEUS_PATH, ServingMetrics, parse_exposition
from memae_tf.serving.model_registry import ModelRegistry
from memae_tf.serving.proto import BatchingParameters
from memae_tf.serving.rest import RestServer
from memae_tf.serving.servable import Servable
from memae_tf.serving.validation import RequestLimits

MODEL = "kdd"


class Server:
    """gRPC + REST over one `ServingCore`, as the server module wires them."""

    def __init__(self, base_path, *, batching, monitoring_path=DEFAULT_PROMETHEUS_PATH):
        self.models = ModelRegistry(0)
        self.models.reload_config(single_model_config(MODEL, str(base_path)))
        self.core = ServingCore(self.models, batching=batching)
        self.grpc = grpc.server(futures.ThreadPoolExecutor(max_workers=32))
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
            PredictionServicer(self.core), self.grpc)
        self.port = self.grpc.add_insecure_port("127.0.0.1:0")
        self.grpc.start()
        self.rest = RestServer(self.core, "127.0.0.1", 0, monitoring_path=monitoring_path)
        self.rest.start()
        self.channel = grpc.insecure_channel(f"127.0.0.1:{self.port}")
        self.stub = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)

    def predict(self, x, **spec):
        request = predict_pb2.PredictRequest()
        request.model_spec.name = spec.get("name", MODEL)
        request.inputs["x"].CopyFrom(tf.make_tensor_proto(x))
        response = self.stub.Predict(request, timeout=30)
        return {name: tf.make_ndarray(proto) for name, proto in response.outputs.items()}

    def http(self, path, body=None):
        request = urllib.request.Request(f"http://127.0.0.1:{self.rest.port}{path}", data=body,
                                         method="GET" if body is None else "POST")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.headers["Content-Type"], response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.headers["Content-Type"], error.read().decode()

    def stop(self):
        self.channel.close()
        self.grpc.stop(0).wait()
        self.rest.stop(0)
        self.core.stop(10)
        self.models.stop()


@pytest.fixture(scope="module")
def model():
    return small_model(21)


@pytest.fixture(scope="module")
def base_path(tmp_path_factory, model):
    base = tmp_path_factory.mktemp("batched") / MODEL
    export_saved_model(model, base, threshold=0.05)
    return base


@pytest.fixture(scope="module")
def shipped(base_path):
    """The shipped ConfigMap's batching: max_batch_size 64, no large-batch splitting."""
    server = Server(base_path, batching=BatchingOptions(
        max_batch_size=64, batch_timeout_micros=2000, max_enqueued_batches=100,
        num_batch_threads=4))
    yield server
    server.stop()


def rows(count: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 1, size=(count, FEATURES)).astype("float32")


def test_raw_65_row_request_gets_tf_servings_batching_error(shipped):
    # TensorFlow's shared_batch_scheduler.h ValidateBatchTaskQueueCapacity, as TF Serving
    # answers with --enable_batching and max_batch_size 64 (tensorflow/serving#1401).
    request = predict_pb2.PredictRequest()
    request.model_spec.name = MODEL
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(rows(65, 0)))
    with pytest.raises(grpc.RpcError) as refused:
        shipped.stub.Predict(request, timeout=30)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert refused.value.details() == "Task size 65 is larger than maximum input batch size 64"


def test_64_rows_are_served_and_equal_in_process_scores(shipped, model):
    x = rows(64, 1)
    outputs = shipped.predict(x)
    expected = reference_outputs(model, x)
    np.testing.assert_allclose(outputs["score"], expected["score"], rtol=1e-5)
    np.testing.assert_allclose(outputs["reconstruction"], expected["reconstruction"],
                               rtol=1e-5, atol=1e-6)


def test_concurrent_requests_share_one_signature_call(base_path, model, monkeypatch):
    # batching_session.cc ProcessBatch: one wrapped Run on the merged batch; the batch
    # runs as soon as it is full (shared_batch_scheduler.h), here after 8 one-row requests.
    calls = []
    run = Servable.run

    def counted(self, signature_name, inputs):
        calls.append(inputs["x"].shape[0])
        return run(self, signature_name, inputs)

    monkeypatch.setattr(Servable, "run", counted)
    server = Server(base_path, batching=BatchingOptions(
        max_batch_size=8, batch_timeout_micros=30_000_000, num_batch_threads=2))
    calls.clear()  # the warmup requests replayed on load
    try:
        requests = [rows(1, seed) for seed in range(8)]
        answers = [None] * 8
        barrier = threading.Barrier(8)

        def send(index):
            barrier.wait()
            answers[index] = server.predict(requests[index])

        threads = [threading.Thread(target=send, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    finally:
        server.stop()
    assert calls == [8]
    for x, answer in zip(requests, answers, strict=True):
        expected = reference_outputs(model, x)
        np.testing.assert_allclose(answer["score"], expected["score"], rtol=1e-5)
        np.testing.assert_allclose(answer["reconstruction"], expected["reconstruction"],
                                   rtol=1e-5, atol=1e-6)


def test_large_batch_splitting_serves_1000_rows_equal_to_unbatched(base_path, model):
    # bundle_factory_util.h GetQueueOptions with enable_large_batch_splitting:
    # max_batch_size bounds the request, max_execution_batch_size the batches.
    server = Server(base_path, batching=BatchingOptions(
        max_batch_size=1024, enable_large_batch_splitting=True, max_execution_batch_size=64,
        max_enqueued_batches=100, num_batch_threads=2))
    try:
        x = rows(1000, 3)
        outputs = server.predict(x)
        processed = server.core.metrics.processed_batch_size.cumulative_counts()
    finally:
        server.stop()
    np.testing.assert_allclose(outputs["score"], reference_outputs(model, x)["score"],
                               rtol=1e-5)
    # 16 batches of at most 64 rows: 15 full ones and one of 40.
    assert processed[-1] == 16
    assert processed[6] == 1  # Exponential(1, 2, 14): limit 64 holds the 40-row batch only


def test_metrics_page_counts_the_requests_sent(shipped):
    # util.cc: request_count{model_name, status}, request_latency{model_name, API,
    # entrypoint}; prediction_service_impl.cc and http_server.cc record them, latency
    # for successful requests only; prometheus_exporter.cc renders them.
    before = parse_exposition(shipped.http(DEFAULT_PROMETHEUS_PATH)[2])
    for seed in range(3):
        shipped.predict(rows(2, seed))
    with pytest.raises(grpc.RpcError):
        shipped.predict(rows(65, 0))
    with pytest.raises(grpc.RpcError):
        shipped.predict(rows(1, 0), name="missing")
    body = json.dumps({"instances": rows(2, 9).tolist()}).encode()
    assert shipped.http(f"/v1/models/{MODEL}:predict", body)[0] == 200
    assert shipped.http(f"/v1/models/{MODEL}")[0] == 200
    status, content_type, text = shipped.http(DEFAULT_PROMETHEUS_PATH)
    assert status == 200 and content_type.startswith("text/plain")
    page = parse_exposition(text)

    def delta(sample, labels):
        key = tuple(sorted(labels.items()))
        return page[sample].get(key, 0) - before.get(sample, {}).get(key, 0)

    count = ":tensorflow:serving:request_count"
    assert delta(count, {"model_name": MODEL, "status": "OK"}) == 5
    assert delta(count, {"model_name": MODEL, "status": "INVALID_ARGUMENT"}) == 1
    assert delta(count, {"model_name": "missing", "status": "NOT_FOUND"}) == 1
    latency = ":tensorflow:serving:request_latency"
    grpc_labels = {"model_name": MODEL, "API": "Predict", "entrypoint": "GRPC"}
    assert delta(f"{latency}_count", grpc_labels) == 3
    assert delta(f"{latency}_count", {**grpc_labels, "API": "predict", "entrypoint": "REST"}) == 1
    assert delta(f"{latency}_count", {**grpc_labels, "API": "", "entrypoint": "REST"}) == 1
    # The histogram of one label set: cumulative, ending at _count, with a positive _sum.
    key = tuple(sorted(grpc_labels.items()))
    buckets = sorted(
        ((float(dict(labels)["le"]), value) for labels, value in
         page[f"{latency}_bucket"].items() if tuple(kv for kv in labels if kv[0] != "le") == key))
    counts = [value for _, value in buckets]
    assert len(counts) == 34 and counts == sorted(counts)
    assert counts[-1] == page[f"{latency}_count"][key]
    assert page[f"{latency}_sum"][key] > 0
    assert page[":tensorflow:serving:batching_session:wrapped_run_count"][()] >= 4


def test_metrics_path_is_not_found_without_prometheus(base_path):
    # http_server.cc registers the Prometheus handler only when prometheus_config.enable.
    server = Server(base_path, batching=None, monitoring_path=None)
    try:
        status, _, _ = server.http(DEFAULT_PROMETHEUS_PATH)
    finally:
        server.stop()
    assert status == 404


def test_saved_model_loads_are_counted_by_path_and_outcome(base_path, tmp_path):
    # TensorFlow's cc/saved_model/loader.cc: load_attempt_count{model_path, status},
    # load_latency{model_path} in microseconds.
    metrics = ServingMetrics()
    Servable(1, base_path / "1", metrics)
    broken = tmp_path / "7"
    broken.mkdir()
    (broken / "saved_model.pb").write_bytes(b"not a SavedModel")
    with pytest.raises(DecodeError):
        Servable(7, broken, metrics)
    assert metrics.load_attempt_count.value(str(base_path / "1"), "success") == 1
    assert metrics.load_attempt_count.value(str(broken), "fail") == 1
    assert metrics.load_latency.value(str(base_path / "1")) > 0


def test_a_negative_max_batch_size_in_the_batching_file_serves_any_request_size(
    base_path, model
):
    # TF Serving loads the model with it (bundle_factory_util.h GetQueueOptions: the
    # Int64Value into TensorFlow's size_t input_batch_size_limit, which
    # shared_batch_scheduler.h AddQueue refuses only when 0), and no task is then above
    # the limit: 1001 rows, refused with an unset max_batch_size (1000), are served.
    unset = Server(base_path, batching=BatchingParameters())
    try:
        with pytest.raises(grpc.RpcError, match="Task size 1001 is larger than maximum "
                                                "input batch size 1000"):
            unset.predict(rows(1001, 5))
    finally:
        unset.stop()
    server = Server(base_path, batching=BatchingParameters(max_batch_size={"value": -1}))
    try:
        x = rows(1001, 5)
        np.testing.assert_allclose(server.predict(x)["score"],
                                   reference_outputs(model, x)["score"], rtol=1e-5)
    finally:
        server.stop()


def test_the_request_limit_has_one_source_when_batching_is_on():
    # With --enable_batching TF Serving's only batch limit is BatchingParameters.max_batch_size.
    core = ServingCore({}, batching=BatchingParameters(max_batch_size={"value": 48}))
    try:
        assert core.limits.max_batch_size == 48
    finally:
        core.stop()
    with pytest.raises(ValueError, match=r"the batching max_batch_size \(64\).*"
                                         r"Received: limits.max_batch_size=32"):
        ServingCore({}, RequestLimits(max_batch_size=32),
                    batching=BatchingOptions(max_batch_size=64))
