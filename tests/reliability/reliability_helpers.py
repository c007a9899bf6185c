"""Helpers of the reliability suite: a small MemAE, numpy reference scores, polling, REST."""

import json
import time
import urllib.error
import urllib.request

import keras
import numpy as np

from memae_tf.models import build_autoencoder

FEATURES = 12
MAX_BATCH = 64
MAX_MESSAGE_MB = 1


def small_model(seed: int) -> keras.Model:
    """A dense MemAE on 12 features: fast to export, load and serve."""
    keras.utils.set_random_seed(seed)
    return build_autoencoder("kdd", "memae", input_shape=(FEATURES,), units=(8, 3),
                             num_items=10)


def reference_scores(model: keras.Model, x: np.ndarray) -> np.ndarray:
    """Mean squared reconstruction error per row, computed with numpy."""
    return ((x - model(x, training=False).numpy()) ** 2).mean(axis=1)


def wait_for(condition, timeout: float = 120.0) -> None:
    """Polls `condition` until it holds; fails the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def rest_call(port: int, method: str, path: str, body: object = None,
              headers: dict | None = None) -> tuple[int, dict]:
    """One REST call on loopback; returns (HTTP status, decoded JSON body)."""
    data = None if body is None else (body if isinstance(body, bytes) else
                                      json.dumps(body).encode())
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data,
                                     method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())
