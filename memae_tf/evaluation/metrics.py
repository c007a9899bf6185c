"""Anomaly detection metrics, all computed with scikit-learn.

Every function takes `labels` (1 = anomaly, 0 = normal) and `scores` (higher =
more anomalous), the convention of `MemAE.score` and of the baselines.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn import metrics

from memae_tf.thresholds import above_threshold


def check_scored_labels(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validates one 0/1 label and one finite score per sample.

    Args:
        labels: 0/1 labels, shape `(n,)`.
        scores: Anomaly scores, shape `(n,)`.

    Returns:
        `(labels, scores)` as int64 and float64 vectors.

    Raises:
        ValueError: If the shapes differ, labels are not 0/1, scores are not
            finite, or only one class is present (ROC metrics are undefined).
    """
    labels = np.asarray(labels).reshape(-1)
    scores = np.asarray(scores, np.float64).reshape(-1)
    if labels.shape != scores.shape:
        raise ValueError(
            "Expected one score per label. Received: "
            f"labels of shape {labels.shape}, scores of shape {scores.shape}"
        )
    if not np.isin(labels, (0, 1)).all():
        raise ValueError(
            f"Expected labels 0 (normal) or 1 (anomaly). Received values: {np.unique(labels)}"
        )
    if not np.isfinite(scores).all():
        raise ValueError(f"Expected finite scores. Received {np.sum(~np.isfinite(scores))} "
                         "NaN or Inf values")
    if len(np.unique(labels)) != 2:
        raise ValueError(
            "Expected both normal (0) and anomalous (1) samples. Received only "
            f"label(s) {np.unique(labels).tolist()} in {len(labels)} samples"
        )
    return labels.astype(np.int64), scores


def auroc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (`sklearn.metrics.roc_auc_score`).

    Args:
        labels: 0/1 labels, 1 = anomaly.
        scores: Anomaly scores, higher = more anomalous.

    Returns:
        AUROC in `[0, 1]`: 1 for a perfect ranking, 0.5 for chance, 0 for a
        reversed one.

    Example:

    >>> auroc([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9])
    1.0
    """
    labels, scores = check_scored_labels(labels, scores)
    return float(metrics.roc_auc_score(labels, scores))


def aupr(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the precision-recall curve of the anomaly class (average precision).

    Args:
        labels: 0/1 labels, 1 = anomaly.
        scores: Anomaly scores, higher = more anomalous.

    Returns:
        `sklearn.metrics.average_precision_score` with anomalies as positives.

    Example:

    >>> aupr([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9])
    1.0
    """
    labels, scores = check_scored_labels(labels, scores)
    return float(metrics.average_precision_score(labels, scores))


def top_share_threshold(scores: np.ndarray, share: float) -> float:
    """The score above which the top `share` of samples lie: the `(1 - share)` percentile.

    Args:
        scores: Anomaly scores.
        share: Fraction of samples to flag, in `(0, 1)`.

    Returns:
        `np.percentile(scores, 100 * (1 - share))`; samples strictly above it
        are flagged (as in DAGMM's and MemAE's KDDCUP evaluation).
    """
    if not (isinstance(share, (int, float)) and 0.0 < share < 1.0):
        raise ValueError(f"Expected `share` in (0, 1). Received: share={share!r}")
    return float(np.percentile(np.asarray(scores, np.float64), 100.0 * (1.0 - share)))


def threshold_metrics(labels: np.ndarray, scores: np.ndarray, share: float) -> dict[str, float]:
    """Precision, recall and F1 of the anomaly class when the top `share` of scores is flagged.

    Args:
        labels: 0/1 labels, 1 = anomaly.
        scores: Anomaly scores, higher = more anomalous.
        share: Fraction flagged, usually the anomaly share of the test set
            (20% for KDDCUP99).

    Returns:
        Dict with `threshold`, `precision`, `recall` and `f1`
        (`sklearn.metrics.precision_recall_fscore_support`, binary, anomalies
        positive; 0 where undefined).

    Example:

    >>> m = threshold_metrics([0, 0, 0, 1, 1], [0.1, 0.2, 0.9, 0.8, 0.3], share=0.4)
    >>> m["precision"], m["recall"]
    (0.5, 0.5)
    """
    labels, scores = check_scored_labels(labels, scores)
    return metrics_at_threshold(labels, scores, top_share_threshold(scores, share))


def metrics_at_threshold(labels: np.ndarray, scores: np.ndarray,
                         threshold: float) -> dict[str, float]:
    """Precision, recall and F1 of the anomaly class when scores above `threshold` are flagged.

    Returns:
        Dict with `threshold`, `precision`, `recall` and `f1` (binary,
        anomalies positive; 0 where undefined).

    Example:

    >>> metrics_at_threshold([0, 1, 1], [0.1, 0.5, 0.9], threshold=0.6)["recall"]
    0.5
    """
    labels, scores = check_scored_labels(labels, scores)
    predicted = above_threshold(scores, threshold).astype(np.int64)
    precision, recall, f1, _ = metrics.precision_recall_fscore_support(
        labels, predicted, average="binary", pos_label=1, zero_division=0
    )
    return {
        "threshold": float(threshold),
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
    }


def ranking_metrics(labels: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """AUROC and AUPR together, as stored for every experiment task."""
    return {"auroc": auroc(labels, scores), "aupr": aupr(labels, scores)}


@dataclass(frozen=True)
class Evaluation:
    """The outcome of one protocol task: the test scores, their labels and the metrics.

    Attributes:
        scores: Anomaly scores of the evaluated test samples (or frames).
        labels: Their 0/1 labels.
        metrics: Metric name → value (always `auroc` and `aupr`).
        info: Counts and settings worth recording (sample counts, shares).
    """

    scores: np.ndarray
    labels: np.ndarray
    metrics: dict[str, float]
    info: dict[str, Any] = field(default_factory=dict)
