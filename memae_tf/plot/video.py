"""Videos over time: regularity curves with the anomalous frames shaded."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from memae_tf.plot._common import ANOMALY_COLOUR, binary_labels, new_figure


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
