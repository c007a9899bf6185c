"""TF Serving's request semantics, in protobuf terms, shared by gRPC and REST."""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Mapping

import numpy as np
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    inference_pb2,
    model_management_pb2,
    model_pb2,
    predict_pb2,
    regression_pb2,
)

from memae_tf.common.checks import check_bool
from memae_tf.common.contract import SERVING_SIGNATURE, SIGNATURE_DEF_FIELD
from memae_tf.serving.batching import BatchingOptions, BatchScheduler
from memae_tf.serving.errors import invalid_argument, not_found
from memae_tf.serving.inference import (
    CLASSIFY,
    REGRESS,
    run_alone,
    run_classify_or_regress,
    run_multi_inference,
)
from memae_tf.serving.metrics import ServingMetrics
from memae_tf.serving.model_manager import ModelManager
from memae_tf.serving.model_registry import ModelRegistry
from memae_tf.serving.proto import BatchingParameters
from memae_tf.serving.servable import Servable
from memae_tf.serving.tensors import encode_tensor
from memae_tf.serving.validation import RequestLimits


class ServingCore:
    """Answers TF Serving's requests (Predict, Classify, Regress, MultiInference,
    GetModelMetadata, GetModelStatus, config reloads) for the models.

    With `batching` (TF Serving's `--enable_batching`), concurrent Predict
    requests of one model version and signature are merged by a
    `BatchScheduler`, and its `max_batch_size` is the request limit (checked on
    the request proto, with TF Serving's message). Call `stop()` once the ports
    are closed.

    Args:
        managers: The served models (a `ModelRegistry`, which follows config
            reloads and resolves version labels).
        limits: Size limits of a request; None means `RequestLimits()`. Its
            `max_batch_size` is taken from `batching` when that is given.
        batching: `BatchingOptions`, or the `BatchingParameters` message of a
            `--batching_parameters_file`; None runs every request on its own.
        metrics: Where to record TF Serving's metrics; None makes a new
            `ServingMetrics` (see `metrics`).
        signature_method_name_check: Whether a Predict refuses a signature
            whose `method_name` is not predict, classify or regress, and a
            Classify, Regress or MultiInference task one whose `method_name`
            is not its own (TF Serving's `--enable_signature_method_name_check`,
            default False).
        tensor_content: Whether a Predict's outputs carry their values as raw
            bytes in `tensor_content` (TF Serving's
            `--enable_serialization_as_tensor_content`) rather than in the
            typed fields (`float_val`, ...), TF Serving's default.

    Raises:
        ValueError: For batching settings TF Serving refuses, or a
            `limits.max_batch_size` other than the batching one.
    """

    def __init__(
        self,
        managers: ModelRegistry,
        limits: RequestLimits | None = None,
        *,
        batching: BatchingOptions | BatchingParameters | None = None,
        metrics: ServingMetrics | None = None,
        signature_method_name_check: bool = False,
        tensor_content: bool = False,
    ) -> None:
        self.signature_method_name_check = check_bool("signature_method_name_check",
                                                      signature_method_name_check)
        self.tensor_content = check_bool("tensor_content", tensor_content)
        self.managers = managers
        self.limits = RequestLimits() if limits is None else limits
        self.metrics = ServingMetrics() if metrics is None else metrics
        self.batching: BatchScheduler | None = None
        if batching is not None:
            options = (batching if isinstance(batching, BatchingOptions)
                       else BatchingOptions.from_proto(batching))
            if self.limits.max_batch_size not in (None, options.max_batch_size):
                raise ValueError(
                    "With batching, the request limit is the batching max_batch_size "
                    f"({options.max_batch_size}); expected limits.max_batch_size None or "
                    f"equal. Received: limits.max_batch_size={self.limits.max_batch_size}"
                )
            self.limits = dataclasses.replace(self.limits, max_batch_size=options.max_batch_size)
            self.batching = BatchScheduler(options, self.metrics)

    def stop(self, timeout: float | None = None) -> None:
        """Runs the batches still queued and stops the batch threads (no-op without batching)."""
        if self.batching is not None:
            self.batching.stop(timeout)

    def _manager(self, spec: model_pb2.ModelSpec) -> ModelManager:
        if not spec.name:
            raise invalid_argument("ModelSpec has no name specified.")
        if spec.name not in self.managers:
            wanted = (f"Specific({spec.name}, {spec.version.value})" if spec.HasField("version")
                      else f"Latest({spec.name})")
            raise not_found(f"Servable not found for request: {wanted}")
        return self.managers[spec.name]

    def servable(self, spec: model_pb2.ModelSpec) -> Servable:
        """Returns the servable a `ModelSpec` names: a version, a label's version or the latest.

        As `ServerCore::ServableRequestFromModelSpec` (model_servers/server_core.cc):
        an unknown label is INVALID_ARGUMENT, a version not loaded NOT_FOUND.
        """
        manager = self._manager(spec)
        choice = spec.WhichOneof("version_choice")
        if choice == "version_label":
            return manager.servable(self.managers.version_for_label(spec.name,
                                                                    spec.version_label))
        return manager.servable(spec.version.value if choice == "version" else None)

    def signature_inputs(
        self, spec: model_pb2.ModelSpec, signature_name: str
    ) -> Mapping[str, meta_graph_pb2.TensorInfo]:
        """Returns the inputs of a signature, as the REST API looks them up to read JSON values.

        As http_rest_api_handler.cc `GetInfoMap`: the model and version as for
        any request, then the signature (empty: `serving_default`).

        Raises:
            ServingError: NOT_FOUND for an unknown model or version;
                INVALID_ARGUMENT `Serving signature name: "<name>" not found in
                signature def` for an unknown signature.
        """
        name = signature_name or SERVING_SIGNATURE
        signature = self.servable(spec).signature_defs.get(name)
        if signature is None:
            raise invalid_argument(f'Serving signature name: "{name}" not found in signature def')
        return signature.inputs

    def execute(
        self, servable: Servable, signature_name: str, inputs: Mapping[str, np.ndarray],
        timeout_in_ms: int = 0,
    ) -> dict[str, np.ndarray]:
        """Runs a signature on checked inputs, batched with others when batching is on.

        TF Serving's batching session wraps every session run whose feeds and
        fetches are those of one signature, whatever the API: with `batching`
        the run waits in the queue of its servable version and signature, else
        it runs alone.

        Args:
            servable: The version.
            signature_name: The signature.
            inputs: Input name → array, already checked against the signature.
            timeout_in_ms: The run's timeout (see `predict`).

        Returns:
            Output name → array, every output of the signature.
        """
        if self.batching is None:
            return run_alone(servable, signature_name, inputs, timeout_in_ms)
        return self.batching.submit((servable, signature_name),
                                    functools.partial(servable.run, signature_name), inputs,
                                    timeout_in_ms)

    def predict(
        self, request: predict_pb2.PredictRequest, timeout_in_ms: int = 0, *,
        tensor_content: bool | None = None,
    ) -> predict_pb2.PredictResponse:
        """Runs a `PredictRequest` (TF Serving's PredictionService.Predict).

        Args:
            request: The request.
            timeout_in_ms: TF Serving's `RunOptions.timeout_in_ms` for this
                request (the gRPC deadline's time left, or REST's
                `--rest_api_timeout_in_ms`); 0 or less for none. It bounds the
                wait in the batching queue and the signature's run (see
                `memae_tf.serving.deadlines`).
            tensor_content: How the outputs are serialized; None for the
                server's setting (the constructor's `tensor_content`). The REST
                handler, which turns them into JSON at once, asks for the raw
                bytes, the cheaper of the two.

        Raises:
            ServingError: With TF Serving's status and message.
        """
        if not request.HasField("model_spec"):
            raise invalid_argument("Missing ModelSpec")
        servable = self.servable(request.model_spec)
        signature_name = request.model_spec.signature_name or SERVING_SIGNATURE
        inputs = servable.decode_inputs(signature_name, request.inputs, self.limits,
                                        method_name_check=self.signature_method_name_check)
        aliases = servable.check_request(signature_name, inputs, list(request.output_filter))
        started = time.perf_counter()
        outputs = self.execute(servable, signature_name, inputs, timeout_in_ms)
        # predict_util.cc records the session run, which includes the batching queue.
        self.metrics.record_runtime(request.model_spec.name, "Predict",
                                    (time.perf_counter() - started) * 1e6)
        response = predict_pb2.PredictResponse()
        response.model_spec.name = request.model_spec.name
        response.model_spec.version.value = servable.version
        response.model_spec.signature_name = signature_name
        for alias in aliases:
            response.outputs[alias].CopyFrom(encode_tensor(
                outputs[alias], self.tensor_content if tensor_content is None else tensor_content))
        return response

    def classify(
        self, request: classification_pb2.ClassificationRequest, timeout_in_ms: int = 0
    ) -> classification_pb2.ClassificationResponse:
        """Runs a `ClassificationRequest` (PredictionService.Classify).

        As classification_service.cc: the model spec, then the version, then
        the signature and the examples (see `memae_tf.serving.inference`). The
        run is batched as a Predict on the same signature (`execute`).

        Args:
            request: The request.
            timeout_in_ms: The run's timeout, as for `predict`.

        Raises:
            ServingError: With TF Serving's status and message.
        """
        return self._run_examples(CLASSIFY, request, timeout_in_ms)

    def regress(
        self, request: regression_pb2.RegressionRequest, timeout_in_ms: int = 0
    ) -> regression_pb2.RegressionResponse:
        """Runs a `RegressionRequest` (PredictionService.Regress), as `classify` does."""
        return self._run_examples(REGRESS, request, timeout_in_ms)

    def _run_examples(self, method, request, timeout_in_ms):
        if not request.HasField("model_spec"):
            raise invalid_argument("Missing ModelSpec")
        servable = self.servable(request.model_spec)
        return run_classify_or_regress(
            method, servable, request, method_name_check=self.signature_method_name_check,
            timeout_in_ms=timeout_in_ms, version=servable.version, metrics=self.metrics,
            execute=self.execute)

    def multi_inference(
        self, request: inference_pb2.MultiInferenceRequest, timeout_in_ms: int = 0
    ) -> inference_pb2.MultiInferenceResponse:
        """Runs a `MultiInferenceRequest` (PredictionService.MultiInference).

        As multi_inference_helper.cc: the version is the one the first task's
        model spec names (a request without tasks names no model), then every
        task is checked (see `memae_tf.serving.inference`). A request of one
        task is batched as Classify and Regress are; one of several tasks runs
        alone, as TF Serving's batching session runs feeds and fetches that are
        no one signature's.

        Args:
            request: The request.
            timeout_in_ms: The run's timeout, as for `predict`.

        Raises:
            ServingError: With TF Serving's status and message.
        """
        tasks = request.tasks
        spec = (tasks[0].model_spec if tasks and tasks[0].HasField("model_spec")
                else model_pb2.ModelSpec())
        servable = self.servable(spec)
        return run_multi_inference(
            servable, request, method_name_check=self.signature_method_name_check,
            timeout_in_ms=timeout_in_ms, version=servable.version, metrics=self.metrics,
            execute=self.execute)

    def get_model_metadata(
        self, request: get_model_metadata_pb2.GetModelMetadataRequest
    ) -> get_model_metadata_pb2.GetModelMetadataResponse:
        """Returns the signature definitions of a version (PredictionService.GetModelMetadata)."""
        if not request.HasField("model_spec"):
            raise invalid_argument("Missing ModelSpec")
        if not request.metadata_field:
            raise invalid_argument(
                "GetModelMetadataRequest must specify at least one metadata_field; expected "
                f"[{SIGNATURE_DEF_FIELD!r}]."
            )
        for field in request.metadata_field:
            if field != SIGNATURE_DEF_FIELD:
                raise invalid_argument(
                    f"Metadata field {field} is not supported; expected {SIGNATURE_DEF_FIELD!r}."
                )
        servable = self.servable(request.model_spec)
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        for name, signature in servable.signature_defs.items():
            signature_map.signature_def[name].CopyFrom(signature)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = request.model_spec.name
        response.model_spec.version.value = servable.version
        response.metadata[SIGNATURE_DEF_FIELD].Pack(signature_map)
        return response

    def get_model_status(
        self, request: get_model_status_pb2.GetModelStatusRequest
    ) -> get_model_status_pb2.GetModelStatusResponse:
        """Returns the state of each version seen (ModelService.GetModelStatus)."""
        if not request.HasField("model_spec"):
            raise invalid_argument("Missing ModelSpec")
        spec = request.model_spec
        version = spec.version.value if spec.HasField("version") else None
        states = self.managers.version_states(spec.name, version)
        response = get_model_status_pb2.GetModelStatusResponse()
        for number, state in states.items():
            status = response.model_version_status.add(version=number, state=state.state)
            status.status.error_code = state.error_code.value[0]
            status.status.error_message = state.error_message
        return response

    def reload_config(
        self, request: model_management_pb2.ReloadConfigRequest
    ) -> model_management_pb2.ReloadConfigResponse:
        """Serves a new `ModelServerConfig` (ModelService.HandleReloadConfigRequest).

        As model_servers/model_service_impl.cc: only a `model_config_list` is
        accepted; the response's status carries the outcome, and a failure is
        also raised with its code. No metrics are reported (`metric_names` is
        not read).

        Raises:
            ServingError: The reload's error (see `ModelRegistry.reload_config`).
        """
        if request.config.WhichOneof("config") != "model_config_list":
            raise invalid_argument(
                "ServerModelConfig type not supported by HandleReloadConfigRequest. Only "
                "ModelConfigList is currently supported"
            )
        self.managers.reload_config(request.config)
        return model_management_pb2.ReloadConfigResponse()
