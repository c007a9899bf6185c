"""The collapse check: items_used, MemoryCollapseCheck and TrainingConfig(memory_restart=True)."""

import warnings

import keras
import numpy as np
import pytest
from memory_reference import numpy_memory

from memae_tf import MemAE, MemoryLayer
from memae_tf.models import build_dense_autoencoder, encode_queries, find_memory_layer
from memae_tf.training import MemoryCollapseCheck, TrainingConfig, empty_query_share, items_used

THRESHOLD = 0.2


def _identity_encoder_model(num_items: int = 5) -> keras.Model:
    """Input(4) → identity Dense (the queries are the inputs) → memory → Dense(4)."""
    inputs = keras.Input((4,))
    z = keras.layers.Dense(4, use_bias=False, kernel_initializer="identity")(inputs)
    z = MemoryLayer(num_items, shrink_threshold=THRESHOLD, name="memory")(z)
    return keras.Model(inputs, keras.layers.Dense(4)(z))


def _reference_weights(queries: np.ndarray, memory: np.ndarray) -> np.ndarray:
    """The layer's NumPy reference: dot-product softmax, hard shrinkage at THRESHOLD."""
    return numpy_memory(queries, memory, THRESHOLD, "dot")[1]


def _reference_items_used(queries: np.ndarray, memory: np.ndarray) -> int:
    """NumPy: the count of items that some query gives a non-zero weight."""
    return int((_reference_weights(queries, memory) > 0.0).any(axis=0).sum())


def _collapse(model: keras.Model) -> None:
    """One item far along the (positive) queries' direction, the others opposite."""
    memory = np.full((5, 4), -1.0, "float32")
    memory[2] = 20.0
    find_memory_layer(model).memory.assign(memory)


@pytest.fixture
def positive_rows():
    return np.random.default_rng(0).uniform(0.5, 1.0, size=(64, 4)).astype("float32")


def _random_case(seed: int, num_items: int, scale: float, n: int):
    """The identity-encoder model with normal random items of `scale`, and `n` random queries."""
    rng = np.random.default_rng(seed)
    model = _identity_encoder_model(num_items)
    memory = rng.normal(scale=scale, size=(num_items, 4)).astype("float32")
    find_memory_layer(model).memory.assign(memory)
    return model, memory, rng.normal(size=(n, 4)).astype("float32")


def test_items_used_matches_a_numpy_count():
    model, memory, queries = _random_case(1, num_items=8, scale=2.0, n=40)
    expected = _reference_items_used(queries, memory)
    assert 1 < expected < 8  # the case tests a partial use
    assert items_used(model, queries, batch_size=16) == expected


def test_items_used_of_a_collapsed_memory_is_one(positive_rows):
    model = _identity_encoder_model()
    _collapse(model)
    assert items_used(model, positive_rows) == 1


def test_items_used_is_none_without_memory():
    model = build_dense_autoencoder((4,), units=(3, 2), variant="ae")
    assert items_used(model, np.zeros((4, 4), "float32")) is None


def test_restart_draws_a_collapsed_memory_from_the_encodings(positive_rows):
    model = _identity_encoder_model()
    _collapse(model)
    restart = MemoryCollapseCheck(positive_rows, restart=True, seed=0)
    restart.set_model(model)
    logs = {}
    restart.on_epoch_end(3, logs)
    assert logs["memory_items_used"] == 1  # the count that made it restart
    assert restart.restarts == [3]
    items = find_memory_layer(model).memory.numpy()
    # every item is now one of the queries (the encoder is the identity)
    distance = np.abs(items[:, None, :] - positive_rows[None]).max(axis=-1).min(axis=1)
    np.testing.assert_allclose(distance, 0.0, atol=1e-6)
    expected = _reference_items_used(positive_rows, items)
    assert expected > 1
    assert restart.last_items_used == expected == items_used(model, positive_rows)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        restart.on_train_end()  # no longer collapsed: no warning


def test_check_without_restart_warns_when_training_ends_collapsed(positive_rows):
    model = _identity_encoder_model()
    _collapse(model)
    before = find_memory_layer(model).memory.numpy().copy()
    check = MemoryCollapseCheck(positive_rows)
    check.set_model(model)
    check.on_epoch_end(0, {})
    assert check.restarts == []
    np.testing.assert_array_equal(find_memory_layer(model).memory.numpy(), before)
    with pytest.warns(UserWarning, match="use 1 of the 5 memory items"):
        check.on_train_end()


def test_restart_leaves_a_working_memory_alone(positive_rows):
    model = _identity_encoder_model()
    layer = find_memory_layer(model)
    layer.adapt(positive_rows, seed=1)
    before = layer.memory.numpy().copy()
    restart = MemoryCollapseCheck(positive_rows, restart=True, seed=0)
    restart.set_model(model)
    logs = {}
    restart.on_epoch_end(0, logs)
    assert logs["memory_items_used"] == _reference_items_used(positive_rows, before) > 1
    assert restart.restarts == []
    np.testing.assert_array_equal(layer.memory.numpy(), before)


