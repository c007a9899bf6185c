"""The MemAE detector API: fit / score / threshold / predict / save / errors."""

import math
import re

import keras
import numpy as np
import pytest
import tensorflow as tf
from test_memory_layer import numpy_memory

from memae_tf import MemAE
from memae_tf.models import presets
from memae_tf.models.memory_block import encode_queries, find_memory_layer

TINY_DENSE = {"input_shape": (8,), "units": (6, 3), "num_items": 10}
TINY_IMAGE = {"input_shape": (12, 12, 1), "filters": (4, 8), "kernel_sizes": 3, "num_items": 10}


@pytest.fixture(scope="module")
def normal_rows():
    rng = np.random.default_rng(0)
    basis = rng.normal(size=(2, 8))
    return (rng.normal(size=(600, 2)) @ basis * 0.1 + 0.5).astype("float32")


@pytest.fixture(scope="module")
def fitted(normal_rows):
    keras.utils.set_random_seed(0)
    detector = MemAE.from_preset("kdd", **TINY_DENSE)
    detector.fit(normal_rows, epochs=15, batch_size=32, verbose=0, seed=0)
    return detector


def test_training_reduces_the_loss(fitted):
    loss = fitted.history_.history["loss"]
    assert loss[-1] < 0.5 * loss[0]


