"""The memory module of MemAE: attention-based addressing over learned prototypes."""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import ops

from memae_tf.common.checks import check_choice, check_positive_int

_EPSILON = 1e-12
# The paper's α (Gong et al., 2019), the entropy loss weight every builder with a memory takes.
ENTROPY_WEIGHT = 2e-4
_SIMILARITIES = ("dot", "cosine", "euclidean")
_SUPPORTED_RANKS = (2, 4, 5)


@keras.saving.register_keras_serializable(package="memae_tf")
class MemoryLayer(keras.layers.Layer):
    """Memory module of MemAE: rebuilds each query from a few learned prototypes.

    Every vector `z` along the last axis of the input is a query. It addresses a
    memory `M` of `num_items` prototypes (shape `(num_items, C)`):

    ```
    w  = softmax(sim(z, M))                            # (num_items,)
    ŵ  = relu(w - λ) * w / (|w - λ| + 1e-12)           # hard shrinkage
    ŵ  = ŵ / max(||ŵ||_1, 1e-12)                       # L1 renormalisation
    ẑ  = ŵ M
    ```

    `sim` is the dot product `z · Mᵀ` (`similarity="dot"`, the authors' released
    code), the cosine similarity (`similarity="cosine"`, the paper's equation;
    its logits lie in [-1, 1], so the softmax is flatter) or the negative mean
    squared difference `-||z - m||² / C` (`similarity="euclidean"`: each query
    addresses its nearest items, whatever the items' norms; the dot product
    favours items of large norm). Shrinkage forces the
    addressing to be sparse, so that an anomalous query is rebuilt from normal
    prototypes and reconstructs badly. In training the layer adds the entropy
    regulariser `entropy_weight * mean(Σ -ŵ log(ŵ + 1e-12))` (mean over all
    addressed positions) with `add_loss`.

    The addressing math runs in float32 even under a mixed-precision policy;
    the output is cast back to the layer's compute dtype. The items start
    uniform in ±1/√C (the authors' code); `adapt(queries)` draws them from
    encodings instead, which `MemAE.fit` does before training.

    Args:
        num_items: Positive integer, number of memory items N.
        shrink_threshold: Shrinkage threshold λ. `None` (default) means
            `1 / num_items`; the paper recommends λ in `[1/N, 3/N]`, but a flat
            addressing (`"euclidean"`, `"cosine"`) can leave every weight of a
            query below 3/N, which then becomes the zero vector (`MemAE.fit`
            warns). `0` disables shrinkage and the L1 renormalisation.
        entropy_weight: Non-negative float, weight of the entropy loss on the
            addressing weights (the paper's α, 2e-4 by default). `0` disables it.
        similarity: `"dot"`, `"cosine"` or `"euclidean"`.
        return_attention: If True, the layer returns `(ẑ, ŵ)` instead of `ẑ`.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Input shape:
        `(batch, C)`, `(batch, H, W, C)` or `(batch, T, H, W, C)`; C must be
        known. Every vector along the last axis is addressed independently.

    Output shape:
        Same as the input. With `return_attention=True`, also the addressing
        weights shaped `input_shape[:-1] + (num_items,)`.

    Example:

    >>> import numpy as np
    >>> layer = MemoryLayer(num_items=10)
    >>> z = np.random.rand(4, 7, 7, 16).astype("float32")
    >>> tuple(layer(z).shape)
    (4, 7, 7, 16)
    >>> z_hat, w = MemoryLayer(10, return_attention=True)(z)
    >>> tuple(w.shape)
    (4, 7, 7, 10)
    """

    def __init__(
        self,
        num_items: int,
        shrink_threshold: float | None = None,
        entropy_weight: float = ENTROPY_WEIGHT,
        similarity: str = "dot",
        return_attention: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        num_items = check_positive_int("num_items", num_items)
        if shrink_threshold is not None and not (
            isinstance(shrink_threshold, (int, float))
            and math.isfinite(shrink_threshold)
            and 0.0 <= shrink_threshold < 1.0
        ):
            raise ValueError(
                "Received an invalid value for `shrink_threshold`, expected None or a "
                f"float in [0, 1). Received: shrink_threshold={shrink_threshold!r}"
            )
        if not (
            isinstance(entropy_weight, (int, float))
            and math.isfinite(entropy_weight)
            and entropy_weight >= 0.0
        ):
            raise ValueError(
                "Received an invalid value for `entropy_weight`, expected a "
                f"non-negative float. Received: entropy_weight={entropy_weight!r}"
            )
        check_choice("similarity", similarity, _SIMILARITIES)
        self.num_items = num_items
        self.shrink_threshold = None if shrink_threshold is None else float(shrink_threshold)
        self.entropy_weight = float(entropy_weight)
        self.similarity = similarity
        self.return_attention = bool(return_attention)

    @property
    def effective_shrink_threshold(self) -> float:
        """The λ actually applied: `shrink_threshold`, or `1 / num_items` if None."""
        if self.shrink_threshold is None:
            return 1.0 / self.num_items
        return self.shrink_threshold

    def build(self, input_shape: tuple) -> None:
        if len(input_shape) not in _SUPPORTED_RANKS:
            raise ValueError(
                "MemoryLayer expects inputs of rank 2 (batch, C), 4 (batch, H, W, C) "
                f"or 5 (batch, T, H, W, C). Received: input_shape={tuple(input_shape)}"
            )
        channels = input_shape[-1]
        if channels is None:
            raise ValueError(
                "The last axis of the MemoryLayer input must be defined. "
                f"Received: input_shape={tuple(input_shape)}"
            )
        limit = 1.0 / math.sqrt(channels)
        self.memory = self.add_weight(
            name="memory",
            shape=(self.num_items, channels),
            initializer=keras.initializers.RandomUniform(-limit, limit),
            dtype="float32",
            autocast=False,
        )

    def adapt(self, queries, seed: int | None = None) -> int:
        """Sets the memory items to query vectors drawn from `queries`.

        A data-dependent initialisation (the idea of Keras' `adapt` for
        preprocessing layers, and of codebook initialisation from data in vector
        quantisation): with items drawn from real encodings, each query has
        near matches in the memory and the softmax addressing is selective from
        the first step. With the default uniform initialisation the logits are
        small and the addressing stays close to uniform for a long time, so the
        memory barely constrains the latent code. `MemAE.fit` calls this on the
        encodings of the training data before training (`memory_init="data"`).

        Args:
            queries: Array of encodings whose last axis has the memory's
                channels C, e.g. the encoder output `(batch, H, W, C)`. Every
                vector along the last axis is a candidate item.
            seed: Seed of the draw (None: unseeded).

        Returns:
            The number of items set: `num_items`, or the number of query
            vectors if there are fewer (the remaining items keep their values).

        Example:

        >>> layer = MemoryLayer(num_items=3)
        >>> layer.build((None, 2))
        >>> layer.adapt(np.eye(2, dtype="float32")[[0, 1, 0, 1]], seed=0)
        3
        """
        queries = np.asarray(queries, dtype=np.float32)
        channels = queries.shape[-1] if queries.ndim else None
        if not self.built:
            self.build((None, channels))
        expected = self.memory.shape[-1]
        if queries.ndim < 1 or channels != expected:
            raise ValueError(
                f"`queries` must have {expected} channels on the last axis. "
                f"Received: shape={queries.shape}"
            )
        rows = queries.reshape(-1, expected)
        if len(rows) == 0 or not np.all(np.isfinite(rows)):
            raise ValueError(
                f"`queries` must hold at least one finite query vector. Received: "
                f"{len(rows)} vectors, {int(np.size(rows) - np.isfinite(rows).sum())} not finite"
            )
        count = min(self.num_items, len(rows))
        chosen = rows[np.random.default_rng(seed).choice(len(rows), count, replace=False)]
        items = np.array(self.memory.numpy())
        items[:count] = chosen
        self.memory.assign(items)
        return count

    def addressing(self, inputs):
        """Computes the (shrunk, renormalised) addressing weights ŵ.

        Args:
            inputs: Query tensor, shaped like the layer's input.

        Returns:
            Float32 tensor `inputs.shape[:-1] + (num_items,)`.
        """
        if not self.built:
            self.build(tuple(inputs.shape))
        queries = ops.reshape(ops.cast(inputs, "float32"), (-1, ops.shape(inputs)[-1]))
        weights = self._address_flat(queries)
        return ops.reshape(weights, (*ops.shape(inputs)[:-1], self.num_items))

    def _address_flat(self, queries):
        memory = ops.convert_to_tensor(self.memory)
        if self.similarity == "cosine":
            queries = queries / ops.maximum(ops.norm(queries, axis=-1, keepdims=True), _EPSILON)
            memory = memory / ops.maximum(ops.norm(memory, axis=-1, keepdims=True), _EPSILON)
        logits = ops.matmul(queries, ops.transpose(memory))
        if self.similarity == "euclidean":
            # -||z - m||² / C without the query's own ||z||², which the softmax ignores
            logits = (2.0 * logits - ops.sum(memory * memory, axis=-1)) / memory.shape[-1]
        weights = ops.softmax(logits, axis=-1)
        threshold = self.effective_shrink_threshold
        if threshold > 0.0:
            shifted = weights - threshold
            weights = ops.relu(shifted) * weights / (ops.abs(shifted) + _EPSILON)
            l1 = ops.sum(ops.abs(weights), axis=-1, keepdims=True)
            weights = weights / ops.maximum(l1, _EPSILON)
        return weights

    def call(self, inputs, training=None):
        channels = ops.shape(inputs)[-1]
        queries = ops.reshape(ops.cast(inputs, "float32"), (-1, channels))
        weights = self._address_flat(queries)
        rebuilt = ops.matmul(weights, ops.convert_to_tensor(self.memory))
        if training and self.entropy_weight > 0.0:
            entropy = ops.sum(-weights * ops.log(weights + _EPSILON), axis=-1)
            self.add_loss(self.entropy_weight * ops.mean(entropy))
        outputs = ops.cast(ops.reshape(rebuilt, ops.shape(inputs)), self.compute_dtype)
        if not self.return_attention:
            return outputs
        attention = ops.reshape(weights, (*ops.shape(inputs)[:-1], self.num_items))
        return outputs, attention

    def compute_output_shape(self, input_shape: tuple):
        if not self.return_attention:
            return tuple(input_shape)
        return tuple(input_shape), (*tuple(input_shape)[:-1], self.num_items)

    def compute_output_spec(self, inputs, training=None):
        output = keras.KerasTensor(inputs.shape, dtype=self.compute_dtype)
        if not self.return_attention:
            return output
        return output, keras.KerasTensor((*inputs.shape[:-1], self.num_items), dtype="float32")

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "num_items": self.num_items,
            "shrink_threshold": self.shrink_threshold,
            "entropy_weight": self.entropy_weight,
            "similarity": self.similarity,
            "return_attention": self.return_attention,
        }
