"""The batch scheduler against TF Serving's batching rules, on a numpy signature.

Each test names the TF Serving / TensorFlow source whose behaviour it checks:
tensorflow_serving/batching/batching_session.cc (merging, padding, splitting
outputs), tensorflow_serving/batching/batching_util.cc
(RoundToLowestAllowedBatchSize), tensorflow_serving/servables/tensorflow/
bundle_factory_util.{h,cc} (BatchingParameters → queue options) and
TensorFlow's tensorflow/core/kernels/batching_util/shared_batch_scheduler.h
(queue, timeout, capacity and their messages) with input_split_metadata.cc.
"""

import ctypes
import dataclasses
import os
import threading
import time

import grpc
import numpy as np
import pytest
from google.protobuf import text_format
from serving_helpers import random_rows as rows
from serving_helpers import submit_concurrently

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


def test_partial_batch_waits_for_the_batch_timeout_then_runs_without_more_requests(
        make_scheduler):
    # shared_batch_scheduler.h IsOpenBatchSchedulable: a batch below max_batch_size
    # becomes schedulable once its first task has waited batch_timeout_micros. Until
    # then it stays open, so a request that comes 0.1 s after the first, well within
    # the 2 s timeout, joins it: one call of 3 + 2 rows, where a scheduler that ran
    # partial batches at once would make two. Nothing else comes, far from the 64
    # rows that would fill the batch: only the timeout can make it run.
    scheduler = make_scheduler(max_batch_size=64, batch_timeout_micros=2_000_000,
                               num_batch_threads=1)
    signature = CountingSignature()
    requests, answers = [rows(3, 1), rows(2, 2)], {}

    def submit(index):
        answers[index] = scheduler.submit("m", signature, {"x": requests[index]})

    first = threading.Thread(target=submit, args=(0,))
    first.start()
    time.sleep(0.1)  # the first request has opened the batch
    second = threading.Thread(target=submit, args=(1,))
    second.start()
    for thread in (first, second):
        thread.join(60)
        assert not thread.is_alive(), "the partial batch never ran"
    assert [call.shape[0] for call in signature.calls] == [5]
    np.testing.assert_array_equal(signature.calls[0], np.concatenate(requests))
    for index, request in enumerate(requests):
        np.testing.assert_allclose(answers[index]["y"], affine(request)["y"], rtol=1e-12)


def test_zero_timeout_runs_a_lone_request_at_once(make_scheduler):
    # batch_timeout_micros defaults to 0 (shared_batch_scheduler.h QueueOptions): a
    # batch far from max_batch_size runs without waiting for other requests to fill it.
    # Nothing else is submitted, so a scheduler that waited would never answer.
    scheduler = make_scheduler(max_batch_size=64, num_batch_threads=1)
    signature, answer = CountingSignature(), {}
    lone = threading.Thread(target=lambda: answer.update(
        scheduler.submit("m", signature, {"x": rows(2, 2)})))
    lone.start()
    lone.join(60)
    assert not lone.is_alive(), "the lone request is still waiting for others"
    np.testing.assert_allclose(answer["y"], affine(rows(2, 2))["y"])
    assert [call.shape[0] for call in signature.calls] == [2]


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


@pytest.mark.parametrize("sizes", [(8, 4, 16), (8, 8, 16), (0, 16)])
def test_allowed_batch_sizes_not_increasing_are_taken_and_the_first_that_holds_a_batch_pads(
        sizes):
    # The model server batches through bundle_factory_util.cc WrapSessionForBatching, which
    # checks only the last entry; the check of increasing entries is in batching_session.cc
    # CreateBasicBatchingSession, which it never calls. MergeInputTensors pads to
    # batching_util.cc RoundToLowestAllowedBatchSize: the first entry >= the batch's rows.
    options = BatchingOptions(max_batch_size=16, allowed_batch_sizes=sizes)
    assert options.allowed_batch_sizes == sizes
    assert [padded_size(sizes, n) for n in (3, 5, 9)] == {
        (8, 4, 16): [8, 8, 16], (8, 8, 16): [8, 8, 16], (0, 16): [16, 16, 16]}[sizes]


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
    # The batch timeout is an hour and nothing fills the batch: the queued request can
    # only have run because of stop, which returns once the batch threads are done.
    scheduler = BatchScheduler(BatchingOptions(max_batch_size=64,
                                               batch_timeout_micros=3_600_000_000))
    signature = CountingSignature()
    answer = {}
    waiting = threading.Thread(target=lambda: answer.setdefault(
        "y", scheduler.submit("m", signature, {"x": rows(2, 0)})["y"]))
    waiting.start()
    time.sleep(0.1)  # the request is queued in the open batch
    assert signature.calls == []
    scheduler.stop(timeout=60)
    waiting.join(60)
    assert not waiting.is_alive(), "stop did not run the queued batch"
    assert [call.shape[0] for call in signature.calls] == [2]
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
])
def test_settings_tf_serving_refuses_are_refused_with_its_message(options, message):
    # bundle_factory_util.cc WrapSessionForBatching, shared_batch_scheduler.h AddQueue.
    with pytest.raises(ValueError) as refused:
        BatchingOptions(**options)
    assert str(refused.value).startswith(message)


