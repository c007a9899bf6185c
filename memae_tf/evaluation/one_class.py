"""One-class image protocol (MNIST, Fashion-MNIST, CIFAR-10), as in the MemAE paper.

Each class in turn is the normal class: the model trains on the training-split
images of that class only, then scores the whole test split, where the images
of every other class are the anomalies. The result of a task is the AUROC (and
AUPR) of those scores; a dataset's figure is the mean over its 10 classes.

Images can be given to the models as they are (uint8, which the networks
scale into their input range) or after `gcn_minmax` (Deep SVDD's one-class
preprocessing). Optionally the test set is subsampled to a given anomaly share (all normal test
images are kept and anomalies drawn at random, or normal images are drawn when
there are too few anomalies), and training/test sets can be capped for quick
runs. Every draw is seeded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from memae_tf.choices import PREPROCESSING as PREPROCESSING
from memae_tf.data.preprocessing import global_contrast_normalize
from memae_tf.evaluation.experiment_models import Scorer
from memae_tf.evaluation.metrics import Evaluation, ranking_metrics


@dataclass(frozen=True)
class OneClassSplit:
    """The data of one one-class task.

    Attributes:
        x_train: Training images of the normal class.
        x_test: Test images (all classes, or a subsample).
        labels: 1 for test images of another class (anomalies), else 0.
    """

    x_train: np.ndarray
    x_test: np.ndarray
    labels: np.ndarray


def _subsample(rng: np.random.Generator, rows: np.ndarray, size: int) -> np.ndarray:
    if size >= len(rows):
        return rows
    return np.sort(rng.choice(rows, size, replace=False))


def _check_share(anomaly_share: float | None) -> None:
    if anomaly_share is not None and not (
        isinstance(anomaly_share, (int, float)) and 0.0 < anomaly_share < 1.0
    ):
        raise ValueError(
            f"Expected `anomaly_share` to be None or in (0, 1). Received: {anomaly_share!r}"
        )


def one_class_split(
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    normal_class: int,
    anomaly_share: float | None = None,
    max_train: int | None = None,
    max_test: int | None = None,
    seed: int = 0,
) -> OneClassSplit:
    """Builds the training set and the labelled test set of one normal class.

    Args:
        train: `(x_train, y_train)` of the dataset.
        test: `(x_test, y_test)` of the dataset.
        normal_class: The class treated as normal.
        anomaly_share: If given, the share of anomalies in the returned test
            set (e.g. 0.5); None keeps the natural share (90% for 10 balanced
            classes).
        max_train: Cap on training images (a seeded random subset).
        max_test: Cap on test images (a seeded random subset, after the share
            is applied).
        seed: Seed of every random draw.

    Returns:
        A `OneClassSplit`.

    Raises:
        ValueError: If the class has no training or no test image, or the
            share is outside (0, 1).

    Example:

    >>> x, y = np.arange(20).reshape(10, 2), np.array([0, 1] * 5)
    >>> split = one_class_split((x, y), (x, y), normal_class=1)
    >>> split.x_train.shape, int(split.labels.sum())
    ((5, 2), 5)
    """
    _check_share(anomaly_share)
    (x_train, y_train), (x_test, y_test) = train, test
    rng = np.random.default_rng((seed, int(normal_class)))
    train_rows = np.flatnonzero(np.asarray(y_train) == normal_class)
    normal = np.flatnonzero(np.asarray(y_test) == normal_class)
    anomalous = np.flatnonzero(np.asarray(y_test) != normal_class)
    if len(train_rows) == 0 or len(normal) == 0:
        raise ValueError(
            f"Class {normal_class!r} needs training and test images. Received: "
            f"{len(train_rows)} training and {len(normal)} test images of that class"
        )
    if anomaly_share is not None:
        wanted = round(anomaly_share / (1.0 - anomaly_share) * len(normal))
        if wanted <= len(anomalous):
            anomalous = _subsample(rng, anomalous, wanted)
        else:
            normal = _subsample(
                rng, normal, round((1.0 - anomaly_share) / anomaly_share * len(anomalous))
            )
    if max_train is not None:
        train_rows = _subsample(rng, train_rows, max_train)
    rows = np.concatenate([normal, anomalous])
    if max_test is not None:
        rows = _subsample(rng, np.sort(rows), max_test)
    rows = np.sort(rows)
    return OneClassSplit(
        np.asarray(x_train)[train_rows],
        np.asarray(x_test)[rows],
        (np.asarray(y_test)[rows] != normal_class).astype(np.int64),
    )


def gcn_minmax(split: OneClassSplit) -> OneClassSplit:
    """Global contrast normalisation, then min-max scaling fitted on the normal training images.

    Every image goes through `global_contrast_normalize` (L1); the minimum and
    maximum over all pixels of the normalised *training* images (the normal
    class only) then map both sets linearly, so training images span [0, 1]
    and test images may fall slightly outside. This is the preprocessing of
    Deep SVDD's one-class protocol (Ruff et al., ICML 2018); it keeps a model
    from scoring images by how much ink they hold.

    Args:
        split: A task from `one_class_split`.

    Returns:
        The same task with float32 images.

    Example:
    >>> x = np.array([[0, 0, 2, 2], [0, 4, 4, 4]], np.uint8)
    >>> gcn_minmax(OneClassSplit(x[:1], x, np.array([0, 1]))).x_test.round(3)
    array([[ 0.   ,  0.   ,  1.   ,  1.   ],
           [-0.5  ,  0.833,  0.833,  0.833]], dtype=float32)
    """
    x_train = global_contrast_normalize(split.x_train)
    x_test = global_contrast_normalize(split.x_test)
    low, high = float(x_train.min()), float(x_train.max())
    span = high - low if high > low else 1.0
    return OneClassSplit(
        ((x_train - low) / span).astype(np.float32),
        ((x_test - low) / span).astype(np.float32),
        split.labels,
    )


def evaluate_one_class(scorer: Scorer, split: OneClassSplit) -> Evaluation:
    """Trains `scorer` on the normal training images and scores the test images.

    Args:
        scorer: Unfitted model (`fit`/`score`).
        split: The task's data, from `one_class_split`.

    Returns:
        An `Evaluation` with `auroc` and `aupr`.
    """
    scorer.fit(split.x_train)
    scores = np.asarray(scorer.score(split.x_test), np.float64)
    return Evaluation(
        scores,
        split.labels,
        ranking_metrics(split.labels, scores),
        {
            "n_train": len(split.x_train),
            "n_test": len(split.x_test),
            "anomaly_share": float(split.labels.mean()),
        },
    )
