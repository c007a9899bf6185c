"""Classical baselines run side by side with MemAE: One-Class SVM, Isolation Forest,
Local Outlier Factor (novelty mode) and ECOD (PyOD, the `bench` extra).

All four see the autoencoders' samples flattened to vectors (uint8 images scaled
to [0, 1], whatever a preset's input range: an RBF kernel with `gamma="scale"`
and an isolation forest are unchanged by an affine rescaling of all features;
clips and tabular rows as given). Scores are negated `decision_function`
values (ECOD's own scores, which already rise with abnormality), so that, as for
MemAE, higher means more anomalous.

One-Class SVM training costs O(n²) kernel evaluations, so it trains on a seeded
random subsample of at most `max_train_samples` normal samples (2 000 by
default; MNIST has about 6 000 training images per class). Scoring uses every
test sample.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.ensemble import IsolationForest
from sklearn.neighbors import LocalOutlierFactor
from sklearn.svm import OneClassSVM

from memae_tf.choices import BASELINES as BASELINES
from memae_tf.common.checks import check_choice, check_positive_int


def flatten(x: np.ndarray) -> np.ndarray:
    """Turns samples of any shape into float32 rows; uint8 pixels are scaled to [0, 1]."""
    x = np.asarray(x)
    rows = x.reshape(len(x), -1)
    if x.dtype == np.uint8:
        return rows.astype(np.float32) / np.float32(255.0)
    return rows.astype(np.float32, copy=False)


class SklearnBaseline:
    """A scikit-learn outlier detector behind the `fit(x)` / `score(x)` interface.

    Args:
        estimator: An unfitted estimator with `fit` and `decision_function`.
        max_train_samples: If set, train on a random subsample of this size.
        seed: Seed of the subsample.
        higher_is_normal: Whether `decision_function` rises for normal samples
            (scikit-learn's convention; PyOD's is the opposite).

    Example:

    >>> baseline = make_baseline("iforest", seed=0)
    >>> _ = baseline.fit(np.random.rand(64, 3))
    >>> baseline.score(np.random.rand(5, 3)).shape
    (5,)
    """

    def __init__(self, estimator: Any, max_train_samples: int | None = None, seed: int = 0,
                 higher_is_normal: bool = True):
        max_train_samples = check_positive_int("max_train_samples", max_train_samples,
                                               allow_none=True)
        self.estimator = estimator
        self.max_train_samples = max_train_samples
        self.seed = seed
        self.sign = -1.0 if higher_is_normal else 1.0
        self.n_train_: int | None = None

    def fit(self, x: np.ndarray) -> SklearnBaseline:
        """Fits the estimator on (a subsample of) the normal samples `x`."""
        rows = flatten(x)
        if self.max_train_samples is not None and len(rows) > self.max_train_samples:
            keep = np.random.default_rng(self.seed).choice(
                len(rows), self.max_train_samples, replace=False
            )
            rows = rows[np.sort(keep)]
        self.n_train_ = len(rows)
        self.estimator.fit(rows)
        return self

    def score(self, x: np.ndarray) -> np.ndarray:
        """Anomaly scores, `±decision_function(x)` (higher = more anomalous)."""
        if self.n_train_ is None:
            raise RuntimeError("Call fit() before score().")
        return self.sign * self.estimator.decision_function(flatten(x)).astype(np.float64)


def make_baseline(
    name: str,
    seed: int = 0,
    max_train_samples: int | None = 2000,
    nu: float = 0.1,
    n_estimators: int = 100,
    n_neighbors: int = 20,
) -> SklearnBaseline:
    """Builds a baseline with the settings used in the experiments.

    Args:
        name: `"ocsvm"` (RBF `OneClassSVM(nu=nu, gamma="scale")`), `"iforest"`
            (`IsolationForest(n_estimators, random_state=seed)`), `"lof"`
            (`LocalOutlierFactor(n_neighbors, novelty=True)`) or `"ecod"`
            (PyOD's `ECOD()`, needs `pip install memae-tf[bench]`).
        seed: Random seed (Isolation Forest trees, OCSVM subsample).
        max_train_samples: OCSVM training subsample size (None = all);
            the others always see all samples (Isolation Forest subsamples
            internally, 256 per tree).
        nu: OCSVM bound on the share of training outliers.
        n_estimators: Number of Isolation Forest trees.
        n_neighbors: LOF neighbourhood size.

    Returns:
        An unfitted `SklearnBaseline`.
    """
    check_choice("baseline", name, BASELINES)
    if name == "ocsvm":
        return SklearnBaseline(OneClassSVM(kernel="rbf", nu=nu, gamma="scale"),
                               max_train_samples, seed)
    if name == "iforest":
        return SklearnBaseline(
            IsolationForest(n_estimators=n_estimators, random_state=seed, n_jobs=1), None, seed
        )
    if name == "lof":
        return SklearnBaseline(LocalOutlierFactor(n_neighbors=n_neighbors, novelty=True),
                               None, seed)
    if name == "ecod":
        try:
            from pyod.models.ecod import ECOD
        except ImportError as error:
            raise ImportError(
                "The ecod baseline needs PyOD: pip install 'memae-tf[bench]'."
            ) from error
        return SklearnBaseline(ECOD(), None, seed, higher_is_normal=False)