def test_a_negative_max_batch_size_is_no_limit_as_tf_serving_reads_it(make_scheduler):
    # tensorflow_serving/servables/tensorflow/bundle_factory_util.h GetQueueOptions assigns
    # BatchingParameters.max_batch_size (an Int64Value) to TensorFlow's size_t
    # QueueOptions::input_batch_size_limit, and shared_batch_scheduler.h
    # AddQueueAfterRewritingOptions refuses only 0 ("input_batch_size_limit must be
    # positive"): -1 loads as the largest size_t, so ValidateBatchTaskQueueCapacity finds
    # no task too large and, without splitting, a batch runs when its timeout is up.
    message = text_format.Parse("max_batch_size { value: -1 }", BatchingParameters())
    options = BatchingOptions.from_proto(message)
    assert options.max_batch_size == ctypes.c_size_t(-1).value == 2**64 - 1
    assert BatchingOptions(max_batch_size=-64).max_batch_size == ctypes.c_size_t(-64).value
    scheduler = make_scheduler(max_batch_size=-1, batch_timeout_micros=1_000_000)
    signature = CountingSignature()
    # Above the 1000 rows of an unset max_batch_size, and merged beyond it.
    requests = [rows(1500, 0), rows(2500, 1)]
    answers = submit_concurrently(scheduler, signature, requests)
    assert [call.shape[0] for call in signature.calls] == [4000]
    for request, answer in zip(requests, answers, strict=True):
        np.testing.assert_allclose(answer["y"], affine(request)["y"], rtol=1e-12)
    with pytest.raises(ValueError, match=r"input_batch_size_limit .*must be positive; was 0"):
        BatchingOptions(max_batch_size=0)
    # WrapSessionForBatching compares allowed_batch_sizes with the file's value itself.
    with pytest.raises(ValueError, match=r"last entry was 64; expected -1$"):
        BatchingOptions(max_batch_size=-1, allowed_batch_sizes=(32, 64))


@pytest.mark.parametrize("splitting", [False, True])
def test_a_negative_max_enqueued_batches_is_no_limit_as_tf_serving_reads_it(splitting):
    # bundle_factory_util.h GetQueueOptions assigns the Int64Value to TensorFlow's size_t
    # QueueOptions::max_enqueued_batches; shared_batch_scheduler.h
    # AddQueueAfterRewritingOptions refuses only 0 ("max_enqueued_batches must be positive").
    message = text_format.Parse(
        "max_enqueued_batches { value: -1 }"
        + ("\nenable_large_batch_splitting { value: true }" if splitting else ""),
        BatchingParameters())
    options = BatchingOptions.from_proto(message)
    assert options.max_enqueued_batches == ctypes.c_size_t(-1).value


def test_zero_max_enqueued_batches_means_one_without_splitting():
    # shared_batch_scheduler.h AddQueue rewrites 0 to 1 when splitting is off.
    assert BatchingOptions(max_enqueued_batches=0).max_enqueued_batches == 1
    with pytest.raises(ValueError, match="max_enqueued_batches must be positive"):
        BatchingOptions(max_enqueued_batches=0, enable_large_batch_splitting=True)


def test_accepted_allowed_batch_sizes_and_default_thread_count():
    # batching_session.cc CreateBasicBatchingSession refuses only entries that do not
    # strictly increase (`size <= last_size`) and a last entry other than max_batch_size;
    # shared_batch_scheduler.h Options: num_batch_threads defaults to port::MaxParallelism().
    options = BatchingOptions(max_batch_size=16, allowed_batch_sizes=(1, 2, 16))
    assert options.allowed_batch_sizes == (1, 2, 16)
    single = BatchingOptions(max_batch_size=16, allowed_batch_sizes=(16,))
    assert single.allowed_batch_sizes == (16,)
    assert BatchingOptions().num_batch_threads == os.cpu_count()
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.max_batch_size = 32  # type: ignore[misc]


