"""gRPC servicers of TF Serving's PredictionService and ModelService."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import grpc
from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

from memae_tf.serving.core import ServingCore
from memae_tf.serving.deadlines import timeout_in_ms
from memae_tf.serving.errors import ServingError
from memae_tf.serving.metrics import ServingMetrics

logger = logging.getLogger(__name__)


def _answer(
    context: grpc.ServicerContext, handler: Callable[..., Any], request: Any, *args: Any
) -> Any:
    """Runs a handler and turns any failure into a gRPC status, never into a crash."""
    try:
        return handler(request, *args)
    except ServingError as error:
        context.abort(error.code, error.message)
    except Exception as error:  # the server must outlive any request
        logger.exception("Request failed unexpectedly.")
        context.abort(grpc.StatusCode.INTERNAL, f"{type(error).__name__}: {error}")


def _counted(context: grpc.ServicerContext, metrics: ServingMetrics, api: str,
             handler: Callable[..., Any], request: Any) -> Any:
    """Runs a Predict, Classify or Regress with its timeout, and counts it as TF Serving does.

    prediction_service_impl.cc: the run timeout is the deadline's time left
    when the call starts; every call is counted by status, the latency of the
    successful ones only.
    """
    started = time.perf_counter()
    try:
        return _answer(context, handler, request, timeout_in_ms(context.time_remaining()))
    finally:
        metrics.record_request(request.model_spec.name, api, "GRPC",
                               context.code() or grpc.StatusCode.OK,
                               (time.perf_counter() - started) * 1e6)


class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
    """`tensorflow.serving.PredictionService`: Predict, Classify, Regress, MultiInference
    and GetModelMetadata.

    Each call's run timeout is the time left until its deadline, as TF Serving
    (`enforce_session_run_timeout`, on by default) sets it. Predict, Classify
    and Regress are counted in the request metrics; MultiInference, as in TF
    Serving, only in the example counts.

    Args:
        core: The shared request handler.
    """

    def __init__(self, core: ServingCore) -> None:
        self.core = core

    def Predict(self, request, context):  # noqa: N802 (gRPC method name)
        return _counted(context, self.core.metrics, "Predict", self.core.predict, request)

    def GetModelMetadata(self, request, context):  # noqa: N802
        return _answer(context, self.core.get_model_metadata, request)

    def Classify(self, request, context):  # noqa: N802
        return _counted(context, self.core.metrics, "Classify", self.core.classify, request)

    def Regress(self, request, context):  # noqa: N802
        return _counted(context, self.core.metrics, "Regress", self.core.regress, request)

    def MultiInference(self, request, context):  # noqa: N802
        return _answer(context, self.core.multi_inference, request,
                       timeout_in_ms(context.time_remaining()))


class ModelServicer(model_service_pb2_grpc.ModelServiceServicer):
    """`tensorflow.serving.ModelService`: GetModelStatus and HandleReloadConfigRequest.

    Args:
        core: The shared request handler.
    """

    def __init__(self, core: ServingCore) -> None:
        self.core = core

    def GetModelStatus(self, request, context):  # noqa: N802
        return _answer(context, self.core.get_model_status, request)

    def HandleReloadConfigRequest(self, request, context):  # noqa: N802
        return _answer(context, self.core.reload_config, request)
