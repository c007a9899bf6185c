"""Shared builder for the mirrored convolutional autoencoders (2D images, 3D clips)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import keras

from memae_tf.common.checks import check_choice, check_positive_int
from memae_tf.models.activations import activation_layer
from memae_tf.models.memory_block import memory_bottleneck

_BN_EPSILON = 1e-5
_BN_MOMENTUM = 0.9
# Where the memory reads the encoding: every spatial position on its own, or
# the whole feature map flattened into one code vector (the paper's Figure 2).
LATENTS = ("local", "global")


def _per_layer(value, count: int, rank: int, what: str) -> list[tuple[int, ...]]:
    """Expands an int, one entry per layer, or a rank-tuple into `count` rank-tuples.

    A sequence with one entry per layer wins over a rank-tuple shared by all
    layers when both readings fit (as many layers as spatial dimensions).
    """
    if isinstance(value, int):
        return [(value,) * rank] * count
    values = list(value)
    if len(values) != count and len(values) == rank and all(isinstance(v, int) for v in values):
        return [tuple(values)] * count
    if len(values) != count:
        raise ValueError(
            f"`{what}` must be an int, a {rank}-tuple, or one entry per encoder layer "
            f"({count}). Received: {what}={value!r}"
        )
    return [(v,) * rank if isinstance(v, int) else tuple(v) for v in values]


def _decoder_kernel(kernel: tuple[int, ...], stride: tuple[int, ...]) -> tuple[int, ...]:
    """Kernel of the transposed conv mirroring an encoder conv.

    A transposed conv whose kernel is smaller than its stride (the MNIST preset's
    1×1, stride-2 first layer) would leave most output pixels untouched (bias
    only), and oneDNN's CPU kernel for that case corrupts memory in TF 2.21. Such
    kernels are widened to the smallest odd size covering the stride.
    """
    return tuple(k if k >= s else s + 1 - s % 2 for k, s in zip(kernel, stride, strict=True))


def _output_padding(target: int, size: int, kernel: int, stride: int) -> int:
    """Output padding that makes a 'same' transposed conv of `size` produce `target`."""
    return target - ((size - 1) * stride + kernel - 2 * (kernel // 2))


def build_conv_autoencoder(
    rank: int,
    input_shape: Sequence[int],
    filters: Sequence[int],
    kernel_sizes,
    strides,
    activation: str,
    batch_norm: bool,
    output_activation: str | None,
    variant: str,
    num_items: int,
    shrink_threshold: float | None,
    entropy_weight: float,
    similarity: str,
    name: str,
    latent: str = "local",
    latent_dim: int = 64,
) -> keras.Model:
    """Builds a conv encoder, the memory bottleneck, and the mirrored decoder.

    Each encoder block is Conv(k, s, 'same') → BN → activation. The decoder mirrors
    it with transposed convolutions whose output padding restores the encoder's
    spatial sizes exactly (a kernel smaller than its stride is widened, see
    `_decoder_kernel`), ending in a transposed conv to the input channels with
    `output_activation` (None = linear) and no normalisation.

    With `latent="local"` the memory addresses every position of the last
    feature map on its own; with `latent="global"` the feature map is flattened
    into one linear code of `latent_dim` values (one query per sample), and a
    dense layer → BN → activation maps the memory's output back to the feature
    map the decoder starts from.
    """
    check_choice("latent", latent, LATENTS)
    latent_dim = check_positive_int("latent_dim", latent_dim)
    conv = {2: keras.layers.Conv2D, 3: keras.layers.Conv3D}[rank]
    deconv = {2: keras.layers.Conv2DTranspose, 3: keras.layers.Conv3DTranspose}[rank]
    pool = {2: keras.layers.MaxPooling2D, 3: keras.layers.MaxPooling3D}[rank]
    input_shape = tuple(input_shape)
    if len(input_shape) != rank + 1 or any(int(d) < 1 for d in input_shape):
        raise ValueError(
            f"`input_shape` must be {rank + 1} positive integers (spatial dims then "
            f"channels). Received: input_shape={input_shape!r}"
        )
    if not filters or any(int(f) < 1 for f in filters):
        raise ValueError(
            f"`filters` must be a non-empty sequence of positive integers. Received: {filters!r}"
        )
    count = len(filters)
    kernels = _per_layer(kernel_sizes, count, rank, "kernel_sizes")
    steps = _per_layer(strides, count, rank, "strides")

    inputs = keras.Input(shape=input_shape, name="x")
    x = inputs
    sizes = [input_shape[:rank]]
    for i, (units, kernel, stride) in enumerate(zip(filters, kernels, steps, strict=True)):
        conv_stride = stride
        if all(k == 1 for k in kernel) and any(t > 1 for t in stride):
            # A strided 1×1 conv only reads every stride-th position: subsample
            # first (a 1-wide pooling), then convolve densely. Same function and
            # weights, but it avoids TF 2.21's oneDNN kernels for strided 1×1
            # conv gradients, which corrupt the heap.
            x = pool(pool_size=1, strides=stride, padding="same",
                     name=f"encoder_subsample{i + 1}")(x)
            conv_stride = 1
        x = conv(units, kernel, strides=conv_stride, padding="same", use_bias=not batch_norm,
                 name=f"encoder_conv{i + 1}")(x)
        if batch_norm:
            x = keras.layers.BatchNormalization(
                epsilon=_BN_EPSILON, momentum=_BN_MOMENTUM, name=f"encoder_bn{i + 1}"
            )(x)
        x = activation_layer(activation, f"encoder_act{i + 1}")(x)
        sizes.append(tuple(-(-s // t) for s, t in zip(sizes[-1], stride, strict=True)))

    if latent == "global":
        feature_shape = tuple(x.shape[1:])
        x = keras.layers.Flatten(name="encoder_flatten")(x)
        x = keras.layers.Dense(latent_dim, name="encoder_code")(x)
    x = memory_bottleneck(x, variant, num_items, shrink_threshold, entropy_weight, similarity)
    if latent == "global":
        x = keras.layers.Dense(math.prod(feature_shape), use_bias=not batch_norm,
                               name="decoder_code")(x)
        if batch_norm:
            x = keras.layers.BatchNormalization(
                epsilon=_BN_EPSILON, momentum=_BN_MOMENTUM, name="decoder_code_bn"
            )(x)
        x = activation_layer(activation, "decoder_code_act")(x)
        x = keras.layers.Reshape(feature_shape, name="decoder_unflatten")(x)

    out_filters = [*reversed(filters[:-1]), input_shape[-1]]
    for j in range(count):
        i = count - 1 - j
        last = j == count - 1
        kernel = _decoder_kernel(kernels[i], steps[i])
        padding = tuple(
            _output_padding(t, s, k, st)
            for t, s, k, st in zip(sizes[i], sizes[i + 1], kernel, steps[i], strict=True)
        )
        x = deconv(
            out_filters[j], kernel, strides=steps[i], padding="same",
            output_padding=padding, use_bias=last or not batch_norm,
            activation=output_activation if last else None,
            name="reconstruction" if last else f"decoder_deconv{j + 1}",
            dtype="float32" if last else None,
        )(x)
        if not last:
            if batch_norm:
                x = keras.layers.BatchNormalization(
                    epsilon=_BN_EPSILON, momentum=_BN_MOMENTUM, name=f"decoder_bn{j + 1}"
                )(x)
            x = activation_layer(activation, f"decoder_act{j + 1}")(x)
    return keras.Model(inputs, x, name=name)