def test_fit_with_memory_restart_logs_the_items_used_every_epoch():
    x = np.random.default_rng(2).random((96, 8)).astype("float32")
    detector = MemAE(build_dense_autoencoder((8,), units=(6, 3), num_items=10))
    history = detector.fit(x, epochs=3, batch_size=32, seed=0, verbose=0, memory_restart=True)
    used = history.history["memory_items_used"]
    assert len(used) == 3 and all(1 <= u <= 10 for u in used)
    # The last count is of the final weights: the NumPy count over the final queries.
    layer = find_memory_layer(detector.model)
    weights = numpy_memory(encode_queries(detector.model, x), layer.memory.numpy(),
                           layer.effective_shrink_threshold, layer.similarity)[1]
    assert used[-1] == int((weights > 0.0).any(axis=0).sum())


def test_fit_checks_the_memory_by_default_and_not_for_an_autoencoder():
    x = np.random.default_rng(2).random((64, 8)).astype("float32")
    detector = MemAE(build_dense_autoencoder((8,), units=(6, 3), num_items=10))
    assert len(detector.fit(x, epochs=2, verbose=0).history["memory_items_used"]) == 2
    plain = MemAE(build_dense_autoencoder((8,), units=(6, 3), variant="ae"))
    assert "memory_items_used" not in plain.fit(x, epochs=1, verbose=0).history


def test_memory_restart_must_be_a_bool():
    with pytest.raises(ValueError, match="memory_restart=1"):
        TrainingConfig(memory_restart=1)


def test_empty_query_share_matches_a_numpy_count():
    # Ten items and λ = 0.2: a query whose softmax is flat enough has no weight above λ.
    model, memory, queries = _random_case(3, num_items=10, scale=0.3, n=200)
    expected = float(np.mean(_reference_weights(queries, memory).max(axis=1) <= 0.0))
    assert 0.0 < expected < 1.0  # the case tests a partial share
    assert empty_query_share(model, queries, batch_size=64) == pytest.approx(expected)


def test_check_warns_when_most_queries_are_rebuilt_from_zero(positive_rows):
    # Five equal items: every softmax weight is 1/5 = 0.2, not above λ = 0.2.
    model = _identity_encoder_model()
    find_memory_layer(model).memory.assign(np.zeros((5, 4), "float32"))
    check = MemoryCollapseCheck(positive_rows)
    check.set_model(model)
    logs = {}
    check.on_epoch_end(0, logs)
    assert logs["memory_empty_queries"] == 1.0
    assert logs["memory_items_used"] == 0
    with pytest.warns(UserWarning, match=r"100% of the queries .* below the shrinkage threshold"):
        check.on_train_end()


def test_fit_logs_the_empty_share_and_warns_for_a_threshold_too_high():
    x = np.random.default_rng(4).random((64, 8)).astype("float32")
    detector = MemAE(build_dense_autoencoder((8,), units=(6, 3), num_items=10,
                                             shrink_threshold=0.9))
    with pytest.warns(UserWarning, match="from the zero vector"):
        history = detector.fit(x, epochs=1, verbose=0)
    assert history.history["memory_empty_queries"] == [
        empty_query_share(detector.model, x)] == [1.0]


def _two_items_memory(num_items: int = 5) -> np.ndarray:
    """Items 0 and 1 far along the first two axes, the others zero."""
    memory = np.zeros((num_items, 4), "float32")
    memory[0, 0] = memory[1, 1] = 20.0
    return memory


def _half_empty_rows() -> np.ndarray:
    """32 zero queries (a flat softmax: every weight 1/5, not above λ = 0.2) and 32 queries
    along the first two axes (nearly all weight on item 0 or 1)."""
    rows = np.zeros((64, 4), "float32")
    rows[32:48, 0] = rows[48:, 1] = 1.0
    return rows


def test_the_zero_vector_warning_starts_at_exactly_half_of_the_queries():
    # EMPTY_WARNING_SHARE: fit warns when *at least* half the queries are empty.
    model = _identity_encoder_model()
    find_memory_layer(model).memory.assign(_two_items_memory())
    rows = _half_empty_rows()
    weights = _reference_weights(rows, _two_items_memory())
    assert np.mean(weights.max(axis=1) <= 0.0) == 0.5
    assert int((weights > 0.0).any(axis=0).sum()) == 2
    check = MemoryCollapseCheck(rows)
    check.set_model(model)
    check.on_epoch_end(0, {})
    with pytest.warns(UserWarning, match=r"rebuilds 50% of the queries of 64 training samples"):
        check.on_train_end()


