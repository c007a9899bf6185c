"""Decision thresholds on anomaly scores: a quantile of the scores of reference data."""

from __future__ import annotations

import numpy as np


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
    if fpr is not None and contamination is not None:
        raise ValueError("Give `fpr` or `contamination`, not both.")
    name, share = ("contamination", contamination) if contamination is not None else (
        "fpr", 0.05 if fpr is None else fpr)
    if isinstance(share, bool) or not (isinstance(share, (int, float)) and 0.0 < share < 1.0):
        raise ValueError(f"`{name}` must be a float in (0, 1). Received: {name}={share!r}")
    return float(np.quantile(scores, 1.0 - share))
