"""One loaded SavedModel version (`Servable`) against TF Serving's loader, Predict and warmup.

References: TF Serving's servables/tensorflow/predict_util.cc (signature lookup, output
filter), saved_model_warmup.cc and saved_model_warmup_util.cc (warmup replay), and
TensorFlow's cc/saved_model/loader.cc (load metrics in microseconds).
"""

import pathlib
import re
import shutil
import types

import grpc
import numpy as np
import pytest
import tensorflow as tf
from serving_helpers import FEATURES, exported_small_model, reference_outputs
from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    inference_pb2,
    predict_pb2,
    prediction_log_pb2,
    regression_pb2,
)

import memae_tf.serving.servable as servable_module
from memae_tf.serving.errors import ServingError
from memae_tf.serving.metrics import ServingMetrics
from memae_tf.serving.servable import Servable, read_signature_defs
from memae_tf.serving.validation import RequestLimits

# The signatures of a MemAE export that tf.saved_model.load can call (TensorFlow's
# loader leaves out the `__saved_model_init_op` SignatureDef the MetaGraph also holds).
CALLABLE = ["memory_attention", "model_info", "score_map", "serving_default"]


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    model, base_path = exported_small_model(tmp_path_factory.mktemp("models"), seed=5)
    return model, base_path / "1"


@pytest.fixture(scope="module")
def servable(export):
    return Servable(1, export[1])


@pytest.fixture(scope="module")
def rows() -> np.ndarray:
    return np.random.default_rng(2).uniform(-1, 1, size=(3, FEATURES)).astype("float32")


def _refusal(call, *args) -> ServingError:
    with pytest.raises(ServingError) as info:
        call(*args)
    return info.value


def _write_warmup(version_dir, logs) -> pathlib.Path:
    """Writes the warmup file: each log's bytes (or the bytes given) as one record."""
    path = version_dir / "assets.extra" / "tf_serving_warmup_requests"
    path.parent.mkdir(exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for log in logs:
            writer.write(log if isinstance(log, bytes) else log.SerializeToString())
    return path


def _predict_log(signature_name: str, x: np.ndarray, output_filter=()):
    request = predict_pb2.PredictRequest(output_filter=list(output_filter))
    request.model_spec.name = "kdd"
    request.model_spec.signature_name = signature_name
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(x))
    return prediction_log_pb2.PredictionLog(
        predict_log=prediction_log_pb2.PredictLog(request=request))


@pytest.fixture
def copied(export, tmp_path):
    """A copy of the export's version directory, to change its files."""
    return shutil.copytree(export[1], tmp_path / "1")


# ---------------------------------------------------------------- loading


def test_signature_defs_are_those_of_the_serve_metagraph(export, servable, tmp_path):
    exported = saved_model_pb2.SavedModel.FromString((export[1] / "saved_model.pb").read_bytes())
    # A MetaGraph tagged for training first, with a signature of its own: only the one
    # tagged `serve` counts (TF Serving loads the tag set {"serve"}).
    training = meta_graph_pb2.MetaGraphDef()
    training.CopyFrom(exported.meta_graphs[0])
    training.meta_info_def.ClearField("tags")
    training.meta_info_def.tags.append("train")
    training.signature_def["trained_only"].CopyFrom(training.signature_def["score_map"])
    both = saved_model_pb2.SavedModel(meta_graphs=[training, exported.meta_graphs[0]])
    (tmp_path / "saved_model.pb").write_bytes(both.SerializeToString())
    signatures = read_signature_defs(tmp_path)
    assert sorted(signatures) == sorted([*CALLABLE, "__saved_model_init_op"])
    assert signatures["serving_default"] == exported.meta_graphs[0].signature_def[
        "serving_default"]
    assert servable.signature_defs == signatures


def test_a_saved_model_without_a_serve_metagraph_is_refused_and_counted_failed(copied):
    saved_model = saved_model_pb2.SavedModel.FromString((copied / "saved_model.pb").read_bytes())
    saved_model.meta_graphs[0].meta_info_def.ClearField("tags")
    saved_model.meta_graphs[0].meta_info_def.tags.append("train")
    (copied / "saved_model.pb").write_bytes(saved_model.SerializeToString())
    metrics = ServingMetrics()
    with pytest.raises(ValueError, match="has no MetaGraph tagged 'serve'"):
        Servable(1, copied, metrics)
    assert metrics.load_attempt_count.value(str(copied), "fail") == 1
    assert metrics.load_attempt_count.value(str(copied), "success") == 0


