"""Every field of a Predict request is checked before TensorFlow runs, with TF Serving's codes."""

import http.client
import json

import grpc
import numpy as np
import pytest
import tensorflow as tf
from reliability_helpers import (
    FEATURES,
    MAX_BATCH,
    MAX_MESSAGE_MIB,
    reference_scores,
    rest_call,
    tensor_proto,
)
from tensorflow.core.framework import tensor_shape_pb2, types_pb2
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from memae_tf.serving import serve

CODE = grpc.StatusCode


@pytest.fixture(scope="module")
def stub(server):
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        yield prediction_service_pb2_grpc.PredictionServiceStub(channel)


def _request(x: np.ndarray) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "kdd"
    request.inputs["x"].CopyFrom(tensor_proto(x))
    return request


def _dim(size):
    return tensor_shape_pb2.TensorShapeProto.Dim(size=size)


def _reshape(dims):
    def change(request):
        tensor = request.inputs["x"]
        del tensor.tensor_shape.dim[:]
        tensor.tensor_shape.dim.extend(_dim(size) for size in dims)
    return change


def _typed_values(count, dims):
    def change(request):
        tensor = request.inputs["x"]
        tensor.ClearField("tensor_content")
        tensor.float_val.extend([0.5] * count)
        _reshape(dims)(request)
    return change


def _set(path, value):
    """Sets a field given by a dotted path from the request; `inputs.x` is the input tensor."""
    def change(request):
        target = request
        *parents, leaf = path.split(".")
        for name in parents:
            target = target["x"] if name == "x" else getattr(target, name)
        setattr(target, leaf, value)
    return change


def _rename_input(request):
    request.inputs["features"].CopyFrom(request.inputs.pop("x"))


def _extra_input(request):
    request.inputs["mask"].CopyFrom(request.inputs["x"])


def _content(delta):
    def change(request):
        content = request.inputs["x"].tensor_content
        tensor = request.inputs["x"]
        tensor.tensor_content = content[:delta] if delta < 0 else content + b"\0" * delta
    return change


def _nan(request):
    x = np.zeros((2, FEATURES), np.float32)
    x[1, 3] = np.nan
    request.inputs["x"].CopyFrom(tensor_proto(x))


def _strings(request):
    tensor = request.inputs["x"]
    tensor.Clear()
    tensor.dtype = types_pb2.DT_STRING
    tensor.string_val.append(b"1.0")
    tensor.tensor_shape.dim.extend([_dim(1), _dim(FEATURES)])


