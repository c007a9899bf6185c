"""Keras layers of memae_tf."""

from memae_tf.layers.memory import MemoryLayer

__all__ = ["MemoryLayer"]
