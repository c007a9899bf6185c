"""Dense MemAE for tabular and network data."""

from __future__ import annotations

import math
from collections.abc import Sequence

import keras
import numpy as np

from memae_tf.layers.feature_scaler import FeatureScaler
from memae_tf.layers.memory import ENTROPY_WEIGHT
from memae_tf.models.activations import activation_layer
from memae_tf.models.memory_block import builder_variant, memory_bottleneck


def tabular_units(width: int, code_scale: float = 1) -> tuple[int, int, int]:
    """Encoder widths `(hidden, hidden // 2, code)` derived from the number of features.

    hidden = the power of two at or above `width`, within [16, 64]; code =
    `ceil(width * code_scale / 4)` within [2, min(8 * code_scale, hidden // 2)].
    With the default `code_scale=1`, nine features give (16, 8, 3), 36 give
    (64, 32, 8), 120 give (64, 32, 8).

    Args:
        width: The number of features d.
        code_scale: Factor on the code's width (and on its cap of 8); the
            hidden widths do not change, and the code never exceeds the
            second hidden layer.

    Returns:
        `(hidden, hidden // 2, code)`.

    Raises:
        ValueError: If `width` is not a positive integer or `code_scale` not a
            positive number.

    Example:

    >>> tabular_units(9), tabular_units(36)
    ((16, 8, 3), (64, 32, 8))
    >>> tabular_units(36, code_scale=2)
    (64, 32, 16)
    """
    if isinstance(width, bool) or not isinstance(width, int | np.integer) or width < 1:
        raise ValueError(f"Expected a positive number of features. Received: width={width!r}")
    if (isinstance(code_scale, bool) or not isinstance(code_scale, int | float | np.number)
            or not math.isfinite(code_scale) or code_scale <= 0):
        raise ValueError(
            f"`code_scale` must be a positive number. Received: code_scale={code_scale!r}")
    hidden = min(64, max(16, 2 ** math.ceil(math.log2(width))))
    code = min(8 * code_scale, hidden // 2, max(2, math.ceil(width * code_scale / 4)))
    return hidden, hidden // 2, int(code)


def build_dense_autoencoder(
    input_shape: Sequence[int] = (120,),
    units: Sequence[int] | None = (60, 30, 10, 3),
    activation: str = "tanh",
    output_activation: str | None = None,
    variant: str = "memae",
    num_items: int = 50,
    shrink_threshold: float | None = None,
    entropy_weight: float = ENTROPY_WEIGHT,
    similarity: str = "dot",
    scaling: str | None = None,
    name: str = "memae_dense",
    memory: str | None = None,
    code_scale: float = 1,
) -> keras.Model:
    """Builds a fully connected (Mem)AE.

    Encoder: `Dense(units[i]) → activation` for all but the last entry, then a
    linear `Dense(units[-1])` code; the memory addresses the code vector; the
    decoder mirrors the hidden layers and ends in a `Dense(d)` with
    `output_activation`. The defaults are the KDDCUP network 120-60-30-10-3
    (tanh) with a 50×3 memory.

    With `scaling`, the model takes raw features: a `FeatureScaler` scales
    them first, and a second one maps the last `Dense` back to raw features,
    so the reconstruction is in the units of the input. Both are adapted on
    the training data at the first `fit` (`adapt_feature_scalers`), and the
    reconstruction error is measured between the scaled input and the scaled
    reconstruction (`input_scaler`), so every feature weighs alike whatever
    its units.

    Args:
        input_shape: `(d,)`, the number of features.
        units: Encoder layer widths, the last one being the code size; None
            derives them from `d` (`tabular_units`).
        code_scale: With `units=None`, the factor on the derived code's width
            (`tabular_units(d, code_scale)`); explicit `units` take precedence
            and leave it unused.
        activation: Hidden activation (`"tanh"`, `"relu"`, `"leaky_relu"`, `"elu"`).
        output_activation: Activation of the reconstruction (None = linear).
        variant: The paper's ablation: `"memae"`, `"memae-nonspar"` or `"ae"`.
        num_items: Memory size N.
        shrink_threshold: λ for `"memae"` (None = 1/N).
        entropy_weight: Entropy loss weight for `"memae"`.
        similarity: `"dot"`, `"cosine"` or `"euclidean"` addressing (see `MemoryLayer`).
        scaling: None (features go in as given), or `"standard"`, `"robust"` or
            `"minmax"`: the `FeatureScaler` method for raw features.
        name: Model name.
        memory: Deprecated name of `variant`.

    Input shape:
        `(batch, d)`.

    Output shape:
        `(batch, d)`: the reconstruction.

    Example:

    >>> model = build_dense_autoencoder((36,), units=(16, 4), num_items=20)
    >>> model.output_shape
    (None, 36)
    """
    input_shape = () if input_shape is None else tuple(input_shape)
    if len(input_shape) != 1 or int(input_shape[0]) < 1:
        raise ValueError(
            "`input_shape` of a dense autoencoder must be `(d,)` with d >= 1. "
            f"Received: input_shape={input_shape!r}"
        )
    if units is None:
        units = tabular_units(int(input_shape[0]), code_scale)
    if not units or any(int(u) < 1 for u in units):
        raise ValueError(
            f"`units` must be a non-empty sequence of positive integers. Received: {units!r}"
        )
    inputs = keras.Input(shape=input_shape, name="x")
    x = inputs if scaling is None else FeatureScaler(scaling, name="input_scaler")(inputs)
    for i, width in enumerate(units):
        x = keras.layers.Dense(width, name=f"encoder_dense{i + 1}")(x)
        if i < len(units) - 1:
            x = activation_layer(activation, f"encoder_act{i + 1}")(x)
    x = memory_bottleneck(x, builder_variant(variant, memory), num_items, shrink_threshold,
                          entropy_weight, similarity)
    for j, width in enumerate(reversed(units[:-1])):
        x = keras.layers.Dense(width, name=f"decoder_dense{j + 1}")(x)
        x = activation_layer(activation, f"decoder_act{j + 1}")(x)
    outputs = keras.layers.Dense(
        input_shape[0], activation=output_activation, name="reconstruction", dtype="float32"
    )(x)
    if scaling is not None:
        outputs = FeatureScaler(scaling, invert=True, name="output_scaler")(outputs)
    return keras.Model(inputs, outputs, name=name)
