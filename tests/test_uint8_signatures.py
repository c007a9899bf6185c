"""The uint8 signatures of image and clip exports (`serving_default_uint8`, `frame_score_uint8`),
the client sending uint8 batches to them, and the development server reading uint8 tensors.

Tolerance: none. The graph scales with the float32 operations NumPy's `scale_uint8` runs
(an exact cast, then one float32 multiplication and one float32 addition by the same two
float32 constants, each rounded to nearest), so the scaled pixels are the same bits, and
the same graph then gives the same scores. TF Serving behaviours followed: Predict reads a
DT_UINT8 input from `int_val` or from `tensor_content` (predict_util.cc
PreProcessPrediction → TensorFlow's cc/saved_model/util.cc GetInputValues →
Tensor::FromProto), refusing another dtype; REST reads JSON integers into DT_UINT8
(json_tensor.cc AddValueToTensor: `IsInt`, then `int_val`, which FromProto casts to
uint8); a request for a signature the version lacks is FAILED_PRECONDITION
'Serving signature key "..." not found.' (predict_util.cc RunPredict).
"""

import pathlib

import grpc
import keras
import numpy as np
import pytest
import tensorflow as tf
from serving_helpers import free_port, rest_call
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import prediction_log_pb2

from memae_tf.client import MemAEClient
from memae_tf.client._protocol import (
    ClientConfig,
    ModelInfo,
    ModelMetadata,
    ServedModel,
    SignatureInfo,
    TensorInfo,
    predict_exchange,
    request_batch,
    rows_per_request,
)
from memae_tf.client.errors import FailedPreconditionError, InvalidArgumentError
from memae_tf.client.proto import tf_serving_pb2 as pb
from memae_tf.client.tensors import to_ndarray, to_tensor_proto
from memae_tf.common.contract import warmup_file
from memae_tf.common.scaling import scale_uint8
from memae_tf.export import export_saved_model
from memae_tf.models import build_autoencoder
from memae_tf.scoring_graph import scale_uint8_tensor

IMAGE_SHAPE = (16, 16, 1)
VIDEO_SHAPE = (8, 16, 16, 1)
INPUT_RANGE = (-1.0, 1.0)
RANGES = [(0.0, 1.0), (-1.0, 1.0), (0.1, 0.9), (-3.7, 12.25), (1e-3, 2e-3)]


def _signature_defs(version_dir: pathlib.Path) -> dict:
    saved_model = saved_model_pb2.SavedModel.FromString(
        (version_dir / "saved_model.pb").read_bytes())
    (meta_graph,) = saved_model.meta_graphs
    return dict(meta_graph.signature_def)


def _served(path: pathlib.Path, signature: str, x: np.ndarray) -> dict[str, np.ndarray]:
    function = tf.saved_model.load(str(path)).signatures[signature]
    return {key: value.numpy() for key, value in function(x=tf.constant(x)).items()}


def _pixels(count: int, shape: tuple[int, ...], seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(count, *shape), dtype=np.uint8)


@pytest.mark.parametrize("input_range", RANGES)
def test_the_graph_scales_every_uint8_value_to_the_bits_numpy_gives(input_range):
    values = np.arange(256, dtype=np.uint8).reshape(16, 16)
    in_graph = scale_uint8_tensor(tf.constant(values), input_range).numpy()
    # An independent reference: each value by Python floats rounded to float32 step by step.
    scale, low = np.float32((input_range[1] - input_range[0]) / 255.0), np.float32(input_range[0])
    by_hand = np.array([np.float32(np.float32(v) * scale) + low for v in range(256)],
                       np.float32).reshape(16, 16)
    np.testing.assert_array_equal(in_graph.view(np.uint32), by_hand.view(np.uint32))
    np.testing.assert_array_equal(in_graph.view(np.uint32),
                                  scale_uint8(values, input_range).view(np.uint32))
    assert in_graph[0, 0] == np.float32(input_range[0])


@pytest.fixture(scope="module")
def image_export(tmp_path_factory):
    keras.utils.set_random_seed(3)
    model = build_autoencoder("mnist", "memae", input_shape=IMAGE_SHAPE, filters=(4, 8),
                              kernel_sizes=3, num_items=10, latent="local")
    root = tmp_path_factory.mktemp("uint8")
    return export_saved_model(model, root / "digits", threshold=0.05, input_range=INPUT_RANGE)