GRPC_CASES = {
    "unknown model": (_set("model_spec.name", "nope"), CODE.NOT_FOUND, "Latest(nope)"),
    "unknown version": (_set("model_spec.version.value", 9), CODE.NOT_FOUND,
                        "Specific(kdd, 9)"),
    "version label": (_set("model_spec.version_label", "stable"), CODE.INVALID_ARGUMENT,
                      "version label: stable"),
    "missing model spec": (lambda r: r.ClearField("model_spec"), CODE.INVALID_ARGUMENT,
                           "Missing ModelSpec"),
    "unknown signature": (_set("model_spec.signature_name", "nope"), CODE.FAILED_PRECONDITION,
                          'Serving signature key "nope" not found.'),
    # util.cc GetInputValues (after predict_util.cc VerifyRequestInputsSize: 1 == 1).
    "unknown input name": (_rename_input, CODE.INVALID_ARGUMENT,
                           "Signature input alias: x(feed name: serving_default_x:0) not found"),
    "extra input": (_extra_input, CODE.INVALID_ARGUMENT, "Sent extra: {mask}"),
    "wrong dtype": (_set("inputs.x.dtype", types_pb2.DT_DOUBLE), CODE.INVALID_ARGUMENT,
                    "expects dtype float32. Received: dtype=float64"),
    "invalid dtype enum": (_set("inputs.x.dtype", 999), CODE.INVALID_ARGUMENT,
                           "expects dtype float32. Received: dtype=unknown DataType 999"),
    "string tensor": (_strings, CODE.INVALID_ARGUMENT, "Received: dtype=string"),
    "wrong rank": (_reshape([4 * FEATURES]), CODE.INVALID_ARGUMENT,
                   "expects shape (None, 12) (None: any size). Received: shape=(48,)"),
    "wrong width": (_reshape([6, 8]), CODE.INVALID_ARGUMENT,
                    "expects shape (None, 12) (None: any size). Received: shape=(6, 8)"),
    "unknown rank": (_set("inputs.x.tensor_shape.unknown_rank", True), CODE.INVALID_ARGUMENT,
                     "unknown rank; expected a fully defined shape"),
    "negative dimension": (_reshape([-4, FEATURES]), CODE.INVALID_ARGUMENT,
                           "negative dimension; expected sizes >= 0"),
    "empty batch": (_typed_values(0, [0, FEATURES]), CODE.INVALID_ARGUMENT,
                    "empty batch; expected at least one sample"),
    "short tensor_content": (_content(-3), CODE.INVALID_ARGUMENT,
                             "tensor_content holds 189 bytes; expected 192"),
    "long tensor_content": (_content(5), CODE.INVALID_ARGUMENT,
                            "tensor_content holds 197 bytes; expected 192"),
    "too many typed values": (_typed_values(30, [2, FEATURES]), CODE.INVALID_ARGUMENT,
                              "holds 30 values; expected at most 24"),
    "batch above the limit": (_typed_values(1, [MAX_BATCH + 1, FEATURES]),
                              CODE.INVALID_ARGUMENT,
                              f"larger than maximum input batch size {MAX_BATCH}"),
    "NaN value": (_nan, CODE.INVALID_ARGUMENT, "1 NaN or Inf values (in samples [1])"),
    "unknown output filter": (lambda r: r.output_filter.append("nope"), CODE.INVALID_ARGUMENT,
                              "Outputs expected to be in the set"),
    "duplicate output filter": (lambda r: r.output_filter.extend(["score", "score"]),
                                CODE.INVALID_ARGUMENT, "duplicate output tensor alias"),
}


def _assert_still_serving(stub, rows, model):
    response = stub.Predict(_request(rows), timeout=60)
    np.testing.assert_allclose(tf.make_ndarray(response.outputs["score"]),
                               reference_scores(model, rows), rtol=1e-5)


@pytest.mark.parametrize("change, code, message", GRPC_CASES.values(), ids=GRPC_CASES)
def test_bad_grpc_request_gets_tf_serving_code_and_expected_value(stub, rows, model, change,
                                                                   code, message):
    request = _request(rows[:4])
    change(request)
    with pytest.raises(grpc.RpcError) as info:
        stub.Predict(request, timeout=60)
    assert info.value.code() == code
    assert message in info.value.details()
    _assert_still_serving(stub, rows, model)


