"""Figures of anomaly scores, reconstructions, memory and videos, for notebooks and reports.

Every function returns a `matplotlib.figure.Figure` with its titles, axis
labels, legends and colour bars. The figures are not registered with pyplot: a
notebook shows one when it is the value of a cell, `fig.savefig(path)` writes
it, and nothing piles up in pyplot's figure list when many are made.

- `roc_pr_curves`, `score_histograms`: scores of several detectors on one test set.
- `reconstruction_grid`: inputs, reconstructions and error maps of the most and
  least anomalous samples, one row pair per detector (MemAE next to the AE).
- `memory_items`, `memory_addressing`: the memory decoded as inputs, and how
  it is addressed (`memae_tf.inspection` computes the numbers).
- `regularity_curves`, `error_heatmaps`: video frames over time;
  `score_over_time` and `error_overlay` (RGB frames, not a figure): one scored
  video or stream (`memae score-video`).

The functions take arrays, and objects with the detector methods they call
(`score`, `reconstruct`, `score_map`, `preprocess`, `input_range`), so that
this package imports nothing else of memae_tf.
"""

from memae_tf.plot.curves import roc_pr_curves, score_histograms
from memae_tf.plot.images import error_heatmaps, reconstruction_grid
from memae_tf.plot.memory import memory_addressing, memory_items
from memae_tf.plot.video import error_overlay, regularity_curves, score_over_time

__all__ = [
    "error_heatmaps",
    "error_overlay",
    "memory_addressing",
    "memory_items",
    "reconstruction_grid",
    "regularity_curves",
    "roc_pr_curves",
    "score_histograms",
    "score_over_time",
]