def test_an_image_export_has_a_uint8_twin_of_serving_default_with_its_outputs(image_export):
    signatures = _signature_defs(image_export)
    assert "serving_default_uint8" in signatures and "score_map_uint8" not in signatures
    twin, original = signatures["serving_default_uint8"], signatures["serving_default"]
    assert twin.inputs["x"].dtype == tf.uint8.as_datatype_enum
    assert [d.size for d in twin.inputs["x"].tensor_shape.dim] == [-1, *IMAGE_SHAPE]
    assert {k: (v.dtype, list(v.tensor_shape.dim)) for k, v in twin.outputs.items()} == {
        k: (v.dtype, list(v.tensor_shape.dim)) for k, v in original.outputs.items()}
    info = _served(image_export, "model_info", np.zeros((2, *IMAGE_SHAPE), np.float32))
    np.testing.assert_array_equal(info["takes_uint8"], [True, True])


def test_the_uint8_twin_gives_the_bits_of_serving_default_on_numpy_scaled_pixels(image_export):
    pixels = _pixels(6, IMAGE_SHAPE, seed=1)
    twin = _served(image_export, "serving_default_uint8", pixels)
    floats = _served(image_export, "serving_default", scale_uint8(pixels, INPUT_RANGE))
    assert set(twin) == {"score", "is_anomaly", "reconstruction"}
    for name, value in floats.items():
        np.testing.assert_array_equal(twin[name], value, err_msg=name)
    assert len(np.unique(twin["score"])) == 6  # six images, six scores: a real comparison


def test_the_warmup_requests_of_the_uint8_twins_carry_uint8_zeros(image_export):
    logs = [prediction_log_pb2.PredictionLog.FromString(record.numpy())
            for record in tf.data.TFRecordDataset(str(warmup_file(image_export)))]
    dtypes = {log.predict_log.request.model_spec.signature_name:
              log.predict_log.request.inputs["x"].dtype for log in logs}
    assert dtypes["serving_default_uint8"] == tf.uint8.as_datatype_enum
    assert dtypes["serving_default"] == tf.float32.as_datatype_enum


@pytest.mark.parametrize("case", ["table", "no input range"])
def test_tables_and_exports_without_an_input_range_have_no_uint8_signature(tmp_path, case):
    if case == "table":
        model = build_autoencoder("kdd", "ae", input_shape=(12,), units=(8, 3))
        path = export_saved_model(model, tmp_path / "kdd", threshold=0.1, input_range=(0, 1))
        x = np.zeros((1, 12), np.float32)
    else:
        model = build_autoencoder("mnist", "ae", input_shape=IMAGE_SHAPE, filters=(2, 2),
                                  kernel_sizes=3)
        path = export_saved_model(model, tmp_path / "digits", threshold=0.1)
        x = np.zeros((1, *IMAGE_SHAPE), np.float32)
    assert not [name for name in _signature_defs(path) if name.endswith("_uint8")]
    assert "takes_uint8" not in _served(path, "model_info", x)


def test_a_video_export_has_uint8_twins_of_serving_default_and_frame_score(tmp_path):
    keras.utils.set_random_seed(8)
    model = build_autoencoder("video", "ae", input_shape=VIDEO_SHAPE, filters=(2, 2, 2, 2))
    path = export_saved_model(model, tmp_path / "walkway", threshold=1.0,
                              input_range=INPUT_RANGE, frame_thresholds={"last": 0.5})
    assert {name for name in _signature_defs(path) if name.endswith("_uint8")} == {
        "serving_default_uint8", "frame_score_uint8"}
    clips = _pixels(3, VIDEO_SHAPE, seed=2)
    twin = _served(path, "frame_score_uint8", clips)
    floats = _served(path, "frame_score", scale_uint8(clips, INPUT_RANGE))
    assert set(twin) == set(floats)
    for name, value in floats.items():
        np.testing.assert_array_equal(twin[name], value, err_msg=name)


# The client's protocol, by hand-made answers.

