"""Where a model's AUROC comes from: how far its anomaly scores sit above its normal ones.

Reads the stored test scores of `memae experiment` runs (`OUT/scores/`) and
prints, per model, the medians of the normal and the anomalous scores, their
gap, the spread (interquartile range) of the normal scores and the gap in
units of that spread, each the mean over every unit (class, split) of every
run given. Comparing a memory network with the AE of the same preset shows
whether the memory raises the error of anomalies more than that of normal
samples, which is what it is for.

Example:

```
python benchmarks/score_shift.py runs/s7b/mnist runs/s7b/mnist-nonspar
```
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from memae_tf.evaluation.metrics import auroc
from memae_tf.evaluation.report import ordered_tasks, unit_scores

COLUMNS = ("normal median", "anomaly median", "gap", "normal IQR", "gap / IQR", "AUROC")


def score_shift(labels: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """Median normal and anomalous score, their gap, and the gap over the normal IQR.

    Args:
        labels: `(n,)` with 1 for anomalies and 0 for normal samples, both present.
        scores: `(n,)` anomaly scores, higher meaning more anomalous.

    Returns:
        A dict keyed by `COLUMNS`.

    Example:

    >>> score_shift(np.array([0, 0, 0, 0, 1]), np.array([1.0, 2.0, 3.0, 4.0, 9.0]))["gap"]
    6.5
    """
    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores, dtype=np.float64)
    normal, anomalous = scores[~labels], scores[labels]
    if len(normal) == 0 or len(anomalous) == 0:
        raise ValueError(f"Expected normal and anomalous samples. Received: {len(normal)} "
                         f"normal, {len(anomalous)} anomalous")
    normal_median, anomaly_median = float(np.median(normal)), float(np.median(anomalous))
    low, high = np.percentile(normal, [25, 75])
    gap, iqr = anomaly_median - normal_median, float(high - low)
    return dict(zip(COLUMNS, (normal_median, anomaly_median, gap, iqr, gap / max(iqr, 1e-12),
                              auroc(labels.astype(int), scores)), strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dirs", nargs="+", help="`memae experiment` output folders")
    args = parser.parse_args()
    rows: dict[str, list[dict[str, float]]] = {}
    for run in map(Path, args.run_dirs):
        tasks = json.loads((run / "results.json").read_text())["tasks"]
        for unit in ordered_tasks(tasks)[1]:
            labels, scores = unit_scores(run, tasks, unit)
            for model, values in scores.items():
                rows.setdefault(model, []).append(score_shift(labels, values))
    print("| model | " + " | ".join(COLUMNS) + " | units |")
    print("|---|" + "---|" * (len(COLUMNS) + 1))
    for model, shifts in rows.items():
        means = [np.mean([shift[column] for shift in shifts]) for column in COLUMNS]
        print(f"| {model} | " + " | ".join(f"{value:.4g}" for value in means)
              + f" | {len(shifts)} |")


if __name__ == "__main__":
    main()
