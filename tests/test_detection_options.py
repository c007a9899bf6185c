"""Detection options: global latent, reconstruction errors, and fit's compiled state."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from memae_tf import MemAE
from memae_tf.evaluation.experiment import ExperimentConfig
from memae_tf.models import build_autoencoder, build_conv3d_autoencoder

TINY_IMAGE = {"input_shape": (12, 12, 1), "filters": (4, 8), "kernel_sizes": 3, "num_items": 10}
TINY_DENSE = {"input_shape": (8,), "units": (6, 3), "num_items": 10}


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    blobs = rng.uniform(0.0, 1.0, size=(64, 3, 3, 1))
    return np.kron(blobs, np.ones((1, 4, 4, 1))).astype("float32")  # 12×12 block images


@pytest.fixture(scope="module")
def global_l1(images):
    keras.utils.set_random_seed(0)
    detector = MemAE.from_preset("mnist", error="l1", latent="global", latent_dim=6,
                                 **TINY_IMAGE)
    detector.fit(images, epochs=2, batch_size=16, verbose=0, seed=0)
    return detector


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
    assert attention.shape == (5, 10)
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
    with pytest.raises(ValueError, match="Received: error='ssim'"):
        MemAE.from_preset("kdd", error="ssim", **TINY_DENSE)


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
    with pytest.raises(ValueError, match="Received: error='ssim'"):
        ExperimentConfig("mnist", error="ssim")
