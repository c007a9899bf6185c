"""MemoryLayer and the builders on every Keras 3 backend; their models served by TensorFlow.

Each backend runs in its own process (Keras picks the backend once, at import):
tests/backend_worker.py checks the layer against the NumPy reference and Keras'
own layer harness, trains one model of each builder family and saves it as
`.keras`. This process (TensorFlow) then loads those files, wraps them in
`MemAE` and exports SavedModels, whose reconstructions and scores must equal
what the training backend computed.
"""

import json
import os
import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from memae_tf import MemAE

TESTS = pathlib.Path(__file__).resolve().parent
FAMILIES = ("dense", "conv2d", "conv3d")
# Float32 round-off between backends' kernels (XLA on JAX, ATen on PyTorch, oneDNN
# on TensorFlow): at most 7e-8 (JAX) and 1.2e-7 (PyTorch) measured on these models.
# 1e-5 leaves room for other CPUs' kernels and still fails on a wrong or missing weight.
TOLERANCE = 1e-5


def _run_worker(backend: str, out: pathlib.Path) -> dict:
    env = {**os.environ, "KERAS_BACKEND": backend, "CUDA_VISIBLE_DEVICES": "",
           "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(TESTS)}
    result = subprocess.run([sys.executable, str(TESTS / "backend_worker.py"), str(out)],
                            env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def _check_served_under_tensorflow(out: pathlib.Path, family: str, tmp_path: pathlib.Path):
    x = np.load(out / f"{family}-inputs.npy")
    expected = np.load(out / f"{family}-reconstruction.npy")
    model = keras.saving.load_model(out / f"{family}.keras", safe_mode=True)
    np.testing.assert_allclose(model(x, training=False).numpy(), expected, atol=TOLERANCE)

    detector = MemAE(model, input_range=(-1.0, 1.0), error="mse")
    detector.infer_threshold(x, fpr=0.1)
    version_dir = detector.export(tmp_path / family, version=1)
    served = tf.saved_model.load(str(version_dir)).signatures["serving_default"](
        x=tf.constant(x))
    np.testing.assert_allclose(served["reconstruction"].numpy(), expected, atol=TOLERANCE)
    # The score of the mse error, re-derived from the training backend's reconstruction.
    axes = tuple(range(1, x.ndim))
    np.testing.assert_allclose(served["score"].numpy(), ((x - expected) ** 2).mean(axis=axes),
                               rtol=1e-3, atol=1e-6)


# One test per backend (the worker is one process; split tests would run it once per
# pytest-xdist worker that picked one of them up).
@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "torch", "tensorflow"])
def test_layer_and_builders_on_the_backend_then_served_by_tensorflow(backend, tmp_path):
    report = _run_worker(backend, tmp_path / "worker")
    assert report["backend"] == backend
    assert report["max_abs_error_vs_numpy"] < 1e-5
    if backend != "tensorflow":
        # The detector names the backend it refuses instead of failing deep inside.
        assert f"KERAS_BACKEND={backend!r}" in report["detector_error"]
    for family in FAMILIES:
        losses = report["training"][family]
        assert losses["last_loss"] < losses["first_loss"]
        _check_served_under_tensorflow(tmp_path / "worker", family, tmp_path)


@pytest.mark.slow
def test_gpu_benchmark_script_runs_on_jax_without_tensorflow(tmp_path):
    # benchmarks/gpu_keras_jax.py blocks `import tensorflow` itself, as on the
    # accelerator machines that have JAX but no TensorFlow.
    script = TESTS.parent / "benchmarks" / "gpu_keras_jax.py"
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    result = subprocess.run(
        [sys.executable, str(script), "--quick", "--repeats", "2", "--presets", "mnist",
         "--json", str(tmp_path / "out.json")],
        env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    (row,) = json.loads((tmp_path / "out.json").read_text())
    # The line printed is the row written.
    assert json.loads(result.stdout.strip().splitlines()[-1]) == row
    # --quick's mnist workload: 64 images of 28x28x1 in batches of 32, on the CPU.
    assert {key: row[key] for key in ("preset", "input_shape", "batch", "samples",
                                      "precision")} == {
        "preset": "mnist", "input_shape": [28, 28, 1], "batch": 32, "samples": 64,
        "precision": "float32"}
    assert row["device"].startswith("cpu")
    # The compiling epoch, then --repeats timed ones: samples/s is their median's rate.
    assert len(row["epoch_s"]) == 2 and len(row["losses"]) == 3
    assert row["samples_per_s"] == round(64 / float(np.median(row["epoch_s"])), 1)
    assert row["first_epoch_s"] > 0
    # It trains: seeded, the loss falls every epoch.
    assert row["last_loss"] == row["losses"][-1]
    assert np.all(np.diff(row["losses"]) < 0), row["losses"]


def test_gpu_benchmark_script_refuses_to_run_outside_jax():
    script = TESTS.parent / "benchmarks" / "gpu_keras_jax.py"
    env = {**os.environ, "KERAS_BACKEND": "tensorflow"}
    result = subprocess.run([sys.executable, str(script), "--quick"], env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert "run with KERAS_BACKEND=jax. Received: KERAS_BACKEND='tensorflow'" in result.stderr
