"""`MemAEScorer`'s per-element methods against NumPy references on the trained network.

The reference reconstruction is the Keras network's own eager forward pass
(`detector.model(x)`); the error maps are re-derived from it in float64 with the
definitions of the squared and absolute errors.
"""

import numpy as np
import pytest

from memae_tf.evaluation import MemAEScorer
from memae_tf.training import TrainingConfig

TRAINING = TrainingConfig(seed=0, epochs=1, batch_size=8, verbose=0)


def _scorer(error: str) -> MemAEScorer:
    return MemAEScorer("kdd", "memae", {"input_shape": (4,), "units": (3, 2), "num_items": 5},
                       TRAINING, error)


def _rows(count: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 1, (count, 4)).astype("float32")


@pytest.mark.parametrize(("error", "elementwise"), [
    ("mse", lambda x, rebuilt: (x - rebuilt) ** 2),
    ("l1", lambda x, rebuilt: np.abs(x - rebuilt)),
])
def test_score_map_and_reconstruct_follow_the_trained_network(error, elementwise):
    scorer = _scorer(error).fit(_rows(32, 0))
    x = _rows(9, 1)
    rebuilt = scorer.detector.model(x, training=False).numpy().astype(np.float64)
    np.testing.assert_allclose(scorer.reconstruct(x), rebuilt, rtol=1e-5, atol=1e-6)
    expected_map = elementwise(x.astype(np.float64), rebuilt)
    np.testing.assert_allclose(scorer.score_map(x), expected_map, rtol=1e-4, atol=1e-6)
    # The map's mean over each sample is the scorer's score.
    np.testing.assert_allclose(scorer.score(x), expected_map.mean(axis=1), rtol=1e-4,
                               atol=1e-6)


@pytest.mark.parametrize("method", ["score_map", "reconstruct"])
def test_per_element_methods_refuse_an_unfitted_scorer(method):
    with pytest.raises(RuntimeError, match=rf"^Call fit\(\) before {method}\(\)\.$"):
        getattr(_scorer("mse"), method)(_rows(2, 0))
