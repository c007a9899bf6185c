"""prepare_inputs: what MemAE.fit and MemAE.score accept, with answers worked out by hand."""

import numpy as np
import pytest
import tensorflow as tf

from memae_tf.data.inputs import prepare_inputs


def test_uint8_images_are_scaled_from_0_255_onto_the_input_range():
    x = np.array([[0, 51, 255]], np.uint8)
    np.testing.assert_allclose(prepare_inputs(x, (3,), (-1.0, 1.0)), [[-1.0, -0.6, 1.0]],
                               rtol=1e-6)
    np.testing.assert_allclose(prepare_inputs(x, (3,), (0.0, 1.0)), [[0.0, 0.2, 1.0]],
                               rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float64, np.float16, np.int64, np.int8])
def test_other_numbers_are_taken_as_they_are_in_float32(dtype):
    # Only uint8 means "image pixels": a float or another integer type is not rescaled.
    prepared = prepare_inputs(np.array([[2, -3, 0]], dtype), (3,), (0.0, 1.0))
    assert prepared.dtype == np.float32
    np.testing.assert_array_equal(prepared, [[2.0, -3.0, 0.0]])


def test_tensors_and_datasets_are_read_as_arrays():
    rows = np.arange(6, dtype=np.float32).reshape(3, 2)
    for x in (tf.constant(rows), tf.data.Dataset.from_tensor_slices(rows),
              tf.data.Dataset.from_tensor_slices(rows).batch(2)):
        np.testing.assert_array_equal(prepare_inputs(x, (2,), (0.0, 5.0)), rows)


@pytest.mark.parametrize(("input_shape", "shape"), [((4, 1), (2, 4)), ((4, 4, 1), (2, 4, 4)),
                                                    ((3, 4, 4, 1), (2, 3, 4, 4))])
def test_a_batch_without_the_single_channel_axis_gets_one(input_shape, shape):
    x = np.random.default_rng(0).random(shape)
    prepared = prepare_inputs(x, input_shape, (0.0, 1.0))
    assert prepared.shape == (2, *input_shape)
    np.testing.assert_array_equal(prepared[..., 0], x.astype(np.float32))


@pytest.mark.parametrize(("shape", "message"), [
    ((2, 4, 4), r"`x` must have shape \(None, 4, 4, 3\) \(rank 4\)\. Received: "
                r"shape=\(2, 4, 4\)"),  # a channel axis is added only for one channel
    ((2, 4, 4, 1), r"Received: shape=\(2, 4, 4, 1\)"),
    ((4, 4, 3), r"Received: shape=\(4, 4, 3\)"),  # one image without its batch axis
])
def test_a_batch_of_another_shape_is_refused_with_the_shape_expected(shape, message):
    with pytest.raises(ValueError, match=message):
        prepare_inputs(np.zeros(shape, np.float32), (4, 4, 3), (0.0, 1.0))


@pytest.mark.parametrize("x", [np.float32(0.5), np.zeros(3, np.float32)])
def test_values_without_a_batch_axis_are_no_batch_even_for_one_value_samples(x):
    # Three values for a model of one input value: three samples or one? Refused.
    with pytest.raises(ValueError, match=r"must have shape \(None, 1\)"):
        prepare_inputs(x, (1,), (0.0, 1.0))


def test_an_empty_batch_is_refused():
    with pytest.raises(ValueError, match=r"`rows` is empty: received 0 samples, expected at "
                                         r"least 1\."):
        prepare_inputs(np.zeros((0, 3), np.float32), (3,), (0.0, 1.0), what="rows")


def test_non_finite_values_are_counted_in_the_refusal():
    x = np.array([[np.nan, 1.0, np.inf], [0.0, -np.inf, 0.5]])
    with pytest.raises(ValueError, match=r"^`x` contains 3 NaN or Inf values; clean them "
                                         r"first\.$"):
        prepare_inputs(x, (3,), (0.0, 1.0))


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")
def test_a_value_beyond_float32s_range_is_refused_as_inf():
    with pytest.raises(ValueError, match="contains 1 NaN or Inf values"):
        prepare_inputs(np.array([[1e300, 0.0, 0.0]]), (3,), (0.0, 1.0))


@pytest.mark.parametrize("values", [[["a", "b"]], [[True, False]], [[1 + 2j, 0j]]])
def test_values_that_are_not_real_numbers_are_refused(values):
    with pytest.raises(TypeError, match=r"`x` must hold numbers \(float, or uint8 images\)"):
        prepare_inputs(np.array(values), (2,), (0.0, 1.0))
