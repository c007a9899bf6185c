"""Data-dependent memory initialisation: MemoryLayer.adapt, adapt_memory, MemAE.fit(memory_init)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from memae_tf import MemAE, MemoryLayer
from memae_tf.models import adapt_memory, build_conv2d_autoencoder, find_memory_layer
from memae_tf.training.memory_init import memory_samples

TINY_DENSE = {"input_shape": (8,), "units": (6, 3), "num_items": 10}


def _rows_found(items: np.ndarray, rows: np.ndarray, atol: float = 1e-5) -> np.ndarray:
    """For each item, whether it equals some row of `rows` (within atol)."""
    distance = np.abs(items[:, None, :] - rows[None, :, :]).max(axis=-1)
    return distance.min(axis=1) <= atol


def test_adapt_draws_distinct_items_from_the_query_vectors():
    queries = np.random.default_rng(0).normal(size=(3, 4, 6)).astype("float32")
    layer = MemoryLayer(num_items=5)
    assert layer.adapt(queries, seed=0) == 5
    items = layer.memory.numpy()
    assert _rows_found(items, queries.reshape(-1, 6)).all()
    assert len({tuple(row) for row in items}) == 5


def test_adapt_is_seeded():
    queries = np.random.default_rng(1).normal(size=(50, 4)).astype("float32")
    first, second, other = (MemoryLayer(num_items=5) for _ in range(3))
    first.adapt(queries, seed=3)
    second.adapt(queries, seed=3)
    other.adapt(queries, seed=4)
    np.testing.assert_array_equal(first.memory.numpy(), second.memory.numpy())
    assert not np.array_equal(first.memory.numpy(), other.memory.numpy())


def test_adapt_with_fewer_queries_than_items_keeps_the_other_items():
    layer = MemoryLayer(num_items=6)
    layer.build((None, 3))
    before = layer.memory.numpy().copy()
    queries = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], "float32")
    assert layer.adapt(queries, seed=0) == 2
    items = layer.memory.numpy()
    assert sorted(map(tuple, items[:2])) == [(1.0, 2.0, 3.0), (4.0, 5.0, 6.0)]
    np.testing.assert_array_equal(items[2:], before[2:])


@pytest.mark.parametrize(
    "queries, message",
    [(np.zeros((4, 5), "float32"), "3 channels"),
     (np.zeros((0, 3), "float32"), "at least one finite"),
     (np.array([[0.0, np.nan, 1.0]], "float32"), "1 not finite")],
)
def test_adapt_rejects_bad_queries(queries, message):
    layer = MemoryLayer(num_items=4)
    layer.build((None, 3))
    with pytest.raises(ValueError, match=message):
        layer.adapt(queries)


def test_adapt_memory_uses_training_mode_encodings_and_leaves_statistics_alone():
    keras.utils.set_random_seed(0)
    model = build_conv2d_autoencoder((8, 8, 1), filters=(4, 6), kernel_sizes=3, num_items=12)
    samples = np.random.default_rng(0).random((10, 8, 8, 1)).astype("float32")
    layer = find_memory_layer(model)
    encoder = keras.Model(model.inputs[0], layer.input)
    in_inference = keras.ops.convert_to_numpy(encoder(samples, training=False)).reshape(-1, 6)
    in_training = keras.ops.convert_to_numpy(encoder(samples, training=True)).reshape(-1, 6)
    statistics = [w.numpy().copy() for w in model.non_trainable_weights]

    assert adapt_memory(model, samples, seed=0, batch_size=64) == 12
    items = layer.memory.numpy()
    assert _rows_found(items, in_training).all()
    assert not _rows_found(items, in_inference).all()
    for before, weight in zip(statistics, model.non_trainable_weights, strict=True):
        np.testing.assert_array_equal(before, weight.numpy())


def test_adapt_memory_without_memory_does_nothing():
    model = build_conv2d_autoencoder((8, 8, 1), filters=(4, 6), kernel_sizes=3, variant="ae")
    weights = [w.numpy().copy() for w in model.weights]
    assert adapt_memory(model, np.zeros((4, 8, 8, 1), "float32")) == 0
    for before, weight in zip(weights, model.weights, strict=True):
        np.testing.assert_array_equal(before, weight.numpy())


class _MemoryAtStart(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.items = self.model.get_layer("memory").memory.numpy().copy()


@pytest.fixture
def rows():
    return np.random.default_rng(0).random((300, 8)).astype("float32")


def _fit(detector, rows, **kwargs):
    start = _MemoryAtStart()
    detector.fit(rows, epochs=1, batch_size=32, verbose=0, seed=0, callbacks=[start], **kwargs)
    return start.items


def test_fit_starts_from_encodings_of_training_rows_once(rows):
    keras.utils.set_random_seed(0)
    detector = MemAE.from_preset("kdd", **TINY_DENSE)
    layer = find_memory_layer(detector.model)
    encodings = keras.ops.convert_to_numpy(
        keras.Model(detector.model.inputs[0], layer.input)(rows)
    )  # the dense preset has no batch normalisation: encodings do not depend on the batch
    assert _rows_found(_fit(detector, rows), encodings).all()

    trained = layer.memory.numpy().copy()
    np.testing.assert_array_equal(_fit(detector, rows), trained)  # continued training


def test_fit_with_keep_starts_from_the_layer_initialisation(rows):
    detector = MemAE.from_preset("kdd", **TINY_DENSE)
    initial = find_memory_layer(detector.model).memory.numpy().copy()
    np.testing.assert_array_equal(_fit(detector, rows, memory_init="keep"), initial)


def test_loaded_detector_keeps_its_memory(rows, tmp_path):
    detector = MemAE.from_preset("kdd", **TINY_DENSE)
    detector.fit(rows, epochs=1, verbose=0, seed=0)
    loaded = MemAE.load(detector.save(tmp_path / "detector.keras"))
    saved = find_memory_layer(loaded.model).memory.numpy().copy()
    np.testing.assert_array_equal(_fit(loaded, rows), saved)


def test_fit_rejects_unknown_memory_init(rows):
    with pytest.raises(ValueError, match="memory_init"):
        MemAE.from_preset("kdd", **TINY_DENSE).fit(rows, verbose=0, memory_init="kmeans")


# ------------------------------------------ the samples the items are drawn from


def _dense_memae(num_items: int) -> keras.Model:
    return MemAE.from_preset("kdd", input_shape=(8,), units=(6, 3), num_items=num_items).model


@pytest.mark.parametrize(("num_items", "batch_size", "expected"), [
    (10, 8, 160),     # 16 candidate queries per item, one query per row
    (10, 200, 200),   # at least one batch
    (100, 8, 1024),   # 1,600 capped at MAX_INIT_SAMPLES
])
def test_about_16_query_vectors_per_item_are_drawn_from_distinct_training_rows(
        num_items, batch_size, expected):
    x = np.random.default_rng(1).random((2000, 8)).astype("float32")
    samples = memory_samples(_dense_memae(num_items), x, (0.0, 1.0), batch_size, seed=3)
    assert samples.shape == (expected, 8) and samples.dtype == np.float32
    # Distinct rows of x, in x's order (a seeded subset): their indices increase.
    index = {row.tobytes(): i for i, row in enumerate(x)}
    positions = [index[row.tobytes()] for row in samples]
    assert positions == sorted(set(positions))
    np.testing.assert_array_equal(
        memory_samples(_dense_memae(num_items), x, (0.0, 1.0), batch_size, seed=3), samples)


def test_a_convolutional_memory_counts_every_position_of_an_encoding_as_a_query():
    # A 4 x 4 encoding holds 16 queries per sample: 16 * 20 items / 16 = 20 samples.
    inputs = keras.Input((8, 8, 1))
    code = keras.layers.Conv2D(4, 3, strides=2, padding="same")(inputs)
    outputs = keras.layers.Conv2DTranspose(1, 3, strides=2, padding="same")(
        MemoryLayer(20)(code))
    x = np.random.default_rng(2).random((300, 8, 8, 1)).astype("float32")
    samples = memory_samples(keras.Model(inputs, outputs), x, (0.0, 1.0), 4, seed=0)
    assert samples.shape == (20, 8, 8, 1)


def test_a_dataset_gives_its_first_batches_and_is_read_no_further():
    # 160 samples wanted: five batches of 32; a sixth read would fail the assertion.
    x = np.random.default_rng(3).random((192, 8)).astype("float32")
    rows = tf.constant(x)

    def row(i):
        with tf.control_dependencies([tf.debugging.assert_less(
                i, tf.constant(160, tf.int64), message="read past the samples needed")]):
            return tf.gather(rows, i)

    dataset = tf.data.Dataset.range(192).map(row)
    samples = memory_samples(_dense_memae(10), dataset, (0.0, 1.0), 32)
    np.testing.assert_array_equal(samples, x[:160])
    # Batches of 53: three hold 159, one short of 160; four are read and cut to 160.
    np.testing.assert_array_equal(
        memory_samples(_dense_memae(10), tf.data.Dataset.from_tensor_slices(x), (0.0, 1.0),
                       53), x[:160])


def test_a_model_without_memory_needs_no_samples():
    model = MemAE.from_preset("kdd", variant="ae", input_shape=(8,), units=(6, 3)).model
    assert memory_samples(model, np.zeros((10, 8), "float32"), (0.0, 1.0), 8) is None
