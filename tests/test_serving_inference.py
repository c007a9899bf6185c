"""Classify, Regress and MultiInference answered as TF Serving answers them, over real ports.

A MemAE export has only predict-style signatures (input `x`), so TF Serving refuses
these requests at the signature check; a SavedModel with a real classification or
regression signature (input `inputs`, serialized `tf.Example`s) is served. The expected
codes and messages are written out from TF Serving's sources, named in each test:
model_servers/prediction_service_impl.cc (the metrics of each RPC),
servables/tensorflow/classification_service.cc, regression_service.cc, classifier.cc,
regressor.cc, multi_inference.cc, multi_inference_helper.cc and util.cc, and for REST
model_servers/http_rest_api_handler.cc and util/json_tensor.cc.
"""

import functools
import pathlib
import shutil
import time

import grpc
import numpy as np
import pytest
import tensorflow as tf
from serving_helpers import exported_small_model, free_port, rest_call
from tensorflow.core.example import example_pb2
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    inference_pb2,
    model_pb2,
    predict_pb2,
    prediction_log_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)

from memae_tf.serving import (
    ModelRegistry,
    deadlines,
    inference,
    parse_flags,
    serve,
    start_model_server,
)
from memae_tf.serving.batching import BatchingOptions
from memae_tf.serving.config import single_model_config
from memae_tf.serving.core import ServingCore
from memae_tf.serving.errors import ServingError
from memae_tf.serving.inference import (
    check_classification_signature,
    check_regression_signature,
    classification_result,
    regression_result,
    run_alone,
    run_classify_or_regress,
    run_multi_inference,
)
from memae_tf.serving.metrics import ServingMetrics, parse_exposition
from memae_tf.serving.rest_examples import json_debug_string, parse_examples_body
from memae_tf.serving.servable import Servable, read_signature_defs

CLASSIFY = "tensorflow/serving/classify"
REGRESS = "tensorflow/serving/regress"


def _example(**features) -> example_pb2.Example:
    example = example_pb2.Example()
    for name, value in features.items():
        example.features.feature[name].float_list.value.append(value)
    return example


