"""Functional-API MemAE / AE builders and named presets."""

from memae_tf.models.conv2d import build_conv2d_autoencoder
from memae_tf.models.conv3d import build_conv3d_autoencoder
from memae_tf.models.dense import build_dense_autoencoder
from memae_tf.models.memory_block import (
    MEMORY_INITS,
    VARIANTS,
    adapt_memory,
    encode_queries,
    find_memory_layer,
    make_decoder,
    make_encoder,
)
from memae_tf.models.presets import PRESETS, Preset, build_autoencoder, get_preset

__all__ = [
    "MEMORY_INITS",
    "PRESETS",
    "VARIANTS",
    "Preset",
    "adapt_memory",
    "build_autoencoder",
    "build_conv2d_autoencoder",
    "build_conv3d_autoencoder",
    "build_dense_autoencoder",
    "encode_queries",
    "find_memory_layer",
    "get_preset",
    "make_decoder",
    "make_encoder",
]
