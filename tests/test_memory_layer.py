"""MemoryLayer against an independent NumPy re-derivation of the paper's formulas."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from memory_reference import numpy_memory

from memae_tf import MemoryLayer

SHAPES = {2: (6, 5), 4: (2, 3, 4, 5), 5: (2, 2, 3, 3, 5)}


@pytest.mark.parametrize("rank", [2, 4, 5])
@pytest.mark.parametrize("similarity", ["dot", "cosine", "euclidean"])
@pytest.mark.parametrize("shrink", [None, 0.0, 0.15])
def test_matches_numpy_reference(rank, similarity, shrink):
    rng = np.random.default_rng(rank)
    z = rng.normal(size=SHAPES[rank]).astype("float32") * 2.0
    layer = MemoryLayer(8, shrink_threshold=shrink, entropy_weight=0.5,
                        similarity=similarity, return_attention=True)
    out, attention = layer(z, training=True)
    threshold = 1.0 / 8 if shrink is None else shrink
    ref_out, ref_w, ref_entropy = numpy_memory(z, layer.memory.numpy(), threshold, similarity)
    np.testing.assert_allclose(out, ref_out, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(attention, ref_w, rtol=1e-4, atol=1e-6)
    assert len(layer.losses) == 1
    np.testing.assert_allclose(float(layer.losses[0]), 0.5 * ref_entropy, rtol=1e-4, atol=1e-7)


def test_euclidean_addressing_prefers_the_nearest_item_over_the_longest():
    layer = MemoryLayer(2, shrink_threshold=0.0, similarity="euclidean")
    layer.build((None, 2))
    layer.memory.assign(np.array([[1.0, 0.0], [10.0, 0.0]], "float32"))
    query = np.array([[1.5, 0.0]], "float32")
    # squared distances 0.25 and 72.25 over C = 2: weights ∝ exp(-0.125), exp(-36.125)
    expected = np.exp([-0.125, -36.125]) / np.exp([-0.125, -36.125]).sum()
    np.testing.assert_allclose(np.asarray(layer.addressing(query))[0], expected, rtol=1e-5)
    dot = MemoryLayer(2, shrink_threshold=0.0)
    dot.build((None, 2))
    dot.memory.assign(layer.memory.numpy())
    assert np.asarray(dot.addressing(query))[0].argmax() == 1  # the dot product picks the longest


def test_shrinkage_zeroes_small_weights_and_rows_sum_to_one():
    z = np.random.default_rng(0).normal(size=(32, 6)).astype("float32") * 3
    w = MemoryLayer(10, shrink_threshold=0.1).addressing(z)
    w = np.asarray(w)
    kept = w > 0
    assert kept.sum() < w.size  # some weights were shrunk to exactly zero
    np.testing.assert_allclose(w.sum(axis=1)[kept.any(axis=1)], 1.0, rtol=1e-5)


def test_default_threshold_is_one_over_num_items():
    assert MemoryLayer(40).effective_shrink_threshold == pytest.approx(1 / 40)
    assert MemoryLayer(40, shrink_threshold=0.0).effective_shrink_threshold == 0.0


def test_memory_weight_shape_and_initial_range():
    layer = MemoryLayer(7)
    layer.build((None, 16))
    memory = layer.memory.numpy()
    assert memory.shape == (7, 16)
    assert np.all(np.abs(memory) <= 1 / np.sqrt(16))
    assert layer.memory.trainable


def test_all_weights_shrunk_gives_zero_output_and_finite_gradients():
    # With λ above the largest possible softmax weight every row is zeroed.
    layer = MemoryLayer(4, shrink_threshold=0.9, entropy_weight=1.0)
    z = tf.Variable(np.random.default_rng(1).normal(size=(3, 5)).astype("float32") * 0.01)
    with tf.GradientTape() as tape:
        out = layer(z, training=True)
        loss = tf.reduce_sum(out) + tf.add_n(layer.losses)
    grads = tape.gradient(loss, [z, layer.memory.value])
    np.testing.assert_array_equal(out.numpy(), 0.0)
    assert all(np.all(np.isfinite(g.numpy())) for g in grads)


def test_no_entropy_loss_outside_training_or_with_zero_weight():
    z = np.ones((2, 3), "float32")
    layer = MemoryLayer(5)
    layer(z, training=False)
    assert layer.losses == []
    layer0 = MemoryLayer(5, entropy_weight=0.0)
    layer0(z, training=True)
    assert layer0.losses == []


def test_gradients_reach_memory_and_encoder():
    inputs = keras.Input((6,))
    code = keras.layers.Dense(4, name="enc")(inputs)
    rebuilt = MemoryLayer(5, name="memory")(code)
    model = keras.Model(inputs, keras.layers.Dense(6, name="dec")(rebuilt))
    x = np.random.default_rng(2).normal(size=(8, 6)).astype("float32")
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean((model(x, training=True) - x) ** 2) + tf.add_n(model.losses)
    grads = tape.gradient(loss, model.trainable_variables)
    by_name = {v.path: g for v, g in zip(model.trainable_variables, grads, strict=True)}
    assert np.any(by_name["memory/memory"].numpy() != 0)
    assert np.any(by_name["enc/kernel"].numpy() != 0)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_items": 0}, "num_items"),
        ({"num_items": 2.5}, "num_items"),
        ({"num_items": 4, "shrink_threshold": -0.1}, "shrink_threshold"),
        ({"num_items": 4, "shrink_threshold": 1.0}, "shrink_threshold"),
        ({"num_items": 4, "entropy_weight": -1}, "entropy_weight"),
        ({"num_items": 4, "similarity": "l2"}, "similarity"),
    ],
)
def test_invalid_arguments_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MemoryLayer(**kwargs)


def test_rank3_input_is_rejected():
    with pytest.raises(ValueError, match="rank 2"):
        MemoryLayer(4)(np.zeros((2, 3, 4), "float32"))


def test_keras_save_load_round_trip_safe_mode(tmp_path):
    inputs = keras.Input((4, 4, 3))
    outputs = MemoryLayer(6, shrink_threshold=0.05, entropy_weight=1e-3, similarity="cosine")(
        inputs)
    model = keras.Model(inputs, outputs)
    x = np.random.default_rng(3).normal(size=(2, 4, 4, 3)).astype("float32")
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_array_equal(loaded(x).numpy(), model(x).numpy())
    assert loaded.layers[-1].get_config() == model.layers[-1].get_config()


def test_mixed_precision_keeps_addressing_in_float32():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        layer = MemoryLayer(5, return_attention=True)
        z = (np.random.default_rng(0).normal(size=(6, 4)) * 2).astype("float16")
        out, attention = layer(z)
        assert layer.memory.dtype == "float32"
        assert out.dtype == "float16"
        assert attention.dtype == "float32"
    finally:
        keras.mixed_precision.set_global_policy("float32")
    ref_out, ref_w, _ = numpy_memory(z, layer.memory.numpy(), 1.0 / 5, "dot")
    # Addressing in float32: measured 7e-8 from the float64 reference; computed from float16
    # items it is 7e-5 off. The read-out is rounded to float16 (relative step 2^-10 ≈ 1e-3).
    np.testing.assert_allclose(attention, ref_w, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out.numpy().astype(np.float64), ref_out, rtol=2e-3, atol=1e-3)


def test_xla_compiled_call_matches_eager():
    layer = MemoryLayer(9, return_attention=True)
    z = np.random.default_rng(4).normal(size=(3, 2, 2, 7)).astype("float32")
    eager = layer(z)
    compiled = tf.function(layer, jit_compile=True)(z)
    for a, b in zip(eager, compiled, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)


def test_default_entropy_weight_is_the_papers_0_0002():
    z = np.random.default_rng(5).normal(size=(4, 3)).astype("float32")
    layer = MemoryLayer(6)
    layer(z, training=True)
    _, _, entropy = numpy_memory(z, layer.memory.numpy(), 1.0 / 6, "dot")
    np.testing.assert_allclose(float(layer.losses[0]), 2e-4 * entropy, rtol=1e-4)


def test_addressing_keeps_the_leading_axes_of_a_rank_4_input():
    z = np.random.default_rng(6).normal(size=(2, 3, 2, 5)).astype("float32")
    layer = MemoryLayer(7)
    weights = np.asarray(layer.addressing(z))
    assert weights.shape == (2, 3, 2, 7)
    _, ref_w, _ = numpy_memory(z, layer.memory.numpy(), 1.0 / 7, "dot")
    np.testing.assert_allclose(weights, ref_w, rtol=1e-4, atol=1e-6)


def test_output_shapes_with_attention_follow_the_input():
    layer = MemoryLayer(7, return_attention=True)
    assert layer.compute_output_shape((None, 4, 4, 3)) == ((None, 4, 4, 3), (None, 4, 4, 7))
    assert MemoryLayer(7).compute_output_shape((None, 3)) == (None, 3)
    out, attention = layer(keras.Input((4, 4, 3)))
    assert (tuple(out.shape), tuple(attention.shape)) == ((None, 4, 4, 3), (None, 4, 4, 7))
    assert attention.dtype == "float32"


def test_config_holds_every_constructor_argument():
    arguments = {"num_items": 9, "shrink_threshold": 0.05, "entropy_weight": 1e-3,
                 "similarity": "euclidean", "return_attention": True}
    config = MemoryLayer(**arguments, name="mem").get_config()
    assert {key: config[key] for key in arguments} == arguments
    assert MemoryLayer.from_config(config).get_config() == config


def test_adapt_takes_a_single_query_vector():
    layer = MemoryLayer(num_items=4)
    layer.build((None, 3))
    assert layer.adapt(np.array([1.0, 2.0, 3.0], "float32"), seed=0) == 1
    np.testing.assert_array_equal(layer.memory.numpy()[0], [1.0, 2.0, 3.0])
