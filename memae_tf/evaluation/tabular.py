"""Tabular protocol (KDDCUP99 and other tables), as in DAGMM and the MemAE paper.

One run, seeded by `(seed, run)`:

1. the rows are split at random into a training half and a test half
   (`train_fraction`, 0.5 by default);
2. the model trains on the *normal* rows of the training half only; the numeric
   columns are min-max scaled with the minimum and maximum of those rows
   (`memae_tf.data.MinMaxScaler`), and the same scaling is applied to the test half;
3. the test half is scored; the top `q` of scores is flagged as anomalous, with
   `q` the anomaly share (20% for KDDCUP99, or by default the share of
   anomalies in the test half); precision, recall and F1 of the anomaly class
   at that threshold are reported, with AUROC and AUPR.

The paper's figures are means over R such runs; the experiment runner stores
one task per run and averages them.
"""

from __future__ import annotations

import numpy as np

from memae_tf.data import MinMaxScaler, TabularData
from memae_tf.evaluation.experiment_models import Scorer
from memae_tf.evaluation.metrics import Evaluation, ranking_metrics, threshold_metrics


def random_split(
    n: int, seed: int, run: int = 0, train_fraction: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    """Row indices of a random training / test split, seeded by `(seed, run)`.

    Args:
        n: Number of rows.
        seed: Experiment seed.
        run: Run number; each run draws its own split.
        train_fraction: Share of rows in the training part, in (0, 1).

    Returns:
        `(train_rows, test_rows)`, each sorted; together all rows once.

    Example:

    >>> train, test = random_split(10, seed=0)
    >>> len(train), len(test), sorted([*train, *test]) == list(range(10))
    (5, 5, True)
    """
    if not 0.0 < train_fraction < 1.0:
        raise ValueError(
            f"Expected `train_fraction` in (0, 1). Received: train_fraction={train_fraction!r}"
        )
    order = np.random.default_rng((seed, run)).permutation(n)
    cut = round(train_fraction * n)
    return np.sort(order[:cut]), np.sort(order[cut:])


def evaluate_tabular(
    scorer: Scorer,
    data: TabularData,
    seed: int = 0,
    run: int = 0,
    train_fraction: float = 0.5,
    anomaly_share: float | None = None,
) -> Evaluation:
    """One seeded run of the tabular protocol (see the module docstring).

    Args:
        scorer: Unfitted model taking float32 rows `(n, d)`.
        data: The encoded table (`y` 1 = anomaly).
        seed: Experiment seed.
        run: Run number (selects the split).
        train_fraction: Share of rows in the training half.
        anomaly_share: `q`, the share of test rows flagged; None uses the
            anomaly share of the test half.

    Returns:
        An `Evaluation` with `auroc`, `aupr`, `precision`, `recall`, `f1` and
        `threshold` (on the scores).

    Example:

    ```python
    data = load_kddcup99(download=False)
    result = evaluate_tabular(make_scorer("memae", "kdd", {"input_shape": (118,)}), data,
                              anomaly_share=0.2)
    result.metrics["f1"]
    ```
    """
    train_rows, test_rows = random_split(len(data.y), seed, run, train_fraction)
    normal_train = train_rows[data.y[train_rows] == 0]
    if len(normal_train) == 0:
        raise ValueError("The training half holds no normal row; check the labels.")
    scaler = MinMaxScaler(columns=data.numeric_columns).fit(data.x[normal_train])
    labels = data.y[test_rows]
    share = float(labels.mean()) if anomaly_share is None else anomaly_share
    scorer.fit(scaler.transform(data.x[normal_train]))
    scores = np.asarray(scorer.score(scaler.transform(data.x[test_rows])), np.float64)
    return Evaluation(
        scores,
        labels,
        {**ranking_metrics(labels, scores), **threshold_metrics(labels, scores, share)},
        {"n_train": len(normal_train), "n_test": len(test_rows), "flagged_share": share,
         "anomaly_share": float(labels.mean())},
    )
