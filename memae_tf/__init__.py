"""memae-tf: MemAE memory-augmented autoencoders for anomaly detection in Keras.

The top-level names are imported lazily, so that `memae_tf.client` (the gRPC
client) can be imported without loading the training code. Accessing
`memae_tf.MemoryLayer` (or importing `memae_tf.layers`) registers the layer with
Keras' serialization, which `keras.saving.load_model` needs for MemAE files.

Imported before TensorFlow (and Keras), memae_tf sets `TF_ENABLE_ONEDNN_OPTS=1`
unless the variable is set already: TensorFlow then runs its oneDNN kernels on
every x86 CPU, not only on those with AVX-512 VNNI or newer, as it does by
default. It applies to the whole process, other Keras models included; imported
after TensorFlow, memae_tf changes nothing (set the variable before Python starts),
and the first `MemAE` warns (`memae_tf.detector.OneDNNOffWarning`) if the kernels are off.
"""

import os as _os
import sys as _sys
from importlib import metadata as _metadata

from memae_tf._lazy import lazy_exports

# TensorFlow turns its oneDNN kernels on by default only on CPUs with AVX-512 VNNI,
# BF16 or AMX. On an AVX2-only CPU its Eigen kernels took 1.2x (batch 256) to 1.6x
# (batch 1024) the CPU time of `MemAE.score`, and about 0.9x that of `fit`
# (benchmarks/HISTORY.md, "Speed: scoring under AVX2 kernels"). TensorFlow
# reads the variable when it is imported, so this only takes effect when memae_tf
# is imported first; a value the user set is kept.
if "tensorflow" not in _sys.modules:
    _os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

try:
    __version__ = _metadata.version("memae-tf")
except _metadata.PackageNotFoundError:  # a source tree on sys.path, not installed
    __version__ = "0+unknown"

__getattr__, _names = lazy_exports(__name__, {
    ".choices": ["VARIANTS"],
    ".detector": ["MemAE", "OneDNNOffWarning"],
    ".layers.memory": ["MemoryLayer"],
    ".models.presets": ["PRESETS", "build_autoencoder"],
    ".video_scoring": ["score_video"],
})
__all__ = [*_names, "__version__"]
