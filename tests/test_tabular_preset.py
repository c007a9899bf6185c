"""The `tabular` preset: raw features in, width from the data, scaling inside the model."""

import keras
import numpy as np
import pytest
from sklearn.preprocessing import MinMaxScaler, RobustScaler, StandardScaler

from memae_tf import MemAE
from memae_tf.client import MemAEClient
from memae_tf.layers import FeatureScaler, MemoryLayer
from memae_tf.models.dense import tabular_units
from memae_tf.models.presets import build_autoencoder, get_preset
from memae_tf.models.scaling import adapt_feature_scalers, feature_scalers, reconstruction_loss
from memae_tf.serving import serve

# A few steps: these tests check plumbing and exact equalities, not detection quality.
QUICK = {"epochs": 1, "steps_per_epoch": 4, "verbose": 0, "seed": 0}


def _raw_rows(n: int, seed: int = 0) -> np.ndarray:
    """Rows whose features live on very different scales, one of them constant."""
    rng = np.random.default_rng(seed)
    columns = [rng.normal(5e4, 2e3, n), rng.exponential(0.01, n), rng.integers(0, 10, n),
               np.full(n, 7.0), rng.normal(-3.0, 1.0, n)]
    return np.stack(columns, axis=1).astype("float32")


@pytest.mark.parametrize("method, reference", [
    ("standard", StandardScaler), ("robust", RobustScaler), ("minmax", MinMaxScaler)])
def test_adapted_scaler_matches_scikit_learn(method, reference):
    x = _raw_rows(301)
    scaler = FeatureScaler(method)
    scaler.adapt(x)
    expected = reference().fit(x.astype(np.float64)).transform(_raw_rows(50, seed=1))
    np.testing.assert_allclose(np.asarray(scaler(_raw_rows(50, seed=1))), expected,
                               rtol=1e-4, atol=1e-4)


def test_standard_scaler_matches_keras_normalization():
    x = _raw_rows(200)
    scaler = FeatureScaler("standard")
    scaler.adapt(x)
    normalization = keras.layers.Normalization(axis=-1)
    normalization.adapt(x)
    np.testing.assert_allclose(np.asarray(scaler.center), np.asarray(normalization.mean)[0],
                               rtol=1e-5)
    variance = np.asarray(normalization.variance)[0]
    varying = variance > 0
    np.testing.assert_allclose(np.asarray(scaler.scale)[varying] ** 2, variance[varying],
                               rtol=1e-4)
    assert np.asarray(scaler.scale)[~varying].tolist() == [1.0]  # the constant column


def test_inverse_scaler_undoes_the_scaler():
    x = _raw_rows(64)
    forward, inverse = FeatureScaler("robust"), FeatureScaler("robust", invert=True)
    forward.adapt(x)
    inverse.adapt(x)
    np.testing.assert_allclose(np.asarray(inverse(forward(x))), x, rtol=1e-5, atol=1e-6)


def test_unknown_scaling_is_refused():
    with pytest.raises(ValueError, match="Received: method='zscore'"):
        FeatureScaler("zscore")


@pytest.mark.parametrize("shape", [(2, 3, 5), (2,)])
def test_scaler_takes_only_rows_of_features(shape):
    with pytest.raises(ValueError, match=r"expects inputs shaped \(batch, d\)"):
        FeatureScaler()(np.zeros(shape, np.float32))
    with pytest.raises(ValueError, match=r"Received: input_shape=\(None, None\)"):
        FeatureScaler().build((None, None))


def test_scaler_statistics_are_saved_but_never_trained():
    scaler = FeatureScaler("minmax")
    scaler.adapt(_raw_rows(20))
    assert scaler.trainable_weights == []
    assert sorted(weight.name for weight in scaler.non_trainable_weights) == ["center", "scale"]


def test_adapt_takes_one_row_or_more_of_the_layers_width():
    row = _raw_rows(1)
    scaler = FeatureScaler("standard")
    scaler.adapt(row)  # one row: centred on itself, every scale 1 (a zero spread)
    np.testing.assert_array_equal(np.asarray(scaler.center), row[0])
    np.testing.assert_array_equal(np.asarray(scaler.scale), np.ones(5))
    for data, received in [(np.zeros((0, 5)), r"\(0, 5\)"), (np.zeros((4, 6)), r"\(4, 6\)"),
                           (np.zeros(5), r"\(5,\)")]:
        with pytest.raises(ValueError, match=rf"expects data shaped \(n, 5\) with n >= 1\. "
                                             rf"Received: shape={received}"):
            scaler.adapt(data)
    with pytest.raises(ValueError, match="NaN or Inf"):
        scaler.adapt(np.where(np.arange(5) == 2, np.inf, row))


