"""Keras layers of memae_tf."""

from memae_tf.layers.feature_scaler import SCALINGS, FeatureScaler
from memae_tf.layers.memory import MemoryLayer

__all__ = ["SCALINGS", "FeatureScaler", "MemoryLayer"]
