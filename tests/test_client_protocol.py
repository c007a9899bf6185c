"""The client's I/O-free protocol pieces (`memae_tf/client/_protocol.py`) on their own, with
the answers worked out by hand: request sizing, settings, records, retry timing."""

import dataclasses
import time

import grpc
import numpy as np
import pytest

from memae_tf.client._protocol import (
    Call,
    CallTiming,
    ClientConfig,
    ModelInfo,
    ModelMetadata,
    ServedModel,
    SignatureInfo,
    TensorInfo,
    VersionStatus,
    _tensor_info,
    as_batch,
    check_deadline,
    check_signature,
    check_timeout,
    predict_exchange,
    prepare_batch,
    refresh_exchange,
    retry_delays,
    rows_per_request,
)
from memae_tf.client.errors import DeadlineExceededError, InvalidArgumentError, NotFoundError
from memae_tf.client.proto import tf_serving_pb2 as pb
from memae_tf.client.tensors import to_tensor_proto
from memae_tf.common.contract import DEFAULT_MAX_BATCH_SIZE

ENVELOPE = 64 * 1024   # bytes kept free in every message for everything but the tensor


def config(**options):
    arguments = {"model_name": "memae", "version": None, "signature": "serving_default",
                 "timeout": 5.0, "max_message_mib": 1, "retries": 2, "max_batch_size": None}
    return ClientConfig.create(**{**arguments, **options})


def test_a_request_carries_as_many_rows_as_fit_beside_the_envelope():
    batch = np.zeros((3, 1000), np.float32)          # 4,000 bytes a row, in and out
    assert rows_per_request(config(), batch, None, ()) == (2**20 - ENVELOPE) // 4000
    assert rows_per_request(config(max_batch_size=100), batch, None, ()) == 100


def test_the_response_size_follows_the_requested_outputs():
    batch = np.zeros((3, 10), np.float32)            # 40 bytes a row in
    signature = SignatureInfo(
        inputs={},
        outputs={"score": TensorInfo(np.dtype(np.float32), (None,)),
                 "reconstruction": TensorInfo(np.dtype(np.float64), (None, 125)),
                 "unknown": TensorInfo(np.dtype(np.float32), (None, None))},
        method_name="tensorflow/serving/predict")
    free = 2**20 - ENVELOPE
    # Out: 4 + 125 * 8 + (unknown sample shape: as large as an input row) 40 = 1,044 bytes.
    assert rows_per_request(config(), batch, signature, ()) == free // 1044
    assert rows_per_request(config(), batch, signature, ("reconstruction",)) == free // 1000
    assert rows_per_request(config(), batch, signature, ("score",)) == free // 40


