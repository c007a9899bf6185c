"""The REST API's JSON bodies and status codes, checked against TF Serving's sources.

tensorflow_serving/util/json_tensor.cc reads a predict body (`FillPredictRequestFromJson`:
exactly one of `instances` or `inputs`; `FillTensorMapFromInstancesList`: a plain list
for one input, objects naming the inputs for several) and writes the answer
(`MakeRowFormatJsonFromTensors`, `MakeColumnarFormatJsonFromTensors`);
tensorflow_serving/model_servers/http_server.cc `ToHTTPStatusCode` maps gRPC codes to
HTTP statuses. No server runs here; tests/test_serving.py sends the same bodies over HTTP.
"""

import grpc
import numpy as np
import pytest
from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import meta_graph_pb2

from memae_tf.serving import rest
from memae_tf.serving.errors import ServingError


def _infos(**dtypes) -> dict[str, meta_graph_pb2.TensorInfo]:
    return {name: meta_graph_pb2.TensorInfo(dtype=dtype) for name, dtype in dtypes.items()}


ONE_INPUT = _infos(x=types_pb2.DT_FLOAT)
TWO_INPUTS = _infos(x=types_pb2.DT_FLOAT, n=types_pb2.DT_INT64)


def _refused(body, infos=ONE_INPUT) -> str:
    with pytest.raises(ServingError) as info:
        rest.parse_predict_body(body, infos)
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
    return info.value.message


def _assert_inputs(received, expected):
    assert sorted(received) == sorted(expected)
    for name, array in expected.items():
        assert received[name].dtype == array.dtype, name
        np.testing.assert_array_equal(received[name], array)


# --------------------------------------------------------- http_server.cc ToHTTPStatusCode

# net_http's HTTPStatusCode: OK 200, CLIENT_CLOSED_REQUEST 499, ERROR 500, BAD_REQUEST 400,
# GATEWAY_TO 504, NOT_FOUND 404, CONFLICT 409, FORBIDDEN 403, TOO_MANY_REQUESTS 429,
# NOT_IMP 501, SERVICE_UNAV 503, UNAUTHORIZED 401.
TF_SERVING_HTTP_STATUS = {
    "OK": 200, "CANCELLED": 499, "UNKNOWN": 500, "INVALID_ARGUMENT": 400,
    "DEADLINE_EXCEEDED": 504, "NOT_FOUND": 404, "ALREADY_EXISTS": 409,
    "PERMISSION_DENIED": 403, "RESOURCE_EXHAUSTED": 429, "FAILED_PRECONDITION": 400,
    "ABORTED": 409, "OUT_OF_RANGE": 400, "UNIMPLEMENTED": 501, "INTERNAL": 500,
    "UNAVAILABLE": 503, "DATA_LOSS": 500, "UNAUTHENTICATED": 401,
}


def test_every_grpc_code_maps_to_tf_servings_http_status():
    assert {code.name: status for code, status in rest.HTTP_STATUS.items()} == (
        TF_SERVING_HTTP_STATUS)


# ------------------------------------------------ json_tensor.cc FillPredictRequestFromJson


@pytest.mark.parametrize(("body", "received"), [
    # "expecting only one of 'inputs' or 'instances' keys to exist"
    ({"instances": [[1.0]], "inputs": [[1.0]]}, "keys ['inputs', 'instances']"),
    ({"signature_name": "serving_default"}, "keys ['signature_name']"),  # "Missing 'inputs'..."
    ([[1.0, 2.0]], "list"), (None, "NoneType"), ("instances", "str")])
def test_a_body_without_exactly_one_of_instances_or_inputs_is_refused(body, received):
    assert _refused(body) == (
        "Expected a JSON object with exactly one of the keys 'instances' (row format) or "
        f"'inputs' (columnar format). Received: {received}")


@pytest.mark.parametrize("value", [{"x": [1.0]}, 3.0, "rows"])
def test_instances_that_are_not_a_list_are_refused(value):
    # "Expecting 'instances' to be an list/array"
    assert _refused({"instances": value}) == (
        f"'instances' must be a list. Received: {type(value).__name__}")


def test_a_plain_instances_list_feeds_the_only_input_in_its_dtype():
    inputs, row_format = rest.parse_predict_body({"instances": [[1, 2], [3, 4]]}, ONE_INPUT)
    _assert_inputs(inputs, {"x": np.array([[1, 2], [3, 4]], np.float32)})
    assert row_format is True