def test_scalar_inputs_are_refused_and_vectors_batch_by_their_rows(make_scheduler):
    # batching_session.cc ComputeInputSize: every input needs a 0th dimension, the batch one.
    scheduler = make_scheduler(max_batch_size=8, num_batch_threads=1)
    with pytest.raises(ServingError) as refused:
        scheduler.submit("m", lambda inputs: inputs, {"x": np.float64(1.0)})
    assert refused.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert refused.value.message == "Batching Run() input tensors must have at least one dimension"
    answer = scheduler.submit("v", lambda inputs: {"y": inputs["x"] * 2}, {"x": np.arange(3.0)})
    np.testing.assert_array_equal(answer["y"], [0.0, 2.0, 4.0])


def test_a_run_without_inputs_is_refused_before_it_queues(make_scheduler):
    # batching_util.h ComputeTensorBatchSize: "must have at least one input tensor", as a
    # Predict on __saved_model_init_op (no inputs) gets with batching on (its signature
    # has a queue: saved_model_bundle_factory.cc GetSignatureDefs takes every signature).
    scheduler = make_scheduler(max_batch_size=8, num_batch_threads=1)
    with pytest.raises(ServingError) as refused:
        scheduler.submit("m", lambda inputs: inputs, {})
    assert (refused.value.code, refused.value.message) == (
        grpc.StatusCode.INVALID_ARGUMENT, "Batching Run() must have at least one input tensor")


def test_split_sizes_with_one_row_of_room_or_one_row_left():
    # input_split_metadata.cc: a head of one row when one is left in the open batch,
    # and a last piece of one row.
    assert split_sizes(5, 1, 4) == [1, 4]
    assert split_sizes(65, 0, 32) == [32, 32, 1]


def test_a_request_waiting_past_its_timeout_is_refused_and_one_within_it_runs(make_scheduler):
    # batching_session.cc ProcessBatch: a task's deadline is its enqueue time plus
    # RunOptions.timeout_in_ms (> 0; 0 is none); a batch whose tasks are all past their
    # deadlines is not run, and each gets RESOURCE_EXHAUSTED.
    scheduler = make_scheduler(max_batch_size=8, batch_timeout_micros=200_000,
                               num_batch_threads=1)
    signature = CountingSignature()
    with pytest.raises(ServingError) as refused:
        scheduler.submit("m", signature, {"x": rows(2, 0)}, timeout_in_ms=1)
    assert refused.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert refused.value.message == "Run() timeout exceeded while waiting in batching queue"
    assert signature.calls == []
    answer = scheduler.submit("m", signature, {"x": rows(2, 1)}, timeout_in_ms=60_000)
    np.testing.assert_allclose(answer["y"], affine(rows(2, 1))["y"], rtol=1e-12)


def test_splitting_capacity_counts_enqueued_batches_and_the_open_batch_room(make_scheduler):
    # shared_batch_scheduler.h SchedulingCapacityInternal: (max_enqueued_batches -
    # enqueued batches, the open one included) * max_execution_batch_size + room left in
    # the open batch; ValidateBatchTaskQueueCapacity refuses a larger task (UNAVAILABLE).
    # input_split_metadata.cc: an accepted task first fills the open batch.
    scheduler = make_scheduler(max_batch_size=8, enable_large_batch_splitting=True,
                               max_execution_batch_size=4, max_enqueued_batches=2,
                               batch_timeout_micros=10_000_000, num_batch_threads=1)
    gate = threading.Event()
    signature = CountingSignature(gate)
    answers = {}

    def submit(name, x):
        thread = threading.Thread(target=lambda: answers.setdefault(
            name, scheduler.submit("m", signature, {"x": x})))
        thread.start()
        return thread

    threads = [submit("full", rows(4, 0))]
    assert signature.started.wait(10)  # a full batch runs; the only thread is now busy
    threads.append(submit("open", rows(3, 1)))
    time.sleep(0.1)  # the open batch now holds 3 of 4 rows: capacity (2 - 1) * 4 + 1 = 5
    with pytest.raises(ServingError) as refused:
        scheduler.submit("m", signature, {"x": rows(6, 2)})
    assert refused.value.code == grpc.StatusCode.UNAVAILABLE
    assert refused.value.message == (
        "The batch scheduling queue to which this task was submitted is full; task size is 6 "
        "but scheduling capacity is only 5 (num_enqueued_batches=1, max_enqueued_batches=2, "
        "open_batch_size=3, max_execution_batch_size=4)")
    threads.append(submit("split", rows(5, 3)))  # exactly the capacity: 1 + 4 rows
    time.sleep(0.1)
    gate.set()
    for thread in threads:
        thread.join(10)
    assert [call.shape[0] for call in signature.calls] == [4, 4, 4]
    np.testing.assert_array_equal(signature.calls[1], np.concatenate([rows(3, 1), rows(5, 3)[:1]]))
    for name, seed, size in (("full", 0, 4), ("open", 1, 3), ("split", 3, 5)):
        np.testing.assert_allclose(answers[name]["y"], affine(rows(size, seed))["y"], rtol=1e-12)


