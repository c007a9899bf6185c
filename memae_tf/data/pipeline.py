"""`tf.data` input pipelines: the arrays and videos the loaders return, and training pairs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from memae_tf.common.checks import check_positive_int
from memae_tf.data.clips import Videos, clip_index, scale_frames
from memae_tf.data.inputs import prepare_inputs
from memae_tf.data.tfds import from_tfds


def array_dataset(
    x: np.ndarray,
    y: np.ndarray | None = None,
    *,
    batch_size: int = 64,
    shuffle: bool = False,
    seed: int | None = None,
    drop_remainder: bool = False,
) -> tf.data.Dataset:
    """Batches arrays into a `tf.data.Dataset` of `x` or `(x, y)`, prefetched.

    Args:
        x: Inputs; the first axis indexes examples.
        y: Optional targets with as many rows as `x`.
        batch_size: Examples per batch, positive.
        shuffle: Whether to reshuffle the examples at every epoch.
        seed: Shuffle seed, for reproducible order.
        drop_remainder: Whether to drop the last, smaller batch.

    Returns:
        A dataset of batches of `x`, or of `(x, y)` when `y` is given.

    Example:

    ```python
    (x_train, _), _ = load_mnist(download=False)
    dataset = array_dataset(x_train.astype("float32") / 255.0, batch_size=128, shuffle=True)
    ```
    """
    check_positive_int("batch_size", batch_size)
    if y is not None and len(y) != len(x):
        raise ValueError(
            f"Expected `y` with as many rows as `x` ({len(x)}). Received: {len(y)} rows"
        )
    dataset = tf.data.Dataset.from_tensor_slices(x if y is None else (x, y))
    if shuffle:
        dataset = dataset.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size, drop_remainder=drop_remainder).prefetch(tf.data.AUTOTUNE)


def clip_dataset(
    videos: Videos,
    clip_length: int = 16,
    stride: int = 1,
    *,
    batch_size: int = 8,
    shuffle: bool = False,
    seed: int | None = None,
    with_index: bool = False,
) -> tf.data.Dataset:
    """Streams the clips of `memae_tf.data.clips.make_clips` without building them all.

    The uint8 frames are held once; each clip is sliced and scaled to `[-1, 1]`
    on the fly, so memory stays at one byte a pixel whatever the stride.

    Args:
        videos: The videos.
        clip_length: Frames per clip.
        stride: Frames between the starts of consecutive clips of a video.
        batch_size: Clips per batch, positive.
        shuffle: Whether to reshuffle the clips at every epoch.
        seed: Shuffle seed.
        with_index: Whether each element is `(clips, index)`, with the int64
            `(video index, start frame)` rows of `clip_index`, instead of `clips`.

    Returns:
        A dataset of float32 batches `(batch, clip_length, H, W, 1)`.

    Example:

    ```python
    train, _ = make_moving_mnist(seed=0)
    dataset = clip_dataset(train, clip_length=16, stride=2, batch_size=4, shuffle=True)
    ```
    """
    check_positive_int("batch_size", batch_size)
    lengths = [len(frames) for frames in videos.frames]
    index = clip_index(lengths, clip_length, stride)
    if len(index) == 0:
        raise ValueError(
            f"Expected at least one video of {clip_length} frames or more. "
            f"Received video lengths: {lengths}"
        )
    # All frames in one tensor; a clip is the slice at its video's offset + start.
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    frames = tf.constant(np.concatenate(videos.frames))
    starts = offsets[index[:, 0]] + index[:, 1]

    def clip_at(start: tf.Tensor) -> tf.Tensor:
        clip = scale_frames(tf.cast(frames[start : start + clip_length], tf.float32))
        return clip[..., tf.newaxis]

    dataset = tf.data.Dataset.from_tensor_slices((starts, index))
    if shuffle:
        dataset = dataset.shuffle(len(index), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.map(
        lambda start, row: (clip_at(start), row) if with_index else clip_at(start),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def reconstruction_dataset(
    data: Any,
    input_shape: Sequence[int],
    input_range: Sequence[float],
    batch_size: int,
    shuffle: bool = False,
    seed: int | None = None,
    drop_remainder: bool = False,
) -> tf.data.Dataset:
    """Turns arrays or a `tf.data.Dataset` of inputs into the `(x, x)` batches of training.

    Arrays are validated by `prepare_inputs`, shuffled as indices (a full
    permutation per epoch), gathered a batch at a time and auto-sharded by data
    under a multi-worker strategy. Datasets (inputs, `(x, y)` pairs or
    `tfds.load` feature dicts, batched or not) keep their own order and
    sharding options; uint8 elements are scaled into `input_range`.

    Args:
        data: Normal samples, an array `(n, *input_shape)` or a dataset.
        input_shape: The model's input shape without the batch axis.
        input_range: `(low, high)` range the model expects.
        batch_size: Global batch size (of unbatched datasets and arrays).
        shuffle: Whether to reshuffle array inputs at every epoch.
        seed: Shuffle seed.
        drop_remainder: Whether to drop the last, smaller batch (several replicas).

    Returns:
        A prefetched dataset of `(x, x)` float32 batches.
    """
    check_positive_int("batch_size", batch_size)
    low, high = input_range
    if isinstance(data, tf.data.Dataset):
        data = from_tfds(data)  # dict elements (tfds.load) → their "image" feature
        if isinstance(data.element_spec, tuple):
            data = data.map(lambda x, *_: x)
        if data.element_spec.dtype == tf.uint8:
            data = data.map(lambda x: tf.cast(x, tf.float32) * ((high - low) / 255.0) + low)
        else:
            data = data.map(lambda x: tf.cast(x, tf.float32))
        if data.element_spec.shape.rank == len(input_shape):
            data = data.batch(batch_size, drop_remainder=drop_remainder)
        return data.map(lambda x: (x, x)).prefetch(tf.data.AUTOTUNE)
    x = prepare_inputs(data, input_shape, input_range)
    if drop_remainder and len(x) < batch_size:
        raise ValueError(
            f"Distributed training needs at least one global batch ({batch_size} samples "
            f"= per-replica batch × replicas). Received: {len(x)} samples"
        )
    samples = tf.constant(x)
    indices = tf.data.Dataset.range(len(x))
    if shuffle:
        indices = indices.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.DATA
    )
    dataset = indices.batch(batch_size, drop_remainder=drop_remainder).with_options(options)
    return dataset.map(
        lambda i: (tf.gather(samples, i),) * 2, num_parallel_calls=tf.data.AUTOTUNE
    ).prefetch(tf.data.AUTOTUNE)
