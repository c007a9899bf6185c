"""A TF Serving-compatible development server for exported MemAE models.

It loads SavedModels with `tf.saved_model.load` only (no training code) and
speaks TF Serving's gRPC and REST APIs, so the same client code works against
it and against TF Serving in production. The names below are imported on first
use, so that `memae serve --help` (which imports `memae_tf.serving.cli`) does
not import TensorFlow.
"""

from memae_tf._lazy import lazy_exports

__getattr__, __all__ = lazy_exports(__name__, {
    ".errors": ["ServingError"],
    ".model_manager": ["ModelManager", "VersionState"],
    ".server": ["ServingHandle", "run_server", "serve"],
})
