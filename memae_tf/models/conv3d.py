"""Conv3D MemAE for video clips (the authors' released network)."""

from __future__ import annotations

from collections.abc import Sequence

import keras

from memae_tf.layers.memory import ENTROPY_WEIGHT
from memae_tf.models._conv import build_conv_autoencoder
from memae_tf.models.memory_block import builder_variant


def build_conv3d_autoencoder(
    input_shape: Sequence[int] = (16, 256, 256, 1),
    filters: Sequence[int] = (96, 128, 256, 256),
    kernel_sizes=3,
    strides=((1, 2, 2), 2, 2, 2),
    activation: str = "leaky_relu",
    batch_norm: bool = True,
    output_activation: str | None = None,
    variant: str = "memae",
    num_items: int = 2000,
    shrink_threshold: float | None = None,
    entropy_weight: float = ENTROPY_WEIGHT,
    similarity: str = "dot",
    latent: str = "local",
    latent_dim: int = 64,
    name: str = "memae_conv3d",
    memory: str | None = None,
) -> keras.Model:
    """Builds a 3D convolutional (Mem)AE over clips of frames.

    The defaults are the authors' video network: Conv3D k3 with 96/128/256/256
    channels and strides (1,2,2)/2/2/2, BN (epsilon 1e-5, momentum 0.9) and
    LeakyReLU(0.2); a 2000-item memory addressing each spatio-temporal position
    of the 256-channel code; a mirrored `Conv3DTranspose` decoder whose last
    layer is linear (clips are scaled to [-1, 1]).

    Args:
        input_shape: `(T, H, W, C)`, 16 grayscale frames of 256×256 by default.
        filters: Encoder channel counts.
        kernel_sizes: An int, a 3-tuple, or one entry per encoder layer.
        strides: An int, a 3-tuple, or one entry per encoder layer.
        activation: Hidden activation (`"leaky_relu"` uses slope 0.2).
        batch_norm: Whether hidden layers use batch normalisation.
        output_activation: Activation of the reconstruction (None = linear).
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
        `(batch, T, H, W, C)`.

    Output shape:
        `(batch, T, H, W, C)`: the reconstruction.

    Example:

    >>> model = build_conv3d_autoencoder((16, 32, 32, 1), filters=(8, 16, 16, 16))
    >>> model.output_shape
    (None, 16, 32, 32, 1)
    """
    return build_conv_autoencoder(
        rank=3, input_shape=input_shape, filters=filters, kernel_sizes=kernel_sizes,
        strides=strides, activation=activation, batch_norm=batch_norm,
        output_activation=output_activation, variant=builder_variant(variant, memory),
        num_items=num_items, shrink_threshold=shrink_threshold,
        entropy_weight=entropy_weight, similarity=similarity, name=name, latent=latent,
        latent_dim=latent_dim,
    )