def test_the_load_time_is_added_in_microseconds(export, monkeypatch):
    # loader.cc: load_latency{model_path} += the load's wall time in microseconds.
    clock = iter([100.0, 102.5])
    monkeypatch.setattr(servable_module, "time",
                        types.SimpleNamespace(perf_counter=lambda: next(clock)))
    metrics = ServingMetrics()
    Servable(1, export[1], metrics)
    assert metrics.load_latency.value(str(export[1])) == 2_500_000
    assert metrics.load_attempt_count.value(str(export[1]), "success") == 1


# ---------------------------------------------------------------- signatures


def test_an_empty_signature_name_is_serving_default(servable, export, rows):
    expected = reference_outputs(export[0], rows)
    inputs = servable.decode_inputs("", {"x": tf.make_tensor_proto(rows)})
    assert servable.check_request("", inputs) == list(
        servable.signature_defs["serving_default"].outputs)
    np.testing.assert_allclose(servable.predict("", inputs)["score"], expected["score"],
                               rtol=1e-5)
    np.testing.assert_allclose(servable.run("", inputs)["reconstruction"],
                               expected["reconstruction"], rtol=1e-5, atol=1e-6)
    assert servable.signature_def("") == servable.signature_defs["serving_default"]


def test_an_unknown_signature_fails_the_precondition_with_tf_servings_message(servable):
    # predict_util.cc RunPredict: FAILED_PRECONDITION 'Serving signature key "<name>" not
    # found.', nothing after it.
    error = _refusal(servable.signature_def, "nope")
    assert error.code == grpc.StatusCode.FAILED_PRECONDITION
    assert error.message == 'Serving signature key "nope" not found.'


def test_the_init_op_signature_is_found_and_refuses_the_requests_inputs(servable, rows):
    # predict_util.cc RunPredict looks the name up in the MetaGraph's signature map, which
    # holds __saved_model_init_op (no inputs, one output: the NoOp operation), then
    # PreProcessPrediction's VerifyRequestInputsSize refuses an `x`: INVALID_ARGUMENT.
    assert servable.signature_def("__saved_model_init_op").outputs[
        "__saved_model_init_op"].name == "NoOp"
    error = _refusal(servable.predict, "__saved_model_init_op", {"x": rows})
    assert (error.code, error.message) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "input size does not match signature: 1!=0 len({x}) != len({}). Sent extra: {x}. "
        "Missing but required: {}.")


def test_the_init_op_signature_without_inputs_fails_at_the_fetch_of_its_operation(servable):
    # With no inputs the checks pass and the session is asked to fetch "NoOp", an
    # operation without outputs: TensorFlow's subgraph.cc FetchOutputs, INVALID_ARGUMENT.
    error = _refusal(servable.predict, "__saved_model_init_op", {})
    assert (error.code, error.message) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "Tried to fetch data for 'NoOp', which produces no output.  To run to a node but "
        "not fetch any data, pass 'NoOp' as an argument to the 'target_node_names' argument "
        "of the Session::Run API.")


# ---------------------------------------------------------------- requests


def test_the_answer_follows_the_output_filter_order(servable, export, rows):
    answer = servable.predict("serving_default", {"x": rows}, ["reconstruction", "score"])
    assert list(answer) == ["reconstruction", "score"]
    np.testing.assert_allclose(answer["score"], reference_outputs(export[0], rows)["score"],
                               rtol=1e-5)
    everything = servable.predict("serving_default", {"x": rows})
    assert sorted(everything) == ["is_anomaly", "reconstruction", "score"]


