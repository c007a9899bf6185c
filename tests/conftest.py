"""Shared test set-up: deterministic seeds, the slow tests scheduled first."""

import keras
import numpy as np
import pytest


def _shares_a_fixture(item) -> bool:
    """Whether the test uses a class-, module- or package-scoped fixture (a module's
    training runs, a documentation build); from pytest's fixture info, a private attribute."""
    definitions = item._fixtureinfo.name2fixturedefs.values()
    return any(defs[-1].scope in ("class", "module", "package") for defs in definitions)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items):
    """Moves the tests marked `slow` to the front, those sharing a fixture first.

    `make test` runs `pytest -n 2 --dist worksteal`: each worker starts on one half
    of this list and an idle one steals from the end of the other's. With the
    subprocess runs (backends, notebooks, snippets, distributed training) first,
    what is left to share at the end is short, so the two workers finish together;
    the slow tests that share a module's fixture come before the others, so that they
    have run before any steal reaches them (a split would build the fixture on both
    workers). `trylast`: after pytest has grouped the items by their fixtures, which
    the stable sort keeps within each group.
    """
    slow = [item for item in items if item.get_closest_marker("slow")]
    first = {id(item) for item in slow if _shares_a_fixture(item)}
    items.sort(key=lambda item: (item.get_closest_marker("slow") is None,
                                 id(item) not in first))


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