def test_without_splitting_a_request_that_does_not_fit_closes_the_open_batch(make_scheduler):
    # shared_batch_scheduler.h Queue::Schedule: without splitting a task that does not fit
    # the open batch starts a new one, and a batch followed by another is schedulable at
    # once (IsOpenBatchSchedulable only applies to the last batch).
    scheduler = make_scheduler(max_batch_size=4, batch_timeout_micros=60_000_000,
                               num_batch_threads=1)
    signature = CountingSignature()
    answers = {}
    threads = []
    for seed in (0, 1):
        threads.append(threading.Thread(target=lambda seed=seed: answers.setdefault(
            seed, scheduler.submit("m", signature, {"x": rows(3, seed)}))))
        threads[-1].start()
        time.sleep(0.1)
    assert signature.started.wait(10)
    assert [call.shape[0] for call in signature.calls] == [3]
    scheduler.stop(timeout=10)  # runs the open batch without waiting for its timeout
    for thread in threads:
        thread.join(10)
    assert [call.shape[0] for call in signature.calls] == [3, 3]
    for seed in (0, 1):
        np.testing.assert_allclose(answers[seed]["y"], affine(rows(3, seed))["y"], rtol=1e-12)


def test_stop_waits_for_the_batch_threads_at_most_its_timeout():
    # BatchScheduler.stop's contract (TF's ~SharedBatchScheduler joins its threads):
    # with a timeout it returns once the threads end or the timeout passes.
    pool = "stop_timeout_test"
    batch_threads = lambda: [t for t in threading.enumerate() if t.name.startswith(pool)]  # noqa: E731
    gate = threading.Event()
    signature = CountingSignature(gate)
    scheduler = BatchScheduler(BatchingOptions(max_batch_size=8, num_batch_threads=2,
                                               thread_pool_name=pool))
    assert len(batch_threads()) == 2
    assert all(thread.daemon for thread in batch_threads())  # never holds the process up
    waiting = threading.Thread(target=lambda: scheduler.submit("m", signature, {"x": rows(2, 0)}))
    waiting.start()
    assert signature.started.wait(10)
    stopper = threading.Thread(target=scheduler.stop, kwargs={"timeout": 0.2})
    stopper.start()
    stopper.join(5)
    assert not stopper.is_alive()  # returned while the batch is still running
    assert waiting.is_alive()
    threading.Timer(0.3, gate.set).start()
    scheduler.stop(timeout=10)
    assert batch_threads() == []  # returned only once the batch ended
    waiting.join(10)


def test_a_split_request_gets_the_first_error_of_its_pieces(make_scheduler):
    # batching_session.cc SplitInputTask: the pieces share a ThreadSafeStatus, whose
    # Update keeps the first error (threadsafe_status.cc); one thread runs them in order.
    scheduler = make_scheduler(max_batch_size=12, enable_large_batch_splitting=True,
                               max_execution_batch_size=4, num_batch_threads=1)
    calls = []

    def broken(inputs):
        calls.append(len(inputs["x"]))
        raise ServingError(grpc.StatusCode.INTERNAL, f"call {len(calls)} broke")

    with pytest.raises(ServingError) as failed:
        scheduler.submit("m", broken, {"x": rows(12, 0)})
    assert calls == [4, 4, 4]
    assert (failed.value.code, failed.value.message) == (grpc.StatusCode.INTERNAL,
                                                         "call 1 broke")


