"""The gRPC servicers of PredictionService and ModelService, over an in-process gRPC server.

What TF Serving does around each call, named in each test:
model_servers/prediction_service_impl.cc (the latency of a Predict, Classify or Regress,
Env::NowMicros() after the call less before it) and model_servers/model_service_impl.cc
(HandleReloadConfigRequest answers with ServerCore::ReloadConfig's status).
"""

import contextlib
import time
from concurrent import futures

import grpc
import pytest
from google.protobuf import text_format
from serving_helpers import StandInServable
from tensorflow_serving.apis import (
    get_model_status_pb2,
    model_management_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from memae_tf.serving import ModelRegistry, model_manager
from memae_tf.serving.core import ServingCore
from memae_tf.serving.grpc_services import ModelServicer, PredictionServicer
from memae_tf.serving.metrics import ServingMetrics, parse_exposition

DELAY_SECONDS = 0.05


class _DelayedCore:
    """Answers a Predict after `DELAY_SECONDS`, echoing its model spec."""

    def __init__(self) -> None:
        self.metrics = ServingMetrics()

    def predict(self, request, timeout_in_ms):
        time.sleep(DELAY_SECONDS)
        return predict_pb2.PredictResponse(model_spec=request.model_spec)


@contextlib.contextmanager
def _serving(servicer, add_to_server):
    """Serves `servicer` on a loopback port; gives a channel to it."""
    server = grpc.server(futures.ThreadPoolExecutor(2))
    add_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield channel
    finally:
        server.stop(None)


def test_a_predicts_request_latency_is_its_wall_time_in_microseconds():
    # prediction_service_impl.cc Predict: RecordRequestLatency(name, "Predict", "GRPC",
    # NowMicros() - start), start taken before the call; the sampler's sum is that value.
    core = _DelayedCore()
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "memae"
    with _serving(PredictionServicer(core),
                  prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        started = time.perf_counter()
        response = stub.Predict(request, timeout=30)
        elapsed_micros = (time.perf_counter() - started) * 1e6
    assert response.model_spec.name == "memae"
    key = (("API", "Predict"), ("entrypoint", "GRPC"), ("model_name", "memae"))
    latency = parse_exposition(core.metrics.render())
    assert latency[":tensorflow:serving:request_latency_count"][key] == 1
    assert (DELAY_SECONDS * 1e6 <= latency[":tensorflow:serving:request_latency_sum"][key]
            <= elapsed_micros)


@pytest.fixture
def model_service(monkeypatch):
    """A ModelService over a core whose registry loads any version directory at once."""
    monkeypatch.setattr(model_manager, "Servable", StandInServable)
    registry = ModelRegistry(0)
    with _serving(ModelServicer(ServingCore(registry)),
                  model_service_pb2_grpc.add_ModelServiceServicer_to_server) as channel:
        yield model_service_pb2_grpc.ModelServiceStub(channel)
    registry.stop()


def test_a_reload_answers_its_ok_status_and_the_model_then_serves(model_service, tmp_path):
    # model_service_impl.cc HandleReloadConfigRequest: ServerCore::ReloadConfig's status,
    # OK once the listed model has a version available, in the response's status.
    (tmp_path / "kdd" / "1").mkdir(parents=True)
    request = model_management_pb2.ReloadConfigRequest()
    text_format.Parse(f'model_config_list {{ config {{ name: "kdd" base_path: '
                      f'"{tmp_path / "kdd"}" model_platform: "tensorflow" }} }}', request.config)
    response = model_service.HandleReloadConfigRequest(request, timeout=30)
    assert (response.status.error_code, response.status.error_message) == (0, "")
    status = get_model_status_pb2.GetModelStatusRequest()
    status.model_spec.name = "kdd"
    versions = model_service.GetModelStatus(status, timeout=30).model_version_status
    assert [(v.version, v.state) for v in versions] == [
        (1, get_model_status_pb2.ModelVersionStatus.AVAILABLE)]