def test_message_above_the_limit_is_refused_by_grpc_before_parsing(stub, rows, model):
    big = np.zeros((MAX_MESSAGE_MIB * 2**20 // (4 * FEATURES) + 1, FEATURES), np.float32)
    with pytest.raises(grpc.RpcError) as info:
        stub.Predict(_request(big), timeout=60)
    assert info.value.code() == CODE.RESOURCE_EXHAUSTED
    assert "larger than max" in info.value.details()
    _assert_still_serving(stub, rows, model)


def test_shorthand_tensor_beyond_the_size_limit_is_refused_before_decoding(base_path, rows):
    # Three float values standing for 10**9 x 12 floats: 48 GB if it were decoded.
    request = _request(rows[:1])
    _typed_values(3, [10**9, FEATURES])(request)
    with serve(base_path, "kdd", port=0) as unlimited, \
            grpc.insecure_channel(f"127.0.0.1:{unlimited.port}") as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        with pytest.raises(grpc.RpcError) as info:
            stub.Predict(request, timeout=60)
    assert info.value.code() == CODE.RESOURCE_EXHAUSTED
    assert f"would take {10**9 * FEATURES * 4} bytes once decoded; expected at most" in (
        info.value.details())


# ----------------------------------------------------------------------- REST

PREDICT = "/v1/models/kdd:predict"
REST_CASES = {
    "unknown model": ("/v1/models/nope:predict", {"instances": [[0.0] * FEATURES]}, 404,
                      "Latest(nope)"),
    "unknown version": ("/v1/models/kdd/versions/9:predict", {"instances": [[0.0] * FEATURES]},
                        404, "Specific(kdd, 9)"),
    # http_rest_api_handler.cc GetInfoMap and json_tensor.cc FillPredictRequestFromJson
    # (its messages are tests/test_serving_rest_json.py's and test_serving_json_reader.py's).
    "unknown signature": (PREDICT, {"signature_name": "nope", "instances": [[0.0] * FEATURES]},
                          400, 'Serving signature name: "nope" not found in signature def'),
    "unknown input name": (PREDICT, {"inputs": {"features": [[0.0] * FEATURES]}}, 400,
                           "Missing named input: x in 'inputs' object."),
    "wrong width": (PREDICT, {"instances": [[0.0] * 5]}, 400, "expects shape (None, 12)"),
    "wrong rank": (PREDICT, {"instances": [0.0] * FEATURES}, 400, "expects shape (None, 12)"),
    "empty batch": (PREDICT, {"inputs": np.zeros((0, FEATURES)).tolist()}, 400,
                    "expects shape (None, 12)"),
    "ragged rows": (PREDICT, {"instances": [[0.0] * FEATURES, [0.0]]}, 400,
                    f"Expecting tensor size: {FEATURES} but got: 1"),
    "strings": (PREDICT, {"instances": [["a"] * FEATURES]}, 400,
                'JSON Value: "a" Type: String is not of expected type: float'),
    "NaN value": (PREDICT, {"instances": [[float("nan")] * FEATURES]}, 400,
                  "12 NaN or Inf values"),
    "batch above the limit": (PREDICT, {"instances": [[0.0] * FEATURES] * (MAX_BATCH + 1)}, 400,
                              f"larger than maximum input batch size {MAX_BATCH}"),
    "neither instances nor inputs": (PREDICT, {"rows": []}, 400,
                                     "Missing 'inputs' or 'instances' key"),
    "not JSON": (PREDICT, b"\xff{", 400, "JSON Parse error: Invalid value. at offset: 0"),
}


@pytest.mark.parametrize("path, body, status, message", REST_CASES.values(), ids=REST_CASES)
def test_bad_rest_request_gets_tf_serving_status_and_expected_value(server, rows, model, path,
                                                                     body, status, message):
    got_status, answer = rest_call(server.rest_port, "POST", path, body)
    assert got_status == status
    assert message in answer["error"]
    ok, answer = rest_call(server.rest_port, "POST", PREDICT, {"instances": rows.tolist()})
    assert ok == 200
    np.testing.assert_allclose([p["score"] for p in answer["predictions"]],
                               reference_scores(model, rows), rtol=1e-5)


def _raw_post(port: int, headers: dict, body: bytes = b"") -> tuple[int, dict, str | None]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.putrequest("POST", PREDICT)
        for name, value in headers.items():
            connection.putheader(name, value)
        connection.endheaders(body)
        response = connection.getresponse()
        return response.status, json.loads(response.read()), response.getheader("Connection")
    finally:
        connection.close()


def test_rest_body_above_the_limit_is_refused_from_its_length_without_reading_it(server):
    # The body announced is never sent: the answer comes from the header alone.
    status, answer, connection = _raw_post(
        server.rest_port, {"Content-Length": str(MAX_MESSAGE_MIB * 2**20 + 1)})
    assert status == 429
    assert f"expected at most {MAX_MESSAGE_MIB * 2**20} bytes" in answer["error"]
    assert connection == "close"


@pytest.mark.parametrize("headers, message", [
    ({"Content-Length": "-5"}, "Content-Length to be a non-negative integer"),
    ({"Transfer-Encoding": "chunked"}, "expected a Content-Length header"),
])
def test_rest_body_without_a_usable_length_is_invalid(server, headers, message):
    status, answer, _ = _raw_post(server.rest_port, headers)
    assert status == 400
    assert message in answer["error"]