def _config(**options) -> ClientConfig:
    arguments = {"model_name": "memae", "version": None, "signature": "serving_default",
                 "timeout": 5.0, "max_message_mib": 1, "retries": 0, "max_batch_size": None}
    return ClientConfig.create(**{**arguments, **options})


def _signature(dtype) -> SignatureInfo:
    return SignatureInfo(inputs={"x": TensorInfo(np.dtype(dtype), (None, 100))},
                         outputs={"score": TensorInfo(np.dtype(np.float32), (None,))},
                         method_name="tensorflow/serving/predict")


def _served_model(version: int = 1, takes_uint8: bool = True, twin: bool = True) -> ServedModel:
    signatures = {"serving_default": _signature(np.float32)}
    if twin:
        signatures["serving_default_uint8"] = _signature(np.uint8)
    return ServedModel(ModelMetadata("memae", version, signatures),
                       ModelInfo(version, INPUT_RANGE, 0.5, None, None, takes_uint8=takes_uint8))


def test_a_uint8_batch_goes_as_it_is_to_the_twin_when_the_version_says_it_has_one():
    pixels = _pixels(3, (100,), seed=3)
    assert request_batch(pixels, _served_model(), "serving_default")[0] == "serving_default_uint8"
    assert request_batch(pixels, _served_model(), "serving_default")[1] is pixels
    for served in (_served_model(takes_uint8=False), _served_model(twin=False),
                   ServedModel(ModelMetadata("memae", 1, {}), None)):
        if served.info is None:
            with pytest.raises(InvalidArgumentError, match="does not say its input range"):
                request_batch(pixels, served, "serving_default")
            continue
        signature, batch = request_batch(pixels, served, "serving_default")
        assert signature == "serving_default" and batch.dtype == np.float32
        np.testing.assert_array_equal(batch, scale_uint8(pixels, INPUT_RANGE))


def test_float_inputs_to_a_signature_taking_uint8_are_refused_before_sending():
    with pytest.raises(InvalidArgumentError, match=r"uint8 pixels .* dtype=float32"):
        request_batch(np.zeros((1, 100), np.float32), _served_model(), "serving_default_uint8")
    pixels = _pixels(1, (100,), seed=4)
    assert request_batch(pixels, _served_model(), "serving_default_uint8")[1] is pixels


def test_uint8_rows_take_a_quarter_of_the_request_bytes_but_the_answer_still_counts():
    pixels = np.zeros((3, 100_000), np.uint8)   # 100,000 bytes a row in; 400,000 if float32
    free = 2**20 - 64 * 1024
    assert rows_per_request(_config(), pixels, _signature(np.uint8), ("score",)) == free // 100_000
    # A reconstruction of unknown shape is taken as float32: 400,000 bytes a row out.
    unknown = SignatureInfo(inputs={}, outputs={"reconstruction": TensorInfo(None, None)},
                            method_name="")
    assert rows_per_request(_config(), pixels, unknown, ()) == free // 400_000
    assert rows_per_request(_config(), pixels.astype(np.float32), None, ()) == free // 400_000


def _answer(version: int, scores) -> pb.PredictResponse:
    response = pb.PredictResponse()
    response.model_spec.name = "memae"
    response.model_spec.version.value = version
    response.outputs["score"].CopyFrom(to_tensor_proto(np.asarray(scores, np.float32)))
    return response


def _metadata(version: int, **input_dtypes: int) -> pb.GetModelMetadataResponse:
    """TF Serving's GetModelMetadata answer: signature name → the dtype of its input `x`."""
    response = pb.GetModelMetadataResponse()
    response.model_spec.name, response.model_spec.version.value = "memae", version
    signatures = pb.SignatureDefMap()
    for name, dtype in input_dtypes.items():
        signatures.signature_def[name].inputs["x"].dtype = dtype
    packed = response.metadata["signature_def"]
    packed.type_url = "type.googleapis.com/tensorflow.serving.SignatureDefMap"
    packed.value = signatures.SerializeToString()
    return response


def _model_info(version: int, **outputs: list) -> pb.PredictResponse:
    response = pb.PredictResponse()
    response.model_spec.version.value = version
    for name, value in outputs.items():
        array = np.array(value, np.float32 if name == "threshold" else None)
        response.outputs[name].CopyFrom(to_tensor_proto(array))
    return response


