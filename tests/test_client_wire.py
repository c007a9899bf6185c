"""The client's own messages on the wire, read and written by TensorFlow Serving's messages.

Every request the client sends is serialised with `memae_tf/client/proto` and
parsed with `tensorflow_serving.apis` / `tensorflow.core.framework`; every answer
is built with TensorFlow's messages and parsed by the client. The reference
values come from TensorFlow (`tf.make_ndarray`, `tf.make_tensor_proto`).
"""

import subprocess
import sys

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, types_pb2
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from memae_tf.client._protocol import (
    METHODS,
    ClientConfig,
    ModelMetadata,
    ServedModel,
    SignatureInfo,
    TensorInfo,
    VersionStatus,
    metadata_exchange,
    predict_exchange,
    status_exchange,
)
from memae_tf.client.proto import tf_serving_pb2 as pb
from memae_tf.client.tensors import to_ndarray, to_tensor_proto

# Every dtype the client encodes and decodes, with TensorFlow's DataType and the
# typed field TensorFlow fills for it.
DTYPES = {
    "float32": (types_pb2.DT_FLOAT, "float_val"),
    "float64": (types_pb2.DT_DOUBLE, "double_val"),
    "float16": (types_pb2.DT_HALF, "half_val"),
    "int8": (types_pb2.DT_INT8, "int_val"),
    "int16": (types_pb2.DT_INT16, "int_val"),
    "int32": (types_pb2.DT_INT32, "int_val"),
    "int64": (types_pb2.DT_INT64, "int64_val"),
    "uint8": (types_pb2.DT_UINT8, "int_val"),
    "uint16": (types_pb2.DT_UINT16, "int_val"),
    "uint32": (types_pb2.DT_UINT32, "uint32_val"),
    "uint64": (types_pb2.DT_UINT64, "uint64_val"),
    "bool": (types_pb2.DT_BOOL, "bool_val"),
}


def _array(dtype: str) -> np.ndarray:
    values = np.arange(24).reshape(2, 3, 4)
    return (values % 2 if dtype == "bool" else values * 5 - 7 * (dtype[0] != "u")).astype(dtype)


def _config(version=None) -> ClientConfig:
    return ClientConfig.create("memae", version, "serving_default", 10.0, 64, 0)


def _sent(exchange, tf_request_type):
    """The first request an exchange yields, as TensorFlow Serving parses it."""
    (call,) = next(exchange)
    _, request_type, _ = METHODS[call.method]
    assert isinstance(call.request, request_type)
    return call, tf_request_type.FromString(call.request.SerializeToString())


def _answer(exchange, call, tf_response):
    """Feeds a TensorFlow Serving response, as bytes, back to the exchange; its result."""
    _, _, response_type = METHODS[call.method]
    with pytest.raises(StopIteration) as finished:
        exchange.send([response_type.FromString(tf_response.SerializeToString())])
    return finished.value.value


def _metadata() -> ModelMetadata:
    scores = TensorInfo(np.dtype("float32"), (None,))
    signature = SignatureInfo({"x": TensorInfo(np.dtype("float32"), (None, 3, 4))},
                              {"score": scores}, "tensorflow/serving/predict")
    return ModelMetadata("memae", 1, {"serving_default": signature})


# ------------------------------------------------------------------- tensors


@pytest.mark.parametrize("dtype", list(DTYPES))
def test_encoded_tensors_parse_as_tensorflow_tensors(dtype):
    array = _array(dtype)
    proto = tensor_pb2.TensorProto.FromString(to_tensor_proto(array).SerializeToString())
    assert proto.dtype == DTYPES[dtype][0]
    decoded = tf.make_ndarray(proto)
    assert decoded.dtype == array.dtype
    np.testing.assert_array_equal(decoded, array)


@pytest.mark.parametrize("dtype", list(DTYPES))
def test_tensorflow_tensor_content_decodes_like_tensorflow(dtype):
    proto = tf.make_tensor_proto(_array(dtype))
    decoded = to_ndarray(pb.TensorProto.FromString(proto.SerializeToString()))
    expected = tf.make_ndarray(proto)
    assert decoded.dtype == expected.dtype
    np.testing.assert_array_equal(decoded, expected)


