"""gRPC client library for MemAE models served by TF Serving (or `memae serve`).

Depends only on grpcio, numpy and the `tensorflow-serving-api` protos, never on
the training code: it relies on the exported signature's contract (input `x`;
outputs `score`, `is_anomaly`, `reconstruction`).
"""

from memae_tf.client._protocol import ModelMetadata, SignatureInfo, TensorInfo, VersionStatus
from memae_tf.client.aio import AsyncMemAEClient
from memae_tf.client.client import MemAEClient
from memae_tf.client.errors import (
    DeadlineExceededError,
    FailedPreconditionError,
    InvalidArgumentError,
    MemAEClientError,
    NotFoundError,
    UnavailableError,
)

__all__ = [
    "AsyncMemAEClient",
    "DeadlineExceededError",
    "FailedPreconditionError",
    "InvalidArgumentError",
    "MemAEClient",
    "MemAEClientError",
    "ModelMetadata",
    "NotFoundError",
    "SignatureInfo",
    "TensorInfo",
    "UnavailableError",
    "VersionStatus",
]