@pytest.mark.parametrize(
    ("output_filter", "message"),
    [
        (["score", "reconstruction", "score"], "duplicate output tensor alias: score"),
        (["nope", "nope"], "output tensor alias not found in signature: nope Outputs "
                           "expected to be in the set {is_anomaly,reconstruction,score}."),
    ],
)
def test_a_repeated_output_alias_is_invalid_argument_once_it_is_known(
    servable, rows, output_filter, message
):
    # predict_util.cc PreProcessPrediction: each alias in turn, looked up, then checked
    # against those before it.
    error = _refusal(servable.check_request, "serving_default", {"x": rows}, output_filter)
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert error.message == message


def test_an_unknown_output_alias_is_invalid_argument_listing_the_outputs(servable, rows):
    error = _refusal(servable.check_request, "serving_default", {"x": rows}, ["score", "nope"])
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    # predict_util.cc's message; GetMapKeys gives the outputs sorted (a std::set).
    assert error.message == ("output tensor alias not found in signature: nope Outputs "
                             "expected to be in the set {is_anomaly,reconstruction,score}.")


def test_decoding_checks_the_batch_against_the_given_limits(servable, rows):
    proto = tf.make_tensor_proto(rows)
    np.testing.assert_array_equal(servable.decode_inputs("serving_default", {"x": proto})["x"],
                                  rows)
    error = _refusal(servable.decode_inputs, "serving_default", {"x": proto},
                     RequestLimits(max_batch_size=2))
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert error.message == "Task size 3 is larger than maximum input batch size 2"


@pytest.fixture(scope="module")
def two_signatures(tmp_path_factory):
    """A SavedModel whose signatures take inputs of different widths: `serving_default`
    checks that its (n, 2) input is finite, `wide` sums the rows of its (n, 3) input."""

    class Module(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 2], tf.float32, name="x")])
        def checked(self, x):
            return {"y": tf.debugging.check_numerics(x, "x is not finite")}

        @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32, name="x")])
        def wide(self, x):
            return {"y": tf.reduce_sum(x, axis=1)}

    module = Module()
    path = tmp_path_factory.mktemp("two-signatures") / "1"
    tf.saved_model.save(module, str(path),
                        signatures={"serving_default": module.checked, "wide": module.wide})
    return Servable(1, path)


def test_a_request_is_checked_against_the_signature_it_names(two_signatures):
    x = np.array([[1.0, 2.0, 4.0]], np.float32)
    inputs = two_signatures.decode_inputs("wide", {"x": tf.make_tensor_proto(x)})
    assert two_signatures.check_request("wide", inputs) == ["y"]
    np.testing.assert_array_equal(two_signatures.predict("wide", inputs)["y"], [7.0])
    for signature_name in ("", "serving_default"):
        error = _refusal(two_signatures.decode_inputs, signature_name,
                         {"x": tf.make_tensor_proto(x)})
        assert error.code == grpc.StatusCode.INVALID_ARGUMENT
        assert "'serving_default'" in error.message


def test_a_failing_computation_keeps_tensorflow_s_status_code(two_signatures):
    # predict_util.cc returns Session::Run's status as it is.
    error = _refusal(two_signatures.run, "serving_default",
                     {"x": np.array([[np.nan, 1.0]], np.float32)})
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "x is not finite" in error.message


# ---------------------------------------------------------------- input names


def test_as_many_inputs_under_another_name_are_refused_by_the_input_lookup(servable, rows):
    """predict_util.cc VerifyRequestInputsSize compares counts only (1 == 1 passes);
    TensorFlow's cc/saved_model/util.cc GetInputValues then finds no `x` in the
    request and no default, and names the input with its feed name."""
    error = _refusal(servable.decode_inputs, "serving_default",
                     {"features": tf.make_tensor_proto(rows)})
    assert (error.code, error.message) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "Signature input alias: x(feed name: serving_default_x:0) not found in request and "
        "no default value provided. Inputs expected to be in the request {features}, or "
        "default input alias set: ")


def test_more_inputs_than_the_signature_are_refused_by_their_count(servable, rows):
    """predict_util.cc VerifyRequestInputsSize: 2 > 1, with both name sets."""
    proto = tf.make_tensor_proto(rows)
    error = _refusal(servable.decode_inputs, "serving_default", {"x": proto, "mask": proto})
    assert (error.code, error.message) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "input size does not match signature: 2!=1 len({mask,x}) != len({x}). "
        "Sent extra: {mask}. Missing but required: {}.")


