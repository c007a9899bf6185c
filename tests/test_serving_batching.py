"""The batch scheduler against TF Serving's batching rules, on a numpy signature.

Each test names the TF Serving / TensorFlow source whose behaviour it checks:
tensorflow_serving/batching/batching_session.cc (merging, padding, splitting
outputs), tensorflow_serving/batching/batching_util.cc
(RoundToLowestAllowedBatchSize), tensorflow_serving/servables/tensorflow/
bundle_factory_util.{h,cc} (BatchingParameters → queue options) and
TensorFlow's tensorflow/core/kernels/batching_util/shared_batch_scheduler.h
(queue, timeout, capacity and their messages) with input_split_metadata.cc.
"""

import threading
import time

import grpc
import numpy as np
import pytest
from google.protobuf import text_format

from memae_tf.serving.batching import (
    BatchingOptions,
    BatchScheduler,
    padded_size,
    split_sizes,
)
from memae_tf.serving.errors import ServingError
from memae_tf.serving.metrics import ServingMetrics
from memae_tf.serving.proto import BatchingParameters

WEIGHTS = np.random.default_rng(0).normal(size=(3, 2))


def affine(x: np.ndarray) -> dict[str, np.ndarray]:
    """A row-wise 'signature' whose unbatched answer is known: one output per row."""
    return {"y": x @ WEIGHTS + 1.0, "norm": np.linalg.norm(x, axis=1)}


class CountingSignature:
    """Runs `affine` on merged inputs and records every call's input."""

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.calls: list[np.ndarray] = []
        self.started = threading.Event()
        self.gate = gate
        self._lock = threading.Lock()

    def __call__(self, inputs):
        with self._lock:
            self.calls.append(inputs["x"].copy())
        self.started.set()
        if self.gate is not None:
            self.gate.wait(10)
        return affine(inputs["x"])


def rows(count: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(count, 3))


def submit_concurrently(scheduler, signature, requests, key="model/1/serving_default"):
    """Submits each request from its own thread at once; returns outputs or errors in order."""
    answers = [None] * len(requests)
    barrier = threading.Barrier(len(requests))

    def one(index):
        barrier.wait()
        try:
            answers[index] = scheduler.submit(key, signature, {"x": requests[index]})
        except ServingError as error:
            answers[index] = error

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(requests))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return answers


@pytest.fixture
def make_scheduler():
    schedulers = []

    def make(metrics=None, **options):
        scheduler = BatchScheduler(BatchingOptions(**options), metrics)
        schedulers.append(scheduler)
        return scheduler

    yield make
    for scheduler in schedulers:
        scheduler.stop(timeout=10)


def test_concurrent_requests_are_merged_into_one_call(make_scheduler):
    # shared_batch_scheduler.h: a batch runs once full; batching_session.cc
    # MergeInputTensors concatenates the tasks, SplitOutputTensors hands each its rows.
    scheduler = make_scheduler(max_batch_size=8, batch_timeout_micros=10_000_000,
                               num_batch_threads=2)
    signature = CountingSignature()
    requests = [rows(size, seed) for seed, size in enumerate([1, 2, 3, 2])]
    answers = submit_concurrently(scheduler, signature, requests)
    assert len(signature.calls) == 1
    assert signature.calls[0].shape == (8, 3)
    for request, answer in zip(requests, answers, strict=True):
        expected = affine(request)
        assert set(answer) == {"y", "norm"}
        np.testing.assert_allclose(answer["y"], expected["y"], rtol=1e-12)
        np.testing.assert_allclose(answer["norm"], expected["norm"], rtol=1e-12)
    # Each requester's rows are somewhere in the merged call, once.
    merged = signature.calls[0]
    for request in requests:
        matches = [start for start in range(8 - len(request) + 1)
                   if np.array_equal(merged[start:start + len(request)], request)]
        assert len(matches) == 1


