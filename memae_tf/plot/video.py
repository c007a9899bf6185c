"""Videos over time: regularity curves, score-over-time plots and error overlays."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from memae_tf.plot._common import ANOMALY_COLOUR, ERROR_QUANTILE, binary_labels, new_figure


def _anomalous_runs(labels: np.ndarray) -> list[tuple[int, int]]:
    """`(first, last)` frame of each run of consecutive 1-labels."""
    padded = np.concatenate([[0], labels, [0]])
    changes = np.flatnonzero(np.diff(padded))
    return [(int(start), int(stop) - 1) for start, stop in zip(changes[::2], changes[1::2],
                                                                strict=True)]


def _per_video(curves: Any) -> list[np.ndarray]:
    """One 1-D array per video from an array (one video) or a sequence of arrays."""
    if len(curves) and np.ndim(curves[0]) == 0:  # the values of a single video
        curves = [curves]
    return [np.asarray(curve, dtype=np.float64) for curve in curves]


def regularity_curves(
    regularity: Any,
    labels: Any,
    videos: Sequence[str] | None = None,
    title: str | None = None,
) -> Figure:
    """Regularity score over time, one panel per video, anomalous frames shaded.

    The regularity score of the paper is `1 - min-max normalised error` per
    video (`memae_tf.evaluation.regularity_scores`): it dips where a video
    turns abnormal. The frames labelled anomalous are shaded in red.

    Args:
        regularity: Per-frame curves of one video (a 1-D array), of several
            videos (a sequence of arrays), or `{name: curves}` for several
            detectors on the same videos.
        labels: Frame labels (1 = anomalous), one array per video, shaped like
            the curves.
        videos: Optional video names (panel titles).
        title: Optional figure title.

    Returns:
        The Figure, one axes per video.
    """
    named = regularity if isinstance(regularity, Mapping) else {"regularity": regularity}
    curves = {name: _per_video(value) for name, value in named.items()}
    frame_labels = [binary_labels(v, need_both=False) for v in _per_video(labels)]
    for name, per_video in curves.items():
        if [len(c) for c in per_video] != [len(v) for v in frame_labels]:
            raise ValueError(
                f"`regularity[{name!r}]` must have one value per labelled frame. Received "
                f"curve lengths {[len(c) for c in per_video]} for label lengths "
                f"{[len(v) for v in frame_labels]}"
            )
    if videos is not None and len(videos) != len(frame_labels):
        raise ValueError(f"Expected {len(frame_labels)} video names. Received: {len(videos)}")
    fig = new_figure(10.0, 0.6 + 2.3 * len(frame_labels))
    axes = fig.subplots(len(frame_labels), 1, squeeze=False)[:, 0]
    for v, ax in enumerate(axes):
        for run, (start, stop) in enumerate(_anomalous_runs(frame_labels[v])):
            ax.axvspan(start - 0.5, stop + 0.5, color=ANOMALY_COLOUR, alpha=0.18, linewidth=0,
                       label="anomalous frames (ground truth)" if run == 0 else None)
        for name, per_video in curves.items():
            ax.plot(np.arange(len(per_video[v])), per_video[v], label=name)
        ax.set(ylabel="regularity score", xlim=(-0.5, len(frame_labels[v]) - 0.5),
               title=None if videos is None else videos[v])
        ax.legend(loc="lower left", fontsize="small")
    axes[-1].set_xlabel("frame")
    if title:
        fig.suptitle(title)
    return fig


def score_over_time(
    scores: Any,
    labels: Any = None,
    threshold: float | None = None,
    fps: float | None = None,
    title: str | None = None,
) -> Figure:
    """Anomaly score of each frame over time, for one video or stream.

    Frames without a score (NaN: the first `clip_length - 1` frames of a
    stream) are left as a gap.

    Args:
        scores: Per-frame scores `(t,)`, or `{name: scores}` for several detectors.
        labels: Optional frame labels `(t,)` (1 = anomalous), shaded in red.
        threshold: Optional decision threshold, drawn as a dashed line.
        fps: Frames a second; when given the x axis is in seconds.
        title: Optional figure title.

    Returns:
        The Figure.

    Example:

    ```python
    fig = score_over_time(result.scores, threshold=detector.threshold_, fps=10)
    fig.savefig("scores.png")
    ```
    """
    named = scores if isinstance(scores, Mapping) else {"score": scores}
    curves = {name: np.asarray(value, np.float64).reshape(-1) for name, value in named.items()}
    lengths = {len(curve) for curve in curves.values()}
    if len(lengths) != 1:
        raise ValueError(f"Expected curves of one length. Received lengths {sorted(lengths)}")
    (length,) = lengths
    if fps is not None and not fps > 0:
        raise ValueError(f"Expected a positive `fps`. Received: fps={fps!r}")
    scale = 1.0 / fps if fps else 1.0
    fig = new_figure(10.0, 3.0)
    ax = fig.subplots()
    if labels is not None:
        frame_labels = binary_labels(labels, length, need_both=False)
        for run, (start, stop) in enumerate(_anomalous_runs(frame_labels)):
            ax.axvspan((start - 0.5) * scale, (stop + 0.5) * scale, color=ANOMALY_COLOUR,
                       alpha=0.18, linewidth=0,
                       label="anomalous frames (ground truth)" if run == 0 else None)
    for name, curve in curves.items():
        ax.plot(np.arange(length) * scale, curve, label=name)
    if threshold is not None:
        ax.axhline(threshold, color="grey", linestyle="--", label="threshold")
    ax.set(xlabel="time (s)" if fps else "frame", ylabel="anomaly score",
           xlim=(-0.5 * scale, (length - 0.5) * scale))
    ax.legend(loc="upper left", fontsize="small")
    if title:
        ax.set_title(title)
    return fig


def error_overlay(frames: np.ndarray, error_maps: np.ndarray, vmax: float | None = None,
                  alpha: float = 0.6) -> np.ndarray:
    """Grey frames with their reconstruction error laid over in red, as RGB uint8.

    Each pixel's red channel is raised towards 255 in proportion to its error,
    `min(error / vmax, 1) * alpha`; green and blue keep the grey level scaled by
    the rest, so error-free pixels stay grey.

    Args:
        frames: uint8 `(t, H, W)` grey frames.
        error_maps: Non-negative errors `(t, H, W)`; NaN (no score) counts as 0.
        vmax: The error shown at full strength; None takes the 99.9% quantile
            of the finite errors (one scale for all frames).
        alpha: Strength of the overlay in `[0, 1]`.

    Returns:
        uint8 `(t, H, W, 3)`.
    """
    frames = np.asarray(frames)
    error_maps = np.nan_to_num(np.asarray(error_maps, np.float64), nan=0.0)
    if frames.shape != error_maps.shape or frames.ndim != 3:
        raise ValueError(f"Expected frames and error maps of one shape (t, H, W). Received: "
                         f"{frames.shape} and {error_maps.shape}")
    if vmax is None:
        vmax = float(np.quantile(error_maps, ERROR_QUANTILE)) if error_maps.size else 0.0
    strength = alpha * np.clip(error_maps / vmax, 0.0, 1.0) if vmax > 0 else 0.0 * error_maps
    grey = frames.astype(np.float64)
    red = grey * (1 - strength) + 255.0 * strength
    rest = grey * (1 - strength)
    return np.rint(np.stack([red, rest, rest], axis=-1)).astype(np.uint8)
