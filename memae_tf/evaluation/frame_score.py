"""Frame scores of video clips: which number of a clip's error scores the frame it belongs to.

A video MemAE reconstructs a clip `x` of `L` frames; `e = (x - x̂)²` (or the
model's other error) is its per-pixel error. A clip scores its last frame
(`memae_tf.evaluation.video`, `alignment="end"`), and `frame_score` says how:

- `"clip"`: the mean of `e` over the whole clip (`MemAE.score`);
- `"last"`: the mean of `e` over the clip's last frame only, so an anomaly
  does not spill onto the `L - 1` frames after it;
- `"patch"`: the largest mean of the last frame's `e` over the
  `patch_size × patch_size` windows at a stride of `patch_stride` pixels
  (windows wholly inside the frame): a local error that does not grow with
  the number of objects elsewhere in view;
- `"relative"`: the mean of the last frame's `e` divided by that frame's
  moving content, `mean((x[L-1] - x̄)²) + content_floor`, where `x̄` is the
  clip's per-pixel mean over its `L` frames (computed from the input, not
  the network): the error per unit of what moves;
- `"last_plus_temporal"`: `"last"` plus `temporal_error`, the mean over the
  last frame of `(Δx - Δx̂)²`, where `Δ` is the change from frame `L - 2` to
  frame `L - 1` and `x̂` the reconstruction: it also sees motion the network
  does not reproduce (the score the walkway's development set chose,
  `benchmarks/VIDEO_PROTOCOL.md`). It needs the reconstructions, not only
  the error maps.

Each uses only the clip (the frame and the `L - 1` before it) and its
reconstruction, so each can be computed on a live stream. The detector's
scoring graph computes the same in TensorFlow
(`memae_tf.scoring_graph.clip_frame_scores`) for `memae score-video`, for
the exported `frame_score` signature that `StreamScorer` asks and for the
experiments (`MemAEScorer.frame_score_table`, one pass of the network for
every frame score); this NumPy version scores stored arrays: error maps and
reconstructions already computed (`evaluate_video` with a scorer that gives
only those).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from memae_tf.choices import FRAME_SCORE_CONTENT_FLOOR as CONTENT_FLOOR
from memae_tf.choices import FRAME_SCORE_PATCH_SIZE as PATCH_SIZE
from memae_tf.choices import FRAME_SCORE_PATCH_STRIDE as PATCH_STRIDE
from memae_tf.common.checks import check_choice, check_positive_int
from memae_tf.common.contract import FRAME_SCORES as FRAME_SCORES


def _frames(array: np.ndarray, name: str) -> np.ndarray:
    array = np.asarray(array, np.float64)
    if array.ndim == 5 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim != 4:
        raise ValueError(f"Expected `{name}` of shape (n, clip_length, H, W) or "
                         f"(n, clip_length, H, W, 1). Received: {array.shape}")
    return array


def max_patch_mean(images: np.ndarray, patch_size: int = PATCH_SIZE,
                   patch_stride: int = PATCH_STRIDE) -> np.ndarray:
    """The largest mean over the square windows of each image.

    Windows of `patch_size × patch_size` pixels start every `patch_stride`
    pixels from the top-left corner and lie wholly inside the image; a side
    shorter than `patch_size` takes one window of its full length.

    Args:
        images: float array `(n, H, W)`.
        patch_size: Window side in pixels, positive.
        patch_stride: Pixels between window starts, positive.

    Returns:
        float64 array `(n,)`.

    Example:

    >>> image = np.zeros((1, 4, 4)); image[0, 3, 3] = 4.0
    >>> max_patch_mean(image, patch_size=2, patch_stride=2)
    array([1.])
    >>> max_patch_mean(image, patch_size=2, patch_stride=3)
    array([0.])
    """
    patch_size = check_positive_int("patch_size", patch_size)
    patch_stride = check_positive_int("patch_stride", patch_stride)
    images = np.asarray(images, np.float64)
    if images.ndim != 3:
        raise ValueError(f"Expected images of shape (n, H, W). Received: {images.shape}")
    window = (min(patch_size, images.shape[1]), min(patch_size, images.shape[2]))
    windows = np.lib.stride_tricks.sliding_window_view(images, window, axis=(1, 2))
    windows = windows[:, ::patch_stride, ::patch_stride]
    return windows.mean(axis=(-2, -1)).reshape(len(images), -1).max(axis=1)


def temporal_error(clips: np.ndarray, reconstructions: np.ndarray) -> np.ndarray:
    """Mean squared error of each clip's last frame-to-frame change, `mean((Δx - Δx̂)²)`.

    `Δ` is the change from frame `L - 2` to frame `L - 1`; the mean is over
    the last frame's pixels (and channels).

    Args:
        clips: The model's input clips `(n, L, H, W)` or `(n, L, H, W, 1)`, `L >= 2`.
        reconstructions: Their reconstructions, shaped like `clips`.

    Returns:
        float64 array `(n,)`.

    Example:

    >>> clips = np.zeros((1, 2, 1, 2)); clips[0, 1, 0, 0] = 1.0
    >>> temporal_error(clips, np.zeros_like(clips))
    array([0.5])
    """
    clips, reconstructions = _frames(clips, "clips"), _frames(reconstructions, "reconstructions")
    if clips.shape != reconstructions.shape or clips.shape[1] < 2:
        raise ValueError(f"Expected clips of at least 2 frames and one reconstruction per clip "
                         f"pixel. Received: clips {clips.shape}, reconstructions "
                         f"{reconstructions.shape}")
    change = clips[:, -1] - clips[:, -2]
    rebuilt_change = reconstructions[:, -1] - reconstructions[:, -2]
    return ((change - rebuilt_change) ** 2).mean(axis=(1, 2))


def clip_frame_scores(
    clips: np.ndarray,
    errors: np.ndarray,
    frame_score: str = "clip",
    patch_size: int = PATCH_SIZE,
    patch_stride: int = PATCH_STRIDE,
    content_floor: float = CONTENT_FLOOR,
    reconstructions: np.ndarray | None = None,
) -> np.ndarray:
    """The score of the frame each clip scores (its last), from the clip's per-pixel error.

    Args:
        clips: The model's input clips `(n, L, H, W)` or `(n, L, H, W, 1)`
            (for `"relative"` and `"last_plus_temporal"`; the other scores
            read only `errors`).
        errors: Per-pixel error of each clip (`MemAE.score_map`), shaped like `clips`.
        frame_score: `"clip"`, `"last"`, `"patch"`, `"relative"` or
            `"last_plus_temporal"` (module docstring).
        patch_size: `"patch"`: window side in pixels.
        patch_stride: `"patch"`: pixels between windows.
        content_floor: `"relative"`: added to the moving content, positive.
        reconstructions: `"last_plus_temporal"` (required there): the clips'
            reconstructions (`MemAE.reconstruct`), shaped like `clips`.

    Returns:
        float64 array `(n,)`, higher = more anomalous.

    Example:

    >>> clips = np.zeros((1, 2, 2, 2)); clips[0, 1, 0, 0] = 2.0
    >>> errors = np.zeros((1, 2, 2, 2)); errors[0, 1] = 0.5
    >>> clip_frame_scores(clips, errors, "clip"), clip_frame_scores(clips, errors, "last")
    (array([0.25]), array([0.5]))
    >>> clip_frame_scores(clips, errors, "relative", content_floor=0.75)
    array([0.5])
    """
    check_choice("frame_score", frame_score, FRAME_SCORES)
    if not content_floor > 0:
        raise ValueError(f"Expected a positive `content_floor`. Received: {content_floor!r}")
    errors = _frames(errors, "errors")
    if frame_score == "clip":
        return errors.mean(axis=(1, 2, 3))
    last = errors[:, -1]
    if frame_score == "last":
        return last.mean(axis=(1, 2))
    if frame_score == "patch":
        return max_patch_mean(last, patch_size, patch_stride)
    if frame_score == "last_plus_temporal":
        if reconstructions is None:
            raise ValueError("Expected `reconstructions` (the clips' reconstructions, shaped "
                             "like `clips`) for frame_score='last_plus_temporal', which scores "
                             "the reconstruction's frame-to-frame change. Received: None")
        return last.mean(axis=(1, 2)) + temporal_error(clips, reconstructions)
    clips = _frames(clips, "clips")
    if clips.shape != errors.shape:
        raise ValueError(f"Expected one error per clip pixel. Received: clips {clips.shape}, "
                         f"errors {errors.shape}")
    content = ((clips[:, -1] - clips.mean(axis=1)) ** 2).mean(axis=(1, 2))
    return last.mean(axis=(1, 2)) / (content + content_floor)


def frame_score_table(
    clips: np.ndarray, errors: np.ndarray, frame_scores: Sequence[str],
    reconstructions: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """`clip_frame_scores` of several frame scores at once: `{name: (n,) scores}`."""
    return {name: clip_frame_scores(clips, errors, name, reconstructions=reconstructions)
            for name in frame_scores}
