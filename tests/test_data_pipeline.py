"""reconstruction_dataset: the (x, x) batches MemAE.fit trains on, worked out by hand."""

import numpy as np
import pytest
import tensorflow as tf

from memae_tf.data.pipeline import reconstruction_dataset

ROWS = np.arange(20, dtype=np.float32).reshape(10, 2)


def _batches(dataset: tf.data.Dataset) -> list[np.ndarray]:
    batches = []
    for x, y in dataset.as_numpy_iterator():
        np.testing.assert_array_equal(x, y)  # the target is the input
        assert x.dtype == np.float32
        batches.append(x)
    return batches


def test_rows_are_batched_in_order_with_a_smaller_last_batch():
    batches = _batches(reconstruction_dataset(ROWS, (2,), (0.0, 20.0), 4))
    assert [len(batch) for batch in batches] == [4, 4, 2]
    np.testing.assert_array_equal(np.concatenate(batches), ROWS)


def test_drop_remainder_drops_the_smaller_last_batch():
    batches = _batches(reconstruction_dataset(ROWS, (2,), (0.0, 20.0), 4,
                                              drop_remainder=True))
    np.testing.assert_array_equal(np.concatenate(batches), ROWS[:8])
    # Exactly one global batch is enough.
    (batch,) = _batches(reconstruction_dataset(ROWS, (2,), (0.0, 20.0), 10,
                                               drop_remainder=True))
    np.testing.assert_array_equal(batch, ROWS)
    with pytest.raises(ValueError, match=r"at least one global batch \(16 samples .*"
                                         r"Received: 10 samples"):
        reconstruction_dataset(ROWS, (2,), (0.0, 20.0), 16, drop_remainder=True)


def test_shuffled_epochs_hold_every_row_once_in_a_new_order_each_seeded():
    def epochs(seed):
        dataset = reconstruction_dataset(ROWS, (2,), (0.0, 20.0), 3, shuffle=True, seed=seed)
        return [np.concatenate(_batches(dataset))[:, 0] for _ in range(2)]

    first, second = epochs(5)
    assert sorted(first) == sorted(second) == list(ROWS[:, 0])
    assert list(first) != list(second) and list(first) != list(ROWS[:, 0])
    np.testing.assert_array_equal(epochs(5), [first, second])


def test_uint8_rows_are_scaled_onto_the_input_range():
    x = np.array([[0, 255], [51, 0]], np.uint8)
    for data in (x, tf.data.Dataset.from_tensor_slices(x)):
        (batch,) = _batches(reconstruction_dataset(data, (2,), (-1.0, 1.0), 8))
        np.testing.assert_allclose(batch, [[-1.0, 1.0], [-0.6, -1.0]], rtol=1e-6)


def test_an_unbatched_dataset_is_batched_and_a_batched_one_keeps_its_batches():
    unbatched = tf.data.Dataset.from_tensor_slices(ROWS.astype(np.float64))
    batches = _batches(reconstruction_dataset(unbatched, (2,), (0.0, 20.0), 4))
    assert [len(batch) for batch in batches] == [4, 4, 2]
    batched = tf.data.Dataset.from_tensor_slices(ROWS).batch(5)
    batches = _batches(reconstruction_dataset(batched, (2,), (0.0, 20.0), 4))
    assert [len(batch) for batch in batches] == [5, 5]
    np.testing.assert_array_equal(np.concatenate(batches), ROWS)


def test_a_dataset_of_pairs_or_feature_dicts_gives_its_inputs():
    labels = np.arange(10)
    for data in (tf.data.Dataset.from_tensor_slices((ROWS, labels)),
                 tf.data.Dataset.from_tensor_slices({"image": ROWS, "label": labels})):
        batches = _batches(reconstruction_dataset(data, (2,), (0.0, 20.0), 10))
        np.testing.assert_array_equal(np.concatenate(batches), ROWS)


def test_arrays_are_sharded_by_data_across_workers():
    # Under MultiWorkerMirroredStrategy each worker takes its share of the batches
    # (AutoShardPolicy.DATA), since the pipeline is one in-memory dataset, not files.
    dataset = reconstruction_dataset(ROWS, (2,), (0.0, 20.0), 4)
    assert (dataset.options().experimental_distribute.auto_shard_policy
            == tf.data.experimental.AutoShardPolicy.DATA)


@pytest.mark.parametrize("batch_size", [0, -4, 2.0])
def test_the_batch_size_is_a_positive_integer(batch_size):
    with pytest.raises(ValueError, match="expected a positive integer"):
        reconstruction_dataset(ROWS, (2,), (0.0, 20.0), batch_size)
