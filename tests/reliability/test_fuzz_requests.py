"""Property-based fuzzing of the gRPC and REST servers with random and malformed requests.

Each property holds for every generated request: the server answers (never a
crash, never INTERNAL or HTTP 500 for a request it could parse), answers OK
exactly when an independent validity check says the request is valid, and
then with the right shapes and scores. `MEMAE_FUZZ_EXAMPLES` sets the number
of cases per test (CI default 100); run with `--hypothesis-show-statistics`
to see how many ran.
"""

import json
import math
import os
import urllib.error
import urllib.request

import grpc
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reliability_helpers import FEATURES, MAX_BATCH, MAX_MESSAGE_MIB, reference_scores
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

EXAMPLES = int(os.environ.get("MEMAE_FUZZ_EXAMPLES", "100"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
OUTPUTS = {"serving_default": {"score", "is_anomaly", "reconstruction"},
           "score_map": {"score_map"}, "memory_attention": {"memory_attention"}}
REFUSALS = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND,
            grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.RESOURCE_EXHAUSTED}
PREDICT_METHOD = "/tensorflow.serving.PredictionService/Predict"

floats = st.floats(width=32, allow_nan=True, allow_infinity=True)
finite_floats = st.floats(-1e3, 1e3, width=32)
names = st.sampled_from(["x", "y", ""]) | st.text(max_size=6)


@st.composite
def tensors(draw) -> tensor_pb2.TensorProto:
    """A TensorProto, well-formed for the signature or not, with random content."""
    tensor = tensor_pb2.TensorProto()
    tensor.dtype = draw(st.sampled_from([types_pb2.DT_FLOAT] * 4 + [types_pb2.DT_DOUBLE])
                        | st.integers(0, 30))
    if draw(st.integers(0, 20)) == 0:
        tensor.tensor_shape.unknown_rank = True
    dims = draw(st.sampled_from([[st.integers(1, MAX_BATCH + 2), st.just(FEATURES)]])
                | st.lists(st.integers(-2, 70) | st.sampled_from([10**9, 2**40]), max_size=4)
                .map(lambda sizes: [st.just(s) for s in sizes]))
    dims = [draw(dim) for dim in dims]
    tensor.tensor_shape.dim.extend(tensor_shape_pb2.TensorShapeProto.Dim(size=s) for s in dims)
    count = math.prod(dims) if all(0 <= s <= 10**4 for s in dims) else 0
    content = draw(st.sampled_from(["exact", "exact", "bytes", "float_val", "none"]))
    if content == "exact" and count:
        values = draw(st.lists(finite_floats | floats, min_size=count, max_size=count)
                      if count <= 256 and draw(st.booleans()) else st.just([0.25] * count))
        tensor.tensor_content = np.asarray(values, "<f4").tobytes()
    elif content == "bytes":
        tensor.tensor_content = draw(st.binary(max_size=4 * FEATURES * 3))
    elif content == "float_val":
        tensor.float_val.extend(draw(st.lists(finite_floats | floats, max_size=40)))
    return tensor


@st.composite
def predict_requests(draw) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest()
    if draw(st.integers(0, 15)):
        spec = request.model_spec
        spec.name = draw(st.sampled_from(["kdd"] * 6 + ["nope", ""]) | st.text(max_size=8))
        version = draw(st.sampled_from(["none"] * 4 + ["value", "label"]))
        if version == "value":
            spec.version.value = draw(st.sampled_from([1, 1, 0, 2, -1]))
        elif version == "label":
            spec.version_label = draw(st.text(max_size=6))
        spec.signature_name = draw(st.sampled_from(["", "", "serving_default", "score_map",
                                                    "memory_attention", "nope"]))
    for name in draw(st.lists(names, max_size=2) | st.just(["x"]) | st.just(["x"])):
        request.inputs[name].CopyFrom(draw(tensors()))
    request.output_filter.extend(draw(st.lists(st.sampled_from(
        ["score", "is_anomaly", "reconstruction", "score_map", "memory_attention", "nope"]),
        max_size=3)))
    return request


def expected_ok(request: predict_pb2.PredictRequest) -> bool:
    """The server's contract, restated independently: is this request valid?"""
    spec = request.model_spec
    if not request.HasField("model_spec") or spec.name != "kdd":
        return False
    if spec.WhichOneof("version_choice") == "version_label":
        return False
    if spec.HasField("version") and spec.version.value != 1:
        return False
    signature = spec.signature_name or "serving_default"
    if signature not in OUTPUTS or set(request.inputs) != {"x"}:
        return False
    tensor = request.inputs["x"]
    if tensor.dtype != types_pb2.DT_FLOAT or tensor.tensor_shape.unknown_rank:
        return False
    dims = [dim.size for dim in tensor.tensor_shape.dim]
    if len(dims) != 2 or dims[1] != FEATURES or not 1 <= dims[0] <= MAX_BATCH:
        return False
    count = dims[0] * FEATURES
    if tensor.tensor_content:
        if len(tensor.tensor_content) != 4 * count:
            return False
        values = np.frombuffer(tensor.tensor_content, "<f4")
    else:
        typed = [f for f, _ in tensor.ListFields() if f.name.endswith("_val")]
        if any(f.name != "float_val" for f in typed) or len(tensor.float_val) > count:
            return False
        values = np.asarray(tensor.float_val, np.float32)
    if not np.all(np.isfinite(values)):
        return False
    filters = list(request.output_filter)
    return len(set(filters)) == len(filters) and set(filters) <= OUTPUTS[signature]


def check_answer(request, model, call) -> None:
    """Calls the server and checks the answer against `expected_ok` and the model."""
    try:
        response = call()
    except grpc.RpcError as error:
        assert error.code() in REFUSALS, (error.code(), error.details())
        assert not expected_ok(request), error.details()
        return
    assert expected_ok(request), "answered OK to an invalid request"
    signature = request.model_spec.signature_name or "serving_default"
    outputs = {name: tf.make_ndarray(proto) for name, proto in response.outputs.items()}
    assert set(outputs) == (set(request.output_filter) or OUTPUTS[signature])
    x = tf.make_ndarray(request.inputs["x"])
    batch = len(x)
    for name, array in outputs.items():
        assert len(array) == batch, name
    if "score" in outputs:
        np.testing.assert_allclose(outputs["score"], reference_scores(model, x), rtol=1e-4,
                                   atol=1e-6)


@pytest.fixture(scope="module")
def channel(server):
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        yield channel


@FUZZ
@given(request=predict_requests())
def test_grpc_server_answers_random_requests_per_contract(channel, model, request):
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    check_answer(request, model, lambda: stub.Predict(request, timeout=60))


@FUZZ
@given(payload=st.binary(max_size=600) | predict_requests().map(
    lambda r: bytearray(r.SerializeToString())).flatmap(
    lambda raw: st.lists(st.integers(0, 255), min_size=1, max_size=4).map(
        lambda noise: bytes(raw[:len(raw) // 2]) + bytes(noise) + bytes(raw[len(raw) // 2:]))))
def test_grpc_server_survives_random_bytes(channel, model, payload):
    raw_predict = channel.unary_unary(
        PREDICT_METHOD, request_serializer=None,
        response_deserializer=predict_pb2.PredictResponse.FromString)
    if len(payload) > MAX_MESSAGE_MIB * 2**20:
        with pytest.raises(grpc.RpcError) as info:
            raw_predict(payload, timeout=60)
        assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        return
    try:
        request = predict_pb2.PredictRequest.FromString(payload)
    except Exception:  # not a PredictRequest: gRPC refuses it before the servicer
        with pytest.raises(grpc.RpcError) as info:
            raw_predict(payload, timeout=60)
        assert info.value.code() == grpc.StatusCode.INTERNAL
        assert "deserializing" in info.value.details()
        return
    check_answer(request, model, lambda: raw_predict(payload, timeout=60))


json_values = st.recursive(
    st.none() | st.booleans() | floats | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner,
                                                                 max_size=3),
    max_leaves=20)
row_bodies = st.fixed_dictionaries(
    {"instances": st.lists(st.lists(finite_floats | floats, min_size=FEATURES - 1,
                                    max_size=FEATURES + 1), min_size=0, max_size=4)},
    optional={"signature_name": st.sampled_from(["serving_default", "score_map", "nope"])})


def _post(port: int, path: str, body: bytes) -> tuple[int, dict]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body,
                                     method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@FUZZ
@given(body=row_bodies.map(lambda b: json.dumps(b).encode())
       | json_values.map(lambda b: json.dumps(b).encode()) | st.binary(max_size=300),
       path=st.sampled_from(["/v1/models/kdd:predict"] * 4
                            + ["/v1/models/kdd/versions/1:predict", "/v1/models/kdd:regress",
                               "/v1/models/nope:predict", "/v1/models/kdd/labels/a:predict"]))
def test_rest_server_answers_random_bodies_per_contract(server, model, body, path):
    status, answer = _post(server.rest_port, path, body)
    assert status in {200, 400, 404, 429}, answer
    if path.endswith(":regress"):
        # A body TF Serving's JSON reader refuses, or the serving_default signature, whose
        # three outputs no regression takes (regressor.cc PreProcessRegression).
        assert status == 400
        return
    try:
        document = json.loads(body or b"null")  # the server reads an empty body as null
    except ValueError:
        assert status == 400
        return
    signature = document.get("signature_name") if isinstance(document, dict) else None
    valid = (
        path in ("/v1/models/kdd:predict", "/v1/models/kdd/versions/1:predict")
        and isinstance(document, dict) and set(document) <= {"instances", "signature_name"}
        and signature in (None, "serving_default", "score_map")
        and _finite_rows(document.get("instances")) is not None
    )
    assert (status == 200) == valid, (status, answer)
    if valid and signature != "score_map":
        x = _finite_rows(document["instances"])
        np.testing.assert_allclose([p["score"] for p in answer["predictions"]],
                                   reference_scores(model, x), rtol=1e-4, atol=1e-6)


def _finite_rows(rows) -> np.ndarray | None:
    """The batch a row-format body holds if it is a valid one, else None."""
    if not isinstance(rows, list) or not 1 <= len(rows) <= MAX_BATCH or not all(
        isinstance(row, list) and len(row) == FEATURES
        and all(isinstance(v, (int, float)) for v in row) for row in rows
    ):
        return None
    try:
        x = np.asarray(rows, np.float32)
    except OverflowError:
        return None
    return x if np.all(np.isfinite(x)) else None
