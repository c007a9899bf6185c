"""`tf.data` input pipelines for the numpy arrays and videos the loaders return."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from memae_tf.data.clips import Videos, clip_index, scale_frames


def _check_batching(batch_size: int) -> None:
    if not isinstance(batch_size, int | np.integer) or batch_size < 1:
        raise ValueError(
            f"Expected `batch_size` to be a positive integer. Received: batch_size={batch_size}"
        )


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
    _check_batching(batch_size)
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
    _check_batching(batch_size)
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
