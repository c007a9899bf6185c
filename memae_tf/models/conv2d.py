"""Conv2D MemAE for images."""

from __future__ import annotations

from collections.abc import Sequence

import keras

from memae_tf.layers.memory import ENTROPY_WEIGHT
from memae_tf.models._conv import build_conv_autoencoder
from memae_tf.models.memory_block import builder_variant


def build_conv2d_autoencoder(
    input_shape: Sequence[int] = (28, 28, 1),
    filters: Sequence[int] = (16, 32, 64),
    kernel_sizes=(1, 3, 3),
    strides=2,
    activation: str = "relu",
    batch_norm: bool = True,
    output_activation: str | None = "sigmoid",
    variant: str = "memae",
    num_items: int = 100,
    shrink_threshold: float | None = None,
    entropy_weight: float = ENTROPY_WEIGHT,
    similarity: str = "dot",
    latent: str = "local",
    latent_dim: int = 16,
    name: str = "memae_conv2d",
    memory: str | None = None,
) -> keras.Model:
    """Builds a 2D convolutional (Mem)AE with a mirrored decoder.

    Encoder: `Conv2D(filters[i], kernel_sizes[i], strides[i], 'same') → BN → act`
    per entry of `filters`; the memory bottleneck addresses every spatial position
    of the last feature map; the decoder mirrors the encoder with
    `Conv2DTranspose` layers and restores the input shape exactly.

    Args:
        input_shape: `(H, W, C)` of the images.
        filters: Encoder channel counts, e.g. `(16, 32, 64)` (MNIST preset).
        kernel_sizes: An int, or one int per encoder layer.
        strides: An int, or one int/pair per encoder layer.
        activation: Hidden activation: `"relu"`, `"leaky_relu"` (slope 0.2),
            `"tanh"` or `"elu"`.
        batch_norm: Whether hidden layers use batch normalisation.
        output_activation: Activation of the reconstruction (`"sigmoid"` for
            images in [0, 1], `None` for linear).
        variant: The paper's ablation: `"memae"`, `"memae-nonspar"` or `"ae"`.
        num_items: Memory size N.
        shrink_threshold: λ for `"memae"` (None = 1/N).
        entropy_weight: Entropy loss weight for `"memae"`.
        similarity: `"dot"`, `"cosine"` or `"euclidean"` addressing (see `MemoryLayer`).
        latent: `"local"`: the memory addresses every position of the last
            feature map on its own; `"global"`: the feature map is flattened
            into one `latent_dim` code per sample, addressed as one query.
        latent_dim: Size of the global code (ignored for `"local"`).
        name: Model name.
        memory: Deprecated name of `variant`.

    Input shape:
        `(batch, H, W, C)`.

    Output shape:
        `(batch, H, W, C)`: the reconstruction.

    Example:

    >>> model = build_conv2d_autoencoder((28, 28, 1), variant="memae")
    >>> model.output_shape
    (None, 28, 28, 1)
    """
    return build_conv_autoencoder(
        rank=2, input_shape=input_shape, filters=filters, kernel_sizes=kernel_sizes,
        strides=strides, activation=activation, batch_norm=batch_norm,
        output_activation=output_activation, variant=builder_variant(variant, memory),
        num_items=num_items, shrink_threshold=shrink_threshold,
        entropy_weight=entropy_weight, similarity=similarity, name=name, latent=latent,
        latent_dim=latent_dim,
    )
