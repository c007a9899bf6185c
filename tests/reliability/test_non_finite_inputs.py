"""A sample with a NaN or Inf value is never called normal: graph, server, client, detector."""

import math

import grpc
import numpy as np
import pytest
import tensorflow as tf
from reliability_helpers import (
    FEATURES,
    reference_scores,
    rest_call,
    tensor_proto,
)
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from memae_tf.client import InvalidArgumentError, MemAEClient
from memae_tf.detector import MemAE

BAD_ROWS = {1: math.nan, 4: math.inf, 6: -math.inf}


def _with_bad_values(rows: np.ndarray) -> np.ndarray:
    x = rows.copy()
    for row, value in BAD_ROWS.items():
        x[row, row % FEATURES] = value
    return x


def test_exported_graph_scores_non_finite_samples_inf_and_flags_them(base_path, model, rows,
                                                                      threshold):
    serving = tf.saved_model.load(str(base_path / "1")).signatures["serving_default"]
    x = _with_bad_values(rows)
    outputs = {k: v.numpy() for k, v in serving(x=tf.constant(x)).items()}
    bad = np.isin(np.arange(len(x)), list(BAD_ROWS))
    assert np.all(np.isposinf(outputs["score"][bad]))
    assert outputs["is_anomaly"][bad].all()
    expected = reference_scores(model, rows[~bad])
    np.testing.assert_allclose(outputs["score"][~bad], expected, rtol=1e-5)
    np.testing.assert_array_equal(outputs["is_anomaly"][~bad], expected > threshold)


def test_non_finite_sample_is_an_anomaly_even_under_a_huge_threshold(tmp_path, model, rows):
    from memae_tf.export import export_saved_model

    export_saved_model(model, tmp_path / "kdd", threshold=3.0e38)
    serving = tf.saved_model.load(str(tmp_path / "kdd" / "1")).signatures["serving_default"]
    is_anomaly = serving(x=tf.constant(_with_bad_values(rows)))["is_anomaly"].numpy()
    assert sorted(np.flatnonzero(is_anomaly)) == sorted(BAD_ROWS)


def test_server_refuses_non_finite_grpc_requests_naming_the_samples(server, rows):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "kdd"
    request.inputs["x"].CopyFrom(tensor_proto(_with_bad_values(rows)))
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        with pytest.raises(grpc.RpcError) as info:
            stub.Predict(request, timeout=60)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "3 NaN or Inf values (in samples [1, 4, 6])" in info.value.details()
    assert "expected finite numbers" in info.value.details()


def test_server_refuses_non_finite_rest_requests(server, rows):
    # json.dumps writes NaN and Infinity, which TF Serving's JSON parser accepts too.
    body = {"instances": _with_bad_values(rows).tolist()}
    status, answer = rest_call(server.rest_port, "POST", "/v1/models/kdd:predict", body)
    assert status == 400
    assert "in samples [1, 4, 6]" in answer["error"]


def test_client_refuses_non_finite_batches_without_sending_them(rows):
    # Nothing listens on this address: a request that were sent would fail UNAVAILABLE.
    with MemAEClient("127.0.0.1:1", "kdd", retries=0, timeout=5) as client, \
            pytest.raises(InvalidArgumentError, match=r"samples \[1, 4, 6\] of 16") as info:
        client.score(_with_bad_values(rows))
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT


def test_detector_refuses_non_finite_batches(model, rows):
    detector = MemAE(model)
    with pytest.raises(ValueError, match="3 NaN or Inf values"):
        detector.score(_with_bad_values(rows))


def test_server_and_detector_agree_on_finite_rows(server, model, rows):
    with MemAEClient(f"127.0.0.1:{server.port}", "kdd", timeout=60) as client:
        served = client.score(rows)
    np.testing.assert_allclose(served, MemAE(model).score(rows), rtol=1e-5)