def test_a_memory_using_two_items_is_not_collapsed():
    # "When at most one item is used": two items are a working memory.
    model = _identity_encoder_model()
    find_memory_layer(model).memory.assign(_two_items_memory())
    rows = _half_empty_rows()[32:]
    assert _reference_items_used(rows, _two_items_memory()) == 2
    restart = MemoryCollapseCheck(rows, restart=True, seed=0)
    restart.set_model(model)
    restart.on_epoch_end(0, {})
    assert restart.restarts == []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        restart.on_train_end()


def _one_item_model(num_items: int, similarity: str = "dot") -> keras.Model:
    """The identity-encoder model whose positive queries all pick item 0 (by any similarity):
    item 0 at 0.75 on every axis, the others at -10."""
    inputs = keras.Input((4,))
    z = keras.layers.Dense(4, use_bias=False, kernel_initializer="identity")(inputs)
    z = MemoryLayer(num_items, shrink_threshold=THRESHOLD, similarity=similarity,
                    name="memory")(z)
    model = keras.Model(inputs, keras.layers.Dense(4)(z))
    memory = np.full((num_items, 4), -10.0, "float32")
    memory[0] = 0.75
    find_memory_layer(model).memory.assign(memory)
    return model


# Keras warns that a softmax over one item is always 1, which is this case's point.
@pytest.mark.filterwarnings("ignore:You are using a softmax over axis -1")
@pytest.mark.parametrize(("num_items", "collapsed"), [(1, False), (2, True)])
def test_one_item_used_is_a_collapse_only_when_the_memory_has_more(positive_rows, num_items,
                                                                   collapsed):
    # A memory of one item always uses its one item: nothing to restart, nothing to warn.
    memory = find_memory_layer(_one_item_model(num_items)).memory.numpy()
    assert _reference_items_used(positive_rows, memory) == 1
    restart = MemoryCollapseCheck(positive_rows, restart=True, seed=0)
    restart.set_model(_one_item_model(num_items))
    restart.on_epoch_end(0, {})
    assert restart.restarts == ([0] if collapsed else [])
    check = MemoryCollapseCheck(positive_rows)
    check.set_model(_one_item_model(num_items))
    check.on_epoch_end(0, {})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check.on_train_end()
    assert [str(w.message).startswith("The memory collapsed") for w in caught] == (
        [True] if collapsed else [])


def test_the_kth_restart_draws_with_seed_plus_k(positive_rows):
    # MemoryCollapseCheck's `seed`: "the k-th uses seed + k"; the draw is
    # MemoryLayer.adapt's over the encodings (here the rows: the encoder is the identity).
    model = _identity_encoder_model()
    restart = MemoryCollapseCheck(positive_rows, restart=True, seed=5)
    restart.set_model(model)
    for epoch, seed in ((0, 5), (1, 6)):
        _collapse(model)
        restart.on_epoch_end(epoch, {})
        reference = _identity_encoder_model()
        find_memory_layer(reference).adapt(positive_rows, seed=seed)
        np.testing.assert_array_equal(find_memory_layer(model).memory.numpy(),
                                      find_memory_layer(reference).memory.numpy())
    assert restart.restarts == [0, 1]


def test_a_restart_without_a_seed_draws_from_the_encodings(positive_rows):
    model = _identity_encoder_model()
    _collapse(model)
    restart = MemoryCollapseCheck(positive_rows, restart=True)
    restart.set_model(model)
    restart.on_epoch_end(0, {})
    assert restart.restarts == [0]
    items = find_memory_layer(model).memory.numpy()
    distance = np.abs(items[:, None, :] - positive_rows[None]).max(axis=-1).min(axis=1)
    np.testing.assert_allclose(distance, 0.0, atol=1e-6)


def test_the_check_leaves_a_model_without_memory_alone():
    model = build_dense_autoencoder((4,), units=(3, 2), variant="ae")
    check = MemoryCollapseCheck(np.zeros((8, 4), "float32"), restart=True, seed=0)
    check.set_model(model)
    logs = {}
    check.on_epoch_end(0, logs)
    assert logs == {} and check.restarts == []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check.on_train_end()


@pytest.mark.parametrize(("similarity", "advice"), [
    ("dot", "similarity='euclidean' or 'cosine'"), ("cosine", "similarity='euclidean',"),
    ("euclidean", "similarity='cosine',")])
def test_the_collapse_warning_suggests_the_other_similarities(positive_rows, similarity, advice):
    model = _one_item_model(5, similarity)
    weights = numpy_memory(positive_rows, find_memory_layer(model).memory.numpy(), THRESHOLD,
                           similarity)[1]
    assert int((weights > 0.0).any(axis=0).sum()) == 1
    check = MemoryCollapseCheck(positive_rows)
    check.set_model(model)
    check.on_epoch_end(0, {})
    with pytest.warns(UserWarning, match="The memory collapsed") as caught:
        check.on_train_end()
    assert advice in str(caught[0].message)
