"""TF Serving's Classify, Regress and MultiInference, over serialized `tf.Example`s.

A request carries `tf.Example`s (`tensorflow.serving.Input`); the signature
takes them as one string tensor, `inputs`, and answers with `classes` and/or
`scores` (classification) or `outputs` (regression). The checks, their order,
status codes and messages are TF Serving's:

- servables/tensorflow/classifier.cc and regressor.cc
  (`GetClassificationSignatureDef`, `PreProcessClassification`,
  `PostProcessClassificationResult`, `RunClassify`, and their regression
  twins): the signature is looked up by name (`serving_default` when the
  request names none), then its shape is checked (or, with
  `--enable_signature_method_name_check`, its `method_name` first), and only
  then the examples;
- servables/tensorflow/util.cc (`InputToSerializedExampleTensor`,
  `MakeModelSpec`): an input without examples is "Input is empty.", and the
  examples of `example_list_with_context` are each the context's bytes
  followed by the example's (so the example's features win);
- servables/tensorflow/multi_inference.cc (`TensorFlowMultiInferenceRunner`):
  every task names the same model and a different signature, each checked as
  above, then one run feeds the examples to every task's input.

A MemAE export has only predict-style signatures (input `x`, outputs such as
`score`), so against it every one of these requests fails at the signature
check with TF Serving's message, as it would on TF Serving. A SavedModel with a
real classification or regression signature is served. The signature messages
quote the `SignatureDef` in protobuf text format (C++'s `DebugString`, which
newer protobuf releases may space differently).
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

import grpc
import numpy as np
import tensorflow as tf
from google.protobuf import text_format
from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    inference_pb2,
    input_pb2,
    model_pb2,
    regression_pb2,
)

from memae_tf.common.contract import SERVING_SIGNATURE
from memae_tf.serving.deadlines import run_with_timeout
from memae_tf.serving.errors import ServingError, invalid_argument

if TYPE_CHECKING:
    from memae_tf.serving.metrics import ServingMetrics
    from memae_tf.serving.servable import Servable

# tensorflow/cc/saved_model/signature_constants.h.
CLASSIFY_METHOD_NAME = "tensorflow/serving/classify"
REGRESS_METHOD_NAME = "tensorflow/serving/regress"
EXAMPLES_INPUT = "inputs"  # kClassifyInputs, kRegressInputs
CLASSES_OUTPUT = "classes"
SCORES_OUTPUT = "scores"
REGRESSION_OUTPUT = "outputs"
# TensorFlow's DataTypeString where it differs from the dtype's Python name.
_DATA_TYPE_STRINGS = {types_pb2.DT_FLOAT: "float", types_pb2.DT_DOUBLE: "double",
                      types_pb2.DT_HALF: "half"}

Signatures = Mapping[str, meta_graph_pb2.SignatureDef]
# Output tensor name (TensorInfo.name) → value, as a session run fetches them.
Fetched = Mapping[str, np.ndarray]


def _debug_string(signature: meta_graph_pb2.SignatureDef) -> str:
    return text_format.MessageToString(signature)


def _data_type_string(dtype: int) -> str:
    return _DATA_TYPE_STRINGS.get(dtype) or tf.dtypes.as_dtype(dtype).name


def _data_type_name(array: np.ndarray) -> str:
    return types_pb2.DataType.Name(tf.dtypes.as_dtype(array.dtype).as_datatype_enum)


def _shape_string(array: np.ndarray) -> str:
    return f"[{','.join(str(size) for size in array.shape)}]"  # TensorShape::DebugString


def _check_method_name(
    signature: meta_graph_pb2.SignatureDef, noun: str, method_name: str, check: bool
) -> None:
    if check and signature.method_name != method_name:
        raise invalid_argument(
            f"Expected {noun} signature method_name to be {method_name}. "
            f"Was: {signature.method_name}")


def check_classification_signature(
    signature: meta_graph_pb2.SignatureDef, method_name_check: bool = False
) -> None:
    """Checks a classification signature as TF Serving's `PreProcessClassification`.

    Args:
        signature: The signature.
        method_name_check: TF Serving's `--enable_signature_method_name_check`.

    Raises:
        ServingError: INVALID_ARGUMENT with TF Serving's message.
    """
    _check_method_name(signature, "classification", CLASSIFY_METHOD_NAME, method_name_check)
    if len(signature.inputs) != 1:
        raise invalid_argument("Expected one input Tensor.")
    if len(signature.outputs) not in (1, 2):
        raise invalid_argument(
            f"Expected one or two output Tensors, found {len(signature.outputs)}")
    if EXAMPLES_INPUT not in signature.inputs:
        raise invalid_argument(
            f"No classification inputs found in SignatureDef: {_debug_string(signature)}")
    if CLASSES_OUTPUT not in signature.outputs and SCORES_OUTPUT not in signature.outputs:
        raise invalid_argument(
            "Expected classification signature outputs to contain at least one of "
            f'"{CLASSES_OUTPUT}" or "{SCORES_OUTPUT}". Signature was: '
            f"{_debug_string(signature)}")


def check_regression_signature(
    signature: meta_graph_pb2.SignatureDef, method_name_check: bool = False
) -> None:
    """Checks a regression signature as TF Serving's `PreProcessRegression`.

    Args:
        signature: The signature.
        method_name_check: TF Serving's `--enable_signature_method_name_check`.

    Raises:
        ServingError: INVALID_ARGUMENT with TF Serving's message.
    """
    _check_method_name(signature, "regression", REGRESS_METHOD_NAME, method_name_check)
    if len(signature.inputs) != 1:
        raise invalid_argument("Expected one input Tensor.")
    if len(signature.outputs) != 1:
        raise invalid_argument("Expected one output Tensor.")
    if EXAMPLES_INPUT not in signature.inputs:
        raise invalid_argument(
            f"No regression inputs found in SignatureDef: {_debug_string(signature)}")
    if REGRESSION_OUTPUT not in signature.outputs:
        raise invalid_argument(
            f"No regression outputs found in SignatureDef: {_debug_string(signature)}")


def _check_scores_or_classes(
    key: str, dtype_name: str, array: np.ndarray | None, num_examples: int
) -> None:
    if array is None:
        return
    if array.ndim != 2:
        raise invalid_argument("Expected Tensor shape: [batch_size num_classes] but got "
                               f"{_shape_string(array)}")
    if _data_type_name(array) != dtype_name:
        raise invalid_argument(
            f"Expected {key} Tensor of {dtype_name}. Got: {_data_type_name(array)}")
    if array.shape[0] != num_examples:
        raise invalid_argument(f"Expected {key} output batch size of {num_examples}. "
                               f"Got: {array.shape[0]}")


def classification_result(
    signature: meta_graph_pb2.SignatureDef, num_examples: int, fetched: Fetched
) -> classification_pb2.ClassificationResult:
    """Builds a `ClassificationResult` as TF Serving's `PostProcessClassificationResult`.

    Args:
        signature: The classification signature.
        num_examples: The number of examples run.
        fetched: Output tensor name → value.

    Raises:
        ServingError: INVALID_ARGUMENT for outputs of the wrong rank, dtype or
            batch size, with TF Serving's messages.
    """
    arrays = {key: fetched.get(signature.outputs[key].name)
              for key in (CLASSES_OUTPUT, SCORES_OUTPUT) if key in signature.outputs}
    classes, scores = arrays.get(CLASSES_OUTPUT), arrays.get(SCORES_OUTPUT)
    _check_scores_or_classes(CLASSES_OUTPUT, "DT_STRING", classes, num_examples)
    _check_scores_or_classes(SCORES_OUTPUT, "DT_FLOAT", scores, num_examples)
    if classes is not None and scores is not None and classes.shape[1] != scores.shape[1]:
        raise invalid_argument("Tensors class and score should match in dim_size(1). Got "
                               f"{classes.shape[1]} vs. {scores.shape[1]}")
    num_classes = next((a.shape[1] for a in (classes, scores) if a is not None), 0)
    result = classification_pb2.ClassificationResult()
    for row in range(num_examples):
        classifications = result.classifications.add()
        for column in range(num_classes):
            entry = classifications.classes.add()
            if classes is not None:
                entry.label = bytes(classes[row, column]).decode("utf-8", "replace")
            if scores is not None:
                entry.score = float(scores[row, column])
    return result


def regression_result(
    signature: meta_graph_pb2.SignatureDef, num_examples: int, fetched: Fetched
) -> regression_pb2.RegressionResult:
    """Builds a `RegressionResult` as TF Serving's `PostProcessRegressionResult`.

    Args:
        signature: The regression signature.
        num_examples: The number of examples run.
        fetched: Output tensor name → value.

    Raises:
        ServingError: INVALID_ARGUMENT for an output of the wrong shape, batch
            size or dtype, with TF Serving's messages.
    """
    output = fetched[signature.outputs[REGRESSION_OUTPUT].name]
    if not (output.ndim == 1 or (output.ndim == 2 and output.shape[1] == 1)):
        raise invalid_argument("Expected output Tensor shape to be either [batch_size] or "
                               f"[batch_size, 1] but got {_shape_string(output)}")
    if output.shape[0] != num_examples:
        raise invalid_argument("Input batch size did not match output batch size: "
                               f"{num_examples} vs. {output.shape[0]}")
    if _data_type_name(output) != "DT_FLOAT":
        raise invalid_argument(
            f"Expected output Tensor of DT_FLOAT.  Got: {_data_type_name(output)}")
    result = regression_pb2.RegressionResult()
    for value in output.reshape(-1):
        result.regressions.add(value=float(value))
    return result


@dataclasses.dataclass(frozen=True)
class ExampleMethod:
    """One of TF Serving's two `tf.Example` methods (`CLASSIFY`, `REGRESS`): names and checks.

    Attributes:
        api: The API label of its metrics (`"Classify"`, `"Regress"`).
        method_name: The `method_name` of its signatures.
        check: Checks a signature (TF Serving's `PreProcessClassification` or
            `PreProcessRegression`).
        result: Builds the result from the fetched outputs.
        response: The response message of its RPC.
        result_field: The field of a MultiInference result that holds its result.
    """

    api: str
    method_name: str
    check: Callable[[meta_graph_pb2.SignatureDef, bool], None]
    result: Callable[[meta_graph_pb2.SignatureDef, int, Fetched], object]
    response: type
    result_field: str


CLASSIFY = ExampleMethod("Classify", CLASSIFY_METHOD_NAME,
                         check_classification_signature, classification_result,
                         classification_pb2.ClassificationResponse, "classification_result")
REGRESS = ExampleMethod("Regress", REGRESS_METHOD_NAME,
                        check_regression_signature, regression_result,
                        regression_pb2.RegressionResponse, "regression_result")


def serialized_examples(request_input: input_pb2.Input) -> np.ndarray:
    """Returns the request's examples as TF Serving feeds them: a vector of serialized protos.

    As util.cc `InputToSerializedExampleTensor`: with `example_list_with_context`,
    each entry is the context's bytes followed by the example's, which parse as
    one `tf.Example` whose own features override the context's.

    Raises:
        ServingError: INVALID_ARGUMENT "Input is empty." without examples.
    """
    kind = request_input.WhichOneof("kind")
    if kind == "example_list":
        examples = [example.SerializeToString()
                    for example in request_input.example_list.examples]
    elif kind == "example_list_with_context":
        listed = request_input.example_list_with_context
        context = listed.context.SerializeToString()
        examples = [context + example.SerializeToString() for example in listed.examples]
    else:
        examples = []
    if not examples:
        raise invalid_argument("Input is empty.")
    return np.array(examples, dtype=object)


# Runs one signature on checked inputs within a timeout (`ServingCore.execute`).
Execute = Callable[["Servable", str, Mapping[str, np.ndarray], int], Mapping[str, np.ndarray]]


def run_alone(
    servable: Servable, signature_name: str, inputs: Mapping[str, np.ndarray],
    timeout_in_ms: int = 0,
) -> dict[str, np.ndarray]:
    """Runs one signature unbatched, within `timeout_in_ms` (the default `Execute`)."""
    return run_with_timeout(functools.partial(servable.run, signature_name), inputs,
                            timeout_in_ms)


def _run_examples(
    servable: Servable, signature_names: Sequence[str], examples: np.ndarray,
    timeout_in_ms: int, execute: Execute,
) -> dict[str, np.ndarray]:
    """Feeds the examples to each signature's `inputs`; returns outputs by tensor name.

    The one session run of TF Serving (`PerformOneShotTensorComputation`),
    here one call per signature; a run of one signature goes through
    `execute` (batched, if the server batches), one of several runs alone. A
    session refuses a string feed to an input of another dtype with the
    message of TensorFlow's `FunctionCallFrame::SetArgs`.
    """
    infos = [servable.signature_defs[name].inputs[EXAMPLES_INPUT] for name in signature_names]
    feeds = sorted({info.name for info in infos})
    for info in infos:
        if info.dtype != types_pb2.DT_STRING:
            raise invalid_argument(
                f"Expects arg[{feeds.index(info.name)}] to be {_data_type_string(info.dtype)} "
                "but string is provided")

    def by_tensor_name(name: str, outputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        signature = servable.signature_defs[name]
        return {signature.outputs[alias].name: value for alias, value in outputs.items()}

    inputs = {EXAMPLES_INPUT: examples}
    if len(signature_names) == 1:
        name, = signature_names
        return by_tensor_name(name, execute(servable, name, inputs, timeout_in_ms))

    def run(inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        fetched = {}
        for name in signature_names:
            fetched.update(by_tensor_name(name, servable.run(name, inputs)))
        return fetched

    return run_with_timeout(run, inputs, timeout_in_ms)


def _model_spec(
    name: str, signature_name: str, version: int | None
) -> model_pb2.ModelSpec:
    """util.cc `MakeModelSpec`: the signature name defaults to serving_default."""
    spec = model_pb2.ModelSpec(name=name, signature_name=signature_name or SERVING_SIGNATURE)
    if version is not None:
        spec.version.value = version
    return spec


def run_classify_or_regress(
    method: ExampleMethod,
    servable: Servable,
    request: classification_pb2.ClassificationRequest | regression_pb2.RegressionRequest,
    *,
    method_name_check: bool = False,
    timeout_in_ms: int = 0,
    version: int | None = None,
    metrics: ServingMetrics | None = None,
    execute: Execute = run_alone,
) -> classification_pb2.ClassificationResponse | regression_pb2.RegressionResponse:
    """Runs a Classify or Regress request on a servable (TF Serving's `RunClassify`, `RunRegress`).

    Args:
        method: `CLASSIFY` or `REGRESS`.
        servable: The loaded version.
        request: A `ClassificationRequest` or `RegressionRequest`.
        method_name_check: TF Serving's `--enable_signature_method_name_check`.
        timeout_in_ms: The run's timeout; 0 or less for none.
        version: The version to answer in the response's model spec; None
            leaves it out, as a warmup run does.
        metrics: Where to record the run's time (`runtime_latency`, API
            `Classify` or `Regress`); None records nothing.
        execute: How the signature runs (`ServingCore.execute` batches it
            when the server batches); by default alone.

    Returns:
        The `ClassificationResponse` or `RegressionResponse`.

    Raises:
        ServingError: With TF Serving's code and message.
    """
    spec = request.model_spec
    name = spec.signature_name or SERVING_SIGNATURE
    if name not in servable.signature_defs:
        raise invalid_argument(f"No signature was found with the name: {name}")
    signature = servable.signature_defs[name]
    method.check(signature, method_name_check)
    examples = serialized_examples(request.input)
    started = time.perf_counter()
    fetched = _run_examples(servable, [name], examples, timeout_in_ms, execute)
    if metrics is not None:
        metrics.record_runtime(spec.name, method.api, (time.perf_counter() - started) * 1e6)
    response = method.response(model_spec=_model_spec(spec.name, spec.signature_name, version))
    response.result.CopyFrom(method.result(signature, len(examples), fetched))
    return response


def run_multi_inference(
    servable: Servable,
    request: inference_pb2.MultiInferenceRequest,
    *,
    method_name_check: bool = False,
    timeout_in_ms: int = 0,
    version: int | None = None,
    metrics: ServingMetrics | None = None,
    execute: Execute = run_alone,
) -> inference_pb2.MultiInferenceResponse:
    """Runs a MultiInference request on a servable (TF Serving's `RunMultiInference`).

    Args:
        servable: The loaded version.
        request: The request; its tasks each name a signature and a method
            (`tensorflow/serving/classify` or `tensorflow/serving/regress`).
        method_name_check: TF Serving's `--enable_signature_method_name_check`.
        timeout_in_ms: The run's timeout; 0 or less for none.
        version: The version to answer in each result's model spec; None
            leaves it out, as a warmup run does.
        metrics: Where to count the examples (`request_example_counts`,
            `request_example_count_total`); None records nothing.
        execute: How a request of one task runs (see
            `run_classify_or_regress`); one of several tasks runs alone.

    Raises:
        ServingError: With TF Serving's code and message: INVALID_ARGUMENT for
            tasks of several models, a signature named twice or not found, or
            a signature unfit for its method; UNIMPLEMENTED for another method.
    """
    model_name = ""
    tasks: list[tuple[ExampleMethod, str, meta_graph_pb2.SignatureDef]] = []
    methods = {method.method_name: method for method in (CLASSIFY, REGRESS)}
    for task in request.tasks:
        if not task.model_spec.name:
            raise invalid_argument("Found ModelSpec with an empty model name.")
        if model_name and task.model_spec.name != model_name:
            raise invalid_argument(
                "All ModelSpecs in a MultiInferenceRequest must access the same model name.")
        model_name = task.model_spec.name
        name = task.model_spec.signature_name or SERVING_SIGNATURE
        if name in (seen for _, seen, _ in tasks):
            raise invalid_argument(f"Duplicate evaluation of signature: {name}")
        if name not in servable.signature_defs:
            raise invalid_argument(f"Requested signature not found in model graph: {name}")
        if task.method_name not in methods:
            raise ServingError(grpc.StatusCode.UNIMPLEMENTED,
                               f"Unsupported signature method_name: {task.method_name}")
        method = methods[task.method_name]
        method.check(servable.signature_defs[name], method_name_check)
        tasks.append((method, name, servable.signature_defs[name]))
    examples = serialized_examples(request.input)
    fetched = _run_examples(servable, [name for _, name, _ in tasks], examples,
                           timeout_in_ms, execute)
    if metrics is not None:
        metrics.record_examples(model_name, len(examples))
    response = inference_pb2.MultiInferenceResponse()
    for task, (method, _, signature) in zip(request.tasks, tasks, strict=True):
        result = response.results.add()
        getattr(result, method.result_field).CopyFrom(
            method.result(signature, len(examples), fetched))
        result.model_spec.CopyFrom(_model_spec(task.model_spec.name,
                                               task.model_spec.signature_name, version))
    return response
