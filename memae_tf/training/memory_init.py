"""The memory initialisation of `TrainingConfig(memory_init="data")`."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from memae_tf.data.inputs import prepare_inputs
from memae_tf.data.pipeline import reconstruction_dataset
from memae_tf.models.memory_block import find_memory_layer

# Samples whose encodings form the pool the memory items are drawn from: enough
# for about 16 candidate vectors per item, within [batch_size, MAX_INIT_SAMPLES].
INIT_CANDIDATES_PER_ITEM = 16
MAX_INIT_SAMPLES = 1024


def memory_samples(
    model: keras.Model,
    x: Any,
    input_range: Sequence[float],
    batch_size: int,
    seed: int | None = None,
) -> np.ndarray | None:
    """The training samples whose encodings the memory items are drawn from.

    A seeded random subset of an array, or the first batches of a dataset,
    prepared as the model's float32 inputs: enough samples for about
    `INIT_CANDIDATES_PER_ITEM` query vectors per item, within
    `[batch_size, MAX_INIT_SAMPLES]`. None for a model without a `MemoryLayer`.

    Args:
        model: The autoencoder.
        x: Training samples, as `MemAE.fit` takes them.
        input_range: `(low, high)` range the model expects.
        batch_size: Batch size of the dataset passes (and the least sample count).
        seed: Seed of the subset.

    Returns:
        Float32 array `(n, *input_shape)`, or None.
    """
    layer = find_memory_layer(model)
    if layer is None:
        return None
    input_shape = tuple(model.input_shape[1:])
    per_sample = math.prod(layer.input.shape[1:-1])  # queries per sample (1 if dense)
    wanted = -(-INIT_CANDIDATES_PER_ITEM * layer.num_items // per_sample)
    wanted = min(max(wanted, batch_size), MAX_INIT_SAMPLES)
    if isinstance(x, tf.data.Dataset):
        batches, total = [], 0
        for batch, _ in reconstruction_dataset(x, input_shape, input_range, batch_size):
            batches.append(batch.numpy())
            total += len(batches[-1])
            if total >= wanted:
                break
        return np.concatenate(batches)[:wanted]
    # convert only the drawn rows
    x = x.numpy() if isinstance(x, tf.Tensor) else np.asarray(x)
    rows = np.sort(np.random.default_rng(seed).permutation(len(x))[:wanted])
    return prepare_inputs(x[rows], input_shape, input_range)