def test_scaler_reloads_with_its_method_direction_and_statistics(tmp_path):
    x = _raw_rows(40)
    scaler = FeatureScaler("robust", invert=True, name="unscale")
    scaler.adapt(x)
    model = keras.Sequential([keras.Input((5,)), scaler])
    assert scaler.compute_output_shape((None, 5)) == (None, 5)
    model.save(tmp_path / "scaler.keras")
    restored = keras.saving.load_model(tmp_path / "scaler.keras").get_layer("unscale")
    assert (restored.method, restored.invert) == ("robust", True)
    np.testing.assert_array_equal(np.asarray(restored(x)), np.asarray(scaler(x)))


@pytest.mark.parametrize("width, units", [(1, (16, 8, 2)), (9, (16, 8, 3)), (18, (32, 16, 5)),
                                          (36, (64, 32, 8)), (120, (64, 32, 8))])
def test_layer_widths_follow_the_number_of_features(width, units):
    assert tabular_units(width) == units


# code = ceil(d * scale / 4) within [2, min(8 * scale, hidden / 2)], worked out by hand.
@pytest.mark.parametrize("width, scale, units", [
    (8, 2, (16, 8, 4)), (9, 2, (16, 8, 5)), (18, 2, (32, 16, 9)), (60, 2, (64, 32, 16)),
    (8, 4, (16, 8, 8)), (9, 4, (16, 8, 8)), (18, 4, (32, 16, 16)), (33, 4, (64, 32, 32)),
    (120, 4, (64, 32, 32)), (1, 0.5, (16, 8, 2)), (36, 1, (64, 32, 8))])
def test_code_scale_widens_the_code_only(width, scale, units):
    assert tabular_units(width, code_scale=scale) == units


