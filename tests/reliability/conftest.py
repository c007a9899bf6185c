"""Shared set-up of the reliability suite: a small exported MemAE and a server on loopback."""

import keras
import numpy as np
import pytest
from reliability_helpers import FEATURES, MAX_BATCH, MAX_MESSAGE_MIB, reference_scores, small_model

from memae_tf.export import export_saved_model
from memae_tf.serving import serve


@pytest.fixture(scope="session")
def rows() -> np.ndarray:
    return np.random.default_rng(5).uniform(-1, 1, size=(16, FEATURES)).astype("float32")


@pytest.fixture(scope="session")
def model() -> keras.Model:
    return small_model(11)


@pytest.fixture(scope="session")
def threshold(model, rows) -> float:
    return float(np.median(reference_scores(model, rows)))


@pytest.fixture(scope="session")
def base_path(tmp_path_factory, model, threshold):
    base = tmp_path_factory.mktemp("reliability-models") / "kdd"
    export_saved_model(model, base, threshold=threshold)
    return base


@pytest.fixture(scope="session")
def server(base_path):
    """gRPC + REST on loopback, with a batch limit and a 1 MiB message limit."""
    handle = serve(base_path, "kdd", port=0, rest_port=0, max_batch_size=MAX_BATCH,
                   max_message_mib=MAX_MESSAGE_MIB)
    yield handle
    handle.stop(grace=0)