def test_partial_batch_runs_after_the_batch_timeout(make_scheduler):
    # shared_batch_scheduler.h IsOpenBatchSchedulable: a batch below max_batch_size
    # becomes schedulable once its first task has waited batch_timeout_micros.
    scheduler = make_scheduler(max_batch_size=64, batch_timeout_micros=300_000,
                               num_batch_threads=1)
    signature = CountingSignature()
    x = rows(3, 1)
    began = time.monotonic()
    answer = scheduler.submit("m", signature, {"x": x})
    waited = time.monotonic() - began
    assert 0.3 <= waited < 5.0
    assert [call.shape[0] for call in signature.calls] == [3]
    np.testing.assert_allclose(answer["y"], affine(x)["y"])


def test_zero_timeout_runs_a_lone_request_at_once(make_scheduler):
    # batch_timeout_micros defaults to 0 (shared_batch_scheduler.h QueueOptions).
    scheduler = make_scheduler(max_batch_size=64, num_batch_threads=1)
    began = time.monotonic()
    scheduler.submit("m", CountingSignature(), {"x": rows(2, 2)})
    assert time.monotonic() - began < 0.25


def test_full_queue_is_unavailable_with_tf_servings_message(make_scheduler):
    # shared_batch_scheduler.h ValidateBatchTaskQueueCapacity (no splitting): a task
    # that does not fit the open batch, with max_enqueued_batches batches waiting.
    scheduler = make_scheduler(max_batch_size=2, max_enqueued_batches=1,
                               batch_timeout_micros=10_000_000, num_batch_threads=1)
    gate = threading.Event()
    signature = CountingSignature(gate)
    answers = {}
    first = threading.Thread(target=lambda: answers.setdefault(
        "first", scheduler.submit("m", signature, {"x": rows(2, 0)})))
    first.start()
    assert signature.started.wait(10)  # the only batch thread is now busy
    second = threading.Thread(target=lambda: answers.setdefault(
        "second", scheduler.submit("m", signature, {"x": rows(2, 1)})))
    second.start()
    time.sleep(0.1)  # the second request now fills the open batch
    with pytest.raises(ServingError) as refused:
        scheduler.submit("m", signature, {"x": rows(1, 2)})
    assert refused.value.code == grpc.StatusCode.UNAVAILABLE
    assert refused.value.message == (
        "The batch scheduling queue to which this task was submitted is full; currently 1 "
        "batches enqueued and max_enqueued_batches is 1")
    gate.set()
    first.join(10)
    second.join(10)
    np.testing.assert_allclose(answers["second"]["y"], affine(rows(2, 1))["y"])


@pytest.mark.parametrize("splitting", [False, True])
def test_request_above_max_batch_size_is_refused_with_tf_servings_message(
        make_scheduler, splitting):
    # shared_batch_scheduler.h ValidateBatchTaskQueueCapacity: input_batch_size_limit
    # (max_batch_size) bounds a request with or without large-batch splitting.
    scheduler = make_scheduler(max_batch_size=64, enable_large_batch_splitting=splitting,
                               max_execution_batch_size=16 if splitting else None)
    signature = CountingSignature()
    with pytest.raises(ServingError) as refused:
        scheduler.submit("m", signature, {"x": rows(65, 0)})
    assert refused.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert refused.value.message == "Task size 65 is larger than maximum input batch size 64"
    assert signature.calls == []


def test_large_batch_splitting_runs_pieces_and_equals_unbatched(make_scheduler):
    # bundle_factory_util.h GetQueueOptions + batching_session.cc SplitInputTask: the
    # request runs in batches of max_execution_batch_size, outputs concatenated in order.
    scheduler = make_scheduler(max_batch_size=1000, enable_large_batch_splitting=True,
                               max_execution_batch_size=32, num_batch_threads=2)
    signature = CountingSignature()
    x = rows(100, 5)
    answer = scheduler.submit("m", signature, {"x": x})
    assert sorted(call.shape[0] for call in signature.calls) == [4, 32, 32, 32]
    np.testing.assert_allclose(answer["y"], affine(x)["y"], rtol=1e-12)
    np.testing.assert_allclose(answer["norm"], affine(x)["norm"], rtol=1e-12)


