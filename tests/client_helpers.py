"""Small trained detectors and their data, shared by the client tests."""

import functools

import keras
import numpy as np
from serving_helpers import FEATURES

from memae_tf import MemAE


def normal_rows(count: int, seed: int) -> np.ndarray:
    """Rows on a 3-dimensional manifold inside (-1, 1): what the detectors learn as normal."""
    mixing = np.random.default_rng(0).normal(size=(3, FEATURES))
    latent = np.random.default_rng(seed).normal(size=(count, 3))
    return (0.9 * np.tanh(latent @ mixing / 2)).astype("float32")


def anomalous_rows(count: int, seed: int) -> np.ndarray:
    """Rows off that manifold: independent features of magnitude 0.5 to 0.9, random signs."""
    rng = np.random.default_rng(seed)
    magnitude = rng.uniform(0.5, 0.9, size=(count, FEATURES))
    return (magnitude * rng.choice([-1.0, 1.0], size=(count, FEATURES))).astype("float32")


def uint8_rows(count: int) -> np.ndarray:
    return np.random.default_rng(9).integers(0, 256, size=(count, FEATURES), dtype=np.uint8)


@functools.cache  # trained once per test process; the tests only read it
def trained_detector(seed: int, input_range: tuple[float, float]) -> MemAE:
    """A dense MemAE fitted on normal rows, its threshold at fpr 0.05 on 1,000 held-out ones."""
    keras.utils.set_random_seed(seed)
    detector = MemAE({"preset": "kdd", "variant": "memae",
                      "overrides": {"input_shape": (FEATURES,), "units": (8, 3),
                                    "num_items": 10}}, input_range=input_range)
    detector.fit(normal_rows(512, seed), epochs=2, batch_size=64, seed=seed, verbose=0)
    detector.infer_threshold(normal_rows(1000, seed + 1), fpr=0.05)
    return detector
