"""Helpers shared by the serving tests and the reliability suite: a small MemAE,
numpy reference outputs, polling."""

import time

import keras
import numpy as np

from memae_tf.models import build_autoencoder

FEATURES = 12


def small_model(seed: int) -> keras.Model:
    """A dense MemAE on 12 features: fast to export, load and serve."""
    keras.utils.set_random_seed(seed)
    return build_autoencoder("kdd", "memae", input_shape=(FEATURES,), units=(8, 3),
                             num_items=10)


def reference_outputs(model: keras.Model, x: np.ndarray) -> dict[str, np.ndarray]:
    """Scores computed in-process with numpy from the Keras model's reconstruction."""
    reconstruction = model(x, training=False).numpy()
    return {"reconstruction": reconstruction, "score_map": (x - reconstruction) ** 2,
            "score": ((x - reconstruction) ** 2).mean(axis=1)}


def wait_for(condition, timeout: float = 120.0) -> None:
    """Polls `condition` until it holds; fails the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)
