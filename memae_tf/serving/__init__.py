"""A TF Serving-compatible development server for exported MemAE models.

It loads SavedModels with `tf.saved_model.load` only (no training code) and
speaks TF Serving's gRPC and REST APIs, so the same client code works against
it and against TF Serving in production.
"""

from memae_tf.serving.errors import ServingError
from memae_tf.serving.model_manager import ModelManager, VersionState
from memae_tf.serving.server import ServingHandle, run_server, serve

__all__ = [
    "ModelManager",
    "ServingError",
    "ServingHandle",
    "VersionState",
    "run_server",
    "serve",
]
