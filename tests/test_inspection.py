"""Memory inspection: usage, sparsity and entropy against NumPy loops; decoded items."""

import keras
import numpy as np
import pytest

from memae_tf.detector import MemAE
from memae_tf.inspection import decode_memory_items, memory_report
from memae_tf.models.memory_block import find_memory_layer


def _reference(weights, min_weight=0.0):
    """Per-query and per-item statistics, one query at a time."""
    queries = weights.reshape(-1, weights.shape[-1])
    nonzeros, entropy = [], []
    for query in queries:
        nonzeros.append(sum(1 for w in query if w > min_weight))
        entropy.append(sum(-w * np.log(w) for w in query if w > 0))
    usage = [np.mean([q[i] > min_weight for q in queries]) for i in range(queries.shape[1])]
    return np.array(nonzeros), np.array(entropy), np.array(usage)


def test_memory_report_matches_per_query_loops():
    rng = np.random.default_rng(0)
    weights = rng.random((6, 2, 2, 8)) * (rng.random((6, 2, 2, 8)) > 0.6)
    weights[..., 5] = 0.0  # item 5: never used
    weights /= np.maximum(weights.sum(-1, keepdims=True), 1e-12)
    report = memory_report(weights)
    nonzeros, entropy, usage = _reference(weights)
    np.testing.assert_array_equal(report.nonzeros, nonzeros)
    np.testing.assert_allclose(report.entropy, entropy, atol=1e-12)
    np.testing.assert_allclose(report.usage, usage)
    np.testing.assert_allclose(report.mean_weight, weights.reshape(-1, 8).mean(0))
    assert report.num_queries == 24 and report.num_items == 8
    assert 5 in report.unused_items.tolist()
    assert report.unused_items.tolist() == [i for i in range(8) if usage[i] == 0]
    summary = report.summary()
    assert summary["effective_items"] == pytest.approx(np.exp(entropy.mean()))
    assert summary["num_unused"] == len(summary["unused_items"])


def test_min_weight_counts_only_weights_above_it():
    weights = np.array([[0.7, 0.299, 0.001], [0.5, 0.5, 0.0]])
    report = memory_report(weights, min_weight=0.01)
    assert report.nonzeros.tolist() == [2, 2]
    assert report.unused_items.tolist() == [2]


@pytest.mark.parametrize("bad", [np.ones(3), -np.ones((2, 3)), np.full((2, 3), np.nan)])
def test_memory_report_rejects_invalid_weights(bad):
    with pytest.raises(ValueError, match="attention"):
        memory_report(bad)


def test_a_single_query_of_a_one_item_memory_is_reported():
    report = memory_report(np.array([[1.0]]))
    assert (report.num_items, report.num_queries) == (1, 1)
    assert report.usage.tolist() == [1.0] and report.nonzeros.tolist() == [1]
    assert report.entropy.tolist() == [0.0] and report.unused_items.tolist() == []


@pytest.mark.parametrize("min_weight", [-0.1, 1.0, 1.5, "0.1", None])
def test_min_weight_is_a_number_in_0_1(min_weight):
    # A weight is at most 1: a min_weight of 1 or more would make every item unused.
    with pytest.raises(ValueError, match=r"`min_weight` must be a float in \[0, 1\)\. "
                                         rf"Received: {min_weight!r}"):
        memory_report(np.array([[0.5, 0.5]]), min_weight=min_weight)
    assert memory_report(np.array([[0.5, 0.5]]), min_weight=0.999).nonzeros.tolist() == [0]


def test_a_report_is_a_read_only_record():
    report = memory_report(np.array([[0.5, 0.5]]))
    with pytest.raises(AttributeError):
        report.min_weight = 0.5


def test_detector_memory_report_summarises_its_attention():
    detector = MemAE.from_preset("kdd", input_shape=(6,), units=(4, 3), num_items=7)
    x = np.random.default_rng(0).random((40, 6)).astype("float32")
    detector.fit(x, epochs=1, verbose=0)
    report = detector.memory_report(x)
    nonzeros, entropy, usage = _reference(detector.memory_attention(x).astype(np.float64))
    np.testing.assert_array_equal(report.nonzeros, nonzeros)
    np.testing.assert_allclose(report.entropy, entropy, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(report.usage, usage)


@pytest.mark.parametrize("latent", ["local", "global"])
def test_decoded_item_is_the_decoder_layers_applied_to_the_item_at_every_position(latent):
    detector = MemAE.from_preset("mnist", filters=(4, 8), kernel_sizes=3, num_items=5,
                                 latent=latent, latent_dim=6)
    model = detector.model
    decoded = decode_memory_items(model)
    assert decoded.shape == (5, 28, 28, 1)
    memory = find_memory_layer(model)
    item = keras.ops.convert_to_numpy(memory.memory)[3]
    # item 3 at every query position: the 7×7 map (local), or the one code (global)
    h = np.broadcast_to(item, (1, *memory.output.shape[1:]))
    for layer in model.layers[model.layers.index(memory) + 1:]:
        h = layer(h, training=False)
    np.testing.assert_allclose(decoded[3], keras.ops.convert_to_numpy(h)[0], rtol=1e-5,
                               atol=1e-6)


def test_decoding_needs_a_memory():
    with pytest.raises(ValueError, match="MemoryLayer"):
        decode_memory_items(MemAE.from_preset("kdd", variant="ae", input_shape=(6,),
                                              units=(4, 3)).model)
