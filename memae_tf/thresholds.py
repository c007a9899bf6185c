"""Decision thresholds on anomaly scores: a quantile of the scores of reference data."""

from __future__ import annotations

import numbers

import numpy as np

from memae_tf.common.contract import REFERENCE_QUANTILE_COUNT


def quantile_threshold(
    scores: np.ndarray, fpr: float | None = None, contamination: float | None = None
) -> float:
    """Returns the score above which samples are flagged, from the scores of reference data.

    Give at most one of:
        fpr: the scores are of normal data; the threshold is their `(1 - fpr)`
            quantile, so about `fpr` of normal samples are flagged.
        contamination: the data holds this share of anomalies; the threshold is
            the `(1 - contamination)` quantile of its scores.
    With neither, `fpr=0.05`.

    Raises:
        ValueError: If both are given, or the share is not in (0, 1).

    Example:

    >>> quantile_threshold(np.arange(101.0), fpr=0.1)
    90.0
    """
    return float(np.quantile(scores, 1.0 - flagged_share(fpr, contamination)))


def above_threshold(scores: np.ndarray, threshold: float) -> np.ndarray:
    """Flags the scores above a threshold: `score > threshold`, compared in float64.

    The rule of `MemAE.predict` and of the exported `is_anomaly` outputs. NumPy
    compares a float32 array with a Python float in float32 (NEP 50), which
    first rounds the threshold to the nearest float32: a score just above the
    threshold but equal to its rounding would then not be flagged. Compared in
    float64, every float32 score is compared with the threshold exactly.

    Args:
        scores: Scores of any shape and float dtype.
        threshold: The decision threshold.

    Returns:
        Bool array of the shape of `scores`.

    Example:

    >>> above_threshold(np.array([0.1], np.float32), 0.1)  # float32 0.1 is 0.10000000149
    array([ True])
    """
    return np.asarray(scores, dtype=np.float64) > np.float64(threshold)


def flagged_share(fpr: float | None = None, contamination: float | None = None) -> float:
    """Returns the share of samples a quantile threshold flags: `fpr`, `contamination` or 0.05.

    Raises:
        ValueError: If both are given, or the share is not in (0, 1).

    Example:

    >>> flagged_share(contamination=0.1)
    0.1
    """
    if fpr is not None and contamination is not None:
        raise ValueError("Give `fpr` or `contamination`, not both.")
    name, share = ("contamination", contamination) if contamination is not None else (
        "fpr", 0.05 if fpr is None else fpr)
    # NumPy scalars (a share read from an array, `np.float32(0.1)`) are real numbers too;
    # bools are not shares.
    if isinstance(share, (bool, np.bool_)) or not (
            isinstance(share, numbers.Real) and 0.0 < share < 1.0):
        raise ValueError(f"`{name}` must be a float in (0, 1). Received: {name}={share!r}")
    return float(share)


def reference_quantiles(scores: np.ndarray) -> np.ndarray:
    """Returns the reference distribution of scores the export carries for monitoring.

    The `REFERENCE_QUANTILE_COUNT` (101) quantiles at levels 0, 0.01, ..., 1
    (NumPy's default linear interpolation), float64, non-decreasing.

    Example:

    >>> reference_quantiles(np.arange(201.0))[[0, 50, 100]]
    array([  0., 100., 200.])
    """
    levels = np.linspace(0.0, 1.0, REFERENCE_QUANTILE_COUNT)
    return np.quantile(np.asarray(scores, dtype=np.float64), levels)