@pytest.fixture(scope="module")
def with_default(tmp_path_factory):
    """A SavedModel whose `serving_default` sums inputs `a` and `b`, with `b`
    defaulting to [5.0]: TensorFlow writes it into the SignatureDef's `defaults`."""

    five = tf.constant([5.0])

    class Module(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="a"),
                                      tf.TensorSpec([None], tf.float32, name="b")])
        def add(self, a, b=five):
            return {"sum": a + b}

    module = Module()
    path = tmp_path_factory.mktemp("with-default") / "1"
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.add})
    return Servable(1, path)


def test_an_input_left_out_takes_the_signature_default(with_default):
    """predict_util.cc VerifyRequestInputsSize lets fewer inputs through when the
    signature has defaults; GetInputValues feeds the default for the one left out."""
    a = np.array([1.0, 2.0], np.float32)
    inputs = with_default.decode_inputs("", {"a": tf.make_tensor_proto(a)})
    np.testing.assert_array_equal(inputs["b"], [5.0])
    np.testing.assert_array_equal(with_default.predict("", inputs)["sum"], [6.0, 7.0])
    np.testing.assert_array_equal(with_default.predict("", {"a": a})["sum"], [6.0, 7.0])


def test_a_given_input_is_used_instead_of_its_default(with_default):
    """GetInputValues takes the request's tensor when there is one."""
    protos = {key: tf.make_tensor_proto(np.array([value], np.float32))
              for key, value in (("a", 1.0), ("b", 2.0))}
    inputs = with_default.decode_inputs("", protos)
    np.testing.assert_array_equal(with_default.predict("", inputs)["sum"], [3.0])


@pytest.mark.parametrize("names, message", [
    (("c",), "Signature input alias: a(feed name: serving_default_a:0) not found in request "
             "and no default value provided. Inputs expected to be in the request {c}, or "
             "default input alias set: b"),
    (("a", "c"), "Inputs contains invalid name. Used request inputs: a, request input: a,c"),
    (("a", "b", "c"), "input size does not match signature: 3!=2 len({a,b,c}) != len({a,b}). "
                      "Sent extra: {c}. Missing but required: {}."),
])
def test_names_that_defaults_cannot_make_up_for_are_refused(with_default, names, message):
    """TensorFlow's cc/saved_model/util.cc GetInputValues: an input neither sent nor
    defaulted is refused, then a sent name that no input took; more inputs than the
    signature's are still refused first by predict_util.cc VerifyRequestInputsSize."""
    proto = tf.make_tensor_proto(np.array([1.0], np.float32))
    error = _refusal(with_default.decode_inputs, "", {name: proto for name in names})
    assert (error.code, error.message) == (grpc.StatusCode.INVALID_ARGUMENT, message)


# ---------------------------------------------------------------- warmup


def test_a_version_without_warmup_records_replays_none(copied):
    # saved_model_warmup_util.cc: "Having warmup data is optional, return OK".
    (copied / "assets.extra" / "tf_serving_warmup_requests").unlink()
    assert Servable(1, copied).warm_up() == 0


def test_warmup_replays_every_record_of_the_file(copied, rows):
    logs = [_predict_log("serving_default", rows), _predict_log("", rows[:1], ["score"]),
            _predict_log("model_info", rows[:2])]
    _write_warmup(copied, logs)
    assert Servable(1, copied).warm_up() == 3


