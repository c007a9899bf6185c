"""The three bottleneck variants of the paper's ablation: MemAE, MemAE-nonSpar, AE."""

from __future__ import annotations

import warnings

import keras
import numpy as np

from memae_tf.choices import MEMORY_INITS as MEMORY_INITS
from memae_tf.choices import VARIANTS as VARIANTS
from memae_tf.common.checks import check_choice
from memae_tf.layers.memory import ENTROPY_WEIGHT, MemoryLayer

MEMORY_LAYER_NAME = "memory"


def check_variant(variant: str) -> str:
    """Returns `variant` if it names a known variant, else raises a ValueError."""
    return check_choice("variant", variant, VARIANTS)


def builder_variant(variant: str, memory: str | None) -> str:
    """The variant of a builder call that may still use the deprecated name `memory`.

    Args:
        variant: The builder's `variant` argument.
        memory: Its former name (deprecated); None when not given.

    Returns:
        The checked variant: `memory` when given (with a DeprecationWarning),
        else `variant`.

    Raises:
        ValueError: If the variant is unknown, or `memory` and a `variant`
            other than the default disagree.
    """
    if memory is None:
        return check_variant(variant)
    warnings.warn("The builders' `memory` argument is now called `variant`; `memory` will be "
                  "removed.", DeprecationWarning, stacklevel=3)
    if variant not in ("memae", memory):
        raise ValueError(f"Pass `variant` only. Received: variant={variant!r}, memory={memory!r}")
    return check_variant(memory)


def memory_bottleneck(
    z,
    variant: str,
    num_items: int,
    shrink_threshold: float | None = None,
    entropy_weight: float = ENTROPY_WEIGHT,
    similarity: str = "dot",
):
    """Applies the bottleneck of the chosen variant to the encoding `z`.

    - `"memae"`: `MemoryLayer` with hard shrinkage (λ = `shrink_threshold`, None
      meaning 1/N) and the entropy loss weighted by `entropy_weight`.
    - `"memae-nonspar"`: `MemoryLayer` with λ = 0 and no entropy loss.
    - `"ae"`: identity (a plain autoencoder).

    Args:
        z: Symbolic encoder output, rank 2, 4 or 5.
        variant: Variant name, one of `VARIANTS`.
        num_items: Memory size N (ignored for `"ae"`).
        shrink_threshold: λ for `"memae"`.
        entropy_weight: Entropy loss weight for `"memae"`.
        similarity: `"dot"`, `"cosine"` or `"euclidean"` addressing (see `MemoryLayer`).

    Returns:
        The symbolic latent passed to the decoder, shaped like `z`.
    """
    check_variant(variant)
    if variant == "ae":
        return z
    if variant == "memae-nonspar":
        shrink_threshold, entropy_weight = 0.0, 0.0
    layer = MemoryLayer(
        num_items,
        shrink_threshold=shrink_threshold,
        entropy_weight=entropy_weight,
        similarity=similarity,
        name=MEMORY_LAYER_NAME,
    )
    return layer(z)


def find_memory_layer(model: keras.Model) -> MemoryLayer | None:
    """Returns the (first) `MemoryLayer` of `model`, searching nested models."""
    for layer in model.layers:
        if isinstance(layer, MemoryLayer):
            return layer
        if isinstance(layer, keras.Model):
            found = find_memory_layer(layer)
            if found is not None:
                return found
    return None


def make_encoder(model: keras.Model) -> keras.Model | None:
    """Returns the sub-model from `model`'s input to its memory layer's input.

    None when the model has no `MemoryLayer` (a plain autoencoder). Only
    functional models whose memory layer is a direct layer are supported.
    """
    memory = find_memory_layer(model)
    if memory is None or memory not in model.layers:
        return None
    return keras.Model(model.inputs, memory.input, name=f"{model.name}_encoder")


def encode_queries(
    model: keras.Model, samples: np.ndarray, batch_size: int = 64, training: bool = False
) -> np.ndarray | None:
    """The memory's queries for `samples`: the encoder's output, in passes of `batch_size`.

    The call is stateless: in training mode batch normalisation uses batch
    statistics, but its moving statistics are not updated.

    Args:
        model: An autoencoder whose `MemoryLayer` is a direct layer.
        samples: Float32 inputs of the model, `(n, *input_shape)`.
        batch_size: Samples per encoder pass.
        training: Run the encoder in training mode.

    Returns:
        Float32 array shaped like the memory's input, e.g. `(n, 4, 4, 64)` or
        `(n, 16)`; None for a model without such a memory (see `make_encoder`).

    Example:

    >>> from memae_tf.models import build_dense_autoencoder
    >>> model = build_dense_autoencoder((8,), units=(6, 3), num_items=5)
    >>> encode_queries(model, np.random.rand(10, 8).astype("float32"), batch_size=4).shape
    (10, 3)
    """
    encoder = make_encoder(model)
    if encoder is None:
        return None
    parts = []
    for start in range(0, len(samples), batch_size):
        encoded, _ = encoder.stateless_call(
            encoder.trainable_variables, encoder.non_trainable_variables,
            [samples[start:start + batch_size]], training=training,
        )
        parts.append(keras.ops.convert_to_numpy(encoded))
    return np.concatenate(parts)


def adapt_memory(
    model: keras.Model, samples: np.ndarray, seed: int | None = None, batch_size: int = 64
) -> int:
    """Initialises a model's memory items from the encodings of `samples`.

    The encoder (the model up to the memory) runs on `samples` in training
    mode, so batch normalisation uses batch statistics as it will in the first
    training steps; the call is stateless (moving statistics are not updated,
    see `encode_queries`). `MemoryLayer.adapt` then draws the items from the
    encodings.

    Args:
        model: An autoencoder with one `MemoryLayer`.
        samples: Float32 inputs of the model, `(n, *input_shape)`.
        seed: Seed of the draw.
        batch_size: Samples per encoder pass.

    Returns:
        The number of items set; 0 for a model without memory (or whose memory
        sits in a nested model, see `make_encoder`).

    Example:

    >>> from memae_tf.models import build_dense_autoencoder
    >>> model = build_dense_autoencoder((8,), units=(6, 3), num_items=5)
    >>> adapt_memory(model, np.random.rand(32, 8).astype("float32"), seed=0)
    5
    """
    queries = encode_queries(model, samples, batch_size, training=True)
    if queries is None:
        return 0
    return find_memory_layer(model).adapt(queries, seed=seed)


def make_decoder(model: keras.Model) -> keras.Model | None:
    """Returns the sub-model from `model`'s memory layer output to its reconstruction.

    The counterpart of `make_encoder`: it takes latent codes shaped like the
    memory's output (e.g. `(batch, 4, 4, 64)`) and decodes them, so that memory
    items can be looked at as inputs (`memae_tf.inspection.decode_memory_items`).
    None when the model has no `MemoryLayer` as a direct layer.
    """
    memory = find_memory_layer(model)
    if memory is None or memory not in model.layers:
        return None
    return keras.Model(memory.output, model.output, name=f"{model.name}_decoder")
