"""Data-dependent memory initialisation: MemoryLayer.adapt, adapt_memory, MemAE.fit(memory_init)."""

import keras
import numpy as np
import pytest

from memae_tf import MemAE, MemoryLayer
from memae_tf.models import adapt_memory, build_conv2d_autoencoder, find_memory_layer

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
