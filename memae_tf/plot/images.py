"""Inputs, reconstructions and error maps of the most and least anomalous samples."""

from __future__ import annotations

from collections.abc import Mapping
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


def reconstruction_grid(
    detectors: Mapping[str, Any],
    x: Any,
    labels: Any = None,
    n: int = 4,
    rank_by: str | None = None,
    title: str | None = None,
    batch_size: int = 256,
) -> Figure:
    """Inputs, reconstructions and error maps, several detectors side by side.

    The samples of `x` are ranked by the score of one detector (`rank_by`,
    default the first); the columns show its `n` most anomalous samples, then
    its `n` least anomalous ones. The first row is the input; each detector
    adds a row of reconstructions and a row of squared-error maps
    (`score_map`), all error maps on one colour scale with one colour bar, and
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
        batch_size: Samples per forward pass.

    Returns:
        The Figure: `1 + 2 × len(detectors)` rows of `2n` image axes, and the
        colour bar of the error maps.
    """
    if not isinstance(detectors, Mapping) or not detectors:
        raise ValueError("`detectors` must be a non-empty mapping {name: detector}.")
    rank_by = next(iter(detectors)) if rank_by is None else rank_by
    if rank_by not in detectors:
        raise ValueError(f"`rank_by` must name one of {list(detectors)}. Received: {rank_by!r}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"`n` must be a positive integer. Received: n={n!r}")
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
        rows.append((f"{name}\nsquared error", [error_image(m) for m in maps],
                     [float(np.mean(m)) for m in maps]))
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
    fig.colorbar(mappable, ax=error_axes, label="squared error", shrink=0.9)
    fig.suptitle(title or f"Most and least anomalous samples (ranked by {rank_by})")
    return fig
