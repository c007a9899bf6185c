"""The collapse check of `TrainingConfig(memory_restart=True)`: restart a collapsed memory."""

from __future__ import annotations

import keras
import numpy as np

from memae_tf.models.memory_block import adapt_memory, find_memory_layer, make_encoder


def items_used(model: keras.Model, samples: np.ndarray, batch_size: int = 256) -> int | None:
    """How many memory items receive a non-zero weight from the queries of `samples`.

    The encoder and the memory run in inference mode. None for a model without
    a (direct) `MemoryLayer`.

    Args:
        model: An autoencoder.
        samples: Float32 model inputs `(n, *input_shape)`.
        batch_size: Samples per encoder pass.

    Returns:
        The count of items addressed at least once, in `[0, num_items]`.

    Example:

    >>> from memae_tf.models import build_dense_autoencoder
    >>> model = build_dense_autoencoder((8,), units=(6, 3), num_items=5, shrink_threshold=0.0)
    >>> items_used(model, np.random.rand(16, 8).astype("float32"))
    5
    """
    layer, encoder = find_memory_layer(model), make_encoder(model)
    if layer is None or encoder is None:
        return None
    used = np.zeros(layer.num_items, dtype=bool)
    for start in range(0, len(samples), batch_size):
        encoded = encoder(samples[start:start + batch_size], training=False)
        weights = keras.ops.convert_to_numpy(layer.addressing(encoded))
        used |= weights.reshape(-1, layer.num_items).max(axis=0) > 0.0
    return int(used.sum())


class MemoryRestart(keras.callbacks.Callback):
    """Draws the memory items again from the encodings when the addressing collapsed.

    With hard shrinkage and L1 renormalisation a memory can collapse: every
    query keeps one non-zero weight, on the same item, so every sample is
    rebuilt as the same picture. The state is absorbing: one surviving weight is
    renormalised to 1 whatever the logits are, so no gradient reaches the
    addressing or the encoder (the entropy loss is 0 and flat there too). At the
    end of every epoch this callback counts the items that the queries of
    training samples use (`items_used`, no anomaly involved) and, when at most
    one is, draws all items again from the current encodings of those samples
    (`memae_tf.models.adapt_memory`), the way vector-quantised autoencoders
    restart dead codebook entries. The count is added to the epoch's logs as
    `memory_items_used` (so it appears in `History`).

    Args:
        samples: Float32 training inputs `(n, *input_shape)` of the model.
        seed: Seed of the first restart's draw (the k-th uses `seed + k`).
        batch_size: Samples per encoder pass.

    Attributes:
        restarts: The (0-based) epochs after which the memory was restarted.

    Example:

    >>> from memae_tf.models import build_dense_autoencoder
    >>> model = build_dense_autoencoder((8,), units=(6, 3), num_items=5)
    >>> model.compile(optimizer="adam", loss="mse")
    >>> x = np.random.rand(64, 8).astype("float32")
    >>> restart = MemoryRestart(x, seed=0)
    >>> history = model.fit(x, x, epochs=1, verbose=0, callbacks=[restart])
    >>> 0 <= history.history["memory_items_used"][0] <= 5
    True
    """

    def __init__(self, samples: np.ndarray, seed: int | None = None, batch_size: int = 256) -> None:
        super().__init__()
        self.samples = np.asarray(samples, dtype=np.float32)
        self.seed = seed
        self.batch_size = batch_size
        self.restarts: list[int] = []

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        used = items_used(self.model, self.samples, self.batch_size)
        if used is None:
            return
        if logs is not None:
            logs["memory_items_used"] = used
        if used <= 1 and find_memory_layer(self.model).num_items > 1:
            seed = None if self.seed is None else self.seed + len(self.restarts)
            adapt_memory(self.model, self.samples, seed, self.batch_size)
            self.restarts.append(epoch)