def test_the_client_sends_uint8_bytes_in_requests_four_times_fuller():
    pixels = _pixels(10, (100,), seed=5)
    config = _config(max_message_mib=(64 * 1024 + 400 * 3) / 2**20)  # room for 3 float rows
    exchange = predict_exchange(config, _served_model(), pixels, "serving_default", ("score",))
    (first,) = next(exchange)
    assert first.request.model_spec.signature_name == "serving_default_uint8"
    sent = first.request.inputs["x"]
    assert sent.dtype == pb.DT_UINT8 and to_ndarray(sent).shape == (10, 100)
    np.testing.assert_array_equal(to_ndarray(sent), pixels)
    with pytest.raises(StopIteration) as finished:
        exchange.send([_answer(1, np.arange(10))])
    np.testing.assert_array_equal(finished.value.value["score"], np.arange(10))


def test_a_twin_refused_as_missing_after_a_rollout_is_retried_once_on_the_new_version():
    # Version 2, exported without the twin, took over: TF Serving answers the twin's
    # request with FAILED_PRECONDITION, the client reads version 2 and scales the pixels.
    pixels = _pixels(2, (100,), seed=6)
    served = _served_model()
    exchange = predict_exchange(_config(), served, pixels, "serving_default", ("score",))
    next(exchange)
    (call,) = exchange.throw(FailedPreconditionError(
        grpc.StatusCode.FAILED_PRECONDITION,
        'Serving signature key "serving_default_uint8" not found.'))
    assert call.method == "GetModelMetadata"
    (call,) = exchange.send([_metadata(2, serving_default=pb.DT_FLOAT,
                                       model_info=pb.DT_FLOAT)])
    (call,) = exchange.send([_model_info(2, threshold=[0.5], input_range=[[0.0, 1.0]])])
    assert call.request.model_spec.signature_name == "serving_default"
    np.testing.assert_array_equal(to_ndarray(call.request.inputs["x"]),
                                  scale_uint8(pixels, (0.0, 1.0)))
    with pytest.raises(StopIteration):
        exchange.send([_answer(2, [0.1, 0.2])])
    assert not served.info.takes_uint8


# The development server, over gRPC and REST.

@pytest.fixture(scope="module")
def server(image_export):
    from memae_tf.serving import serve

    handle = serve(image_export.parent, "digits", port=0, host="127.0.0.1",
                   rest_port=free_port())
    yield handle
    handle.stop(grace=0)


def test_served_uint8_scores_are_the_bits_of_the_float_scores_of_the_same_pixels(server):
    pixels = _pixels(70, IMAGE_SHAPE, seed=7)   # two requests of at most 64 rows
    with MemAEClient(f"127.0.0.1:{server.port}", "digits", timeout=60) as client:
        assert client.model_info().takes_uint8
        as_uint8 = client.run_signature(pixels)
        as_float = client.run_signature(scale_uint8(pixels, INPUT_RANGE))
    for name, value in as_float.items():
        np.testing.assert_array_equal(as_uint8[name], value, err_msg=name)


def _predict(channel: grpc.Channel, tensor: pb.TensorProto) -> pb.PredictResponse:
    request = pb.PredictRequest()
    request.model_spec.name, request.model_spec.signature_name = "digits", "serving_default_uint8"
    request.inputs["x"].CopyFrom(tensor)
    request.output_filter.append("score")
    call = channel.unary_unary("/tensorflow.serving.PredictionService/Predict",
                               request_serializer=pb.PredictRequest.SerializeToString,
                               response_deserializer=pb.PredictResponse.FromString)
    return call(request, timeout=60)


