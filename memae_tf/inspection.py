"""What a trained memory holds and how it is addressed: item usage, sparsity, decoded items.

The numbers behind the memory plots of `memae_tf.plot`, as data. Everything
here works on the addressing weights ŵ that `MemAE.memory_attention` returns
(one row of `num_items` weights per query, i.e. per latent position of each
sample) and on the Keras model itself, so it sits below the detector:
`MemAE.memory_report(x)` is `memory_report(detector.memory_attention(x))`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from memae_tf.models.memory_block import find_memory_layer, make_decoder


@dataclass(frozen=True)
class MemoryReport:
    """How a set of queries addressed the memory.

    A query *uses* item `i` when its weight `ŵ_i` is above `min_weight`
    (hard shrinkage sets the other weights to exactly 0).

    Attributes:
        usage: `(num_items,)` share of queries that use each item.
        mean_weight: `(num_items,)` mean weight of each item over the queries:
            its share of all the rebuilt codes.
        nonzeros: `(num_queries,)` number of items each query uses.
        entropy: `(num_queries,)` entropy `Σ -ŵ_i log ŵ_i` (nats, 0 log 0 = 0)
            of each query's weights.
        unused_items: Indices of the items that no query uses.
        min_weight: The weight a query must exceed to use an item.
    """

    usage: np.ndarray
    mean_weight: np.ndarray
    nonzeros: np.ndarray
    entropy: np.ndarray
    unused_items: np.ndarray
    min_weight: float = 0.0

    @property
    def num_items(self) -> int:
        """Memory size N."""
        return len(self.usage)

    @property
    def num_queries(self) -> int:
        """Number of queries (samples × latent positions)."""
        return len(self.nonzeros)

    def summary(self) -> dict[str, Any]:
        """Plain-number summary (JSON-ready), e.g. for a table.

        Returns:
            Dict with `num_items`, `num_queries`, `mean_nonzeros`,
            `median_nonzeros`, `mean_entropy`, `effective_items` (`exp` of the
            mean entropy: the number of equally weighted items with that
            entropy), `num_unused` and `unused_items`.
        """
        return {
            "num_items": self.num_items,
            "num_queries": self.num_queries,
            "mean_nonzeros": float(self.nonzeros.mean()),
            "median_nonzeros": float(np.median(self.nonzeros)),
            "mean_entropy": float(self.entropy.mean()),
            "effective_items": float(np.exp(self.entropy.mean())),
            "num_unused": len(self.unused_items),
            "unused_items": [int(i) for i in self.unused_items],
        }


def memory_report(attention: Any, min_weight: float = 0.0) -> MemoryReport:
    """Summarises memory addressing weights per item and per query.

    Args:
        attention: Addressing weights ŵ, shaped `(..., num_items)` (what
            `MemAE.memory_attention` returns: `(n, *latent_positions, N)`).
            Every vector along the last axis is one query.
        min_weight: A query uses an item when its weight is above this value;
            0 (default) suits sparse addressing, a small positive value (e.g.
            `1e-3`) suits dense addressing without shrinkage.

    Returns:
        A `MemoryReport`.

    Raises:
        ValueError: If `attention` has fewer than 2 axes, no query, or weights
            that are negative or not finite.

    Example:

    >>> report = memory_report(np.array([[0.5, 0.5, 0.0], [1.0, 0.0, 0.0]]))
    >>> report.usage.tolist(), report.nonzeros.tolist(), report.unused_items.tolist()
    ([1.0, 0.5, 0.0], [2, 1], [2])
    """
    weights = np.asarray(attention, dtype=np.float64)
    if weights.ndim < 2 or weights.shape[-1] < 1 or weights.size == 0:
        raise ValueError(
            "`attention` must have shape (..., num_items) with at least one query. "
            f"Received: shape={weights.shape}"
        )
    if not np.all(np.isfinite(weights)) or weights.min() < 0:
        raise ValueError("`attention` must hold finite, non-negative addressing weights.")
    if not (isinstance(min_weight, (int, float)) and 0.0 <= min_weight < 1.0):
        raise ValueError(f"`min_weight` must be a float in [0, 1). Received: {min_weight!r}")
    weights = weights.reshape(-1, weights.shape[-1])
    used = weights > min_weight
    positive = np.where(weights > 0, weights, 1.0)  # log(1) = 0: the 0 log 0 = 0 convention
    usage = used.mean(axis=0)
    return MemoryReport(
        usage=usage,
        mean_weight=weights.mean(axis=0),
        nonzeros=used.sum(axis=1),
        entropy=-(weights * np.log(positive)).sum(axis=1),
        unused_items=np.flatnonzero(usage == 0),
        min_weight=float(min_weight),
    )


def decode_memory_items(model: keras.Model, batch_size: int = 64) -> np.ndarray:
    """Decodes every memory item on its own, to look at what it stands for.

    Item `i` is written at every latent position (the code a sample would get
    if each of its queries addressed item `i` alone) and passed through the
    decoder in inference mode.

    Args:
        model: An autoencoder with a `MemoryLayer` (a `MemAE`'s `model`).
        batch_size: Items decoded per call.

    Returns:
        Float32 array `(num_items, *input_shape)`, in the model's output range.

    Raises:
        ValueError: If the model has no `MemoryLayer` as a direct layer.
    """
    decoder = make_decoder(model)
    if decoder is None:
        raise ValueError(
            f"Expected a model with a MemoryLayer to decode its items. Received: "
            f"{model.name!r} with {'no' if find_memory_layer(model) is None else 'a nested'} "
            "MemoryLayer"
        )
    items = keras.ops.convert_to_numpy(find_memory_layer(model).memory).astype(np.float32)
    positions = tuple(decoder.input_shape[1:-1])
    codes = np.broadcast_to(
        items.reshape(len(items), *([1] * len(positions)), items.shape[-1]),
        (len(items), *positions, items.shape[-1]),
    )
    parts = [
        keras.ops.convert_to_numpy(decoder(codes[start:start + batch_size], training=False))
        for start in range(0, len(codes), batch_size)
    ]
    return np.concatenate(parts).astype(np.float32)
