"""Image grids: inputs, reconstructions and error maps; video frames and their error heat-maps."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from memae_tf.common.checks import check_positive_int
from memae_tf.plot._common import (
    ANOMALY_COLOUR,
    ERROR_CMAP,
    bare,
    binary_labels,
    display_image,
    error_image,
    error_vmax,
    new_figure,
)


def _error_name(detector: Any) -> str:
    """What a detector's `score_map` holds: squared, absolute errors or 1 − SSIM."""
    names = {"mse": "squared error", "l1": "absolute error", "ssim": "1 − SSIM"}
    return names[getattr(detector, "error", "mse")]


def reconstruction_grid(
    detectors: Mapping[str, Any],
    x: Any,
    labels: Any = None,
    n: int = 4,
    rank_by: str | None = None,
    title: str | None = None,
    batch_size: int | None = None,
) -> Figure:
    """Inputs, reconstructions and error maps, several detectors side by side.

    The samples of `x` are ranked by the score of one detector (`rank_by`,
    default the first); the columns show its `n` most anomalous samples, then
    its `n` least anomalous ones. The first row is the input; each detector
    adds a row of reconstructions and a row of error maps (`score_map`:
    the detector's error per pixel: squared, absolute or 1 − SSIM), all error
    maps on one colour scale with one colour bar, and
    each map labelled with that detector's score. With MemAE next to a plain
    AE, this shows the paper's point: the memory refuses to rebuild what it
    has not stored, so anomalies light up.

    Args:
        detectors: `{name: detector}`; each needs `score`, `reconstruct`,
            `score_map`, `preprocess` and `input_range` (a `MemAE`).
        x: Images `(m, H, W[, C])` or clips `(m, T, H, W, C)` (their centre
            frame is shown), as the detectors take them.
        labels: Optional `(m,)` ground truth (1 = anomaly), shown in the titles.
        n: Samples in each group (most / least anomalous).
        rank_by: Name of the detector whose scores rank the samples.
        title: Optional figure title.
        batch_size: Samples per forward pass (None: as `MemAE.score` chooses).

    Returns:
        The Figure: `1 + 2 × len(detectors)` rows of `2n` image axes, and the
        colour bar of the error maps.
    """
    if not isinstance(detectors, Mapping) or not detectors:
        raise ValueError("`detectors` must be a non-empty mapping {name: detector}.")
    rank_by = next(iter(detectors)) if rank_by is None else rank_by
    if rank_by not in detectors:
        raise ValueError(f"`rank_by` must name one of {list(detectors)}. Received: {rank_by!r}")
    n = check_positive_int("n", n)
    ranker = detectors[rank_by]
    inputs = ranker.preprocess(x)
    if inputs.ndim not in (4, 5):
        raise ValueError(
            "reconstruction_grid needs images (m, H, W, C) or clips (m, T, H, W, C). "
            f"Received inputs of shape {inputs.shape}"
        )
    if labels is not None:
        labels = binary_labels(labels, len(inputs), need_both=False)
    order = np.argsort(ranker.score(inputs, batch_size=batch_size), kind="stable")
    n = min(n, len(order))
    chosen = np.concatenate([order[::-1][:n], order[:n]])
    samples = inputs[chosen]

    rows: list[tuple[str, list[np.ndarray], list[float] | None]] = [
        ("input", [display_image(s, ranker.input_range) for s in samples], None)]
    for name, detector in detectors.items():
        reconstructions = detector.reconstruct(samples, batch_size=batch_size)
        maps = detector.score_map(samples, batch_size=batch_size)
        rows.append((f"{name}\nreconstruction",
                     [display_image(r, detector.input_range) for r in reconstructions], None))
        rows.append((f"{name}\n{_error_name(detector)}", [error_image(m) for m in maps],
                     [float(v) for v in detector.score(samples, batch_size=batch_size)]))
    vmax = error_vmax([image for _, images, scores in rows if scores for image in images])

    fig = new_figure(1.45 * len(chosen) + 1.6, 1.45 * len(rows) + 0.6)
    axes = fig.subplots(len(rows), len(chosen), squeeze=False)
    error_axes, mappable = [], None
    for r, (row_title, images, scores) in enumerate(rows):
        for c, image in enumerate(images):
            ax = axes[r, c]
            if scores is None:
                ax.imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=1)
            else:
                mappable = ax.imshow(image, cmap=ERROR_CMAP, vmin=0, vmax=vmax)
                ax.set_xlabel(f"score {scores[c]:.4g}", fontsize=8)
                error_axes.append(ax)
            bare(ax)
        axes[r, 0].set_ylabel(row_title, fontsize=9)
    for c in range(len(chosen)):
        group = "most" if c < n else "least"
        rank = c + 1 if c < n else c - n + 1
        kind = "" if labels is None else (
            "\nanomaly" if labels[chosen[c]] == 1 else "\nnormal")
        axes[0, c].set_title(f"{group} anomalous #{rank}{kind}", fontsize=8)
    names = {_error_name(detector) for detector in detectors.values()}
    fig.colorbar(mappable, ax=error_axes, label=names.pop() if len(names) == 1 else "error",
                 shrink=0.9)
    fig.suptitle(title or f"Most and least anomalous samples (ranked by {rank_by})")
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
                             color=ANOMALY_COLOUR if anomalous else "black")
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
