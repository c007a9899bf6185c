"""gRPC client library for MemAE models served by TF Serving (or `memae serve`).

Depends only on grpcio, protobuf and numpy: never on TensorFlow, Keras or the
training code. It speaks TF Serving's wire protocol with the project's own copy
of the messages (`memae_tf/client/proto/tf_serving.proto`) and relies on the
exported signature's contract (input `x`; outputs `score`, `is_anomaly`,
`reconstruction`; `model_info` for the input range, threshold and reference
scores), defined once in `memae_tf.common.contract`. Install it alone with
`pip install ./client` (see client/README.md).
"""

from importlib import import_module
from typing import Any

# Each public name is imported from its module on first use (PEP 562), as
# memae_tf._lazy does for the full package (which this distribution does not
# ship): `memae --help` builds the `memae monitor` parser from
# memae_tf.client.cli without importing gRPC.
_EXPORTS = {
    "memae_tf.client._protocol": ("ModelInfo", "ModelMetadata", "SignatureInfo",
                                  "TensorInfo", "VersionStatus"),
    "memae_tf.client.aio": ("AsyncMemAEClient",),
    "memae_tf.client.batching": ("read_max_batch_size",),
    "memae_tf.client.client": ("MemAEClient",),
    "memae_tf.client.errors": ("DeadlineExceededError", "FailedPreconditionError",
                               "InvalidArgumentError", "MemAEClientError", "NotFoundError",
                               "UnavailableError"),
    "memae_tf.client.monitor": ("MonitorReport", "ScoreMonitor"),
    "memae_tf.client.stream": ("ScoredFrame", "StreamScorer"),
}
_MODULES = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_MODULES)


def __getattr__(name: str) -> Any:
    if name not in _MODULES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(_MODULES[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
