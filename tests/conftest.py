"""Shared test set-up: deterministic seeds."""

import keras
import numpy as np
import pytest


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(1234)
    np.random.seed(1234)
    yield


@pytest.fixture
def make_scheduler():
    """Builds batch schedulers (`make(metrics=None, **BatchingOptions)`), stopped after the test."""
    from memae_tf.serving.batching import BatchingOptions, BatchScheduler

    schedulers = []

    def make(metrics=None, **options):
        scheduler = BatchScheduler(BatchingOptions(**options), metrics)
        schedulers.append(scheduler)
        return scheduler

    yield make
    for scheduler in schedulers:
        scheduler.stop(timeout=10)