@pytest.mark.parametrize(
    ("log", "code", "message"),
    [
        # saved_model_warmup.cc RunWarmupRequest: RunClassify, RunRegress and
        # RunMultiInference refuse a MemAE export's signatures as the RPCs do; streamed
        # predict and session run logs are UNIMPLEMENTED, with the oneof case's number.
        (prediction_log_pb2.PredictionLog(classify_log=prediction_log_pb2.ClassifyLog(
            request=classification_pb2.ClassificationRequest())),
         grpc.StatusCode.INVALID_ARGUMENT, "^Expected one or two output Tensors, found 3$"),
        (prediction_log_pb2.PredictionLog(regress_log=prediction_log_pb2.RegressLog(
            request=regression_pb2.RegressionRequest())),
         grpc.StatusCode.INVALID_ARGUMENT, r"^Expected one output Tensor\.$"),
        (prediction_log_pb2.PredictionLog(multi_inference_log=prediction_log_pb2.MultiInferenceLog(
            request=inference_pb2.MultiInferenceRequest(tasks=[inference_pb2.InferenceTask(
                model_spec={"name": "kdd", "signature_name": "nope"},
                method_name="tensorflow/serving/regress")]))),
         grpc.StatusCode.INVALID_ARGUMENT, "^Requested signature not found in model graph: nope$"),
        (prediction_log_pb2.PredictionLog(
            predict_streamed_log=prediction_log_pb2.PredictStreamedLog()),
         grpc.StatusCode.UNIMPLEMENTED, "^Unsupported log_type for warmup: 7$"),
        (prediction_log_pb2.PredictionLog(session_run_log=prediction_log_pb2.SessionRunLog()),
         grpc.StatusCode.UNIMPLEMENTED, "^Unsupported log_type for warmup: 5$"),
        (_predict_log("serving_default", np.zeros((1, FEATURES + 1), np.float32)),
         grpc.StatusCode.INVALID_ARGUMENT, "shape"),
        (_predict_log("serving_default", np.zeros((1, FEATURES), np.float32), ["nope"]),
         grpc.StatusCode.INVALID_ARGUMENT, "output tensor alias not found"),
        (_predict_log("nope", np.zeros((1, FEATURES), np.float32)),
         grpc.StatusCode.FAILED_PRECONDITION, 'signature key "nope" not found'),
    ],
    ids=["classify log", "regress log", "multi-inference log", "predict streamed log",
         "session run log", "wrong shape", "unknown output", "unknown signature"],
)
def test_a_warmup_record_that_fails_fails_the_warmup(copied, rows, log, code, message):
    # saved_model_warmup_util.cc: TF_RETURN_IF_ERROR on each record's request.
    _write_warmup(copied, [_predict_log("serving_default", rows), log])
    error = _refusal(Servable(1, copied).warm_up)
    assert error.code == code
    assert re.search(message, error.message)


def _set_method_name(version_dir, signature_name: str, method_name: str) -> None:
    path = version_dir / "saved_model.pb"
    saved_model = saved_model_pb2.SavedModel.FromString(path.read_bytes())
    saved_model.meta_graphs[0].signature_def[signature_name].method_name = method_name
    path.write_bytes(saved_model.SerializeToString())


@pytest.mark.parametrize(
    ("log", "code", "message"),
    [(_predict_log("serving_default", np.zeros((1, FEATURES), np.float32)),
      grpc.StatusCode.INTERNAL,
      "Expected prediction signature method_name to be one of {tensorflow/serving/predict, "
      "tensorflow/serving/classify, tensorflow/serving/regress}. Was: custom/score"),
     (prediction_log_pb2.PredictionLog(classify_log=prediction_log_pb2.ClassifyLog(
         request=classification_pb2.ClassificationRequest())),
      grpc.StatusCode.INVALID_ARGUMENT,
      "Expected classification signature method_name to be tensorflow/serving/classify. "
      "Was: custom/score")],
    ids=["predict log", "classify log"])
def test_with_the_method_name_check_a_record_on_another_method_fails_the_warmup(
        copied, log, code, message):
    # util.cc SetSignatureMethodNameCheckFeature is process-wide: saved_model_warmup.cc
    # RunWarmupRequest's RunPredict (predict_util.cc VerifySignature, INTERNAL) and
    # RunClassify (classifier.cc PreProcessClassification, INVALID_ARGUMENT) check the
    # method_name first, as the RPCs do. Without the check the predict record runs.
    _set_method_name(copied, "serving_default", "custom/score")
    _write_warmup(copied, [log])
    error = _refusal(Servable(1, copied).warm_up, 1, True)
    assert (error.code, error.message) == (code, message)
    if log.WhichOneof("log_type") == "predict_log":
        assert Servable(1, copied).warm_up() == 1


