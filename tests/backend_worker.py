"""MemoryLayer and the preset builders on the Keras backend of this process.

Run by tests/test_backends.py as `KERAS_BACKEND=jax python tests/backend_worker.py OUT`
(or `torch`, or `tensorflow`). It checks, under that backend alone:

1. the layer against the float64 NumPy re-derivation (tests/memory_reference.py)
   for every rank × similarity × shrinkage case, entropy loss included;
2. Keras' own layer test harness (`keras.src.testing.TestCase.run_layer_test`:
   build, call, serialization, a training step, mixed precision);
3. a `.keras` save/load round trip of the layer;
4. a few epochs of each builder family (dense `kdd`, conv2d `mnist`, a small
   conv3d `video`) whose loss must fall, saved as `.keras` with its
   reconstructions of fixed inputs, for the parent test to load under TensorFlow;
5. that `MemAE` refuses the backend with an error naming it (the detector, its
   scoring graph and the export are TensorFlow code).

It prints one JSON line with what it measured, and exits non-zero on any failure.
"""

from __future__ import annotations

import json
import pathlib
import sys
import unittest

import keras
import numpy as np
from keras.src.testing import TestCase
from memory_reference import numpy_memory

from memae_tf import MemoryLayer
from memae_tf.models import build_autoencoder

SHAPES = {2: (6, 5), 4: (2, 3, 4, 5), 5: (2, 2, 3, 3, 5)}
# Per builder family: preset, overrides that keep the run small, input shape, epochs.
# Two epochs suffice for the conv families' loss to fall: the second epoch's mean loss
# is 11-30% below the first's on JAX, PyTorch and TensorFlow (4 epochs cost twice as much).
FAMILIES = {
    "dense": ("kdd", {"input_shape": (12,), "units": (8, 3), "num_items": 10}, (12,), 8),
    "conv2d": ("mnist", {}, (28, 28, 1), 2),
    "conv3d": ("video", {"input_shape": (4, 16, 16, 1), "filters": (4, 8),
                         "strides": ((1, 2, 2), 2), "num_items": 20}, (4, 16, 16, 1), 2),
}


def to_numpy(value) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(value))


def check_numpy_reference() -> float:
    worst = 0.0
    for rank, shape in SHAPES.items():
        for similarity in ("dot", "cosine", "euclidean"):
            for shrink in (None, 0.0, 0.15):
                z = np.random.default_rng(rank).normal(size=shape).astype("float32") * 2.0
                layer = MemoryLayer(8, shrink_threshold=shrink, entropy_weight=0.5,
                                    similarity=similarity, return_attention=True)
                out, attention = layer(z, training=True)
                threshold = 1.0 / 8 if shrink is None else shrink
                ref_out, ref_w, ref_entropy = numpy_memory(
                    z, to_numpy(layer.memory), threshold, similarity)
                np.testing.assert_allclose(to_numpy(out), ref_out, rtol=1e-4, atol=1e-6)
                np.testing.assert_allclose(to_numpy(attention), ref_w, rtol=1e-4, atol=1e-6)
                (loss,) = layer.losses
                np.testing.assert_allclose(float(to_numpy(loss)), 0.5 * ref_entropy,
                                           rtol=1e-4, atol=1e-7)
                worst = max(worst, float(np.abs(to_numpy(out) - ref_out).max()))
    return worst


class _Harness(TestCase):
    def runTest(self) -> None:  # noqa: N802 (unittest's name)
        self.run_layer_test(
            MemoryLayer,
            init_kwargs={"num_items": 6, "shrink_threshold": 0.1, "entropy_weight": 1e-3,
                         "similarity": "euclidean"},
            input_shape=(3, 4, 4, 5),
            expected_output_shape=(3, 4, 4, 5),
            expected_num_trainable_weights=1,
            expected_num_non_trainable_weights=0,
            # The harness calls the layer outside training, where it adds no entropy loss.
            expected_num_losses=0,
            supports_masking=False,
        )


def check_layer_harness() -> None:
    result = unittest.TextTestRunner(stream=sys.stderr, verbosity=0).run(_Harness())
    if not result.wasSuccessful():
        raise AssertionError(f"Keras' run_layer_test failed: {result.failures or result.errors}")


def check_save_load(out: pathlib.Path) -> None:
    inputs = keras.Input((4, 4, 3))
    model = keras.Model(inputs, MemoryLayer(6, shrink_threshold=0.05, similarity="cosine")(inputs))
    x = np.random.default_rng(3).normal(size=(2, 4, 4, 3)).astype("float32")
    path = out / "layer.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(to_numpy(loaded(x)), to_numpy(model(x)), rtol=0, atol=0)


def train_builder(out: pathlib.Path, family: str) -> dict[str, float]:
    preset, overrides, shape, epochs = FAMILIES[family]
    keras.utils.set_random_seed(7)
    model = build_autoencoder(preset, "memae", **overrides)
    rng = np.random.default_rng(11)
    # Smooth inputs in [-1, 1]: a learnable signal, unlike white noise.
    basis = rng.normal(size=(4, int(np.prod(shape)))).astype("float32")
    x = np.tanh(rng.normal(size=(256, 4)).astype("float32") @ basis / 2).reshape(-1, *shape)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    history = model.fit(x, x, epochs=epochs, batch_size=32, verbose=0, shuffle=False)
    losses = history.history["loss"]
    if not losses[-1] < losses[0]:
        raise AssertionError(f"{family}: the training loss did not fall: {losses}")
    model.save(out / f"{family}.keras")
    probe = x[:16]
    np.save(out / f"{family}-inputs.npy", probe)
    np.save(out / f"{family}-reconstruction.npy", to_numpy(model(probe, training=False)))
    return {"first_loss": float(losses[0]), "last_loss": float(losses[-1])}


def check_detector_refuses_backend() -> str:
    from memae_tf import MemAE

    try:
        MemAE.from_preset("kdd", input_shape=(12,), units=(8, 3))
    except RuntimeError as error:
        if keras.backend.backend() not in str(error) or "tensorflow" not in str(error):
            raise AssertionError(f"unclear error: {error}") from error
        return str(error)
    raise AssertionError("MemAE accepted a non-TensorFlow backend")


def main(out: pathlib.Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    report: dict = {"backend": keras.backend.backend()}
    report["max_abs_error_vs_numpy"] = check_numpy_reference()
    check_layer_harness()
    check_save_load(out)
    report["training"] = {family: train_builder(out, family) for family in FAMILIES}
    if keras.backend.backend() != "tensorflow":
        report["detector_error"] = check_detector_refuses_backend()
    print(json.dumps(report))


if __name__ == "__main__":
    main(pathlib.Path(sys.argv[1]))
