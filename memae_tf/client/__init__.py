"""gRPC client library for MemAE models served by TF Serving (or `memae serve`).

Depends only on grpcio, protobuf and numpy: never on TensorFlow, Keras or the
training code. It speaks TF Serving's wire protocol with the project's own copy
of the messages (`memae_tf/client/proto/tf_serving.proto`) and relies on the
exported signature's contract (input `x`; outputs `score`, `is_anomaly`,
`reconstruction`; `model_info` for the input range, threshold and reference
scores), defined once in `memae_tf.common.contract`. Install it alone with
`pip install ./client` (see client/README.md).
"""

from memae_tf.client._protocol import (
    ModelInfo,
    ModelMetadata,
    SignatureInfo,
    TensorInfo,
    VersionStatus,
)
from memae_tf.client.aio import AsyncMemAEClient
from memae_tf.client.batching import read_max_batch_size
from memae_tf.client.client import MemAEClient
from memae_tf.client.errors import (
    DeadlineExceededError,
    FailedPreconditionError,
    InvalidArgumentError,
    MemAEClientError,
    NotFoundError,
    UnavailableError,
)
from memae_tf.client.monitor import MonitorReport, ScoreMonitor

__all__ = [
    "AsyncMemAEClient",
    "DeadlineExceededError",
    "FailedPreconditionError",
    "InvalidArgumentError",
    "MemAEClient",
    "MemAEClientError",
    "ModelInfo",
    "ModelMetadata",
    "MonitorReport",
    "NotFoundError",
    "ScoreMonitor",
    "SignatureInfo",
    "TensorInfo",
    "UnavailableError",
    "VersionStatus",
    "read_max_batch_size",
]