def test_instances_objects_feed_the_inputs_they_name_row_by_row():
    body = {"instances": [{"x": [1.5, 2.0], "n": 7}, {"x": [3.0, 4.0], "n": 8}]}
    inputs, row_format = rest.parse_predict_body(body, TWO_INPUTS)
    _assert_inputs(inputs, {"x": np.array([[1.5, 2.0], [3.0, 4.0]], np.float32),
                            "n": np.array([7, 8], np.int64)})
    assert row_format is True


def test_instances_objects_naming_different_inputs_are_refused():
    body = {"instances": [{"x": [1.0], "n": 1}, {"x": [2.0]}]}
    assert _refused(body, TWO_INPUTS) == (
        "Every object in 'instances' must name the same inputs; expected ['n', 'x'] in each.")


@pytest.mark.parametrize("key", ["instances", "inputs"])
def test_a_plain_list_for_a_signature_of_several_inputs_is_refused(key):
    # "instances is a plain list, but expecting list of objects as multiple input
    # tensors required"
    assert _refused({key: [[1.0], [2.0]]}, TWO_INPUTS) == (
        f"The signature has inputs ['n', 'x']; '{key}' must be objects naming them.")


def test_columnar_inputs_object_feeds_each_named_input_whole():
    body = {"inputs": {"x": [[1.0, 2.0], [3.0, 4.0]], "n": [5, 6]}}
    inputs, row_format = rest.parse_predict_body(body, TWO_INPUTS)
    _assert_inputs(inputs, {"x": np.array([[1.0, 2.0], [3.0, 4.0]], np.float32),
                            "n": np.array([5, 6], np.int64)})
    assert row_format is False


def test_columnar_bare_inputs_feed_the_only_input():
    inputs, row_format = rest.parse_predict_body({"inputs": [[0.5], [1.5]]}, ONE_INPUT)
    _assert_inputs(inputs, {"x": np.array([[0.5], [1.5]], np.float32)})
    assert row_format is False


@pytest.mark.parametrize("key", ["instances", "inputs"])
def test_a_ragged_list_is_refused_naming_the_input_and_its_dtype(key):
    message = _refused({key: [[1.0, 2.0], [3.0]]})
    assert message.startswith("Input 'x' could not be read as a float32 tensor (expected a "
                              "rectangular nested list of numbers): ")


# --------------------------------------- json_tensor.cc Make{Row,Columnar}FormatJsonFromTensors


def test_columnar_answer_is_the_only_output_itself():
    outputs = {"score": np.array([0.5, 1.5], np.float32)}
    assert rest.format_predict_outputs(outputs, row_format=False) == {"outputs": [0.5, 1.5]}


def test_columnar_answer_of_several_outputs_is_an_object_of_them():
    outputs = {"score": np.array([0.5, 1.5]), "is_anomaly": np.array([False, True])}
    assert rest.format_predict_outputs(outputs, row_format=False) == {
        "outputs": {"score": [0.5, 1.5], "is_anomaly": [False, True]}}


def test_row_answer_of_one_output_lists_its_rows():
    outputs = {"reconstruction": np.array([[1.0, 2.0], [3.0, 4.0]])}
    assert rest.format_predict_outputs(outputs, row_format=True) == {
        "predictions": [[1.0, 2.0], [3.0, 4.0]]}


def test_row_answer_of_several_outputs_is_one_object_per_row():
    outputs = {"score": np.array([0.5, 1.5, 2.5]), "is_anomaly": np.array([False, True, True])}
    assert rest.format_predict_outputs(outputs, row_format=True) == {"predictions": [
        {"score": 0.5, "is_anomaly": False}, {"score": 1.5, "is_anomaly": True},
        {"score": 2.5, "is_anomaly": True}]}


@pytest.mark.parametrize("outputs", [
    {"score": np.zeros(3), "threshold": np.zeros(2)},  # "has inconsistent batch size"
    {"score": np.zeros(3), "threshold": np.float32(0.5)},  # "has no shape information"
    {"threshold": np.float32(0.5)},
])
def test_row_answer_of_outputs_without_one_common_batch_size_is_refused(outputs):
    with pytest.raises(ServingError) as info:
        rest.format_predict_outputs(outputs, row_format=True)
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.message.startswith("The row format needs outputs with one common batch "
                                         "size; use 'inputs' (columnar format) instead.")