def test_a_warmup_record_without_a_log_is_read_and_runs_nothing(copied, rows):
    # saved_model_warmup.cc RunWarmupRequest: LOG_TYPE_NOT_SET falls to `default: break`,
    # and saved_model_warmup_util.cc counts the record.
    _write_warmup(copied, [_predict_log("serving_default", rows),
                           prediction_log_pb2.PredictionLog()])
    assert Servable(1, copied).warm_up() == 2


def test_a_warmup_read_to_its_end_is_recorded_ok_with_its_records_and_runs(copied, rows):
    # saved_model_warmup_util.cc: model_warmup_latency and model_warmup_records_read
    # {export_dir, "OK"} once the reader reaches the end; predict_util.cc RunPredict records
    # each run's runtime_latency {model, "Predict", "TF1"}, in warmup too.
    _write_warmup(copied, [_predict_log("serving_default", rows), _predict_log("", rows[:1])])
    metrics = ServingMetrics()
    assert Servable(1, copied, metrics).warm_up() == 2
    assert metrics.model_warmup_records_read.value(str(copied), "OK") == 2
    assert metrics.model_warmup_latency.cumulative_counts(str(copied), "OK")[-1] == 1
    assert metrics.runtime_latency.cumulative_counts("kdd", "Predict", "TF1")[-1] == 2


def test_an_unreadable_warmup_file_is_recorded_with_its_status(copied, rows):
    # saved_model_warmup_util.cc: the reader's status, absl's "CODE: message", as the label.
    path = _write_warmup(copied, [_predict_log("serving_default", rows)])
    path.write_bytes(path.read_bytes() + b"trailing garbage, not a record")
    metrics = ServingMetrics()
    error = _refusal(Servable(1, copied, metrics).warm_up)
    status = "DATA_LOSS: " + error.message.removesuffix(
        ". Please verify your warmup data is in TFRecord format.")
    assert metrics.model_warmup_records_read.value(str(copied), status) == 1
    assert metrics.model_warmup_latency.cumulative_counts(str(copied), status)[-1] == 1


def test_a_failed_warmup_request_records_no_warmup_metrics(copied):
    # saved_model_warmup_util.cc: TF_RETURN_IF_ERROR on a record's run returns before the
    # warmup metrics are recorded.
    _write_warmup(copied, [_predict_log("nope", np.zeros((1, FEATURES), np.float32))])
    metrics = ServingMetrics()
    _refusal(Servable(1, copied, metrics).warm_up)
    assert "model_warmup_latency_count" not in metrics.render()
    assert "model_warmup_records_read{" not in metrics.render()


def test_a_warmup_file_that_is_not_tfrecords_is_data_loss(copied):
    # saved_model_warmup_util.cc: the reader's DATA_LOSS, with a hint appended.
    (copied / "assets.extra" / "tf_serving_warmup_requests").write_bytes(b"plain text " * 4)
    error = _refusal(Servable(1, copied).warm_up)
    assert error.code == grpc.StatusCode.DATA_LOSS
    assert "corrupted record at 0" in error.message
    assert error.message.endswith(". Please verify your warmup data is in TFRecord format.")


def test_a_warmup_record_that_is_not_a_prediction_log_is_invalid_argument(copied, rows):
    path = _write_warmup(copied, [_predict_log("serving_default", rows), b"\xff\xff\xff"])
    error = _refusal(Servable(1, copied).warm_up)
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert error.message == rf"Failed to parse warmup record: b'\xff\xff\xff' from {path}"


def test_more_warmup_records_than_tf_serving_replays_fail_the_warmup(copied, rows, monkeypatch):
    # saved_model_warmup_util.h: kMaxNumRecords = 1000; a smaller limit here, to stay fast.
    assert servable_module.MAX_WARMUP_RECORDS == 1000
    monkeypatch.setattr(servable_module, "MAX_WARMUP_RECORDS", 2)
    log = _predict_log("serving_default", rows[:1])
    _write_warmup(copied, [log, log])
    assert Servable(1, copied).warm_up() == 2
    path = _write_warmup(copied, [log, log, log])
    error = _refusal(Servable(1, copied).warm_up)
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert error.message == f"Number of warmup records exceeds the maximum (2) at {path}"