def test_the_server_reads_uint8_pixels_from_int_val_and_from_tensor_content(server,
                                                                          image_export):
    # Tensor::FromProto: DT_UINT8 values in int_val (one int32 each) or as raw bytes.
    pixels = _pixels(3, IMAGE_SHAPE, seed=8)
    typed = pb.TensorProto(dtype=pb.DT_UINT8, int_val=pixels.ravel().tolist())
    for size in pixels.shape:
        typed.tensor_shape.dim.add(size=size)
    raw = to_tensor_proto(pixels)
    assert raw.tensor_content == pixels.tobytes() and not raw.int_val
    expected = _served(image_export, "serving_default",
                       scale_uint8(pixels, INPUT_RANGE))["score"]
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        for tensor in (typed, raw):
            np.testing.assert_array_equal(to_ndarray(_predict(channel, tensor).outputs["score"]),
                                          expected)
        with pytest.raises(grpc.RpcError) as refused:
            _predict(channel, to_tensor_proto(scale_uint8(pixels, INPUT_RANGE)))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "expects dtype uint8. Received: dtype=float" in refused.value.details()


def test_rest_reads_json_integers_into_the_uint8_twin(server, image_export):
    # json_tensor.cc AddValueToTensor: DT_UINT8 takes a JSON int (IsInt) into int_val, which
    # Tensor::FromProto casts to uint8 (256 wraps to 0); a JSON float is a type error.
    pixels = _pixels(2, IMAGE_SHAPE, seed=9)
    pixels[0, 0, 0, 0] = 0

    def predict(instances: list) -> tuple[int, dict]:
        return rest_call(server.rest_port, "POST", "/v1/models/digits:predict", {
            "signature_name": "serving_default_uint8", "instances": instances})

    status, answer = predict(pixels.tolist())
    assert status == 200
    expected = _served(image_export, "serving_default", scale_uint8(pixels, INPUT_RANGE))
    # The JSON writer keeps the digits a float32 reads back exactly (WriteDecimal).
    np.testing.assert_array_equal(
        np.array([row["score"] for row in answer["predictions"]], np.float32),
        expected["score"])
    wrapped = pixels.astype(np.int64)
    wrapped[0, 0, 0, 0] = 256
    assert predict(wrapped.tolist()) == (status, answer)
    halves = pixels.tolist()
    halves[0][0][0][0] = 0.5
    status, refused = predict(halves)
    assert status == 400 and "is not of expected type: uint8" in refused["error"]


def test_the_async_client_sends_uint8_to_the_twin_and_gets_the_float_scores(server):
    import asyncio

    from memae_tf.client import AsyncMemAEClient

    pixels = _pixels(5, IMAGE_SHAPE, seed=10)

    async def scores() -> tuple[np.ndarray, np.ndarray]:
        async with AsyncMemAEClient(f"127.0.0.1:{server.port}", "digits", timeout=60) as client:
            return (await client.score(pixels),
                    await client.score(scale_uint8(pixels, INPUT_RANGE)))

    as_uint8, as_float = asyncio.run(scores())
    np.testing.assert_array_equal(as_uint8, as_float)


def test_a_new_version_with_the_twin_gets_the_first_rows_again_as_uint8():
    # The cache holds version 1 (no twin): the first rows go as float32 and version 2
    # answers. Version 2 has the twin, so those rows are asked again of it, as uint8.
    pixels = _pixels(2, (100,), seed=11)
    served = _served_model(version=1, takes_uint8=False, twin=False)
    exchange = predict_exchange(_config(), served, pixels, "serving_default", ("score",))
    (first,) = next(exchange)
    assert first.request.model_spec.signature_name == "serving_default"
    (call,) = exchange.send([_answer(2, [0.1, 0.2])])
    assert call.method == "GetModelMetadata" and call.request.model_spec.version.value == 2
    (call,) = exchange.send([_metadata(2, serving_default=pb.DT_FLOAT, model_info=pb.DT_FLOAT,
                                       serving_default_uint8=pb.DT_UINT8)])
    (call,) = exchange.send([_model_info(2, threshold=[0.5], input_range=[list(INPUT_RANGE)],
                                         takes_uint8=[True])])
    assert call.request.model_spec.signature_name == "serving_default_uint8"
    assert call.request.model_spec.version.value == 2
    np.testing.assert_array_equal(to_ndarray(call.request.inputs["x"]), pixels)
    with pytest.raises(StopIteration) as finished:
        exchange.send([_answer(2, [0.3, 0.4])])
    np.testing.assert_array_equal(finished.value.value["score"], np.float32([0.3, 0.4]))