def test_tabular_network_takes_the_code_scale():
    model = build_autoencoder("tabular", "ae", input_shape=(18,), code_scale=2)
    widths = [layer.units for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    assert widths == [32, 16, 9, 16, 32, 18]


@pytest.mark.parametrize("kwargs, message", [
    ({"width": 0}, "Received: width=0"), ({"width": 9, "code_scale": 0}, "Received: code_scale=0"),
    ({"width": 9, "code_scale": float("nan")}, "Received: code_scale=nan"),
    ({"width": 9, "code_scale": "2"}, "Received: code_scale='2'")])
def test_tabular_units_refuses_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        tabular_units(**kwargs)


def test_explicit_units_take_precedence_over_the_code_scale():
    # The `tabular` preset sets a code_scale; a user's `units` override still decides.
    model = build_autoencoder("tabular", "ae", input_shape=(36,), units=(16, 4))
    widths = [layer.units for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    assert widths == [16, 4, 16, 36]


def test_tabular_preset_code_is_four_times_the_derived_width():
    # 9 features: hidden 16, 8; code ceil(9 * 4 / 4) = 9, capped at the second layer's 8.
    model = build_autoencoder("tabular", "memae", input_shape=(9,))
    widths = [layer.units for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    assert widths == [16, 8, 8, 8, 16, 9]


def test_tabular_preset_memory_shrinks_at_two_over_its_size():
    # λ = 2/N: 0.01 for the preset's 200 items.
    model = build_autoencoder("tabular", "memae", input_shape=(9,))
    memory = next(layer for layer in model.layers if isinstance(layer, MemoryLayer))
    assert memory.num_items == 200
    assert memory.effective_shrink_threshold == pytest.approx(2 / 200)


def test_tabular_preset_trains_6000_steps_of_32_rows():
    # 60 epochs of 100 batches of 32 rows, whatever the table's size.
    assert get_preset("tabular").training == {"batch_size": 32, "steps_per_epoch": 100,
                                              "epochs": 60}


@pytest.fixture(scope="module")
def fitted() -> MemAE:
    """A tabular MemAE built by its first fit, on rows of 5 raw features."""
    keras.utils.set_random_seed(0)
    detector = MemAE.from_preset("tabular")
    assert detector.model is None
    with pytest.raises(RuntimeError, match="call fit"):
        detector.score(_raw_rows(4))
    detector.fit(_raw_rows(128), **QUICK)
    return detector


def test_width_is_taken_from_the_first_fit(fitted):
    assert fitted.input_shape == (5,)
    dense = [layer.units for layer in fitted.model.layers
             if isinstance(layer, keras.layers.Dense)]
    # encoder 16-8-5 (the preset's code_scale 4: ceil(5 * 4 / 4) = 5), decoder 8-16, 5 features
    assert dense == [16, 8, 5, 8, 16, 5]
    assert fitted.get_config()["overrides"]["input_shape"] == [5]


def test_fit_defaults_come_from_the_preset():
    detector = MemAE.from_preset("tabular", "ae")
    history = detector.fit(_raw_rows(40), verbose=0, seed=0, epochs=1)
    assert history.params["steps"] == 100  # the preset's steps_per_epoch, not 40 rows / 32


def test_scores_are_the_error_between_scaled_input_and_scaled_reconstruction(fitted):
    test = _raw_rows(16, seed=2)
    reconstruction = fitted.reconstruct(test)
    std = _raw_rows(128).astype(np.float64).std(axis=0)
    std[std == 0] = 1.0
    expected = (((test - reconstruction) / std) ** 2).mean(axis=1)
    np.testing.assert_allclose(fitted.score(test), expected, rtol=2e-3)


def test_scores_do_not_depend_on_the_units_of_the_features():
    x, test = _raw_rows(128), _raw_rows(16, seed=3)
    scale, shift = np.float32([1e3, 1e-2, 5.0, 2.0, 1.0]), np.float32([7.0, 0.0, -3.0, 1.0, 9.0])
    scores = []
    for rows, queries in ((x, test), (x * scale + shift, test * scale + shift)):
        keras.utils.set_random_seed(0)  # the same initial weights
        detector = MemAE.from_preset("tabular")
        detector.fit(rows, **QUICK)
        scores.append(detector.score(queries))
    np.testing.assert_allclose(scores[0], scores[1], rtol=1e-3, atol=1e-5)


def test_saved_detector_keeps_its_scaling(tmp_path, fitted):
    test = _raw_rows(16, seed=4)
    loaded = MemAE.load(fitted.save(tmp_path / "table.keras"))
    np.testing.assert_array_equal(loaded.score(test), fitted.score(test))


def test_served_model_takes_raw_features_and_equals_in_process_scores(tmp_path, fitted):
    fitted.infer_threshold(_raw_rows(128), fpr=0.1)
    fitted.export(tmp_path / "table")
    test = _raw_rows(32, seed=5)
    with serve(tmp_path / "table", "table", port=0, host="127.0.0.1") as server, \
            MemAEClient(f"127.0.0.1:{server.port}", "table", timeout=30) as client:
        # The model scales its own features: its model_info has no input range to check.
        assert client.model_info().input_range is None
        outputs = client.run_signature(test)
    np.testing.assert_allclose(outputs["score"], fitted.score(test), rtol=1e-5)
    np.testing.assert_allclose(outputs["reconstruction"], fitted.reconstruct(test),
                               rtol=1e-5, atol=1e-3)
    assert outputs["score"].max() < 1e3  # raw features at 5e4 would score ~1e9 unscaled


def _scaled_model() -> keras.Model:
    inputs = keras.Input((2,))
    hidden = keras.layers.Dense(2)(FeatureScaler("minmax")(inputs))
    return keras.Model(inputs, FeatureScaler("minmax", invert=True)(hidden))


def test_adapting_a_models_scalers_says_whether_it_has_any():
    x = np.array([[0.0, 10.0], [2.0, 30.0]], np.float32)
    model = _scaled_model()
    assert adapt_feature_scalers(model, x) is True
    for scaler in feature_scalers(model):  # the input's and the output's inverse alike
        np.testing.assert_array_equal(scaler.center.numpy(), [0.0, 10.0])
        np.testing.assert_array_equal(scaler.scale.numpy(), [2.0, 20.0])
    plain = build_autoencoder("kdd", "ae", input_shape=(2,), units=(2, 1))
    assert adapt_feature_scalers(plain, x) is False


def test_raw_feature_models_train_on_the_squared_error_after_the_input_scaler():
    # minmax on [[0, 10], [2, 30]]: (x - [0, 10]) / [2, 20]. Row 1 differs by (1, -10) raw,
    # (0.5, -0.5) scaled: mean square 0.25; row 2 by (-2, 0) raw, (-1, 0): 0.5.
    model = _scaled_model()
    adapt_feature_scalers(model, np.array([[0.0, 10.0], [2.0, 30.0]], np.float32))
    loss = reconstruction_loss(model)
    y_true = np.array([[1.0, 20.0], [0.0, 10.0]], np.float32)
    y_pred = np.array([[0.0, 30.0], [2.0, 10.0]], np.float32)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loss(y_true, y_pred)), [0.25, 0.5],
                               rtol=1e-6)
    assert reconstruction_loss(build_autoencoder("kdd", "ae", input_shape=(2,),
                                                 units=(2, 1))) == "mse"
