"""memae-tf: MemAE memory-augmented autoencoders for anomaly detection in Keras."""

from memae_tf.detector import MemAE
from memae_tf.layers import MemoryLayer
from memae_tf.models import PRESETS, VARIANTS, build_autoencoder

__version__ = "0.1.0"
__all__ = ["PRESETS", "VARIANTS", "MemAE", "MemoryLayer", "__version__", "build_autoencoder"]