class _ExampleModel(tf.Module):
    """Signatures over serialized tf.Examples with one float feature `x`."""

    def _x(self, inputs):
        return tf.io.parse_example(inputs, {"x": tf.io.FixedLenFeature([], tf.float32)})["x"]

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def classify(self, inputs):
        x = self._x(inputs)
        scores = tf.stack([x, 1 - x], axis=1)
        return {"scores": scores,
                "classes": tf.broadcast_to(tf.constant([["low", "high"]]), tf.shape(scores))}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def regress(self, inputs):
        return {"outputs": 2 * self._x(inputs)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def one_row(self, inputs):
        return {"outputs": tf.reduce_sum(self._x(inputs), keepdims=True)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
    def float_input(self, inputs):
        return {"outputs": inputs}


@pytest.fixture(scope="module")
def memae_base(tmp_path_factory) -> pathlib.Path:
    return exported_small_model(tmp_path_factory.mktemp("models"), seed=3)[1]


@pytest.fixture(scope="module")
def examples_base(tmp_path_factory) -> pathlib.Path:
    base = tmp_path_factory.mktemp("examples") / "clf"
    module = _ExampleModel()
    tf.saved_model.save(module, str(base / "1"), signatures={
        "serving_default": module.classify, "regress": module.regress,
        "one_row": module.one_row, "float_input": module.float_input})
    return base


def _served(base, name):
    """Serves `base` as model `name` on gRPC and REST; yields the handle and a stub."""
    handle = serve(base, name, port=0, rest_port=0, host="127.0.0.1")
    with grpc.insecure_channel(f"127.0.0.1:{handle.port}") as channel:
        yield handle, prediction_service_pb2_grpc.PredictionServiceStub(channel)
    handle.stop(grace=0)


@pytest.fixture(scope="module")
def memae(memae_base):
    yield from _served(memae_base, "kdd")


@pytest.fixture(scope="module")
def examples(examples_base):
    yield from _served(examples_base, "clf")


def _request(request_type, model="kdd", signature="", xs=(0.25,)):
    """A ClassificationRequest or RegressionRequest of one example per value of `xs`."""
    request = request_type()
    request.model_spec.name = model
    request.model_spec.signature_name = signature
    for x in xs:
        request.input.example_list.examples.add().CopyFrom(_example(x=x))
    return request


_classification = functools.partial(_request, classification_pb2.ClassificationRequest)
_regression = functools.partial(_request, regression_pb2.RegressionRequest)


def _multi(*tasks, xs=(0.25,)) -> inference_pb2.MultiInferenceRequest:
    """`tasks`: (model name, signature name, method name) each."""
    request = inference_pb2.MultiInferenceRequest()
    for model, signature, method in tasks:
        task = request.tasks.add(method_name=method)
        task.model_spec.name = model
        task.model_spec.signature_name = signature
    for x in xs:
        request.input.example_list.examples.add().CopyFrom(_example(x=x))
    return request


def _refusal(call, request) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as info:
        call(request, timeout=60)
    return info.value.code(), info.value.details()


def _debug_string(signature) -> str:
    """C++ `SignatureDef::DebugString` of a one-input, one-output float signature, by hand."""

    def tensor(key, info):
        dims = "".join(f"      dim {{\n        size: {dim.size}\n      }}\n"
                       for dim in info.tensor_shape.dim)
        return (f'  key: "{key}"\n  value {{\n    name: "{info.name}"\n    dtype: DT_FLOAT\n'
                f"    tensor_shape {{\n{dims}    }}\n  }}\n")

    (in_key, in_info), = signature.inputs.items()
    (out_key, out_info), = signature.outputs.items()
    return (f"inputs {{\n{tensor(in_key, in_info)}}}\noutputs {{\n{tensor(out_key, out_info)}}}\n"
            f'method_name: "{signature.method_name}"\n')


INVALID = grpc.StatusCode.INVALID_ARGUMENT


# ------------------------------------------------- a MemAE export: refused at the signature


def test_classify_refuses_serving_default_for_its_three_outputs(memae):
    # classifier.cc GetClassificationSignatureDef -> PreProcessClassification: one input
    # (x) passes, three outputs (score, is_anomaly, reconstruction) do not.
    assert _refusal(memae[1].Classify, _classification()) == (
        INVALID, "Expected one or two output Tensors, found 3")


def test_regress_refuses_serving_default_for_its_three_outputs(memae):
    # regressor.cc PreProcessRegression.
    assert _refusal(memae[1].Regress, _regression()) == (INVALID, "Expected one output Tensor.")


@pytest.mark.parametrize(("rpc", "make", "noun"), [
    ("Classify", _classification, "classification"), ("Regress", _regression, "regression")])
def test_a_one_output_signature_is_refused_for_its_input_name_quoting_it(
        memae, memae_base, rpc, make, noun):
    # PreProcessClassification / PreProcessRegression: the input must be named "inputs";
    # the message quotes the SignatureDef's DebugString.
    signature = read_signature_defs(memae_base / "1")["score_map"]
    assert _refusal(getattr(memae[1], rpc), make(signature="score_map")) == (
        INVALID, f"No {noun} inputs found in SignatureDef: {_debug_string(signature)}")


@pytest.mark.parametrize(("rpc", "make"), [("Classify", _classification),
                                           ("Regress", _regression)])
def test_an_unknown_signature_is_invalid_argument(memae, rpc, make):
    # GetClassificationSignatureDef / GetRegressionSignatureDef.
    assert _refusal(getattr(memae[1], rpc), make(signature="nope")) == (
        INVALID, "No signature was found with the name: nope")


def test_the_signature_map_is_the_metagraphs_init_op_included(memae):
    # classifier.cc looks the name up in MetaGraphDef.signature_def, which in a TF2
    # SavedModel holds __saved_model_init_op (no inputs): found, then refused for its shape.
    assert _refusal(memae[1].Classify, _classification(signature="__saved_model_init_op")) == (
        INVALID, "Expected one input Tensor.")


def test_the_signature_is_checked_before_the_examples(memae):
    # RunClassify checks the signature; only Classify then reads the input (util.cc
    # InputToSerializedExampleTensor: "Input is empty.").
    assert _refusal(memae[1].Classify, _classification(xs=())) == (
        INVALID, "Expected one or two output Tensors, found 3")


def test_the_model_and_version_are_looked_up_before_the_signature(memae):
    # classification_service.cc: "Missing ModelSpec", then ServerCore::GetServableHandle.
    assert _refusal(memae[1].Classify, classification_pb2.ClassificationRequest()) == (
        INVALID, "Missing ModelSpec")
    code, message = _refusal(memae[1].Regress, _regression(model="nope", signature="nope"))
    assert code == grpc.StatusCode.NOT_FOUND
    assert message.startswith("Servable not found for request: Latest(nope)")
    request = _classification(signature="nope")
    request.model_spec.version.value = 7
    code, message = _refusal(memae[1].Classify, request)
    assert code == grpc.StatusCode.NOT_FOUND
    assert message.startswith("Servable not found for request: Specific(kdd, 7)")


def test_classify_and_regress_are_counted_by_status_without_latency_on_failure(memae):
    # prediction_service_impl.cc: RecordModelRequestCount after every Classify/Regress,
    # RecordRequestLatency only when it succeeded.
    metrics = memae[0].metrics
    before = metrics.request_count.value("kdd", "INVALID_ARGUMENT")
    _refusal(memae[1].Classify, _classification())
    _refusal(memae[1].Regress, _regression())
    assert metrics.request_count.value("kdd", "INVALID_ARGUMENT") == before + 2
    assert metrics.request_latency.cumulative_counts("kdd", "Classify", "GRPC")[-1] == 0


# ------------------------------------------------------------------ MultiInference


@pytest.mark.parametrize(("tasks", "code", "message"), [
    # multi_inference_helper.cc: the first task's model spec, or none.
    ((), INVALID, "ModelSpec has no name specified."),
    ((("nope", "", CLASSIFY),), grpc.StatusCode.NOT_FOUND,
     "Servable not found for request: Latest(nope)"),
    # multi_inference.cc TensorFlowMultiInferenceRunner::Infer, task by task.
    ((("kdd", "", CLASSIFY),), INVALID, "Expected one or two output Tensors, found 3"),
    ((("kdd", "", REGRESS),), INVALID, "Expected one output Tensor."),
    ((("kdd", "nope", CLASSIFY),), INVALID, "Requested signature not found in model graph: nope"),
    ((("kdd", "", "tensorflow/serving/predict"),), grpc.StatusCode.UNIMPLEMENTED,
     "Unsupported signature method_name: tensorflow/serving/predict"),
    ((("kdd", "nope", "custom"),), INVALID, "Requested signature not found in model graph: nope"),
])
def test_multi_inference_refuses_as_tf_serving(memae, tasks, code, message):
    got_code, got_message = _refusal(memae[1].MultiInference, _multi(*tasks))
    assert got_code == code
    assert got_message.startswith(message)


def test_multi_inference_is_not_counted_in_the_request_metrics(memae):
    # prediction_service_impl.cc MultiInference records neither count nor latency.
    metrics = memae[0].metrics
    before = metrics.render()
    _refusal(memae[1].MultiInference, _multi(("kdd", "", CLASSIFY)))
    assert metrics.render() == before


# ------------------------------------------- --enable_signature_method_name_check


@pytest.fixture(scope="module")
def method_checked(memae_base):
    flags = [f"--port={free_port()}", f"--model_base_path={memae_base}", "--model_name=kdd",
             "--enable_signature_method_name_check"]
    with start_model_server(parse_flags(flags), host="127.0.0.1") as handle, \
            grpc.insecure_channel(f"127.0.0.1:{handle.port}") as channel:
        yield prediction_service_pb2_grpc.PredictionServiceStub(channel)


@pytest.mark.parametrize(("rpc", "request_", "noun", "method"), [
    ("Classify", _classification(), "classification", CLASSIFY),
    ("Regress", _regression(signature="score_map"), "regression", REGRESS),
    ("MultiInference", _multi(("kdd", "score_map", CLASSIFY)), "classification", CLASSIFY),
])
def test_the_method_name_check_names_the_method_expected(method_checked, rpc, request_, noun,
                                                         method):
    # server.cc SetSignatureMethodNameCheckFeature: GetClassificationSignatureDef (and
    # PreProcessClassification in MultiInference) compares method_name before the shape.
    assert _refusal(getattr(method_checked, rpc), request_) == (
        INVALID, f"Expected {noun} signature method_name to be {method}. "
                 "Was: tensorflow/serving/predict")


# --------------------------------------- a SavedModel with real tf.Example signatures


def test_classify_answers_each_examples_classes_and_scores(examples):
    # classifier.cc PostProcessClassificationResult; util.cc MakeModelSpec.
    response = examples[1].Classify(_classification("clf", xs=(0.25, 0.5)), timeout=60)
    assert [[(c.label, c.score) for c in row.classes]
            for row in response.result.classifications] == [
        [("low", 0.25), ("high", 0.75)], [("low", 0.5), ("high", 0.5)]]
    assert (response.model_spec.name, response.model_spec.version.value,
            response.model_spec.signature_name) == ("clf", 1, "serving_default")


def test_regress_answers_one_value_per_example_and_is_counted(examples):
    # regressor.cc PostProcessRegressionResult; prediction_service_impl.cc and
    # regressor.cc: request count, request latency and runtime latency of the API.
    metrics = examples[0].metrics
    before = metrics.request_count.value("clf", "OK")
    response = examples[1].Regress(_regression("clf", "regress", xs=(0.25, 1.5)), timeout=60)
    assert [r.value for r in response.result.regressions] == [0.5, 3.0]
    assert metrics.request_count.value("clf", "OK") == before + 1
    assert metrics.request_latency.cumulative_counts("clf", "Regress", "GRPC")[-1] >= 1
    assert metrics.runtime_latency.cumulative_counts("clf", "Regress", "TF1")[-1] >= 1


def test_the_context_features_reach_every_example_and_yield_to_its_own(examples):
    # util.cc InputToSerializedExampleTensor: context bytes, then the example's.
    request = _regression("clf", "regress", xs=())
    listed = request.input.example_list_with_context
    listed.context.CopyFrom(_example(x=0.5))
    listed.examples.add()
    listed.examples.add().CopyFrom(_example(x=2.0))
    response = examples[1].Regress(request, timeout=60)
    assert [r.value for r in response.result.regressions] == [1.0, 4.0]


def test_a_request_without_examples_is_refused_once_the_signature_passes(examples):
    # util.cc InputToSerializedExampleTensor.
    assert _refusal(examples[1].Classify, _classification("clf", xs=())) == (
        INVALID, "Input is empty.")


def test_a_signature_whose_input_is_not_a_string_refuses_the_examples(examples):
    # The session's feed check, TensorFlow's FunctionCallFrame::SetArgs.
    assert _refusal(examples[1].Regress, _regression("clf", "float_input")) == (
        INVALID, "Expects arg[0] to be float but string is provided")


def test_an_output_of_another_batch_size_is_refused(examples):
    # regressor.cc PostProcessRegressionResult.
    assert _refusal(examples[1].Regress, _regression("clf", "one_row", xs=(1.0, 2.0))) == (
        INVALID, "Input batch size did not match output batch size: 2 vs. 1")


@pytest.mark.parametrize(("second", "message"), [
    (("", "regress", REGRESS), "Found ModelSpec with an empty model name."),
    (("other", "regress", REGRESS),
     "All ModelSpecs in a MultiInferenceRequest must access the same model name."),
    (("clf", "serving_default", REGRESS), "Duplicate evaluation of signature: serving_default"),
    (("clf", "regress", CLASSIFY), 'Expected classification signature outputs to contain at '
                                   'least one of "classes" or "scores". Signature was: inputs {'),
])
def test_a_later_task_is_checked_against_the_first(examples, second, message):
    # multi_inference.cc Infer: a task's model name against the first's, its signature
    # (the default name included) against those before it, then its method's checks.
    code, got = _refusal(examples[1].MultiInference, _multi(("clf", "", CLASSIFY), second))
    assert code == INVALID
    assert got.startswith(message)


def test_multi_inference_runs_every_task_on_the_same_examples(examples):
    # multi_inference.cc: one result per task, in order, each with its model spec; util.cc
    # RecordRequestExampleCount.
    metrics = examples[0].metrics
    before = metrics.request_example_count_total.value("clf")
    response = examples[1].MultiInference(
        _multi(("clf", "regress", REGRESS), ("clf", "", CLASSIFY), xs=(0.25, 0.5)), timeout=60)
    regression, classification = response.results
    assert [r.value for r in regression.regression_result.regressions] == [0.5, 1.0]
    assert [c.score for c in classification.classification_result.classifications[1].classes] == [
        0.5, 0.5]
    assert [(r.model_spec.signature_name, r.model_spec.version.value)
            for r in response.results] == [("regress", 1), ("serving_default", 1)]
    assert metrics.request_example_count_total.value("clf") == before + 2


@pytest.fixture
def batching_core(examples_base):
    """A core with TF Serving's batching, max_batch_size 2, over the tf.Example model."""
    models = ModelRegistry(0)
    models.reload_config(single_model_config("clf", str(examples_base)))
    core = ServingCore(models, batching=BatchingOptions(max_batch_size=2))
    yield core
    core.stop(10)
    models.stop()


def test_with_batching_classify_runs_in_the_signatures_batch_queue(batching_core):
    # batching_session.cc: a session run whose feeds and fetches are one signature's is
    # batched, whatever the API: above max_batch_size it is refused, as a Predict is.
    response = batching_core.classify(_classification("clf", xs=(0.25, 0.5)))
    assert len(response.result.classifications) == 2
    assert batching_core.metrics.wrapped_run_count.value() == 1
    with pytest.raises(ServingError) as info:
        batching_core.classify(_classification("clf", xs=(0.25, 0.5, 0.75)))
    assert (info.value.code, info.value.message) == (
        INVALID, "Task size 3 is larger than maximum input batch size 2")


def test_with_batching_a_multi_inference_of_two_signatures_runs_alone(batching_core):
    # batching_session.cc Run: feeds and fetches of no one signature run on the wrapped
    # session, unbatched (multi_inference.cc fetches every task's outputs at once).
    request = _multi(("clf", "", CLASSIFY), ("clf", "regress", REGRESS), xs=(0.25, 0.5, 0.75))
    response = batching_core.multi_inference(request)
    assert [r.value for r in response.results[1].regression_result.regressions] == [
        0.5, 1.0, 1.5]
    assert batching_core.metrics.wrapped_run_count.value() == 0


# ------------------------------------------------- the core's defaults, in process


@pytest.fixture(scope="module")
def core(examples_base):
    """A core without batching over the tf.Example model, as `ServingCore` is by default."""
    models = ModelRegistry(0)
    models.reload_config(single_model_config("clf", str(examples_base)))
    yield ServingCore(models)
    models.stop()


def _float_predict(xs=(0.25, 0.5)) -> predict_pb2.PredictRequest:
    """A Predict of the `float_input` signature, whose output is its input."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "clf"
    request.model_spec.signature_name = "float_input"
    request.inputs["inputs"].CopyFrom(tf.make_tensor_proto(list(xs), tf.float32))
    return request


class _SecondPerReading:
    """A monotonic clock that moves a second forward at each reading: every run lasts 1 s."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        self.now += 1.0
        return self.now


_CALLS = {
    "Predict": lambda core, **timeout: core.predict(_float_predict(), **timeout),
    "Classify": lambda core, **timeout: core.classify(_classification("clf"), **timeout),
    "Regress": lambda core, **timeout: core.regress(
        _regression("clf", signature="regress"), **timeout),
    "MultiInference": lambda core, **timeout: core.multi_inference(
        _multi(("clf", "regress", REGRESS)), **timeout),
    "execute": lambda core, **timeout: core.execute(
        core.servable(model_pb2.ModelSpec(name="clf")), "float_input",
        {"inputs": np.array([0.25], np.float32)}, **timeout),
    "run_alone": lambda core, **timeout: run_alone(
        core.servable(model_pb2.ModelSpec(name="clf")), "float_input",
        {"inputs": np.array([0.25], np.float32)}, **timeout),
}


@pytest.mark.parametrize("api", list(_CALLS))
def test_without_a_timeout_a_run_may_last_any_time(core, monkeypatch, api):
    # config.proto RunOptions.timeout_in_ms: 0, the default, is no timeout
    # (direct_session.cc waits only for a positive one); 1 ms is exceeded by a 1 s run.
    monkeypatch.setattr(deadlines, "time", _SecondPerReading())
    _CALLS[api](core)
    with pytest.raises(ServingError) as info:
        _CALLS[api](core, timeout_in_ms=1)
    assert info.value.code == grpc.StatusCode.DEADLINE_EXCEEDED


def test_predict_answers_in_typed_fields_unless_asked_for_tensor_content(core):
    # server.h enable_serialization_as_tensor_content = false; predict_util.cc
    # PostProcessPredictionResult: AsProtoField (float_val) or AsProtoTensorContent
    # (the values' little-endian bytes); the REST handler asks for the bytes per request.
    raw = np.array([0.25, 0.5], "<f4").tobytes()
    typed = core.predict(_float_predict()).outputs["outputs"]
    assert (list(typed.float_val), typed.tensor_content) == ([0.25, 0.5], b"")
    assert core.predict(_float_predict(), tensor_content=True).outputs["outputs"] \
        .tensor_content == raw
    content = ServingCore(core.managers, tensor_content=True)
    assert content.predict(_float_predict()).outputs["outputs"].tensor_content == raw
    typed = content.predict(_float_predict(), tensor_content=False).outputs["outputs"]
    assert (list(typed.float_val), typed.tensor_content) == ([0.25, 0.5], b"")


@pytest.mark.parametrize("run", [
    lambda servable, **check: run_classify_or_regress(
        inference.CLASSIFY, servable, _classification("clf"), **check).result,
    lambda servable, **check: run_multi_inference(
        servable, _multi(("clf", "", CLASSIFY)), **check).results[0].classification_result,
], ids=["Classify", "MultiInference"])
def test_a_run_checks_no_method_name_unless_asked(core, run):
    # main.cc enable_signature_method_name_check, default false: the tf.saved_model.save
    # signature (method_name predict) classifies; checked, it is refused (classifier.cc).
    servable = core.servable(model_pb2.ModelSpec(name="clf"))
    assert _classes(run(servable)) == [[("low", 0.25), ("high", 0.75)]]
    with pytest.raises(ServingError) as info:
        run(servable, method_name_check=True)
    assert info.value.message == (f"Expected classification signature method_name to be "
                                  f"{CLASSIFY}. Was: tensorflow/serving/predict")


@pytest.mark.parametrize("api", ["Predict", "Classify", "Regress"])
def test_the_run_time_is_recorded_in_microseconds(core, api):
    # predict_util.cc, classifier.cc, regressor.cc: RecordRuntimeLatency(name, api, "TF1",
    # NowMicros() after the run less before it): at least a microsecond, at most the call.
    fresh = ServingCore(core.managers)
    started = time.perf_counter()
    _CALLS[api](fresh)
    elapsed_micros = (time.perf_counter() - started) * 1e6
    page = parse_exposition(fresh.metrics.render())
    key = (("API", api), ("model_name", "clf"), ("runtime", "TF1"))
    assert page[":tensorflow:serving:runtime_latency_count"][key] == 1
    assert 1 <= page[":tensorflow:serving:runtime_latency_sum"][key] <= elapsed_micros


# ------------------------------------- signature checks and results, on hand-built defs


def _signature(outputs, method_name=CLASSIFY, inputs=None) -> meta_graph_pb2.SignatureDef:
    """A SignatureDef of tensor names: output key → name; input `inputs` by default."""
    signature = meta_graph_pb2.SignatureDef(method_name=method_name)
    for key, name in (inputs or {"inputs": "in:0"}).items():
        signature.inputs[key].name = name
    for key, name in outputs.items():
        signature.outputs[key].name = name
    return signature


def test_the_signature_checks_take_classes_or_scores_and_regression_outputs():
    # classifier.cc PreProcessClassification: classes, scores or both;
    # regressor.cc PreProcessRegression: one output named "outputs".
    check_classification_signature(_signature({"scores": "s:0", "classes": "c:0"}))
    check_classification_signature(_signature({"scores": "s:0"}))
    check_classification_signature(_signature({"classes": "c:0"}))
    check_regression_signature(_signature({"outputs": "o:0"}, REGRESS))


@pytest.mark.parametrize(("check", "output", "method", "noun"), [
    (check_classification_signature, "scores", CLASSIFY, "classification"),
    (check_regression_signature, "outputs", REGRESS, "regression"),
])
def test_the_method_name_is_checked_only_when_asked(check, output, method, noun):
    # main.cc enable_signature_method_name_check, default false; classifier.cc and
    # regressor.cc compare method_name only under it.
    signature = _signature({output: "o:0"}, "tensorflow/serving/predict")
    check(signature)  # passes without the flag
    with pytest.raises(ServingError) as info:
        check(signature, True)
    assert info.value.message == (
        f"Expected {noun} signature method_name to be {method}. Was: tensorflow/serving/predict")


def _classes(result) -> list[list[tuple[str, float]]]:
    return [[(c.label, c.score) for c in row.classes] for row in result.classifications]


def test_a_classification_result_takes_its_classes_from_whichever_output_there_is():
    # classifier.cc PostProcessClassificationResult: num_classes from classes or scores
    # (0 with neither); a missing output leaves the label empty or the score 0.
    scores = np.array([[0.25, 0.75]], np.float32)
    classes = np.array([[b"a", b"b"]], object)
    assert _classes(classification_result(_signature({"scores": "s:0"}), 1,
                                          {"s:0": scores})) == [[("", 0.25), ("", 0.75)]]
    assert _classes(classification_result(_signature({"classes": "c:0"}), 1,
                                          {"c:0": classes})) == [[("a", 0.0), ("b", 0.0)]]
    assert _classes(classification_result(_signature({"other": "o:0"}), 2,
                                          {"o:0": scores})) == [[], []]


@pytest.mark.parametrize(("fetched", "message"), [
    ({"c:0": np.array([b"a", b"b"], object)},
     "Expected Tensor shape: [batch_size num_classes] but got [2]"),
    ({"c:0": np.array([[1, 2]], np.int32)}, "Expected classes Tensor of DT_STRING. Got: DT_INT32"),
    ({"c:0": np.array([[b"a"], [b"b"]], object)},
     "Expected classes output batch size of 1. Got: 2"),
    ({"s:0": np.zeros((1, 2, 1), np.float32)},
     "Expected Tensor shape: [batch_size num_classes] but got [1,2,1]"),
    ({"s:0": np.zeros((1, 2), np.float64)}, "Expected scores Tensor of DT_FLOAT. Got: DT_DOUBLE"),
    ({"s:0": np.zeros((3, 2), np.float32)}, "Expected scores output batch size of 1. Got: 3"),
    ({"c:0": np.array([[b"a", b"b"]], object), "s:0": np.zeros((1, 3), np.float32)},
     "Tensors class and score should match in dim_size(1). Got 2 vs. 3"),
])
def test_classification_outputs_of_the_wrong_shape_dtype_or_size_are_refused(fetched, message):
    # classifier.cc PostProcessClassificationResult, one example run.
    outputs = {key: name for key, name in (("classes", "c:0"), ("scores", "s:0"))
               if name in fetched}
    with pytest.raises(ServingError) as info:
        classification_result(_signature(outputs), 1, fetched)
    assert (info.value.code, info.value.message) == (INVALID, message)


@pytest.mark.parametrize("shape", [(2,), (2, 1)])
def test_a_regression_output_is_one_value_per_example(shape):
    # regressor.cc PostProcessRegressionResult: [batch_size] or [batch_size, 1].
    output = np.array([1.5, -2.0], np.float32).reshape(shape)
    result = regression_result(_signature({"outputs": "o:0"}, REGRESS), 2, {"o:0": output})
    assert [r.value for r in result.regressions] == [1.5, -2.0]


@pytest.mark.parametrize(("output", "message"), [
    (np.zeros((2, 2), np.float32),
     "Expected output Tensor shape to be either [batch_size] or [batch_size, 1] but got [2,2]"),
    (np.zeros((2, 1, 1), np.float32),
     "Expected output Tensor shape to be either [batch_size] or [batch_size, 1] but got "
     "[2,1,1]"),
    (np.zeros((), np.float32),
     "Expected output Tensor shape to be either [batch_size] or [batch_size, 1] but got []"),
    (np.zeros((3,), np.float32), "Input batch size did not match output batch size: 2 vs. 3"),
    (np.zeros((2,), np.float64), "Expected output Tensor of DT_FLOAT.  Got: DT_DOUBLE"),
])
def test_regression_outputs_of_the_wrong_shape_size_or_dtype_are_refused(output, message):
    # regressor.cc PostProcessRegressionResult, two examples run.
    with pytest.raises(ServingError) as info:
        regression_result(_signature({"outputs": "o:0"}, REGRESS), 2, {"o:0": output})
    assert (info.value.code, info.value.message) == (INVALID, message)


# ---------------------------------------------------------------------------- REST


@pytest.mark.parametrize(("path", "body", "status", "message"), [
    # http_rest_api_handler.cc ProcessClassifyRequest / ProcessRegressRequest.
    ("/v1/models/kdd:classify", {"examples": [{"x": [1.0]}]}, 400,
     "Expected one or two output Tensors, found 3"),
    ("/v1/models/kdd:regress", {"examples": [{"x": 1}], "signature_name": "nope"}, 400,
     "No signature was found with the name: nope"),
    ("/v1/models/kdd/versions/3:regress", {"examples": [{}]}, 404,
     "Servable not found for request: Specific(kdd, 3)"),
    # json_tensor.cc FillClassifyRegressRequestFromJson: the body before the model.
    ("/v1/models/nope:classify", {"examples": []}, 400,
     """JSON Value: {\n    "examples": []\n} 'examples' value is an empty array"""),
    ("/v1/models/kdd:regress", {"instances": [1]}, 400,
     """JSON Value: {\n    "instances": [1]\n} When method is classify, key 'examples' is """
     "expected and was not found"),
    # ParseModelInfo matches any case, ProcessRequest dispatches only the lower case.
    ("/v1/models/kdd:Classify", {"examples": [{}]}, 400,
     "Malformed request: POST /v1/models/kdd:Classify"),
])
def test_rest_classify_and_regress_answer_as_tf_serving(memae, path, body, status, message):
    got_status, answer = rest_call(memae[0].rest_port, "POST", path, body)
    assert got_status == status
    assert answer["error"].startswith(message)


def test_rest_classify_and_regress_answer_results(examples):
    # json_tensor.cc MakeJsonFromClassificationResult / MakeJsonFromRegressionResult.
    port = examples[0].rest_port
    assert rest_call(port, "POST", "/v1/models/clf:classify",
                     {"examples": [{"x": 0.25}, {}], "context": {"x": 0.5}}) == (
        200, {"results": [[["low", 0.25], ["high", 0.75]], [["low", 0.5], ["high", 0.5]]]})
    assert rest_call(port, "POST", "/v1/models/clf/versions/1:regress",
                     {"signature_name": "regress", "examples": [{"x": [1.5]}]}) == (
        200, {"results": [3.0]})


@pytest.mark.parametrize(("body", "message"), [
    (b"", "JSON Parse error: The document is empty"),
    (b"  ", "JSON Parse error: The document is empty. at offset: 2"),
    (b"[1]", "JSON Value: [1] Is not object"),
    (b'{"signature_name": 3, "examples": [{}]}',
     "not formatted correctly. 'signature_name' key must be a string value."),
    (b'{"examples": {}}', "Expecting 'examples' value to be an list/array"),
    (b'{"examples": [[1]]}', "Example must be JSON object but got JSON Array"),
    (b'{"examples": [{}], "context": 1}', "Example must be JSON object but got JSON Number"),
    (b'{"examples": [{"f": null}]}', "Feature: f has element with unexpected JSON type: Null"),
    (b'{"examples": [{"f": [[1]]}]}', "Feature: f has element with unexpected JSON type: Array"),
    (b'{"examples": [{"f": {"b": 1}}]}',
     "Feature: f has element with unexpected JSON type: Object"),
    (b'{"examples": [{"f": [1, 2.5]}]}', "Unexpected element type in feature: f expecting "
                                        "type: int64"),
    (b'{"examples": [{"f": ["a", 1]}]}', "Unexpected element type in feature: f expecting "
                                        "type: bytes"),
    (b'{"examples": [{"f": 9223372036854775808}]}',
     "Feature: f has uint64_t element. Only int64_t is supported."),
    (b'{"examples": [{"f": {"b64": "!!"}}]}', "Unable to base64 decode"),
    # AddValueToFeature checks the feature's kind first, then decodes or range-checks.
    (b'{"examples": [{"f": [1.5, 9223372036854775808]}]}',
     "Unexpected element type in feature: f expecting type: float"),
    (b'{"examples": [{"f": [1, {"b64": "!!"}]}]}',
     "Unexpected element type in feature: f expecting type: int64"),
])
def test_rest_example_bodies_are_refused_with_tf_servings_messages(body, message):
    # json_tensor.cc ParseJson, FillSignature, MakeExampleFromJsonObject, AddValueToFeature.
    with pytest.raises(ServingError) as info:
        parse_examples_body(body)
    assert info.value.code == INVALID
    assert message in info.value.message


def test_refused_bodies_are_quoted_as_rapidjsons_pretty_writer_writes_them():
    # json_tensor.cc FormatError -> JsonValueToDebugString: PrettyWriter, 4-space indent,
    # kFormatSingleLineArray; rapidjson writes doubles with Grisu2 + Prettify.
    with pytest.raises(ServingError) as info:
        parse_examples_body(b'{"instances": [1, 2.50, 1e-7, 1e21, 12345678901234567890123], '
                            b'"s": "q\\"\\u0001", "o": {"a": [], "b": {}}}')
    assert info.value.message == (
        'JSON Value: {\n    "instances": [1, 2.5, 1e-7, 1e21, 1.2345678901234568e22],\n'
        '    "s": "q\\"\\u0001",\n    "o": {\n        "a": [],\n        "b": {}\n    }\n} '
        "When method is classify, key 'examples' is expected and was not found")


def test_a_long_value_is_quoted_up_to_the_event_that_passes_256_bytes():
    # json_tensor.cc JsonWriterWithLimit: each event is written only while the buffer
    # holds fewer than kMaxJsonDebugStringBytes (256) bytes: the closing brace is not.
    assert json_debug_string({"examples": [], "x": "a" * 300}) == (
        '{\n    "examples": [],\n    "x": "' + "a" * 300 + '"')


def test_the_debug_string_stops_at_the_first_event_once_256_bytes_are_written():
    # json_tensor.cc JsonWriterWithLimit::InLimit: an event is written while the buffer
    # holds fewer than 256 bytes. 33 bytes frame the string: 222 'a's leave 255 bytes
    # before the closing brace, 223 leave 256.
    for size, end in ((222, '"\n}'), (223, '"')):
        text = json_debug_string({"examples": [], "x": "a" * size})
        assert text == '{\n    "examples": [],\n    "x": "' + "a" * size + end


@pytest.mark.parametrize(("value", "text"), [
    # rapidjson's Writer::Double: Grisu2's shortest digits, then Prettify's four forms
    # (k the decimal exponent of the digits, kk = digits + k).
    (3.0, "3.0"), (100.0, "100.0"), (1e20, "100000000000000000000.0"),  # k >= 0, kk <= 21
    (1e21, "1e21"), (1.5e21, "1.5e21"),  # kk > 21: exponent form
    (12.34, "12.34"), (-2.5, "-2.5"),  # 0 < kk <= 21
    (0.5, "0.5"), (0.001234, "0.001234"), (1e-6, "0.000001"),  # -6 < kk <= 0
    (1.5e-7, "1.5e-7"), (1e-7, "1e-7"),  # kk <= -6
    (0.0, "0.0"), (-0.0, "-0.0"), (-100.0, "-100.0"),
    # Integers rapidjson reads as int64 or uint64 are written as such, others as doubles.
    (-(2**63), "-9223372036854775808"), (2**64 - 1, "18446744073709551615"),
    (2**64, "18446744073709552000.0"), (-(2**63) - 1, "-9223372036854776000.0"),
    (True, "true"), (False, "false"), (None, "null"),
])
def test_json_values_are_quoted_as_rapidjsons_writer_writes_them(value, text):
    assert json_debug_string([value]) == f"[{text}]"


def test_the_body_is_its_first_json_value_whatever_follows():
    # json_tensor.cc ParseJson: kParseStopWhenDoneFlag.
    _, request_input = parse_examples_body(b'{"examples": [{"f": 1}]} trailing')
    assert len(request_input.example_list.examples) == 1


def test_rest_example_values_take_the_feature_kind_of_their_json_type():
    # json_tensor.cc AddValueToFeature: strings and b64 objects are bytes, integers and
    # booleans int64, other numbers float; a bare value is a list of one.
    signature, request_input = parse_examples_body(
        b'{"examples": [{"s": ["a", {"b64": "AAE="}], "i": [3, true], "f": 2.5, "e": []}]}')
    assert signature is None
    features = request_input.example_list.examples[0].features.feature
    assert list(features["s"].bytes_list.value) == [b"a", b"\x00\x01"]
    assert list(features["i"].int64_list.value) == [3, 1]
    assert list(features["f"].float_list.value) == [2.5]
    assert features["e"].WhichOneof("kind") is None


def test_integers_are_int64_within_its_range_and_floats_beyond_64_bits():
    # rapidjson reads an integer as int64, else uint64 (refused: AddValueToFeature),
    # else as a double (a float feature); absl::Base64Unescape takes unpadded text.
    _, request_input = parse_examples_body(
        b'{"examples": [{"i": [-9223372036854775808, 9223372036854775807], '
        b'"f": [-9223372036854775809, 18446744073709551616], "b": [{"b64": "AAE"}, '
        b'{"b64": "AA"}]}]}')
    features = request_input.example_list.examples[0].features.feature
    assert list(features["i"].int64_list.value) == [-(2**63), 2**63 - 1]
    assert list(features["f"].float_list.value) == [np.float32(-(2.0**63)), np.float32(2.0**64)]
    assert list(features["b"].bytes_list.value) == [b"\x00\x01", b"\x00"]
    with pytest.raises(ServingError, match="has uint64_t element"):
        parse_examples_body(b'{"examples": [{"u": 18446744073709551615}]}')


# --------------------------------------------------------------------------- warmup


def _warmup(version_dir: pathlib.Path, *logs) -> None:
    path = version_dir / "assets.extra" / "tf_serving_warmup_requests"
    path.parent.mkdir(exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for log in logs:
            writer.write(log.SerializeToString())


def test_warmup_replays_classify_regress_and_multi_inference_records(examples_base, tmp_path):
    # saved_model_warmup.cc RunWarmupRequest: RunClassify, RunRegress, RunMultiInference,
    # which record runtime_latency (classifier.cc, regressor.cc) and the example counts
    # (multi_inference.cc) as the RPCs do.
    version = shutil.copytree(examples_base / "1", tmp_path / "1")
    _warmup(version,
            prediction_log_pb2.PredictionLog(classify_log=prediction_log_pb2.ClassifyLog(
                request=_classification("clf"))),
            prediction_log_pb2.PredictionLog(regress_log=prediction_log_pb2.RegressLog(
                request=_regression("clf", "regress"))),
            prediction_log_pb2.PredictionLog(
                multi_inference_log=prediction_log_pb2.MultiInferenceLog(
                    request=_multi(("clf", "regress", REGRESS)))))
    metrics = ServingMetrics()
    assert Servable(1, version, metrics).warm_up() == 3
    assert [metrics.runtime_latency.cumulative_counts("clf", api, "TF1")[-1]
            for api in ("Classify", "Regress")] == [1, 1]
    assert metrics.request_example_count_total.value("clf") == 1


def test_a_failing_classify_warmup_record_fails_the_load_with_its_error(examples_base, tmp_path):
    # saved_model_warmup_util.cc: TF_RETURN_IF_ERROR on the record's run.
    version = shutil.copytree(examples_base / "1", tmp_path / "1")
    _warmup(version, prediction_log_pb2.PredictionLog(classify_log=prediction_log_pb2.ClassifyLog(
        request=_classification("clf", xs=()))))
    with pytest.raises(ServingError) as info:
        Servable(1, version).warm_up()
    assert (info.value.code, info.value.message) == (INVALID, "Input is empty.")
