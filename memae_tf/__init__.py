"""memae-tf: MemAE memory-augmented autoencoders for anomaly detection in Keras.

The top-level names are imported lazily, so that `memae_tf.client` (the gRPC
client) can be imported without loading the training code. Accessing
`memae_tf.MemoryLayer` (or importing `memae_tf.layers`) registers the layer with
Keras' serialization, which `keras.saving.load_model` needs for MemAE files.
"""

from importlib import metadata as _metadata

from memae_tf._lazy import lazy_exports

try:
    __version__ = _metadata.version("memae-tf")
except _metadata.PackageNotFoundError:  # a source tree on sys.path, not installed
    __version__ = "0+unknown"

__getattr__, _names = lazy_exports(__name__, {
    ".choices": ["VARIANTS"],
    ".detector": ["MemAE"],
    ".layers.memory": ["MemoryLayer"],
    ".models.presets": ["PRESETS", "build_autoencoder"],
})
__all__ = [*_names, "__version__"]
