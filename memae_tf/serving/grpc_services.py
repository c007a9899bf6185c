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


def _unimplemented(context: grpc.ServicerContext, method: str) -> None:
    context.abort(
        grpc.StatusCode.UNIMPLEMENTED,
        f"{method} is not implemented by the memae_tf development server; MemAE models "
        "expose Predict signatures, use Predict.",
    )


class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
    """`tensorflow.serving.PredictionService`: Predict and GetModelMetadata.

    Classify, Regress and MultiInference answer UNIMPLEMENTED. A Predict's
    run timeout is the time left until the call's deadline, as TF Serving
    (`enforce_session_run_timeout`, on by default) sets it.

    Args:
        core: The shared request handler.
    """

    def __init__(self, core: ServingCore) -> None:
        self.core = core

    def Predict(self, request, context):  # noqa: N802 (gRPC method name)
        started = time.perf_counter()
        try:
            # prediction_service_impl.cc: the deadline's time left when Predict starts.
            return _answer(context, self.core.predict, request,
                           timeout_in_ms(context.time_remaining()))
        finally:
            # As prediction_service_impl.cc: every Predict is counted by status, the
            # latency of the successful ones only.
            self.core.metrics.record_request(
                request.model_spec.name, "Predict", "GRPC",
                context.code() or grpc.StatusCode.OK, (time.perf_counter() - started) * 1e6)

    def GetModelMetadata(self, request, context):  # noqa: N802
        return _answer(context, self.core.get_model_metadata, request)

    def Classify(self, request, context):  # noqa: N802
        _unimplemented(context, "Classify")

    def Regress(self, request, context):  # noqa: N802
        _unimplemented(context, "Regress")

    def MultiInference(self, request, context):  # noqa: N802
        _unimplemented(context, "MultiInference")


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
