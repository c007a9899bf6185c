"""A TF Serving-compatible development server for exported MemAE models.

It loads SavedModels with `tf.saved_model.load` only (no training code) and
speaks TF Serving's gRPC and REST APIs, so the same client code works against
it and against TF Serving in production. `start_model_server` (`memae
model-server`) takes TF Serving's own flags and configuration files. The names
below are imported on first use, so that `memae serve --help` (which imports
`memae_tf.serving.cli`) does not import TensorFlow.
"""

from memae_tf._lazy import lazy_exports

__getattr__, __all__ = lazy_exports(__name__, {
    ".errors": ["ServingError"],
    ".flags": ["ModelServerOptions", "parse_flags"],
    ".metrics": ["ServingMetrics"],
    ".model_manager": ["ModelManager", "VersionState"],
    ".model_registry": ["ModelRegistry"],
    ".server": ["ServingHandle", "run_server", "serve", "start_model_server"],
})
