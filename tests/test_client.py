"""MemAEClient against a scripted fake server: retries, deadlines, splitting, filters."""

import os
import subprocess
import sys
import textwrap
import threading
import time
from concurrent import futures

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from memae_tf.client import (
    DeadlineExceededError,
    InvalidArgumentError,
    MemAEClient,
    UnavailableError,
)

FEATURES = 4


class ScriptedService(prediction_service_pb2_grpc.PredictionServiceServicer):
    """Answers Predict with `score = x[:, 0]` after the scripted failures or delay."""

    def __init__(self) -> None:
        self.requests: list[predict_pb2.PredictRequest] = []
        self.failures: list[grpc.StatusCode] = []
        self.delay = 0.0
        self.lock = threading.Lock()

    def GetModelMetadata(self, request, context):  # noqa: N802
        signature = get_model_metadata_pb2.SignatureDefMap()
        serving = signature.signature_def["serving_default"]
        serving.inputs["x"].dtype = types_pb2.DT_FLOAT
        for size in (-1, FEATURES):
            serving.inputs["x"].tensor_shape.dim.add(size=size)
        serving.outputs["score"].dtype = types_pb2.DT_FLOAT
        serving.outputs["score"].tensor_shape.dim.add(size=-1)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = request.model_spec.name
        response.model_spec.version.value = 7
        response.metadata["signature_def"].Pack(signature)
        return response

    def Predict(self, request, context):  # noqa: N802
        with self.lock:
            self.requests.append(request)
            failure = self.failures.pop(0) if self.failures else None
        if failure is not None:
            context.abort(failure, f"scripted {failure.name}")
        time.sleep(self.delay)
        x = tf.make_ndarray(request.inputs["x"])
        response = predict_pb2.PredictResponse()
        response.model_spec.name = request.model_spec.name
        response.model_spec.version.value = 7
        response.outputs["score"].CopyFrom(tf.make_tensor_proto(x[:, 0]))
        return response


@pytest.fixture
def service():
    service = ScriptedService()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(service, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    service.target = f"127.0.0.1:{port}"
    yield service
    server.stop(0)


@pytest.fixture
def x() -> np.ndarray:
    return np.random.default_rng(0).uniform(size=(10_000, FEATURES)).astype("float32")


# ------------------------------------------------------------------ transport


def test_unavailable_calls_are_retried_until_they_succeed(service, x):
    service.failures = [grpc.StatusCode.UNAVAILABLE] * 2
    with MemAEClient(service.target, "m", retries=3) as client:
        np.testing.assert_array_equal(client.score(x[:5]), x[:5, 0])
    assert len(service.requests) == 3


def test_retries_give_up_with_an_unavailable_error(service, x):
    service.failures = [grpc.StatusCode.UNAVAILABLE] * 5
    with MemAEClient(service.target, "m", retries=1) as client, pytest.raises(
        UnavailableError, match="scripted UNAVAILABLE"
    ) as info:
        client.score(x[:5])
    assert info.value.code == grpc.StatusCode.UNAVAILABLE
    assert len(service.requests) == 2


def test_other_errors_are_not_retried(service, x):
    service.failures = [grpc.StatusCode.INVALID_ARGUMENT]
    with MemAEClient(service.target, "m", retries=3) as client, pytest.raises(
        InvalidArgumentError, match="scripted INVALID_ARGUMENT"
    ):
        client.score(x[:5])
    assert len(service.requests) == 1


def test_each_call_has_a_deadline(service, x):
    service.delay = 2.0
    with MemAEClient(service.target, "m", timeout=0.3) as client:
        start = time.monotonic()
        with pytest.raises(DeadlineExceededError):
            client.score(x[:5])
    assert time.monotonic() - start < 1.5
    assert len(service.requests) == 1


def test_large_batches_are_split_under_the_limit_and_reassembled_in_order(service, x):
    limit = int(0.1 * 2**20)
    with MemAEClient(service.target, "m", max_message_mb=0.1) as client:
        scores = client.score(x)
    np.testing.assert_array_equal(scores, x[:, 0])
    sizes = [tf.make_ndarray(r.inputs["x"]).shape[0] for r in service.requests]
    assert len(sizes) > 1 and sum(sizes) == len(x)
    assert all(r.ByteSize() < limit for r in service.requests)


def test_later_chunks_ask_for_the_version_that_answered_the_first(service, x):
    with MemAEClient(service.target, "m", max_message_mb=0.1) as client:
        client.score(x)
    first, *rest = service.requests
    assert not first.model_spec.HasField("version")
    assert rest and all(r.model_spec.version.value == 7 for r in rest)


def test_score_asks_the_server_for_the_score_output_only(service, x):
    with MemAEClient(service.target, "m") as client:
        client.score(x[:5])
    (request,) = service.requests
    assert list(request.output_filter) == ["score"]


def test_predict_asks_for_every_output_unless_filtered(service, x):
    with MemAEClient(service.target, "m") as client:
        client.predict(x[:5])
        client.predict(x[:5], output_filter=["score"])
    assert [list(r.output_filter) for r in service.requests] == [[], ["score"]]


def test_a_sample_larger_than_the_limit_is_rejected_before_sending(service):
    with MemAEClient(service.target, "m", max_message_mb=0.01) as client, pytest.raises(
        ValueError, match="raise `max_message_mb`"
    ):
        client.score(np.zeros((2, 2**20), np.float32))
    assert service.requests == []


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"target": ""}, "expected 'host:port'"),
        ({"model_name": ""}, "expected a non-empty string"),
        ({"version": 0}, "positive integer"),
        ({"signature": ""}, "expected a non-empty string"),
        ({"timeout": 0}, "positive number of seconds"),
        ({"max_message_mb": 0}, r"number in \(0, 2048\)"),
        ({"retries": -1}, "non-negative integer"),
    ],
)
def test_invalid_arguments_say_what_was_expected(kwargs, message):
    arguments = {"target": "localhost:8500", "model_name": "m", **kwargs}
    with pytest.raises(ValueError, match=message):
        MemAEClient(**arguments)


def test_credentials_must_be_channel_credentials():
    with pytest.raises(TypeError, match=r"grpc\.ChannelCredentials"):
        MemAEClient("localhost:8500", "m", credentials="cert.pem")


@pytest.mark.parametrize("bad", [1.0, [["a", "b"]]])
def test_inputs_must_be_a_numeric_batch(bad):
    with MemAEClient("localhost:8500", "m") as client, pytest.raises(ValueError,
                                                                      match="Expected `x`"):
        client.score(bad)


# ----------------------------------------------------------------- isolation


def test_client_and_server_import_no_training_code():
    script = textwrap.dedent(
        """
        import importlib.util, sys, types

        # A bare parent package, so that only the imports of the subpackages count.
        spec = importlib.util.find_spec("memae_tf")
        package = types.ModuleType("memae_tf")
        package.__path__ = list(spec.submodule_search_locations)
        sys.modules["memae_tf"] = package
        import memae_tf.client
        client = sorted(m for m in sys.modules if m.startswith("memae_tf."))
        import memae_tf.serving.server
        serving = sorted(m for m in sys.modules if m.startswith("memae_tf."))
        # memae_tf.common: the dependency-free serving contract and argument checks.
        assert all(m.startswith(("memae_tf.client", "memae_tf.common")) for m in client), client
        allowed = ("memae_tf.client", "memae_tf.common", "memae_tf.serving", "memae_tf._lazy")
        assert all(m.startswith(allowed) for m in serving), serving
        """
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    subprocess.run([sys.executable, "-c", script], check=True, env=env, timeout=300)
