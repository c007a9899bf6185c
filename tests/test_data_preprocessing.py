"""MinMaxScaler against values computed by hand."""

import numpy as np
import pytest

from memae_tf.data import MinMaxScaler, global_contrast_normalize

TRAIN = np.array([[1.0, 10.0, 5.0], [3.0, 30.0, 5.0], [2.0, 20.0, 5.0]])


def test_scales_each_column_by_its_training_range():
    scaled = MinMaxScaler().fit_transform(TRAIN)
    np.testing.assert_allclose(scaled[:, 0], [0.0, 1.0, 0.5])
    np.testing.assert_allclose(scaled[:, 1], [0.0, 1.0, 0.5])
    assert scaled.dtype == np.float32


def test_constant_column_maps_to_zero_and_is_only_shifted_elsewhere():
    scaler = MinMaxScaler().fit(TRAIN)
    np.testing.assert_array_equal(scaler.transform(TRAIN)[:, 2], [0, 0, 0])
    assert scaler.transform(np.array([[0.0, 0.0, 7.0]]))[0, 2] == 2.0


def test_test_values_outside_training_range_are_not_clipped():
    scaler = MinMaxScaler().fit(TRAIN)
    np.testing.assert_allclose(scaler.transform(np.array([[5.0, 0.0, 5.0]]))[0, :2], [2.0, -0.5])


def test_only_chosen_columns_are_scaled():
    scaler = MinMaxScaler(columns=[1]).fit(TRAIN)
    scaled = scaler.transform(TRAIN)
    np.testing.assert_array_equal(scaled[:, [0, 2]], TRAIN[:, [0, 2]])
    np.testing.assert_allclose(scaled[:, 1], [0.0, 1.0, 0.5])
    np.testing.assert_array_equal(scaler.data_min_, [10.0])
    np.testing.assert_array_equal(scaler.data_max_, [30.0])


def test_transform_before_fit_is_an_error():
    with pytest.raises(RuntimeError, match="before fit"):
        MinMaxScaler().transform(TRAIN)


def test_column_count_must_match_fit():
    scaler = MinMaxScaler().fit(TRAIN)
    with pytest.raises(ValueError, match="expected 3 columns"):
        scaler.transform(TRAIN[:, :2])


def test_out_of_range_column_index_is_rejected():
    with pytest.raises(ValueError, match=r"column indices in \[0, 3\)"):
        MinMaxScaler(columns=[3]).fit(TRAIN)


def test_empty_or_one_dimensional_input_is_rejected():
    with pytest.raises(ValueError, match="at least one row"):
        MinMaxScaler().fit(np.zeros((0, 3)))
    with pytest.raises(ValueError, match="2D array"):
        MinMaxScaler().fit(np.zeros(3))


def test_global_contrast_normalization_by_hand():
    images = np.array([[[0, 0], [2, 2]], [[1, 1], [1, 5]], [[3, 3], [3, 3]]], np.uint8)
    out = global_contrast_normalize(images)
    assert out.shape == (3, 2, 2) and out.dtype == np.float32
    np.testing.assert_allclose(out[0], [[-1, -1], [1, 1]])
    # mean 2, deviations -1, -1, -1, 3, mean absolute deviation 1.5
    np.testing.assert_allclose(out[1], [[-2 / 3, -2 / 3], [-2 / 3, 2]], rtol=1e-6)
    np.testing.assert_array_equal(out[2], np.zeros((2, 2)))  # constant image


@pytest.mark.parametrize("images", [np.zeros(4), np.array([["a", "b"]])])
def test_global_contrast_normalization_rejects_non_image_batches(images):
    with pytest.raises(ValueError, match="numeric array of images"):
        global_contrast_normalize(images)


def test_several_chosen_columns_are_scaled_each_by_its_own_range():
    scaled = MinMaxScaler(columns=(0, 1)).fit_transform(TRAIN)
    np.testing.assert_allclose(scaled[:, :2], [[0.0, 0.0], [1.0, 1.0], [0.5, 0.5]])
    np.testing.assert_array_equal(scaled[:, 2], TRAIN[:, 2])


def test_a_range_narrower_than_one_is_still_divided_by():
    # Only a constant column (range 0) is left undivided: a range of 0.5 doubles.
    train = np.array([[0.0], [0.5], [0.25]])
    np.testing.assert_allclose(MinMaxScaler().fit_transform(train)[:, 0], [0.0, 1.0, 0.5])


def test_global_contrast_normalization_of_images_with_little_spread():
    # Mean absolute deviations of 0.5 and 0.1 (below 1) still divide: ±1 either way.
    images = np.array([[0.0, 0.0, 1.0, 1.0], [0.1, 0.1, 0.3, 0.3]])
    np.testing.assert_allclose(global_contrast_normalize(images),
                               [[-1, -1, 1, 1], [-1, -1, 1, 1]], rtol=1e-6)