@pytest.mark.parametrize("dtype", list(DTYPES))
def test_tensorflow_typed_fields_decode_like_tensorflow(dtype):
    # TF Serving answers with the typed fields (AsProtoField), not tensor_content.
    data_type, field = DTYPES[dtype]
    array = _array(dtype)
    values = array.view(np.uint16) if dtype == "float16" else array
    proto = tensor_pb2.TensorProto(dtype=data_type)
    for size in array.shape:
        proto.tensor_shape.dim.add(size=size)
    getattr(proto, field).extend(values.ravel().tolist())
    decoded = to_ndarray(pb.TensorProto.FromString(proto.SerializeToString()))
    expected = tf.make_ndarray(proto)
    assert decoded.dtype == expected.dtype
    np.testing.assert_array_equal(decoded, expected)


@pytest.mark.parametrize(
    "fields",
    [
        {"dtype": types_pb2.DT_FLOAT, "float_val": [1.5]},
        {"dtype": types_pb2.DT_INT64, "int64_val": [1, 2]},
        {"dtype": types_pb2.DT_BOOL, "bool_val": [True]},
        {"dtype": types_pb2.DT_DOUBLE},
    ],
)
def test_shorthand_typed_fields_decode_like_tensorflow(fields):
    # Fewer values than elements: TensorFlow repeats the last one (or fills zeros).
    proto = tensor_pb2.TensorProto(**fields)
    proto.tensor_shape.dim.add(size=2)
    proto.tensor_shape.dim.add(size=2)
    decoded = to_ndarray(pb.TensorProto.FromString(proto.SerializeToString()))
    expected = tf.make_ndarray(proto)
    assert decoded.dtype == expected.dtype
    np.testing.assert_array_equal(decoded, expected)


def test_tensorflow_string_tensors_are_rejected_with_the_supported_types():
    proto = tf.make_tensor_proto(np.array([b"a"]))
    with pytest.raises(ValueError, match="Unsupported tensor dtype DT_STRING; expected one of"):
        to_ndarray(pb.TensorProto.FromString(proto.SerializeToString()))


def test_tensorflow_types_the_client_does_not_name_are_rejected_by_number():
    proto = tf.make_tensor_proto(np.array([1.0], dtype=tf.bfloat16.as_numpy_dtype))
    with pytest.raises(ValueError, match=r"Unsupported tensor dtype DataType\(14\)"):
        to_ndarray(pb.TensorProto.FromString(proto.SerializeToString()))


# ------------------------------------------------------------------ requests


@pytest.mark.parametrize("version", [None, 3])
def test_predict_requests_parse_as_tensorflow_serving_requests(version):
    batch = np.random.default_rng(0).normal(size=(5, 3, 4)).astype("float32")
    exchange = predict_exchange(_config(version), ServedModel(_metadata()), batch,
                                "serving_default", ["score"])
    call, request = _sent(exchange, predict_pb2.PredictRequest)
    assert METHODS[call.method][0] == "/tensorflow.serving.PredictionService/Predict"
    assert request.model_spec.name == "memae"
    assert request.model_spec.signature_name == "serving_default"
    assert request.model_spec.HasField("version") == (version is not None)
    assert request.model_spec.version.value == (version or 0)
    assert list(request.output_filter) == ["score"]
    assert list(request.inputs) == ["x"]
    np.testing.assert_array_equal(tf.make_ndarray(request.inputs["x"]), batch)


def test_metadata_requests_parse_as_tensorflow_serving_requests():
    call, request = _sent(metadata_exchange(_config(4)),
                          get_model_metadata_pb2.GetModelMetadataRequest)
    assert METHODS[call.method][0] == "/tensorflow.serving.PredictionService/GetModelMetadata"
    assert (request.model_spec.name, request.model_spec.version.value) == ("memae", 4)
    assert list(request.metadata_field) == ["signature_def"]


def test_status_requests_parse_as_tensorflow_serving_requests():
    call, request = _sent(status_exchange(_config()), get_model_status_pb2.GetModelStatusRequest)
    assert METHODS[call.method][0] == "/tensorflow.serving.ModelService/GetModelStatus"
    assert request.model_spec.name == "memae"
    assert not request.model_spec.HasField("version")