def test_split_sizes_fill_the_open_batch_first():
    # input_split_metadata.cc: head = open batch room (a whole batch when none is left),
    # then full batches, then the rest.
    assert split_sizes(100, 10, 32) == [10, 32, 32, 26]
    assert split_sizes(100, 0, 32) == [32, 32, 32, 4]
    assert split_sizes(64, 32, 32) == [32, 32]
    assert split_sizes(5, 10, 32) == [5]


def test_padded_size_rounds_up_to_the_next_allowed_size():
    # batching_util.cc RoundToLowestAllowedBatchSize.
    assert [padded_size([4, 8, 16], n) for n in (1, 4, 5, 9, 16)] == [4, 4, 8, 16, 16]
    assert padded_size([], 7) == 7


def test_allowed_batch_sizes_pad_with_the_first_row_of_the_last_request(make_scheduler):
    # batching_session.cc MergeInputTensors pads with the last task's first row;
    # SplitOutputTensors drops the padding rows.
    scheduler = make_scheduler(max_batch_size=8, allowed_batch_sizes=(4, 8),
                               num_batch_threads=1)
    signature = CountingSignature()
    x = rows(5, 3)
    answer = scheduler.submit("m", signature, {"x": x})
    (call,) = signature.calls
    assert call.shape == (8, 3)
    np.testing.assert_array_equal(call[:5], x)
    np.testing.assert_array_equal(call[5:], np.repeat(x[:1], 3, axis=0))
    assert answer["y"].shape == (5, 2)
    np.testing.assert_allclose(answer["y"], affine(x)["y"], rtol=1e-12)


def test_a_failed_batch_fails_every_request_in_it(make_scheduler):
    # batching_session.cc ProcessBatch: the batch's status goes to each of its tasks.
    scheduler = make_scheduler(max_batch_size=4, batch_timeout_micros=10_000_000)

    def broken(inputs):
        raise ServingError(grpc.StatusCode.INTERNAL, "the model broke")

    answers = submit_concurrently(scheduler, broken, [rows(2, 0), rows(2, 1)])
    assert [(a.code, a.message) for a in answers] == [(grpc.StatusCode.INTERNAL,
                                                       "the model broke")] * 2


