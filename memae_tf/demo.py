"""`make demo`: MemAE against a plain AE and two classic baselines on real MNIST, then served.

Trains MemAE, the plain AE, scikit-learn's One-Class SVM and Isolation Forest on
one digit or a few (the normal classes), compares their test AUROC, exports MemAE as a TF
Serving SavedModel, starts the TF Serving-compatible development server on
loopback and scores a few test images through `MemAEClient`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from memae_tf.client import MemAEClient
from memae_tf.common.contract import IS_ANOMALY_OUTPUT, SCORE_OUTPUT
from memae_tf.common.deprecation import renamed_argument
from memae_tf.data import load_mnist
from memae_tf.detector import MemAE
from memae_tf.evaluation.baselines import make_baseline
from memae_tf.evaluation.metrics import auroc
from memae_tf.serving import serve


@dataclass
class DemoRow:
    """One line of the demo table."""

    model: str
    auroc: float
    train_seconds: float
    path: Path | None


def train_and_evaluate(
    variant: str,
    x_fit: np.ndarray,
    x_val: np.ndarray,
    x_test: np.ndarray,
    labels: np.ndarray,
    epochs: int,
    out: Path,
    seed: int = 0,
) -> tuple[MemAE, DemoRow]:
    """Trains one variant of the MNIST preset, sets its threshold, scores the test set."""
    keras.utils.set_random_seed(seed)
    detector = MemAE.from_preset("mnist", variant=variant)
    print(f"\n=== training {variant} on {len(x_fit)} images, {epochs} epochs ===", flush=True)
    start = time.perf_counter()
    detector.fit(x_fit, epochs=epochs, batch_size=64, seed=seed, verbose=2)
    seconds = time.perf_counter() - start
    detector.infer_threshold(x_val, fpr=0.05)
    area = auroc(labels, detector.score(x_test))
    path = detector.save(out / f"{variant}.keras")
    return detector, DemoRow(variant, area, seconds, path)


def baseline_row(name: str, x_fit: np.ndarray, x_test: np.ndarray, labels: np.ndarray,
                 seed: int = 0) -> DemoRow:
    """Trains a classic baseline (`"ocsvm"`, `"iforest"`) as `memae experiment` does."""
    baseline = make_baseline(name, seed=seed, **({"max_train_samples": 2000}
                                                 if name == "ocsvm" else {}))
    start = time.perf_counter()
    baseline.fit(x_fit)
    seconds = time.perf_counter() - start
    return DemoRow(name, auroc(labels, baseline.score(x_test)), seconds, None)


def run_demo(
    normal_classes: Sequence[int] = (8,), epochs: int = 5, out: Path = Path("runs/demo"),
    *, normal_class: int | None = None,
) -> list[DemoRow]:
    """Trains MemAE, AE and two baselines on MNIST digits and prints their test AUROC.

    Args:
        normal_classes: The digits treated as normal; the others are anomalies.
        epochs: Training epochs for each model.
        out: Folder for the saved detectors.
        normal_class: Deprecated: one digit, the former spelling of
            `normal_classes=[digit]`.

    Returns:
        The table rows (model, AUROC, training time, saved path).
    """
    if normal_class is not None:
        normal_classes = [renamed_argument("normal_class", "normal_classes", normal_class,
                                           None)]
    digits = sorted({int(c) for c in normal_classes})
    if not digits or not all(0 <= c <= 9 for c in digits) or len(digits) == 10:
        raise ValueError("`normal_classes` must be one to nine digits 0-9. "
                         f"Received: normal_classes={list(normal_classes)!r}")
    (x_train, y_train), (x_test, y_test) = load_mnist()
    normal = x_train[np.isin(y_train, digits)]
    order = np.random.default_rng(0).permutation(len(normal))
    n_val = len(normal) // 10
    x_val, x_fit = normal[order[:n_val]], normal[order[n_val:]]
    labels = (~np.isin(y_test, digits)).astype(int)
    rows = [train_and_evaluate(v, x_fit, x_val, x_test, labels, epochs, out)[1]
            for v in ("memae", "ae")]
    rows += [baseline_row(name, x_fit, x_test, labels) for name in ("ocsvm", "iforest")]
    print(f"\nMNIST, normal digits {digits}: {len(x_fit)} training images, "
          f"test {len(x_test)} images ({int(labels.sum())} anomalies), {epochs} epochs")
    print(f"{'model':8s} {'AUROC':>7s} {'train s':>8s}  saved to")
    for row in rows:
        print(f"{row.model:8s} {row.auroc:7.4f} {row.train_seconds:8.1f}  {row.path or '-'}")
    serve_and_query(MemAE.load(rows[0].path), x_test[:8], y_test[:8], out / "models" / "memae")
    return rows


def serve_and_query(
    detector: MemAE, x: np.ndarray, y: np.ndarray, model_base_path: Path
) -> np.ndarray:
    """Exports `detector`, serves it on loopback and scores `x` over gRPC.

    Prints the served scores and flags beside the in-process ones and returns
    the served scores.
    """
    version_dir = detector.export(model_base_path)
    print(f"\nexported SavedModel version {version_dir}")
    inputs = detector.preprocess(x)  # uint8 digits → the [-1, 1] floats the served model takes
    local = detector.score(inputs)
    with serve(model_base_path, "memae", port=0, host="127.0.0.1") as server, MemAEClient(
        f"127.0.0.1:{server.port}", "memae", timeout=30.0
    ) as client:
        print(f"development server on 127.0.0.1:{server.port}, model status: "
              f"{client.status()}")
        served = client.run_signature(inputs)
    print(f"{'digit':>5s} {'gRPC score':>11s} {'in-process':>11s} {'anomaly':>8s}")
    scores, flags = served[SCORE_OUTPUT], served[IS_ANOMALY_OUTPUT]
    for digit, remote, here, flag in zip(y, scores, local, flags, strict=True):
        print(f"{int(digit):5d} {remote:11.6f} {here:11.6f} {bool(flag)!s:>8s}")
    print(f"max |gRPC - in-process| = {np.max(np.abs(scores - local)):.2e}")
    return scores
