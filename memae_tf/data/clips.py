"""Videos as frame arrays with frame labels, and the fixed-length clips a video MemAE reads.

Every video loader (`video.py`) and the synthetic benchmark (`moving_mnist.py`)
return `Videos`: grayscale uint8 frames `(t, H, W)` and one 0/1 label per frame.
`make_clips` cuts them into clips of `clip_length` consecutive frames, scaled
to `[-1, 1]`, with the `(video, start frame)` of each clip so clip scores can
be mapped back to frames. For data too large for one array, `clip_index` gives
the same mapping and `memae_tf.data.pipeline.clip_dataset` streams the clips.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from memae_tf.common.checks import check_positive_int

Array = TypeVar("Array")


@dataclass(frozen=True)
class Videos:
    """A list of grayscale videos with per-frame anomaly labels.

    Attributes:
        frames: One uint8 array `(t_i, H, W)` per video, all of one `(H, W)`.
        labels: One int64 array `(t_i,)` per video: 1 for an anomalous frame.
        names: One name per video (its file or folder name).
        kinds: Optional, one str array `(t_i,)` per video naming the kind of
            anomaly each frame shows (`""` on normal frames), for per-kind
            metrics; `None` when the dataset does not say (the real benchmarks).
    """

    frames: tuple[np.ndarray, ...]
    labels: tuple[np.ndarray, ...]
    names: tuple[str, ...]
    kinds: tuple[np.ndarray, ...] | None = None

    def __post_init__(self):
        if not len(self.frames) == len(self.labels) == len(self.names):
            raise ValueError(
                f"Videos: expected as many label arrays and names as videos. Received: "
                f"{len(self.frames)} videos, {len(self.labels)} labels, {len(self.names)} names"
            )
        for name, frames, labels in zip(self.names, self.frames, self.labels, strict=True):
            if frames.ndim != 3 or frames.dtype != np.uint8:
                raise ValueError(
                    f"Video {name}: expected uint8 frames of shape (t, H, W). "
                    f"Received: {frames.dtype} {frames.shape}"
                )
            if labels.shape != (len(frames),):
                raise ValueError(
                    f"Video {name}: expected one label per frame ({len(frames)}). "
                    f"Received labels of shape {labels.shape}"
                )
        if self.kinds is not None:
            if len(self.kinds) != len(self.frames):
                raise ValueError(
                    f"Videos: expected one kind array per video. Received: {len(self.kinds)} "
                    f"for {len(self.frames)} videos"
                )
            for name, labels, kinds in zip(self.names, self.labels, self.kinds, strict=True):
                if kinds.shape != labels.shape or not np.array_equal(kinds != "", labels == 1):
                    raise ValueError(
                        f"Video {name}: expected a kind on exactly the frames labelled 1. "
                        f"Received kinds {np.unique(kinds).tolist()} of shape {kinds.shape}"
                    )
        shapes = {frames.shape[1:] for frames in self.frames}
        if len(shapes) > 1:
            raise ValueError(f"Videos: expected one frame size. Received: {sorted(shapes)}")


def clip_index(lengths: Sequence[int], clip_length: int = 16, stride: int = 1) -> np.ndarray:
    """Lists the clips of `clip_length` consecutive frames taken every `stride` frames.

    A video with `t` frames gives the clips starting at `0, stride, 2 * stride, ...`
    up to `t - clip_length`; a video shorter than `clip_length` gives none.

    Args:
        lengths: Number of frames of each video.
        clip_length: Frames per clip, positive.
        stride: Frames between the starts of consecutive clips, positive.

    Returns:
        int64 array `(n_clips, 2)` of `(video index, start frame)`, in video order.

    Example:

    ```python
    clip_index([5, 3], clip_length=3, stride=2)  # [[0, 0], [0, 2], [1, 0]]
    ```
    """
    clip_length = check_positive_int("clip_length", clip_length)
    stride = check_positive_int("stride", stride)
    rows = [
        (video, start)
        for video, length in enumerate(lengths)
        for start in range(0, length - clip_length + 1, stride)
    ]
    return np.asarray(rows, np.int64).reshape(-1, 2)


def scale_frames(frames: Array) -> Array:
    """Maps pixel values `0..255`, already cast to float, to `[-1, 1]` (`x / 127.5 - 1`).

    Works on numpy arrays and on tensors alike, so every clip path shares this formula.
    """
    return frames / 127.5 - 1.0


def make_clips(
    videos: Videos, clip_length: int = 16, stride: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Cuts videos into clips scaled to `[-1, 1]`, with the origin of each clip.

    Args:
        videos: The videos.
        clip_length: Frames per clip (16 in MemAE).
        stride: Frames between the starts of consecutive clips of a video.

    Returns:
        `(clips, index)`: clips float32 `(n_clips, clip_length, H, W, 1)` and
        index int64 `(n_clips, 2)` of `(video index, start frame)`; the label of
        frame `f` of clip `i` is `videos.labels[index[i, 0]][index[i, 1] + f]`.

    Example:

    ```python
    train, test = make_moving_mnist(seed=0)
    clips, index = make_clips(test, clip_length=16, stride=4)
    ```
    """
    index = clip_index([len(frames) for frames in videos.frames], clip_length, stride)
    height, width = videos.frames[0].shape[1:] if videos.frames else (0, 0)
    clips = np.empty((len(index), clip_length, height, width, 1), np.float32)
    for i, (video, start) in enumerate(index):
        frames = videos.frames[video][start : start + clip_length]
        clips[i, ..., 0] = scale_frames(frames.astype(np.float32))
    return clips, index