def test_different_keys_are_never_merged(make_scheduler):
    # batching_session.cc keeps one queue per signature (and per servable version).
    scheduler = make_scheduler(max_batch_size=4, batch_timeout_micros=200_000,
                               num_batch_threads=2)
    signature = CountingSignature()
    answers = [None, None]
    threads = [threading.Thread(target=lambda i=i: answers.__setitem__(
        i, scheduler.submit(f"version-{i}", signature, {"x": rows(1, i)}))) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert sorted(call.shape[0] for call in signature.calls) == [1, 1]


def test_stop_runs_the_queued_batches_without_waiting_for_the_timeout():
    # shared_batch_scheduler.h: a closed queue's open batch is schedulable at once.
    scheduler = BatchScheduler(BatchingOptions(max_batch_size=64,
                                               batch_timeout_micros=60_000_000))
    signature = CountingSignature()
    answer = {}
    waiting = threading.Thread(target=lambda: answer.setdefault(
        "y", scheduler.submit("m", signature, {"x": rows(2, 0)})["y"]))
    waiting.start()
    time.sleep(0.1)
    began = time.monotonic()
    scheduler.stop(timeout=10)
    waiting.join(10)
    assert time.monotonic() - began < 5
    np.testing.assert_allclose(answer["y"], affine(rows(2, 0))["y"])
    with pytest.raises(ServingError, match="stopping"):
        scheduler.submit("m", signature, {"x": rows(1, 0)})


def test_batching_metrics_count_batches_and_padding(make_scheduler):
    # batching_session.cc / batching_util.h: input_batch_size per input,
    # processed_batch_size after padding, padding_size by execution_batch_size,
    # wrapped_run_count per merged call.
    metrics = ServingMetrics()
    scheduler = make_scheduler(metrics, max_batch_size=8, allowed_batch_sizes=(4, 8))
    scheduler.submit("m", CountingSignature(), {"x": rows(3, 0)})
    scheduler.submit("m", CountingSignature(), {"x": rows(6, 1)})
    assert metrics.wrapped_run_count.value() == 2
    # Exponential(1, 2, 14) limits; a value falls in the first bucket above it.
    assert metrics.input_batch_size.cumulative_counts()[:4] == [0, 0, 1, 2]   # 3, 6 rows
    assert metrics.processed_batch_size.cumulative_counts()[:5] == [0, 0, 0, 1, 2]  # 4, 8
    assert metrics.padding_size.cumulative_counts("4")[:2] == [0, 1]   # 1 row
    assert metrics.padding_size.cumulative_counts("8")[:2] == [0, 0]   # 2 rows
    assert metrics.padding_size.cumulative_counts("8")[2] == 1
    assert metrics.queuing_latency.cumulative_counts("")[-1] == 2


def test_options_from_the_shipped_configmap_text():
    # bundle_factory_util.h GetQueueOptions: fields left out take the queue defaults.
    message = text_format.Parse(
        "max_batch_size { value: 64 }\nbatch_timeout_micros { value: 2000 }\n"
        "max_enqueued_batches { value: 100 }\nnum_batch_threads { value: 4 }\n",
        BatchingParameters())
    options = BatchingOptions.from_proto(message)
    assert (options.max_batch_size, options.batch_timeout_micros, options.max_enqueued_batches,
            options.num_batch_threads) == (64, 2000, 100, 4)
    assert not options.enable_large_batch_splitting
    assert options.execution_batch_size == 64
    defaults = BatchingOptions.from_proto(BatchingParameters())
    assert (defaults.max_batch_size, defaults.batch_timeout_micros,
            defaults.max_enqueued_batches) == (1000, 0, 10)


def test_splitting_without_max_execution_batch_size_uses_max_batch_size():
    # bundle_factory_util.h GetQueueOptions: max_execution_batch_size defaults to max_batch_size.
    message = text_format.Parse(
        "max_batch_size { value: 64 }\nenable_large_batch_splitting { value: true }",
        BatchingParameters())
    assert BatchingOptions.from_proto(message).execution_batch_size == 64


@pytest.mark.parametrize("options, message", [
    ({"max_batch_size": 64, "allowed_batch_sizes": (8, 32)},
     "Last entry in allowed_batch_sizes must match max_batch_size; last entry was 32; "
     "expected 64"),
    ({"max_batch_size": 32, "enable_large_batch_splitting": True,
      "max_execution_batch_size": 64},
     "When enable_large_batch_splitting is true, input_batch_size_limit must be greater "
     "than or equal to max_execution_batch_size"),
    ({"num_batch_threads": 0}, "num_batch_threads must be positive; was 0"),
    ({"batch_timeout_micros": -1}, "batch_timeout_micros must be non-negative; was -1"),
    ({"max_batch_size": 16, "allowed_batch_sizes": (8, 4, 16)},
     "allowed_batch_sizes entries must be monotonically increasing"),
])
def test_settings_tf_serving_refuses_are_refused_with_its_message(options, message):
    # bundle_factory_util.cc WrapSessionForBatching, shared_batch_scheduler.h AddQueue,
    # batching_session.cc CreateBasicBatchingSession.
    with pytest.raises(ValueError) as refused:
        BatchingOptions(**options)
    assert str(refused.value).startswith(message)


def test_zero_max_enqueued_batches_means_one_without_splitting():
    # shared_batch_scheduler.h AddQueue rewrites 0 to 1 when splitting is off.
    assert BatchingOptions(max_enqueued_batches=0).max_enqueued_batches == 1
    with pytest.raises(ValueError, match="max_enqueued_batches must be positive"):
        BatchingOptions(max_enqueued_batches=0, enable_large_batch_splitting=True)