def test_a_row_that_fits_once_is_sent_alone():
    batch = np.zeros((2, (2**20 - ENVELOPE) // 4), np.float32)   # exactly the free bytes
    assert rows_per_request(config(), batch, None, ()) == 1


def test_a_row_larger_than_the_message_limit_is_refused_before_sending():
    with pytest.raises(ValueError, match="raise `max_message_mib`"):
        rows_per_request(config(), np.zeros((1, 2**18), np.float32), None, ())


def test_config_defaults_and_sizes():
    made = ClientConfig.create("memae", None, "serving_default", 5, 1.5, 0)
    assert made.max_message_bytes == int(1.5 * 2**20)
    assert (made.concurrency, made.check_range, made.max_batch_size, made.deadline) == (
        4, True, DEFAULT_MAX_BATCH_SIZE, None)
    assert made.timeout == 5.0 and isinstance(made.timeout, float)


def test_version_and_version_label_together_are_refused():
    with pytest.raises(ValueError, match="not both"):
        config(version=2, version_label="stable")
    assert config(version_label="stable").model_spec(None).version_label == "stable"
    assert config(version_label="stable").model_spec(3).version.value == 3
    assert not config().model_spec(None).HasField("version")


@pytest.mark.parametrize("options", [{"model_name": 7}, {"max_message_mib": 2048},
                                     {"max_message_mib": True}, {"retries": True},
                                     {"retries": 1.0}, {"check_range": 1}])
def test_config_refuses_arguments_of_the_wrong_kind(options):
    with pytest.raises(ValueError, match="Received an invalid value"):
        config(**options)


def test_channel_options_set_both_message_limits_before_the_extra_ones():
    assert config(max_message_mib=2).channel_options([("grpc.enable_retries", 0)]) == [
        ("grpc.max_send_message_length", 2 * 2**20),
        ("grpc.max_receive_message_length", 2 * 2**20), ("grpc.enable_retries", 0)]


def test_timeouts_and_deadlines_are_positive_seconds():
    assert check_signature("score_map") == "score_map"
    assert check_timeout(2) == 2.0 and isinstance(check_timeout(2), float)
    assert check_deadline(None) is None and check_deadline(3) == 3.0
    for bad in (0, -1.0, True, "1"):
        with pytest.raises(ValueError, match="timeout"):
            check_timeout(bad)
        with pytest.raises(ValueError, match="deadline"):
            check_deadline(bad)


def test_retries_back_off_exponentially_with_jitter_up_to_five_seconds():
    caps = [min(0.1 * 2**attempt, 5.0) for attempt in range(8)]   # 0.1, 0.2, ... 5, 5
    for _ in range(50):
        delays = retry_delays(8)
        assert len(delays) == 8
        assert all(cap / 2 <= delay <= cap for delay, cap in zip(delays, caps, strict=True))
    assert retry_delays(0) == []


def test_rpc_timeout_is_cut_to_what_is_left_of_the_call_deadline():
    assert CallTiming(timeout=2.0, deadline=None).rpc_timeout() == 2.0
    assert CallTiming(timeout=2.0, deadline=None).left() == float("inf")
    late = CallTiming(timeout=2.0, deadline=10.0, started=time.monotonic() - 9.0)
    assert 0.5 < late.rpc_timeout() <= 1.0
    spent = CallTiming(timeout=2.0, deadline=10.0, started=time.monotonic() - 11.0)
    with pytest.raises(DeadlineExceededError, match="deadline of 10 s ran out;"):
        spent.rpc_timeout()
    assert "ran out (before retrying UNAVAILABLE);" in str(spent.expired("before retrying "
                                                                        "UNAVAILABLE"))


def test_protocol_records_are_immutable():
    info = TensorInfo(np.dtype(np.float32), (None, 4))
    records = [info, SignatureInfo({}, {"score": info}, "m"), ModelMetadata("m", 1, {}),
               ModelInfo(1, (0.0, 1.0), 0.5, 0.05, np.linspace(0.0, 1.0, 101)),
               VersionStatus(1, "AVAILABLE", "OK", ""), Call("Predict", None), config()]
    for record in records:
        field = dataclasses.fields(record)[0].name
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(record, field, None)


def test_model_info_compares_and_hashes_by_identity_despite_its_array():
    quantiles = np.linspace(0.0, 1.0, 101)
    first = ModelInfo(1, (0.0, 1.0), 0.5, 0.05, quantiles)
    second = ModelInfo(1, (0.0, 1.0), 0.5, 0.05, quantiles.copy())
    assert first != second and first == first
    assert len({first, second}) == 2


def test_a_batch_needs_a_batch_axis_and_at_least_one_finite_sample():
    assert as_batch([1.0, 2.0, 3.0]).shape == (3,)        # three scalar samples
    assert as_batch(np.zeros((2, 2), np.uint8)).dtype == np.uint8
    with pytest.raises(ValueError, match="batch axis"):
        as_batch(1.0)
    with pytest.raises(InvalidArgumentError, match="at least one sample"):
        as_batch(np.zeros((0, 3)))
    with pytest.raises(InvalidArgumentError, match=r"samples \[0, 2\] of 3 hold NaN or Inf"):
        as_batch([[0.0, np.nan], [1.0, 2.0], [np.inf, 0.0]])
    rows = np.zeros((12, 2))
    rows[:, 1] = np.nan
    with pytest.raises(InvalidArgumentError, match=r"\[0, 1, 2, 3, 4, 5, 6, 7, 8, 9\]\.\.\. of 12"):
        as_batch(rows)


def test_float_inputs_outside_the_served_range_are_refused_unless_asked_not_to():
    info = ModelInfo(1, (0.0, 1.0), 0.5, None, None)
    inside = np.array([[0.0, 1.0], [0.5, 0.25]], np.float32)     # the bounds are inside
    assert prepare_batch(inside, info) is inside
    outside = np.array([[0.0, 1.5], [0.5, 0.5], [-0.1, 0.0]], np.float32)
    with pytest.raises(InvalidArgumentError, match=r"samples \[0, 2\] of 3 lie outside"):
        prepare_batch(outside, info)
    assert prepare_batch(outside, info, check_range=False) is outside
    assert prepare_batch(outside, None) is outside


def test_uint8_inputs_are_scaled_into_the_served_range_or_refused_without_it():
    images = np.array([[0, 255]], np.uint8)
    scaled = prepare_batch(images, ModelInfo(1, (-1.0, 1.0), 0.5, None, None))
    np.testing.assert_allclose(scaled, [[-1.0, 1.0]])
    with pytest.raises(InvalidArgumentError, match="does not say its input range"):
        prepare_batch(images, None)


def test_unknown_dimensions_of_a_signature_tensor_read_as_none():
    proto = pb.TensorInfo(dtype=pb.DT_FLOAT)
    proto.tensor_shape.dim.add(size=-1)
    proto.tensor_shape.dim.add(size=0)
    proto.tensor_shape.dim.add(size=3)
    assert _tensor_info(proto) == TensorInfo(np.dtype(np.float32), (None, 0, 3))
    proto.tensor_shape.unknown_rank = True
    assert _tensor_info(proto).shape is None


def _metadata_response(version: int) -> pb.GetModelMetadataResponse:
    """TF Serving's GetModelMetadata answer for `version`: serving_default and model_info."""
    signatures = pb.SignatureDefMap()
    for name in ("serving_default", "model_info"):
        signature = signatures.signature_def[name]
        signature.inputs["x"].dtype = 1  # DT_FLOAT
        for size in (-1, 3):
            signature.inputs["x"].tensor_shape.dim.add(size=size)
    response = pb.GetModelMetadataResponse()
    response.model_spec.name = "memae"
    response.model_spec.version.value = version
    # Packed under TF Serving's type name (the client's copy of the protos has its own
    # package).
    packed = response.metadata["signature_def"]
    packed.type_url = "type.googleapis.com/tensorflow.serving.SignatureDefMap"
    packed.value = signatures.SerializeToString()
    return response


def _predict_response(version: int, **outputs: object) -> pb.PredictResponse:
    """A PredictResponse of `version` (TF Serving names the version that ran) with float32
    `outputs`."""
    response = pb.PredictResponse()
    response.model_spec.name = "memae"
    response.model_spec.version.value = version
    for name, value in outputs.items():
        response.outputs[name].CopyFrom(to_tensor_proto(np.asarray(value, np.float32)))
    return response


def _model_info_response(version: int, threshold: float) -> pb.PredictResponse:
    return _predict_response(version, threshold=[threshold], input_range=[[0.0, 1.0]])


def test_metadata_read_while_a_rollout_unloads_its_version_is_taken_from_the_new_one():
    # TF Serving's availability-preserving policy unloads version 1 as soon as version 2
    # is available, which can fall between the client's GetModelMetadata and its
    # model_info request. Asked like the metadata (latest), model_info comes from
    # version 2, and the client fetches version 2's metadata: a pinned request for
    # version 1 would have failed with NOT_FOUND.
    served = ServedModel()
    exchange = refresh_exchange(config(), served)
    (call,) = next(exchange)
    assert call.method == "GetModelMetadata" and not call.request.model_spec.HasField("version")
    (call,) = exchange.send([_metadata_response(1)])
    assert (call.method, call.request.model_spec.signature_name) == ("Predict", "model_info")
    assert not call.request.model_spec.HasField("version")
    (call,) = exchange.send([_model_info_response(2, threshold=0.25)])
    assert call.method == "GetModelMetadata" and call.request.model_spec.version.value == 2
    with pytest.raises(StopIteration):
        exchange.send([_metadata_response(2)])
    assert (served.metadata.version, served.info.version) == (2, 2)
    assert served.info.threshold == 0.25


def _cached(version: int) -> ServedModel:
    """The client's cache after reading `version`'s metadata and model_info."""
    served = ServedModel()
    exchange = refresh_exchange(config(), served)
    next(exchange)
    exchange.send([_metadata_response(version)])
    with pytest.raises(StopIteration):
        exchange.send([_model_info_response(version, threshold=0.5)])
    return served


def test_metadata_of_a_steady_version_takes_two_requests_and_a_pinned_one_stays_pinned():
    served = _cached(3)
    assert (served.metadata.version, served.info.version, served.info.threshold) == (3, 3, 0.5)
    # A client configured for version 4 asks for it in both requests.
    exchange = refresh_exchange(config(version=4), served)
    (call,) = next(exchange)
    assert call.request.model_spec.version.value == 4
    (call,) = exchange.send([_metadata_response(4)])
    assert call.request.model_spec.version.value == 4


def _score_response(version: int, scores: list[float]) -> pb.PredictResponse:
    return _predict_response(version, score=scores)


def _unloaded(version: int) -> NotFoundError:
    # TF Serving's answer to a request for a version no longer served (ServerCore).
    return NotFoundError(grpc.StatusCode.NOT_FOUND,
                         f"Servable not found for request: Specific(memae, {version})")


def test_a_batch_whose_version_is_unloaded_midway_starts_again_on_the_new_version():
    # Five rows in requests of two: the first says version 1 serves, the other two ask
    # for version 1, which a rollout unloads before they are answered. The batch starts
    # again and every row is scored by version 2, none by a mix of the two.
    served = _cached(1)
    x = np.full((5, 3), 0.5, np.float32)
    exchange = predict_exchange(config(max_batch_size=2), served, x, "serving_default",
                                ("score",))
    (first,) = next(exchange)
    rest = exchange.send([_score_response(1, [0.1, 0.1])])
    assert [call.request.model_spec.version.value for call in rest] == [1, 1]
    (first,) = exchange.throw(_unloaded(1))
    assert not first.request.model_spec.HasField("version")
    (call,) = exchange.send([_score_response(2, [0.2, 0.2])])
    assert call.method == "GetModelMetadata" and call.request.model_spec.version.value == 2
    (call,) = exchange.send([_metadata_response(2)])
    rest = exchange.send([_model_info_response(2, threshold=0.5)])
    assert [call.request.model_spec.version.value for call in rest] == [2, 2]
    with pytest.raises(StopIteration) as finished:
        exchange.send([_score_response(2, [0.2, 0.2]), _score_response(2, [0.2])])
    np.testing.assert_array_equal(finished.value.value["score"], np.full(5, 0.2, np.float32))
    assert served.metadata.version == 2


@pytest.mark.parametrize("case", ["configured version", "second time"])
def test_a_version_unloaded_midway_is_an_error_when_it_was_asked_for_or_already_retried(case):
    served = _cached(1)
    options = {"version": 1} if case == "configured version" else {}
    exchange = predict_exchange(config(max_batch_size=2, **options), served,
                                np.full((3, 3), 0.5, np.float32), "serving_default", ("score",))
    next(exchange)
    exchange.send([_score_response(1, [0.1, 0.1])])
    if case == "second time":
        exchange.throw(_unloaded(1))
        exchange.send([_score_response(1, [0.1, 0.1])])
    with pytest.raises(NotFoundError, match="Specific"):
        exchange.throw(_unloaded(1))