def test_method_paths_are_tensorflow_servings():
    # The generated stubs of tensorflow-serving-api name the same paths.
    servicer_paths = set()
    for module, service in [(prediction_service_pb2_grpc, "PredictionService"),
                            (model_service_pb2_grpc, "ModelService")]:
        getattr(module, f"{service}Stub")(_RecordingChannel(servicer_paths))
    assert {path for path, _, _ in METHODS.values()} <= servicer_paths


class _RecordingChannel:
    """Records the method paths a generated stub binds."""

    def __init__(self, paths: set[str]) -> None:
        self.paths = paths

    def unary_unary(self, path, *args, **kwargs):
        self.paths.add(path)

    unary_stream = stream_unary = stream_stream = unary_unary


# ----------------------------------------------------------------- responses


def test_tensorflow_predict_responses_are_read_by_the_client():
    batch = np.zeros((4, 3, 4), np.float32)
    exchange = predict_exchange(_config(), ServedModel(_metadata()), batch, "serving_default",
                                [])
    call, _ = _sent(exchange, predict_pb2.PredictRequest)
    scores = np.array([0.5, 1.5, -2.0, 3.25], np.float32)
    flags = np.array([False, True, False, True])
    response = predict_pb2.PredictResponse()
    response.model_spec.name = "memae"
    response.model_spec.version.value = 1
    response.outputs["score"].CopyFrom(tf.make_tensor_proto(scores))
    response.outputs["is_anomaly"].CopyFrom(tf.make_tensor_proto(flags))
    outputs = _answer(exchange, call, response)
    assert set(outputs) == {"score", "is_anomaly"}
    np.testing.assert_array_equal(outputs["score"], scores)
    np.testing.assert_array_equal(outputs["is_anomaly"], flags)


def test_tensorflow_metadata_responses_are_read_by_the_client():
    signatures = get_model_metadata_pb2.SignatureDefMap()
    serving = signatures.signature_def["serving_default"]
    serving.method_name = "tensorflow/serving/predict"
    serving.inputs["x"].name = "serving_default_x:0"
    serving.inputs["x"].dtype = types_pb2.DT_FLOAT
    for size in (-1, 28, 28, 1):
        serving.inputs["x"].tensor_shape.dim.add(size=size)
    serving.outputs["is_anomaly"].dtype = types_pb2.DT_BOOL
    serving.outputs["is_anomaly"].tensor_shape.dim.add(size=-1)
    serving.outputs["blob"].dtype = types_pb2.DT_STRING
    serving.outputs["blob"].tensor_shape.unknown_rank = True
    response = get_model_metadata_pb2.GetModelMetadataResponse()
    response.model_spec.name = "memae"
    response.model_spec.version.value = 5
    response.metadata["signature_def"].Pack(signatures)

    exchange = metadata_exchange(_config())
    call, _ = _sent(exchange, get_model_metadata_pb2.GetModelMetadataRequest)
    metadata = _answer(exchange, call, response)
    assert metadata == ModelMetadata("memae", 5, {"serving_default": SignatureInfo(
        inputs={"x": TensorInfo(np.dtype("float32"), (None, 28, 28, 1))},
        outputs={"is_anomaly": TensorInfo(np.dtype("bool"), (None,)),
                 "blob": TensorInfo(None, None)},
        method_name="tensorflow/serving/predict",
    )})


def test_metadata_of_another_type_is_rejected():
    response = get_model_metadata_pb2.GetModelMetadataResponse()
    response.metadata["signature_def"].Pack(get_model_status_pb2.GetModelStatusResponse())
    exchange = metadata_exchange(_config())
    call, _ = _sent(exchange, get_model_metadata_pb2.GetModelMetadataRequest)
    with pytest.raises(ValueError, match=r"Received: tensorflow\.serving\.GetModelStatusResponse"):
        _answer(exchange, call, response)


