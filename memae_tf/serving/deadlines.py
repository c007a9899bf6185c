"""Request timeouts as TF Serving passes them to a session run (`RunOptions.timeout_in_ms`).

TF Serving gives every Predict a timeout in milliseconds, 0 meaning none:

- on gRPC, the time left until the call's deadline when Predict starts
  (model_servers/prediction_service_impl.cc with `enforce_session_run_timeout`,
  true by default in server.h; prediction_service_util.cc
  `DeadlineToTimeoutMillis`);
- on REST, `--rest_api_timeout_in_ms` (default 30000; http_rest_api_handler.cc
  sets it when it is positive).

The timeout then bounds two waits: the time a request spends in the batching
queue (batching_session.cc, `QUEUE_TIMEOUT_MESSAGE`) and the session run
itself (TensorFlow's direct_session.cc, `RUN_TIMEOUT_MESSAGE`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import TypeVar

import grpc

from memae_tf.serving.errors import ServingError

# batching_session.cc ProcessBatch: every task of a batch waited past its timeout.
QUEUE_TIMEOUT_MESSAGE = "Run() timeout exceeded while waiting in batching queue"
# direct_session.cc WaitForNotification: the session run took longer than its timeout.
RUN_TIMEOUT_MESSAGE = "Timed out waiting for notification"

Outputs = TypeVar("Outputs")


def timeout_in_ms(time_remaining: float | None) -> int:
    """Returns the run timeout of a gRPC call with `time_remaining` seconds left (0: none).

    As `DeadlineToTimeoutMillis`: the time left, truncated to milliseconds. A
    call without a deadline gets 0, which every user of the timeout reads as
    "no timeout", as TensorFlow reads a non-positive `timeout_in_ms`.

    Args:
        time_remaining: `grpc.ServicerContext.time_remaining()`: seconds, or
            None for a call without a deadline.

    Example:

    >>> timeout_in_ms(0.2509), timeout_in_ms(None)
    (250, 0)
    """
    if time_remaining is None:
        return 0
    return max(int(time_remaining * 1000), 0)


def run_with_timeout(
    run: Callable[[Mapping], Outputs], inputs: Mapping, timeout_in_ms: int
) -> Outputs:
    """Runs a signature as a session run with `RunOptions.timeout_in_ms` does.

    A run that takes longer than a positive `timeout_in_ms` fails with
    DEADLINE_EXCEEDED and TensorFlow's message (direct_session.cc
    `WaitForNotification`); 0 or less means no timeout. TensorFlow cancels the
    step at the timeout and answers once its running kernels have stopped; a
    `tf.function` call cannot be cancelled from Python, so here the run goes to
    its end and its outputs are dropped: the status is TensorFlow's, the answer
    comes when the run ends.

    Args:
        run: The signature call, on merged inputs.
        inputs: Its inputs.
        timeout_in_ms: The run's timeout in milliseconds; <= 0 for none.

    Returns:
        The outputs of `run`.

    Raises:
        ServingError: DEADLINE_EXCEEDED when the run took longer than the timeout.
    """
    started = time.monotonic()
    outputs = run(inputs)
    if timeout_in_ms > 0 and time.monotonic() - started > timeout_in_ms / 1000:
        raise ServingError(grpc.StatusCode.DEADLINE_EXCEEDED, RUN_TIMEOUT_MESSAGE)
    return outputs
