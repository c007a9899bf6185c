"""Detection options: global latent, reconstruction errors, and fit's compiled state."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from memory_reference import numpy_memory

from memae_tf import MemAE
from memae_tf.evaluation.experiment import ExperimentConfig
from memae_tf.models import build_autoencoder, build_conv3d_autoencoder
from memae_tf.models.memory_block import encode_queries, find_memory_layer

TINY_IMAGE = {"input_shape": (12, 12, 1), "filters": (4, 8), "kernel_sizes": 3, "num_items": 10}
TINY_DENSE = {"input_shape": (8,), "units": (6, 3), "num_items": 10}


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    blobs = rng.uniform(0.0, 1.0, size=(64, 3, 3, 1))
    return np.kron(blobs, np.ones((1, 4, 4, 1))).astype("float32")  # 12×12 block images


def _fitted_global(images: np.ndarray, error: str) -> MemAE:
    """A tiny global-code MNIST-preset detector scored by `error`, trained 2 epochs."""
    keras.utils.set_random_seed(0)
    detector = MemAE.from_preset("mnist", error=error, latent="global", latent_dim=6,
                                 **TINY_IMAGE)
    detector.fit(images, epochs=2, batch_size=16, verbose=0, seed=0)
    return detector


@pytest.fixture(scope="module")
def global_l1(images):
    return _fitted_global(images, "l1")


@pytest.mark.parametrize("variant", ["memae", "memae-nonspar", "ae"])
def test_global_latent_is_one_code_vector_per_sample(variant):
    model = build_autoencoder("mnist", variant, latent="global", latent_dim=16, **TINY_IMAGE)
    assert model.get_layer("encoder_code").output.shape == (None, 16)
    assert model.output_shape == (None, 12, 12, 1)
    if variant != "ae":
        assert model.get_layer("memory").input.shape == (None, 16)


def test_global_latent_also_builds_for_clips():
    model = build_conv3d_autoencoder((4, 8, 8, 1), filters=(2, 4), strides=2, num_items=5,
                                     latent="global", latent_dim=3)
    assert model.get_layer("memory").input.shape == (None, 3)
    assert model.output_shape == (None, 4, 8, 8, 1)


@pytest.mark.parametrize(("overrides", "match"), [
    ({"latent": "pixel"}, "Received: latent='pixel'"),
    ({"latent": "global", "latent_dim": 0}, "Received: latent_dim=0"),
])
def test_invalid_latent_arguments_are_rejected(overrides, match):
    with pytest.raises(ValueError, match=match):
        build_autoencoder("mnist", **TINY_IMAGE, **overrides)


def test_memory_attention_of_a_global_latent_has_one_row_per_sample(global_l1, images):
    attention = global_l1.memory_attention(images[:5])
    queries = encode_queries(global_l1.model, global_l1.preprocess(images[:5]))
    assert queries.shape == (5, 6)  # one latent_dim code per sample
    layer = find_memory_layer(global_l1.model)
    _, expected, _ = numpy_memory(queries, layer.memory.numpy(),
                                  layer.effective_shrink_threshold, layer.similarity)
    np.testing.assert_allclose(attention, expected, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(attention.sum(axis=-1), 1.0, rtol=1e-5)


def test_l1_score_is_the_mean_absolute_reconstruction_error(global_l1, images):
    x = images[:20]
    reconstruction = global_l1.model(x, training=False).numpy().astype(np.float64)
    expected = np.abs(x - reconstruction).mean(axis=(1, 2, 3))
    np.testing.assert_allclose(global_l1.score(x, batch_size=7), expected, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(global_l1.score_map(x), np.abs(x - reconstruction), rtol=1e-4,
                               atol=1e-6)


def test_preset_detectors_score_with_the_squared_error_unless_told():
    assert MemAE.from_preset("kdd", **TINY_DENSE).error == "mse"
    assert MemAE(build_autoencoder("kdd", **TINY_DENSE)).error == "mse"
    with pytest.raises(ValueError, match="Received: error='huber'"):
        MemAE.from_preset("kdd", error="huber", **TINY_DENSE)


def test_error_and_latent_survive_save_and_load(global_l1, images, tmp_path):
    path = global_l1.save(tmp_path / "detector.keras")
    loaded = MemAE.load(path)
    assert loaded.error == "l1"
    assert loaded.get_config()["overrides"]["latent"] == "global"
    np.testing.assert_allclose(loaded.score(images), global_l1.score(images), rtol=1e-6)


def test_served_score_uses_the_detectors_error(global_l1, images, tmp_path):
    global_l1.infer_threshold(images, fpr=0.25)
    version = global_l1.export(tmp_path / "models" / "memae")
    served = tf.saved_model.load(str(version)).signatures["serving_default"](
        x=tf.constant(images))
    np.testing.assert_allclose(served["score"].numpy(), global_l1.score(images), rtol=1e-5)
    np.testing.assert_array_equal(served["is_anomaly"].numpy(),
                                  global_l1.score(images) > np.float32(global_l1.threshold_))


def test_repeated_fit_continues_the_same_optimiser(images):
    detector = MemAE.from_preset("kdd", **TINY_DENSE)
    rows = images.reshape(len(images), -1)[:, :8]
    detector.fit(rows, epochs=2, batch_size=16, verbose=0)
    optimizer = detector.model.optimizer
    assert int(optimizer.iterations) == 2 * 4
    detector.fit(rows, epochs=1, batch_size=16, verbose=0)
    assert detector.model.optimizer is optimizer
    assert int(optimizer.iterations) == 3 * 4
    detector.fit(rows, epochs=1, batch_size=16, learning_rate=1e-4, verbose=0)
    assert detector.model.optimizer is not optimizer  # a changed setting recompiles
    assert int(detector.model.optimizer.iterations) == 4


def test_fit_uses_xla_by_default_only_on_one_gpu(images):
    gpu = bool(tf.config.list_physical_devices("GPU"))
    detector = MemAE.from_preset("kdd", **TINY_DENSE)
    detector.fit(images.reshape(len(images), -1)[:, :8], epochs=1, verbose=0)
    assert detector.model.jit_compile is gpu
    clips = MemAE(build_conv3d_autoencoder((4, 8, 8, 1), filters=(2, 2), strides=2,
                                           num_items=4))
    clips.fit(np.random.default_rng(0).uniform(size=(4, 4, 8, 8, 1)).astype("float32"),
              epochs=1, batch_size=2, verbose=0)
    assert clips.model.jit_compile is gpu
    detector.fit(images.reshape(len(images), -1)[:, :8], epochs=1, verbose=0, jit_compile=True)
    assert detector.model.jit_compile is True  # asked for: compiled with XLA on any host


def test_experiment_config_rejects_an_unknown_error():
    with pytest.raises(ValueError, match="Received: error='huber'"):
        ExperimentConfig("mnist", error="huber")


def _ssim_reference(x: np.ndarray, y: np.ndarray, value_range: float) -> np.ndarray:
    """SSIM map re-derived with SciPy: Gaussian σ = 1.5 cut at radius 5, edge-mirrored."""
    from scipy.ndimage import gaussian_filter

    def blur(image):  # per image and channel, not across them
        return gaussian_filter(image, sigma=(0, 1.5, 1.5, 0), mode="reflect", truncate=5 / 1.5)

    x, y = x.astype(np.float64), y.astype(np.float64)
    c1, c2 = (0.01 * value_range) ** 2, (0.03 * value_range) ** 2
    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
    return ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))


def test_ssim_map_matches_a_scipy_rederivation_and_known_answers():
    from memae_tf.scoring_graph import ssim_map

    rng = np.random.default_rng(3)
    x = rng.uniform(-1, 1, size=(3, 16, 13, 2)).astype("float32")
    y = (x + rng.normal(0, 0.3, size=x.shape)).astype("float32")
    computed = ssim_map(tf.constant(x), tf.constant(y), (-1.0, 1.0)).numpy()
    np.testing.assert_allclose(computed, _ssim_reference(x, y, 2.0), atol=2e-5)
    np.testing.assert_allclose(ssim_map(tf.constant(x), tf.constant(x), (-1.0, 1.0)), 1.0,
                               atol=1e-5)
    flat = np.full((1, 12, 12, 1), 0.5, np.float32)  # constant images: luminance term only
    np.testing.assert_allclose(ssim_map(tf.constant(flat), tf.constant(-flat), (-1.0, 1.0)),
                               (-0.5 + 4e-4) / (0.5 + 4e-4), rtol=1e-5)


@pytest.fixture(scope="module")
def global_ssim(images):
    return _fitted_global(images, "ssim")


def test_ssim_score_is_the_mean_of_one_minus_the_ssim_map(global_ssim, images):
    x = images[:20]
    reconstruction = global_ssim.model(x, training=False).numpy()
    expected_map = 1.0 - _ssim_reference(x, reconstruction, 2.0)  # the preset's [-1, 1]
    np.testing.assert_allclose(global_ssim.score_map(x), expected_map, atol=1e-4)
    np.testing.assert_allclose(global_ssim.score(x, batch_size=7),
                               expected_map.mean(axis=(1, 2, 3)), atol=1e-5)


def test_ssim_score_survives_save_load_and_export(global_ssim, images, tmp_path):
    loaded = MemAE.load(global_ssim.save(tmp_path / "detector.keras"))
    assert loaded.error == "ssim"
    np.testing.assert_allclose(loaded.score(images), global_ssim.score(images), rtol=1e-6)
    global_ssim.infer_threshold(images, fpr=0.25)
    version = global_ssim.export(tmp_path / "models" / "memae")
    served = tf.saved_model.load(str(version)).signatures["serving_default"](
        x=tf.constant(images))
    np.testing.assert_allclose(served["score"].numpy(), global_ssim.score(images), rtol=1e-5)


def test_ssim_takes_its_dynamic_range_from_the_input_range(images):
    model = build_autoencoder("mnist", **TINY_IMAGE)
    unit, wide = MemAE(model, error="ssim"), MemAE(model, input_range=(-1, 1), error="ssim")
    reconstruction = model(images[:4], training=False).numpy()
    expected = 1.0 - _ssim_reference(images[:4], reconstruction, 1.0)
    np.testing.assert_allclose(unit.score(images[:4]), expected.mean(axis=(1, 2, 3)), atol=1e-5)
    assert not np.allclose(unit.score(images[:4]), wide.score(images[:4]))


@pytest.mark.parametrize("model", [
    build_autoencoder("kdd", **TINY_DENSE),
    build_conv3d_autoencoder((4, 4, 4, 1), filters=(2, 2), strides=2, num_items=4),
], ids=["dense", "clips-of-4x4-frames"])
def test_ssim_is_refused_for_inputs_that_are_not_images_of_a_window(model):
    with pytest.raises(ValueError, match=r"expects inputs shaped \(H, W, C\)"):
        MemAE(model, error="ssim")


def test_ssim_of_clips_is_the_mean_over_frames_of_each_frames_ssim():
    keras.utils.set_random_seed(0)
    model = build_conv3d_autoencoder((4, 12, 12, 1), filters=(2, 2), strides=2, num_items=4,
                                     output_activation=None)
    clips = np.random.default_rng(1).uniform(-1, 1, (3, 4, 12, 12, 1)).astype("float32")
    detector = MemAE(model, input_range=(-1, 1), error="ssim")
    reconstruction = model(clips, training=False).numpy()
    frames = 1.0 - np.stack([_ssim_reference(clips[:, t], reconstruction[:, t], 2.0)
                             for t in range(4)], axis=1)  # SciPy, one frame at a time
    np.testing.assert_allclose(detector.score_map(clips), frames, atol=1e-4)
    np.testing.assert_allclose(detector.score(clips), frames.mean(axis=(1, 2, 3, 4)), atol=1e-5)


def test_euclidean_addressing_survives_save_load_and_export(images, tmp_path):
    keras.utils.set_random_seed(0)
    detector = MemAE.from_preset("mnist", similarity="euclidean", **TINY_IMAGE)
    detector.fit(images, epochs=2, batch_size=16, verbose=0, seed=0)
    loaded = MemAE.load(detector.save(tmp_path / "detector.keras"))
    assert loaded.get_config()["overrides"]["similarity"] == "euclidean"
    np.testing.assert_allclose(loaded.score(images), detector.score(images), rtol=1e-6)
    detector.infer_threshold(images, fpr=0.25)
    version = detector.export(tmp_path / "models" / "memae")
    model = tf.saved_model.load(str(version))
    served = model.signatures["serving_default"](x=tf.constant(images))
    np.testing.assert_allclose(served["score"].numpy(), detector.score(images), rtol=1e-5)
    # the served attention is the nearest-item addressing of the layer's NumPy reference
    weights = model.signatures["memory_attention"](x=tf.constant(images))
    weights = next(iter(weights.values())).numpy()
    layer = find_memory_layer(detector.model)
    queries = encode_queries(detector.model, detector.preprocess(images), 64)
    _, expected, _ = numpy_memory(queries, layer.memory.numpy(), 1.0 / 10, "euclidean")
    np.testing.assert_allclose(weights.reshape(-1, 10), expected, rtol=1e-4, atol=1e-6)