def test_tensorflow_status_responses_are_read_by_the_client():
    response = get_model_status_pb2.GetModelStatusResponse()
    state = get_model_status_pb2.ModelVersionStatus.State
    response.model_version_status.add(version=2, state=state.AVAILABLE)
    failed = response.model_version_status.add(version=1, state=state.END)
    failed.status.error_code = grpc.StatusCode.NOT_FOUND.value[0]
    failed.status.error_message = "gone"
    exchange = status_exchange(_config())
    call, _ = _sent(exchange, get_model_status_pb2.GetModelStatusRequest)
    assert _answer(exchange, call, response) == [VersionStatus(1, "END", "NOT_FOUND", "gone"),
                                                 VersionStatus(2, "AVAILABLE", "OK", "")]


# ------------------------------------------------------------------ and back


@pytest.mark.parametrize(
    ("tf_type", "own_type"),
    [
        (predict_pb2.PredictRequest, pb.PredictRequest),
        (predict_pb2.PredictResponse, pb.PredictResponse),
        (get_model_metadata_pb2.GetModelMetadataRequest, pb.GetModelMetadataRequest),
        (get_model_metadata_pb2.GetModelMetadataResponse, pb.GetModelMetadataResponse),
        (get_model_status_pb2.GetModelStatusRequest, pb.GetModelStatusRequest),
        (get_model_status_pb2.GetModelStatusResponse, pb.GetModelStatusResponse),
    ],
)
def test_tensorflow_messages_survive_a_round_trip_through_the_clients(tf_type, own_type):
    message = _filled(tf_type())
    again = tf_type.FromString(own_type.FromString(message.SerializeToString())
                               .SerializeToString())
    assert again == message


def _filled(message):
    """Sets every field the client reads or writes, with TensorFlow's own helpers."""
    if "model_spec" in message.DESCRIPTOR.fields_by_name:
        spec = message.model_spec
        spec.name, spec.signature_name = "memae", "serving_default"
        spec.version.value = 3
    if isinstance(message, predict_pb2.PredictRequest):
        message.inputs["x"].CopyFrom(tf.make_tensor_proto(_array("float32")))
        message.output_filter.extend(["score", "is_anomaly"])
    elif isinstance(message, predict_pb2.PredictResponse):
        for dtype in DTYPES:
            message.outputs[dtype].CopyFrom(tf.make_tensor_proto(_array(dtype)))
        message.outputs["typed"].float_val.extend([1.0, 2.0])
        message.outputs["typed"].dtype = types_pb2.DT_FLOAT
        message.outputs["typed"].tensor_shape.dim.add(size=2)
    elif isinstance(message, get_model_metadata_pb2.GetModelMetadataRequest):
        message.metadata_field.append("signature_def")
    elif isinstance(message, get_model_metadata_pb2.GetModelMetadataResponse):
        signatures = get_model_metadata_pb2.SignatureDefMap()
        info = signatures.signature_def["serving_default"].inputs["x"]
        info.name, info.dtype = "serving_default_x:0", types_pb2.DT_FLOAT
        info.tensor_shape.dim.add(size=-1)
        message.metadata["signature_def"].Pack(signatures)
    elif isinstance(message, get_model_status_pb2.GetModelStatusResponse):
        status = message.model_version_status.add(version=3, state=30)
        status.status.error_code, status.status.error_message = 5, "not found"
    return message


# ----------------------------------------------------------------- isolation


def test_client_messages_load_beside_tensorflow_servings():
    # Both sets of descriptors in one pool: the project's package keeps the names apart.
    assert pb.PredictRequest.DESCRIPTOR.full_name == "memae_tf.tf_serving.PredictRequest"
    assert predict_pb2.PredictRequest.DESCRIPTOR.full_name == "tensorflow.serving.PredictRequest"


def test_importing_the_client_imports_no_tensorflow_keras_or_training_code():
    script = (
        "import sys, memae_tf.client\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'tensorflow', 'tensorflow_serving', 'keras', 'tf_keras'} or m.startswith("
        "('memae_tf.models', 'memae_tf.layers', 'memae_tf.detector', 'memae_tf.scoring', "
        "'memae_tf.saving', 'memae_tf.training', 'memae_tf.export', 'memae_tf.serving', "
        "'memae_tf.data')))\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
