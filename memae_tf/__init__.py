"""memae-tf: MemAE memory-augmented autoencoders for anomaly detection in Keras.

The top-level names are imported lazily, so that `memae_tf.client` (the gRPC
client) can be imported without loading the training code. Accessing
`memae_tf.MemoryLayer` (or importing `memae_tf.layers`) registers the layer with
Keras' serialization, which `keras.saving.load_model` needs for MemAE files.
"""

from importlib import import_module
from typing import Any

from memae_tf import _tf_env  # noqa: F401  (must run before TensorFlow is imported)

__version__ = "0.1.0"

_LAZY = {
    "MemAE": "memae_tf.detector",
    "MemoryLayer": "memae_tf.layers.memory",
    "PRESETS": "memae_tf.models.presets",
    "VARIANTS": "memae_tf.models.memory_block",
    "build_autoencoder": "memae_tf.models.presets",
}
__all__ = [*sorted(_LAZY), "__version__"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'memae_tf' has no attribute {name!r}")
