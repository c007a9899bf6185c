"""Decision thresholds from reference scores, against quantiles worked out by hand."""

import numpy as np
import pytest

from memae_tf.thresholds import (
    above_threshold,
    flagged_share,
    quantile_threshold,
    reference_quantiles,
)


def linear_quantile(values, level):
    """The quantile with linear interpolation between the sorted values (NumPy's default)."""
    ordered = sorted(float(value) for value in values)
    position = level * (len(ordered) - 1)
    below = int(position)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (position - below) * (ordered[above] - ordered[below])


def exact_flags(scores, threshold):
    """`score > threshold` by Python's float comparison: exact, every float32 is a Python float."""
    return np.array([float(score) > threshold for score in np.ravel(scores)]).reshape(
        np.shape(scores))


def test_fpr_threshold_is_the_upper_quantile_of_normal_scores():
    scores = [7.0, 1.0, 4.0, 0.0, 9.0, 3.0, 2.0, 8.0, 5.0, 6.0, 10.0]   # 0..10, shuffled
    # (1 - 0.25) * 10 = 7.5: halfway between the sorted values 7 and 8.
    assert quantile_threshold(scores, fpr=0.25) == pytest.approx(7.5)


def test_contamination_threshold_is_the_upper_quantile_of_contaminated_scores():
    scores = np.arange(101.0)[::-1]
    assert quantile_threshold(scores, contamination=0.2) == pytest.approx(80.0)


def test_threshold_flags_the_requested_share_of_reference_scores():
    scores = np.random.default_rng(0).normal(size=2000)
    for share in (0.01, 0.05, 0.3):
        threshold = quantile_threshold(scores, fpr=share)
        assert threshold == pytest.approx(linear_quantile(scores, 1 - share))
        assert np.mean(scores > threshold) == pytest.approx(share, abs=1 / len(scores))


def test_default_flags_five_percent():
    assert flagged_share() == 0.05
    assert quantile_threshold(np.arange(101.0)) == pytest.approx(95.0)


def test_flagged_share_is_the_share_given():
    assert flagged_share(fpr=0.2) == 0.2
    assert flagged_share(contamination=0.3) == 0.3


@pytest.mark.parametrize("share", [np.float32(0.25), np.float64(0.25), np.float16(0.25)])
def test_numpy_scalar_shares_are_accepted_as_plain_floats(share):
    # A share read from an array (e.g. the anomaly rate of labels, `y.mean()`) is a NumPy
    # scalar; 0.25 is exact in every float width, so the share returned is 0.25 itself.
    assert flagged_share(fpr=share) == 0.25
    assert type(flagged_share(contamination=share)) is float
    assert quantile_threshold(np.arange(101.0), fpr=share) == pytest.approx(75.0)


def test_fpr_and_contamination_together_are_refused():
    with pytest.raises(ValueError, match="not both"):
        flagged_share(fpr=0.1, contamination=0.1)
    with pytest.raises(ValueError, match="not both"):
        quantile_threshold(np.arange(5.0), fpr=0.1, contamination=0.2)


@pytest.mark.parametrize(
    "share", [0, 0.0, 1, 1.0, -0.1, 1.5, True, False, np.True_, np.float32(1.5), "0.1"])
def test_share_outside_the_open_unit_interval_is_refused_by_name(share):
    with pytest.raises(ValueError, match=r"`fpr` must be a float in \(0, 1\)"):
        flagged_share(fpr=share)
    with pytest.raises(ValueError, match=r"`contamination` must be a float in \(0, 1\)"):
        flagged_share(contamination=share)


def test_reference_quantiles_are_the_percentiles_of_the_scores():
    scores = np.random.default_rng(1).exponential(size=57).astype(np.float32)
    quantiles = reference_quantiles(scores)
    assert quantiles.dtype == np.float64
    assert quantiles.shape == (101,)
    expected = [linear_quantile(scores.astype(np.float64), level / 100) for level in range(101)]
    np.testing.assert_allclose(quantiles, expected, rtol=1e-12)
    assert quantiles[0] == scores.min() and quantiles[-1] == scores.max()


def test_reference_quantiles_of_two_points_are_the_levels():
    np.testing.assert_allclose(reference_quantiles([1.0, 0.0]), np.arange(101) / 100,
                               rtol=0, atol=1e-15)


# Five consecutive float32 scores around 0.3 (spacing 2**-25) and a threshold `offset` spacings
# from the middle one, in float64: -0.25 and -0.5 round onto the middle score in float32.
@pytest.mark.parametrize("offset, flagged", [
    (-1.0, [False, False, True, True, True]),    # equal to the score below the middle one
    (-0.5, [False, False, True, True, True]),
    (-0.25, [False, False, True, True, True]),
    (0.0, [False, False, False, True, True]),    # equal to the middle score: not above it
    (0.25, [False, False, False, True, True]),
])
def test_above_threshold_compares_float32_scores_with_the_threshold_exactly(offset, flagged):
    middle = np.float32(0.3)
    spacing = 2.0 ** -25
    scores = np.array([float(middle) + step * spacing for step in range(-2, 3)], np.float32)
    threshold = float(middle) + offset * spacing
    result = above_threshold(scores, threshold)
    np.testing.assert_array_equal(result, exact_flags(scores, threshold))
    np.testing.assert_array_equal(result, flagged)
    if offset in (-0.5, -0.25):
        # The comparison NumPy makes by itself misses the middle score: the test can tell.
        assert not (scores > threshold)[2]


def test_above_threshold_keeps_the_shape_of_scores_of_any_float_dtype():
    scores = np.array([[0.5, 1.5, 1.0], [2.5, 0.0, 1.0000001]])
    # float16 rounds 1.0000001 to 1.0; float32 and float64 keep it above 1.0.
    last_flagged = {np.float16: False, np.float32: True, np.float64: True}
    for dtype, flagged in last_flagged.items():
        typed = scores.astype(dtype)
        result = above_threshold(typed, 1.0)
        assert result.dtype == np.bool_ and result.shape == (2, 3)
        np.testing.assert_array_equal(result, exact_flags(typed, 1.0))
        np.testing.assert_array_equal(result, [[False, True, False], [True, False, flagged]])
