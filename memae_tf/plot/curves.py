"""ROC and precision-recall curves, and score histograms, of several detectors."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from sklearn.metrics import (
    average_precision_score,
    precision_recall_curve,
    roc_auc_score,
    roc_curve,
)

from memae_tf.common.checks import check_positive_int
from memae_tf.plot._common import binary_labels, named_arrays, new_figure

# Histograms stop at this quantile of the scores (and include the threshold): the
# far tail would squeeze the bulk of the scores into a few bins.
_HISTOGRAM_QUANTILE = 0.995


def roc_pr_curves(labels: Any, scores: Any, title: str | None = None) -> Figure:
    """ROC and precision-recall curves of several detectors on one test set.

    Left: ROC curves with each detector's AUROC in the legend and the chance
    diagonal. Right: precision-recall curves with the average precision (AP)
    and the chance level (the share of anomalies).

    Args:
        labels: `(n,)` ground truth, 1 = anomaly, 0 = normal.
        scores: `{name: (n,) scores}` (higher = more anomalous), or one array.
        title: Optional figure title.

    Returns:
        The Figure, with two axes: ROC, then precision-recall.

    Example:

    >>> labels = np.array([0, 0, 1, 1])
    >>> fig = roc_pr_curves(labels, {"memae": np.array([0.1, 0.2, 0.8, 0.3])})
    >>> [ax.get_title() for ax in fig.axes]
    ['ROC', 'Precision-recall']
    """
    named = named_arrays(scores, "scores")
    labels = binary_labels(labels, len(next(iter(named.values()))))
    fig = new_figure(10.0, 4.4)
    roc_ax, pr_ax = fig.subplots(1, 2)
    for name, values in named.items():
        if len(values) != len(labels):
            raise ValueError(f"Expected {len(labels)} scores for {name!r}. Received: "
                             f"{len(values)}")
        fpr, tpr, _ = roc_curve(labels, values)
        (line,) = roc_ax.plot(fpr, tpr, label=f"{name} (AUROC {roc_auc_score(labels, values):.3f})")
        precision, recall, _ = precision_recall_curve(labels, values)
        pr_ax.plot(recall, precision, color=line.get_color(), drawstyle="steps-post",
                   label=f"{name} (AP {average_precision_score(labels, values):.3f})")
    roc_ax.plot([0, 1], [0, 1], ":", color="grey", label="chance")
    share = float(labels.mean())
    pr_ax.axhline(share, linestyle=":", color="grey", label=f"chance (anomaly share {share:.2f})")
    roc_ax.set(title="ROC", xlabel="false positive rate", ylabel="true positive rate",
               xlim=(0, 1), ylim=(0, 1.01))
    pr_ax.set(title="Precision-recall", xlabel="recall", ylabel="precision",
              xlim=(0, 1), ylim=(0, 1.01))
    roc_ax.legend(loc="lower right", fontsize="small")
    pr_ax.legend(loc="lower left", fontsize="small")
    if title:
        fig.suptitle(title)
    return fig


def score_histograms(
    labels: Any,
    scores: Any,
    thresholds: float | Mapping[str, float] | None = None,
    bins: int = 50,
    title: str | None = None,
    log_scale: bool = False,
) -> Figure:
    """Score distributions of normal and anomalous samples, one panel per detector.

    Each panel shows density histograms of the normal and anomalous scores on
    shared bins, and the decision threshold as a dashed line. The axis stops
    at the 99.5% quantile of the scores (or at the threshold, if higher);
    scores beyond it are counted in the last bin, and the x label says so.

    Args:
        labels: `(n,)` ground truth (1 = anomaly), or None for unlabelled scores.
        scores: `{name: (n,) scores}`, or one array.
        thresholds: The threshold of each detector (`{name: value}`), one value
            for every panel, or None.
        bins: Number of bins.
        title: Optional figure title.
        log_scale: Log-spaced bins on a log score axis, for heavy-tailed
            scores (positive scores only); bars then show the share of each
            group's samples in a bin.

    Returns:
        The Figure, one axes per detector.
    """
    named = named_arrays(scores, "scores")
    if labels is not None:
        labels = binary_labels(labels, len(next(iter(named.values()))), need_both=False)
    bins = check_positive_int("bins", bins)
    if thresholds is not None and not isinstance(thresholds, Mapping):
        thresholds = dict.fromkeys(named, float(thresholds))
    fig = new_figure(4.2 * len(named), 3.6)
    axes = fig.subplots(1, len(named), squeeze=False)[0]
    for ax, (name, values) in zip(axes, named.items(), strict=True):
        threshold = None if thresholds is None else thresholds.get(name)
        top = float(np.quantile(values, _HISTOGRAM_QUANTILE))
        if threshold is not None:
            top = max(top, float(threshold))
        low = float(values.min())
        if log_scale:
            if low <= 0:
                raise ValueError(f"`log_scale` needs positive scores. Received: min of "
                                 f"{name!r} = {low}")
            edges = np.geomspace(low, top if top > low else low * 10.0, bins + 1)
            ax.set_xscale("log")
        else:
            edges = np.linspace(low, top if top > low else low + 1.0, bins + 1)
            ax.xaxis.set_major_locator(MaxNLocator(5))  # long score labels must not overlap
        shown = np.minimum(values, edges[-1])
        groups = {"scores": shown} if labels is None else {
            f"normal (n={int((labels == 0).sum())})": shown[labels == 0],
            f"anomalous (n={int((labels == 1).sum())})": shown[labels == 1],
        }
        for group, group_values in groups.items():
            if len(group_values):  # log bins differ in width: show shares, not densities
                ax.hist(group_values, bins=edges, density=not log_scale, alpha=0.55,
                        weights=np.full(len(group_values), 1.0 / len(group_values))
                        if log_scale else None, label=group)
        if threshold is not None:
            ax.axvline(threshold, color="black", linestyle="--",
                       label=f"threshold {threshold:.4g}")
        clipped = int((values > edges[-1]).sum())
        note = f" ({clipped} beyond, in the last bin)" if clipped else ""
        ax.set(title=name, xlabel=f"anomaly score{note}",
               ylabel="share of samples" if log_scale else "density")
        ax.legend(loc="upper right", fontsize="small")
    if title:
        fig.suptitle(title)
    return fig