def test_batch_threads_take_the_queues_in_turn(make_scheduler):
    # shared_batch_scheduler.h GetNextWorkItem_Locked: the threads try one queue after
    # another in the order they were added, moving past each queue tried (one that gave a
    # batch included) and wrapping at the end, so no model's full batches starve another's.
    scheduler = make_scheduler(max_batch_size=2, batch_timeout_micros=60_000_000,
                               num_batch_threads=1)
    gate = threading.Event()
    order = []

    def signature_of(key):
        def run(inputs):
            order.append(key)
            if len(order) == 1:
                assert gate.wait(10)
            return affine(inputs["x"])
        return run

    threads = []

    def submit(key, count):
        threads.append(threading.Thread(
            target=lambda: scheduler.submit(key, signature_of(key), {"x": rows(count, 0)})))
        threads[-1].start()
        time.sleep(0.05)

    submit("a", 2)  # a full batch: the only thread takes it and waits at the gate
    for key, count in (("b", 1), ("c", 2), ("c", 2), ("a", 2), ("a", 2)):
        submit(key, count)  # b's batch stays open (not full, long batch timeout)
    assert order == ["a"]
    gate.set()
    deadline = time.monotonic() + 10
    while len(order) < 5 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert order == ["a", "a", "c", "a", "c"]
    scheduler.stop(timeout=10)  # runs b's open batch
    for thread in threads:
        thread.join(10)
    assert order == ["a", "a", "c", "a", "c", "b"]


def test_a_batch_runs_bounded_by_its_requests_timeout_and_unbounded_without_one(
        make_scheduler):
    # batching_session.cc ProcessBatch: the merged run's RunOptions.timeout_in_ms is the
    # latest task deadline minus the dequeue time, none when a task has no timeout; a run
    # past it is DEADLINE_EXCEEDED (direct_session.cc WaitForNotification).
    scheduler = make_scheduler(max_batch_size=8, num_batch_threads=1)

    def slow(seconds):
        def run(inputs):
            time.sleep(seconds)
            return affine(inputs["x"])
        return run

    answer = scheduler.submit("unbounded", slow(0.05), {"x": rows(2, 0)})
    np.testing.assert_allclose(answer["y"], affine(rows(2, 0))["y"], rtol=1e-12)
    with pytest.raises(ServingError) as late:
        scheduler.submit("bounded", slow(0.5), {"x": rows(2, 1)}, timeout_in_ms=100)
    assert late.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert late.value.message == "Timed out waiting for notification"


def test_queuing_latency_is_the_wait_in_microseconds(make_scheduler):
    # batching_session.cc RecordBatchingSessionQueuingLatency: microseconds from enqueue
    # to the batch's processing; a lone request waits batch_timeout_micros.
    metrics = ServingMetrics()
    scheduler = make_scheduler(metrics, max_batch_size=8, batch_timeout_micros=100_000,
                               num_batch_threads=1)
    scheduler.submit("m", CountingSignature(), {"x": rows(1, 0)})
    limits = metrics.queuing_latency.bucket_limits
    counts = metrics.queuing_latency.cumulative_counts("")
    below = max(index for index, limit in enumerate(limits) if limit <= 100_000)
    assert counts[below] == 0  # waited at least the batch timeout
    assert counts[-2] == 1 == counts[-1]  # and less than the largest finite bucket limit


def test_a_partial_batch_runs_on_its_timeout_while_another_models_batch_runs(
        make_scheduler):
    # shared_batch_scheduler.h: an idle thread polls the queues (every millisecond) and
    # takes an open batch once its timeout passes, whatever the other threads are running.
    scheduler = make_scheduler(max_batch_size=2, batch_timeout_micros=300_000,
                               num_batch_threads=2)
    gate = threading.Event()
    answers = {}
    partial = threading.Thread(target=lambda: answers.setdefault(
        "partial", scheduler.submit("partial", CountingSignature(), {"x": rows(1, 0)})))
    partial.start()
    time.sleep(0.05)
    blocked = CountingSignature(gate)
    full = threading.Thread(target=lambda: scheduler.submit("full", blocked, {"x": rows(2, 1)}))
    full.start()
    try:
        assert blocked.started.wait(10)
        partial.join(5)  # well before the gated run gives up waiting (10 s)
        assert "partial" in answers  # answered while the full batch still runs
    finally:
        gate.set()
        full.join(10)
