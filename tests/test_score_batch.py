"""The default scoring batch: the power of two of samples, up to 1,024, that holds 2^20 values."""

import keras
import numpy as np
import pytest

from memae_tf import MemAE
from memae_tf.choices import score_batch_size
from memae_tf.models import build_autoencoder


@pytest.mark.parametrize(
    ("shape", "expected"),
    [
        ((28, 28, 1), 1024),  # 784 values: 1,337 fit, the cap is 1,024
        ((32, 32, 3), 256),  # 3,072 values: 341 fit → 256
        ((120,), 1024),  # table rows: the cap
        ((16, 64, 64, 1), 16),  # 65,536 values: exactly 16
        ((16, 48, 64, 1), 16),  # 49,152 values: 21 fit → 16
        ((16, 256, 256, 1), 1),  # 2^20 values: one clip
        ((32, 256, 256, 1), 1),  # more than 2^20: still one
    ],
)
def test_default_batch_is_the_largest_power_of_two_that_holds_2_20_values(shape, expected):
    batch = score_batch_size(shape)
    assert batch == expected
    values = int(np.prod(shape))
    # Re-derived: a power of two, within the budget unless one sample exceeds it, capped.
    assert batch & (batch - 1) == 0 and 1 <= batch <= 1024
    assert batch * values <= 2**20 or batch == 1
    assert batch == 1024 or 2 * batch * values > 2**20


def test_scores_do_not_depend_on_the_batch_and_the_default_splits_large_inputs():
    keras.utils.set_random_seed(0)
    model = build_autoencoder("kdd", "memae", input_shape=(6,), units=(4, 2))
    detector = MemAE(model, error="mse")
    x = np.random.default_rng(0).uniform(-1, 1, (2500, 6)).astype(np.float32)
    calls = []
    traced = detector.scoring_graph.outputs
    detector.scoring_graph.outputs = lambda batch: calls.append(len(batch)) or traced(batch)
    default = detector.score(x)
    assert calls == [1024, 1024, 452]  # score_batch_size((6,)) == 1024
    expected = ((x - detector.reconstruct(x, batch_size=7)) ** 2).mean(axis=1)
    np.testing.assert_allclose(default, expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(detector.score(x, batch_size=3), default, rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match="batch_size"):
        detector.score(x, batch_size=0)
