"""Videos over time: regularity curves with the anomalous frames shaded, error heat-maps."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from memae_tf.plot._common import (
    ERROR_CMAP,
    bare,
    binary_labels,
    display_image,
    error_image,
    error_vmax,
    new_figure,
)

_ANOMALY_COLOUR = "tab:red"


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
            ax.axvspan(start - 0.5, stop + 0.5, color=_ANOMALY_COLOUR, alpha=0.18, linewidth=0,
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


def error_heatmaps(
    frames: Any,
    error_maps: Any,
    frame_indices: Sequence[int] | None = None,
    labels: Any = None,
    input_range: tuple[float, float] = (0.0, 255.0),
    title: str | None = None,
) -> Figure:
    """Frames of a video above their reconstruction-error heat-maps.

    Args:
        frames: `(T, H, W[, 1])` frames of one video.
        error_maps: `(T, H, W[, C])` squared reconstruction error of each frame,
            e.g. the centre frame of `score_map` of the clip centred on it.
        frame_indices: Frames to show (default: 6 evenly spaced ones).
        labels: Optional `(T,)` frame labels (1 = anomalous), shown in red.
        input_range: Value range of `frames` (uint8 frames: `(0, 255)`).
        title: Optional figure title.

    Returns:
        The Figure: a row of frames, a row of heat-maps on one colour scale,
        and its colour bar.
    """
    frames = np.asarray(frames)
    error_maps = np.asarray(error_maps, dtype=np.float32)
    if frames.ndim not in (3, 4) or len(frames) != len(error_maps):
        raise ValueError(
            "Expected frames (T, H, W[, 1]) and one error map per frame. Received: "
            f"frames {frames.shape}, error_maps {error_maps.shape}"
        )
    if labels is not None:
        labels = binary_labels(labels, len(frames), need_both=False)
    if frame_indices is None:
        frame_indices = np.linspace(0, len(frames) - 1, min(6, len(frames))).round().astype(int)
    frame_indices = [int(t) for t in frame_indices]
    if not frame_indices or min(frame_indices) < 0 or max(frame_indices) >= len(frames):
        raise ValueError(f"`frame_indices` must be frames in [0, {len(frames)}). Received: "
                         f"{frame_indices}")
    maps = [error_image(error_maps[t]) for t in frame_indices]
    vmax = error_vmax(maps)
    fig = new_figure(1.7 * len(frame_indices) + 1.4, 4.0)
    axes = fig.subplots(2, len(frame_indices), squeeze=False)
    mappable = None
    for c, t in enumerate(frame_indices):
        axes[0, c].imshow(display_image(frames[t], input_range), cmap="gray", vmin=0, vmax=1)
        anomalous = labels is not None and labels[t] == 1
        axes[0, c].set_title(f"frame {t}" + (" (anomalous)" if anomalous else ""), fontsize=8,
                             color=_ANOMALY_COLOUR if anomalous else "black")
        mappable = axes[1, c].imshow(maps[c], cmap=ERROR_CMAP, vmin=0, vmax=vmax)
        axes[1, c].set_xlabel(f"mean {maps[c].mean():.3g}", fontsize=8)
        bare(axes[0, c])
        bare(axes[1, c])
    axes[0, 0].set_ylabel("frame")
    axes[1, 0].set_ylabel("squared error")
    fig.colorbar(mappable, ax=axes[1, :], label="squared error", shrink=0.9)
    if title:
        fig.suptitle(title)
    return fig