def test_score_is_the_mean_squared_reconstruction_error(fitted, normal_rows):
    x = normal_rows[:50]
    reconstruction = fitted.model(x, training=False).numpy()
    expected = ((x.astype(np.float64) - reconstruction) ** 2).mean(axis=1)
    np.testing.assert_allclose(fitted.score(x, batch_size=7), expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(fitted.score_map(x), (x - reconstruction) ** 2, rtol=1e-5,
                               atol=1e-7)
    np.testing.assert_allclose(fitted.reconstruct(x), reconstruction, rtol=1e-5, atol=1e-7)


def test_off_manifold_samples_score_higher(fitted, normal_rows):
    rng = np.random.default_rng(5)
    anomalies = rng.uniform(0, 1, size=(200, 8)).astype("float32")
    assert np.median(fitted.score(anomalies)) > 3 * np.median(fitted.score(normal_rows[:200]))


def test_infer_threshold_with_fpr_is_the_normal_score_quantile(fitted, normal_rows):
    threshold = fitted.infer_threshold(normal_rows, fpr=0.1)
    assert threshold == pytest.approx(np.quantile(fitted.score(normal_rows), 0.9))
    assert fitted.threshold_ == threshold
    flagged = fitted.predict(normal_rows)
    assert set(np.unique(flagged)) <= {0, 1}
    assert flagged.mean() == pytest.approx(0.1, abs=0.01)


def test_infer_threshold_with_contamination(fitted, normal_rows):
    threshold = fitted.infer_threshold(normal_rows, contamination=0.25)
    assert threshold == pytest.approx(np.quantile(fitted.score(normal_rows), 0.75))
    with pytest.raises(ValueError, match="not both"):
        fitted.infer_threshold(normal_rows, fpr=0.1, contamination=0.1)
    with pytest.raises(ValueError, match="fpr"):
        fitted.infer_threshold(normal_rows, fpr=1.5)


def test_predict_without_threshold_raises(normal_rows):
    with pytest.raises(RuntimeError, match="infer_threshold"):
        MemAE.from_preset("kdd", **TINY_DENSE).predict(normal_rows[:3])


def test_fit_with_contamination_sets_threshold(normal_rows):
    detector = MemAE.from_preset("kdd", variant="ae", **TINY_DENSE)
    detector.fit(normal_rows[:128], epochs=1, verbose=0, contamination=0.2)
    assert detector.threshold_ == pytest.approx(np.quantile(detector.score(normal_rows[:128]),
                                                            0.8))


def test_save_and_load_keep_model_threshold_and_preset(fitted, normal_rows, tmp_path):
    fitted.infer_threshold(normal_rows, fpr=0.05)
    path = fitted.save(tmp_path / "detector.keras")
    loaded = MemAE.load(path)
    np.testing.assert_array_equal(loaded.score(normal_rows), fitted.score(normal_rows))
    assert loaded.threshold_ == fitted.threshold_
    # The monitoring reference infer_threshold kept: its rate and its 101 score quantiles.
    assert loaded.expected_rate_ == 0.05 and len(loaded.reference_quantiles_) == 101
    np.testing.assert_array_equal(loaded.reference_quantiles_, fitted.reference_quantiles_)
    assert loaded.variant == "memae"
    assert loaded.get_config() == fitted.get_config()
    # A plain Keras user can open the same file.
    plain = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(plain(normal_rows[:4]), fitted.reconstruct(normal_rows[:4]),
                               rtol=1e-6)


def test_a_detector_saved_without_a_threshold_loads_without_a_reference(tmp_path):
    detector = MemAE.from_preset("kdd", **TINY_DENSE)
    loaded = MemAE.load(detector.save(tmp_path / "unfitted.keras"))
    assert (loaded.threshold_, loaded.expected_rate_, loaded.reference_quantiles_) == (
        None, None, None)


def test_save_requires_keras_suffix(fitted, tmp_path):
    with pytest.raises(ValueError, match=r"\.keras"):
        fitted.save(tmp_path / "detector.h5")


def test_uint8_images_are_scaled_and_channel_axis_added():
    detector = MemAE.from_preset("mnist", **TINY_IMAGE)
    pixels = np.random.default_rng(1).integers(0, 256, size=(5, 12, 12), dtype=np.uint8)
    as_float = pixels[..., None].astype("float32") / 127.5 - 1.0  # the preset's [-1, 1]
    np.testing.assert_allclose(detector.score(pixels), detector.score(as_float), rtol=1e-6)
    np.testing.assert_allclose(detector.preprocess(pixels), as_float, atol=1e-6)


def test_preprocess_scales_uint8_into_the_preset_input_range():
    detector = MemAE.from_preset("video", input_shape=(4, 8, 8, 1), filters=(2, 2),
                                 kernel_sizes=3, strides=2, num_items=4)
    clips = np.zeros((3, 4, 8, 8), np.uint8)
    clips[1], clips[2] = 51, 255
    prepared = detector.preprocess(clips)
    assert prepared.shape == (3, 4, 8, 8, 1) and prepared.dtype == np.float32
    np.testing.assert_allclose(prepared[:, 0, 0, 0, 0], [-1.0, -0.6, 1.0], rtol=1e-6)


def test_fit_on_tf_data_trains_as_on_the_same_array(normal_rows):
    # (x, y) pairs whose y is zeros: the inputs are the targets, the labels are ignored.
    dataset = tf.data.Dataset.from_tensor_slices((normal_rows, np.zeros(len(normal_rows))))
    losses = []
    for x in (normal_rows, dataset):
        keras.utils.set_random_seed(0)
        detector = MemAE.from_preset("kdd", variant="memae-nonspar", **TINY_DENSE)
        history = detector.fit(x, epochs=2, batch_size=50, shuffle=False, memory_init="keep",
                               verbose=0)
        losses.append(history.history["loss"])
    assert len(losses[0]) == 2
    np.testing.assert_allclose(losses[1], losses[0], rtol=1e-6)


def test_memory_attention_rows_are_sparse_distributions(normal_rows):
    # λ = 1/N (the paper's): the hard shrinkage zeroes the weights below it.
    keras.utils.set_random_seed(0)
    detector = MemAE.from_preset("kdd", **TINY_DENSE, shrink_threshold=0.1)
    detector.fit(normal_rows, epochs=3, batch_size=32, verbose=0, seed=0)
    x = normal_rows[:50]
    attention = detector.memory_attention(x)
    queries = encode_queries(detector.model, detector.preprocess(x))
    memory = find_memory_layer(detector.model).memory.numpy()
    _, expected, _ = numpy_memory(queries, memory, 0.1, "dot")
    np.testing.assert_allclose(attention, expected, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(attention.sum(axis=1), 1.0, rtol=1e-5)
    assert np.all((attention == 0.0).sum(axis=1) >= 2)  # a dense softmax has no zero
    with pytest.raises(ValueError, match="no MemoryLayer"):
        MemAE.from_preset("kdd", variant="ae", **TINY_DENSE).memory_attention(normal_rows[:2])


def test_custom_keras_model_is_accepted():
    inputs = keras.Input((4,))
    outputs = keras.layers.Dense(4)(keras.layers.Dense(2)(inputs))
    detector = MemAE(keras.Model(inputs, outputs))
    x = np.random.default_rng(2).uniform(size=(3, 4)).astype("float32")
    reconstruction = detector.model(x).numpy().astype(np.float64)
    np.testing.assert_allclose(detector.score(x), ((x - reconstruction) ** 2).mean(axis=1),
                               rtol=1e-5)
    with pytest.raises(ValueError, match="same shape"):
        MemAE(keras.Model(inputs, keras.layers.Dense(2)(inputs)))


@pytest.mark.parametrize(
    "x, error, message",
    [
        (np.zeros((3, 9), "float32"), ValueError, r"shape \(None, 8\)"),
        (np.zeros((8,), "float32"), ValueError, "rank 2"),
        (np.zeros((0, 8), "float32"), ValueError, "empty"),
        (np.full((2, 8), np.nan, "float32"), ValueError, "NaN"),
        (np.array([[np.inf] * 8], "float32"), ValueError, "Inf"),
        (np.array([["a"] * 8]), TypeError, "numbers"),
    ],
)
def test_bad_inputs_raise_clear_errors(x, error, message):
    detector = MemAE.from_preset("kdd", **TINY_DENSE)
    with pytest.raises(error, match=message):
        detector.score(x)


@pytest.mark.parametrize(
    "kwargs, message",
    [({"epochs": 0}, "epochs"), ({"batch_size": -1}, "batch_size"),
     ({"learning_rate": 0}, "learning_rate")],
)
def test_bad_fit_arguments_raise(kwargs, message, normal_rows):
    with pytest.raises(ValueError, match=message):
        MemAE.from_preset("kdd", **TINY_DENSE).fit(normal_rows, verbose=0, **kwargs)


def test_fit_accepts_a_learning_rate_schedule(normal_rows):
    schedule = keras.optimizers.schedules.CosineDecay(1e-3, decay_steps=20)
    detector = MemAE.from_preset("kdd", **TINY_DENSE)
    detector.fit(normal_rows[:128], epochs=1, batch_size=32, learning_rate=schedule, verbose=0)
    optimizer = detector.model.optimizer
    assert int(optimizer.iterations) == 4
    # The schedule's own rate at the step reached, not a constant or the cosine epoch decay.
    step = 4
    expected = 1e-3 * 0.5 * (1 + np.cos(np.pi * step / 20))
    assert float(optimizer.learning_rate) == pytest.approx(expected, rel=1e-6)


def test_fit_keeps_the_training_scores_and_infer_threshold_their_labels(normal_rows):
    keras.utils.set_random_seed(0)
    detector = MemAE.from_preset("kdd", variant="ae", **TINY_DENSE)
    model = detector.model
    history = detector.fit(normal_rows[:128], epochs=1, verbose=0)
    # Keras' Model.fit: the History of the run, kept as history_; the model is trained.
    assert history is detector.history_ and history.epoch == [0] and detector.model is model
    np.testing.assert_allclose(detector.decision_scores_, detector.score(normal_rows[:128]),
                               rtol=1e-6)
    assert detector.labels_ is None  # no threshold yet
    held_out = normal_rows[128:328]
    threshold = detector.infer_threshold(held_out, fpr=0.1)
    scores = detector.score(held_out)
    np.testing.assert_allclose(detector.decision_scores_, scores, rtol=1e-6)
    np.testing.assert_array_equal(detector.labels_, (scores > threshold).astype(np.int64))
    assert detector.labels_.sum() == 20  # 10% of 200 above the 90% quantile


def test_scores_after_a_second_fit_are_those_of_the_new_weights():
    # The scoring graph is traced once and reused by later fits: it must read the
    # weights (batch-norm statistics folded in) that the second fit left.
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(3).uniform(size=(96, 12, 12, 1)).astype("float32")
    detector = MemAE.from_preset("mnist", error="mse", **TINY_IMAGE)
    detector.fit(x, epochs=1, batch_size=32, verbose=0, seed=0)
    first = detector.score(x[:16])
    detector.fit(x, epochs=2, batch_size=32, verbose=0, seed=1)
    reconstruction = detector.model(x[:16], training=False).numpy().astype(np.float64)
    expected = ((x[:16] - reconstruction) ** 2).mean(axis=(1, 2, 3))
    np.testing.assert_allclose(detector.decision_scores_[:16], expected, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(detector.score(x[:16]), expected, rtol=1e-4, atol=1e-7)
    assert np.abs(first - expected).max() > 1e-4  # the second fit changed the scores


def test_fit_predict_flags_the_contamination_share_of_its_training_data(normal_rows):
    keras.utils.set_random_seed(0)
    detector = MemAE.from_preset("kdd", variant="ae", **TINY_DENSE)
    # PyOD's BaseDetector: contamination=0.1 unless given.
    labels = detector.fit_predict(normal_rows[:200], epochs=1, verbose=0)
    assert labels.dtype == np.int64 and labels.sum() == 20
    np.testing.assert_array_equal(labels, detector.predict(normal_rows[:200]))
    np.testing.assert_array_equal(labels, detector.labels_)


def test_predict_proba_scales_scores_as_pyod_does(fitted, normal_rows):
    fitted.infer_threshold(normal_rows[:300], fpr=0.05)
    reference = fitted.score(normal_rows[:300]).astype(np.float64)
    # The last row scores above every reference score: PyOD clips its probability to 1.
    x = np.concatenate([normal_rows[300:310],
                        np.random.default_rng(7).uniform(size=(5, 8)).astype("float32"),
                        np.full((1, 8), 10.0, "float32")])
    scores = fitted.score(x).astype(np.float64)
    assert scores[-1] > reference.max()
    linear = np.clip((scores - reference.min()) / (reference.max() - reference.min()), 0, 1)
    unify = np.array([max(0.0, math.erf((s - reference.mean()) / (reference.std() * 2 ** 0.5)))
                      for s in scores])
    for method, anomaly in (("linear", linear), ("unify", unify)):
        proba = fitted.predict_proba(x, method=method)
        np.testing.assert_allclose(proba[:, 1], anomaly, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert proba[10:, 1].mean() > proba[:10, 1].mean()  # the uniform rows are the anomalies
    with pytest.raises(ValueError, match="Received: method='rank'"):
        fitted.predict_proba(x, method="rank")
    with pytest.raises(RuntimeError, match="before predict_proba"):
        MemAE.from_preset("kdd", **TINY_DENSE).predict_proba(x)


def test_the_constructors_threshold_is_a_parameter_not_a_fitted_attribute(normal_rows):
    detector = MemAE.from_preset("kdd", variant="ae", **TINY_DENSE)
    given = MemAE(detector.model, threshold=0.25)
    assert given.threshold == given.threshold_ == 0.25  # in effect until one is inferred
    inferred = given.infer_threshold(normal_rows, fpr=0.1)
    assert given.threshold_ == inferred != 0.25
    assert given.threshold == 0.25


def test_the_input_range_and_error_default_to_the_presets_or_to_0_1_and_mse():
    # The class docstring: input_range defaults to the preset's range, or (0, 1); error
    # to the preset's, or "mse" for a custom model; low < high.
    mnist = MemAE.from_preset("mnist")
    assert (mnist.input_range, mnist.error) == (presets.PRESETS["mnist"].input_range, "ssim")
    assert MemAE.from_preset("mnist", error="mse").error == "mse"
    custom = MemAE(MemAE.from_preset("kdd", **TINY_DENSE).model)
    assert (custom.input_range, custom.error) == ((0.0, 1.0), "mse")
    assert MemAE(custom.model, input_range=(-2, 3)).input_range == (-2.0, 3.0)
    for refused in ((1.0, 1.0), (2.0, 1.0)):
        with pytest.raises(ValueError, match="must satisfy low < high"):
            MemAE(custom.model, input_range=refused)


def test_a_table_preset_has_no_network_before_its_first_fit():
    # It takes its width from the first fit's (n, d) rows, as a PyOD detector does.
    detector = MemAE.from_preset("tabular")
    assert (detector.model, detector.input_shape) == (None, None)
    rows = tf.data.Dataset.from_tensor_slices(np.zeros((8, 8), "float32")).batch(4)
    for refused, received in ((rows, "Received: _BatchDataset"),
                              (np.zeros((4, 2, 3), "float32"), "of shape (4, 2, 3)")):
        with pytest.raises(ValueError, match=re.escape(received)):
            detector.fit(refused, verbose=0)
    assert detector.model is None


def test_contamination_needs_array_inputs():
    detector = MemAE.from_preset("kdd", **TINY_DENSE)
    dataset = tf.data.Dataset.from_tensor_slices(np.zeros((8, 8), "float32")).batch(4)
    with pytest.raises(ValueError, match="`contamination` needs array inputs"):
        detector.fit(dataset, contamination=0.1, verbose=0)
    assert detector.history_ is None  # refused before any training
