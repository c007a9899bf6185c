"""TF Serving's server-side batching (`--enable_batching`) for the development server.

Concurrent requests for the same model version and signature are queued and
merged into one batch; the signature runs once on the concatenated inputs and
each request gets its own rows of the outputs back. The semantics, limits and
error messages are TF Serving's, which runs a `BatchingSession`
(tensorflow_serving/batching/batching_session.cc) on TensorFlow's
`SharedBatchScheduler` (tensorflow/core/kernels/batching_util/
shared_batch_scheduler.h), configured from `BatchingParameters`
(tensorflow_serving/servables/tensorflow/bundle_factory_util.h):

- a request larger than `max_batch_size` rows is refused with
  INVALID_ARGUMENT, "Task size N is larger than maximum input batch size M",
  with or without large-batch splitting;
- without splitting, a batch holds at most `max_batch_size` rows: a request
  that does not fit in the open batch closes it and opens a new one, unless
  `max_enqueued_batches` batches are already waiting (UNAVAILABLE, "The batch
  scheduling queue to which this task was submitted is full; ...");
- with `enable_large_batch_splitting`, a batch holds at most
  `max_execution_batch_size` rows (default `max_batch_size`); a request that
  does not fit fills the open batch and continues in new batches of that size,
  and is refused (UNAVAILABLE) when the queue's remaining capacity is smaller
  than the request;
- a batch runs when a batch thread is free and the batch is full, or is
  followed by another batch, or its first request has waited
  `batch_timeout_micros`; `num_batch_threads` threads, shared by every model,
  take batches from the queues in turn;
- with `allowed_batch_sizes`, a batch is padded up to the smallest allowed
  size with copies of the first row of its last request, and the padding rows
  are dropped from the outputs (batching_session.cc `MergeInputTensors`,
  `SplitOutputTensors`; batching_util.cc `RoundToLowestAllowedBatchSize`);
- a request may carry a timeout (`RunOptions.timeout_in_ms`, see
  `deadlines`), counted from when it is queued. When a batch is taken and
  every request in it has waited past its timeout, the batch does not run and
  each gets RESOURCE_EXHAUSTED, "Run() timeout exceeded while waiting in
  batching queue"; otherwise it runs, bounded by the latest of its requests'
  deadlines (batching_session.cc `ProcessBatch`).
"""

from __future__ import annotations

import collections
import logging
import os
import threading
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
import numpy as np

from memae_tf.serving.deadlines import QUEUE_TIMEOUT_MESSAGE, run_with_timeout
from memae_tf.serving.errors import ServingError, invalid_argument
from memae_tf.serving.metrics import ServingMetrics

logger = logging.getLogger(__name__)

Arrays = dict[str, np.ndarray]
RunBatch = Callable[[Arrays], Mapping[str, np.ndarray]]


def _as_size_t(value: object) -> object:
    """A negative integer as TF Serving reads it, else `value` as it is.

    bundle_factory_util.h GetQueueOptions assigns the file's Int64Values to
    TensorFlow's size_t queue options: a negative one is 2**64 plus it, and
    shared_batch_scheduler.h AddQueueAfterRewritingOptions refuses only 0.
    """
    if isinstance(value, int) and not isinstance(value, bool) and value < 0:
        return value % 2**64
    return value


def _positive(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be positive; was {value!r}")


@dataclass(frozen=True)
class BatchingOptions:
    """The settings of TF Serving's `BatchingParameters`, with TF Serving's defaults.

    A field left unset in the `BatchingParameters` file takes TensorFlow's
    `SharedBatchScheduler` default, which is the default here.

    Args:
        max_batch_size: Largest request, in rows (TensorFlow's
            `input_batch_size_limit`); without splitting also the largest batch.
            A negative value is taken as TF Serving takes it: as an unsigned
            `size_t`, 2**64 plus the value, so no request is too large.
        batch_timeout_micros: How long the first request of a batch waits for
            others, in microseconds (>= 0).
        max_enqueued_batches: Batches that may wait for a thread; 0 means 1
            without splitting, as TensorFlow rewrites it, and a negative value,
            taken as an unsigned `size_t` as TF Serving takes it, no limit.
        num_batch_threads: Batches that run at the same time; None means the
            number of CPUs (TensorFlow's `port::MaxParallelism()`).
        thread_pool_name: Name of the batch threads.
        enable_large_batch_splitting: Whether a request may be split over
            several batches.
        max_execution_batch_size: Largest batch with splitting; None means
            `max_batch_size`. Ignored without splitting.
        allowed_batch_sizes: Batch sizes to pad to, the last equal to
            `max_batch_size`; a batch takes the first one that holds it, so list
            them increasing; empty for no padding.
        pad_variable_length_inputs: Must be False: every MemAE signature has
            fixed non-batch dimensions.

    Raises:
        ValueError: With TF Serving's message, for settings TF Serving refuses.

    Example:

    >>> options = BatchingOptions(max_batch_size=64, batch_timeout_micros=2000)
    >>> options.execution_batch_size
    64
    """

    max_batch_size: int = 1000
    batch_timeout_micros: int = 0
    max_enqueued_batches: int = 10
    num_batch_threads: int | None = None
    thread_pool_name: str = "batch_threads"
    enable_large_batch_splitting: bool = False
    max_execution_batch_size: int | None = None
    allowed_batch_sizes: tuple[int, ...] = ()
    pad_variable_length_inputs: bool = False

    def __post_init__(self) -> None:
        # The checks and messages of SharedBatchScheduler::Create/AddQueue and
        # bundle_factory_util.cc WrapSessionForBatching.
        received = self.max_batch_size
        object.__setattr__(self, "max_batch_size", _as_size_t(received))
        _positive("input_batch_size_limit (max_batch_size)", self.max_batch_size)
        if isinstance(self.batch_timeout_micros, bool) or not isinstance(
            self.batch_timeout_micros, int
        ) or self.batch_timeout_micros < 0:
            raise ValueError(
                f"batch_timeout_micros must be non-negative; was {self.batch_timeout_micros!r}"
            )
        if self.max_enqueued_batches == 0 and not self.enable_large_batch_splitting:
            object.__setattr__(self, "max_enqueued_batches", 1)
        object.__setattr__(self, "max_enqueued_batches", _as_size_t(self.max_enqueued_batches))
        _positive("max_enqueued_batches", self.max_enqueued_batches)
        if self.num_batch_threads is None:
            object.__setattr__(self, "num_batch_threads", os.cpu_count() or 1)
        _positive("num_batch_threads", self.num_batch_threads)
        if self.max_execution_batch_size is not None:
            _positive("max_execution_batch_size", self.max_execution_batch_size)
        if self.enable_large_batch_splitting and self.max_batch_size < self.execution_batch_size:
            raise ValueError(
                "When enable_large_batch_splitting is true, input_batch_size_limit must be "
                "greater than or equal to max_execution_batch_size. Received: "
                f"max_batch_size={self.max_batch_size}, "
                f"max_execution_batch_size={self.max_execution_batch_size}"
            )
        sizes = tuple(self.allowed_batch_sizes)
        object.__setattr__(self, "allowed_batch_sizes", sizes)
        # WrapSessionForBatching checks only the last entry, against the file's value
        # (before the size_t); the model server never calls CreateBasicBatchingSession,
        # whose check of increasing entries it therefore skips.
        if sizes and sizes[-1] != received:
            raise ValueError(
                "Last entry in allowed_batch_sizes must match max_batch_size; last entry "
                f"was {sizes[-1]}; expected {received}"
            )
        if self.pad_variable_length_inputs:
            raise ValueError(
                "pad_variable_length_inputs is not supported by the development server; "
                "expected false (MemAE signatures have fixed non-batch dimensions). "
                "Received: pad_variable_length_inputs=True"
            )

    @property
    def execution_batch_size(self) -> int:
        """The largest batch the signature runs on (before padding)."""
        if self.enable_large_batch_splitting and self.max_execution_batch_size is not None:
            return self.max_execution_batch_size
        return self.max_batch_size

    @classmethod
    def from_proto(cls, parameters: Any) -> BatchingOptions:
        """Returns the options of a `BatchingParameters` message (TF Serving's field numbers).

        Args:
            parameters: A `memae_tf.serving.proto.BatchingParameters`, e.g.
                parsed from a `--batching_parameters_file`.

        Example:

        >>> from google.protobuf import text_format
        >>> from memae_tf.serving.proto import BatchingParameters
        >>> message = text_format.Parse("max_batch_size { value: 64 }", BatchingParameters())
        >>> BatchingOptions.from_proto(message).max_batch_size
        64
        """
        values: dict[str, Any] = {}
        for name in ("max_batch_size", "batch_timeout_micros", "max_enqueued_batches",
                     "num_batch_threads", "thread_pool_name", "enable_large_batch_splitting",
                     "max_execution_batch_size"):
            if parameters.HasField(name):
                values[name] = getattr(parameters, name).value
        return cls(**values, allowed_batch_sizes=tuple(parameters.allowed_batch_sizes),
                   pad_variable_length_inputs=parameters.pad_variable_length_inputs)


def batch_size_of(inputs: Mapping[str, np.ndarray]) -> int:
    """Returns the common first dimension of a request's inputs.

    Raises:
        ServingError: INVALID_ARGUMENT, with TF Serving's message
            (batching_util.h `ComputeTensorBatchSize`), for no inputs, a scalar
            input or inputs of different first dimensions.
    """
    if not inputs:
        raise invalid_argument("Batching Run() must have at least one input tensor")
    sizes = set()
    for array in inputs.values():
        if array.ndim == 0:
            raise invalid_argument(
                "Batching Run() input tensors must have at least one dimension")
        sizes.add(array.shape[0])
    if len(sizes) != 1:
        raise invalid_argument(
            "Batching Run() input tensors must have equal 0th-dimension size")
    return sizes.pop()


def check_task_size(rows: int, max_batch_size: int) -> None:
    """Raises TF Serving's INVALID_ARGUMENT for a request above `max_batch_size` rows.

    The message is TensorFlow's (shared_batch_scheduler.h
    `ValidateBatchTaskQueueCapacity`), as TF Serving answers with batching on.

    Example:

    >>> check_task_size(65, 64)
    Traceback (most recent call last):
    ...
    memae_tf.serving.errors.ServingError: Task size 65 is larger than maximum input batch size 64
    """
    if rows > max_batch_size:
        raise invalid_argument(
            f"Task size {rows} is larger than maximum input batch size {max_batch_size}")


def split_sizes(rows: int, open_batch_room: int, batch_limit: int) -> list[int]:
    """Returns the pieces a request of `rows` is split into (TensorFlow's `InputSplitMetadata`).

    The first piece fills what is left of the open batch (a whole batch when
    nothing is left), the next ones are full batches, the last one the rest.

    Example:

    >>> split_sizes(100, 10, 32)
    [10, 32, 32, 26]
    """
    head = min(rows, open_batch_room if open_batch_room > 0 else batch_limit)
    pieces, left = [head], rows - head
    while left > 0:
        pieces.append(min(left, batch_limit))
        left -= pieces[-1]
    return pieces


def padded_size(allowed_batch_sizes: Sequence[int], rows: int) -> int:
    """Returns the first allowed batch size >= `rows` in the list's order (`rows` when none is).

    As batching_util.cc `RoundToLowestAllowedBatchSize`: with increasing
    sizes, the smallest one that holds the rows.

    Example:

    >>> padded_size([8, 16, 64], 9)
    16
    >>> padded_size([32, 8, 64], 5)
    32
    """
    return next((size for size in allowed_batch_sizes if size >= rows), rows)


class _Result:
    """What the requester waits for: the outputs of each piece of its request."""

    def __init__(self, pieces: int, enqueued: float, timeout_in_ms: int = 0) -> None:
        self.pieces: list[Arrays | None] = [None] * pieces
        self.left = pieces
        self.error: BaseException | None = None
        self.enqueued = enqueued
        # batching_session.cc: a timeout <= 0 is none; the pieces of a split request
        # share its enqueue time and timeout (SplitInputTask copies both).
        self.deadline = (enqueued + timeout_in_ms / 1000 if timeout_in_ms > 0
                         else float("inf"))
        self.done = threading.Event()

    def finish_piece(self, index: int, outputs: Arrays | None, error: BaseException | None) -> None:
        # Called under the scheduler lock, so `left` needs no lock of its own.
        self.pieces[index] = outputs
        if error is not None and self.error is None:
            self.error = error
        self.left -= 1
        if self.left == 0:
            self.done.set()

    def outputs(self) -> Arrays:
        if isinstance(self.error, ServingError):
            # One batch's error reaches several requesters: each raises its own copy.
            raise ServingError(self.error.code, self.error.message) from self.error
        if self.error is not None:
            raise self.error
        if len(self.pieces) == 1:
            return self.pieces[0]
        return {name: np.concatenate([piece[name] for piece in self.pieces])
                for name in self.pieces[0]}


@dataclass
class _Task:
    inputs: Arrays
    size: int
    result: _Result
    piece: int


@dataclass
class _Batch:
    tasks: list[_Task] = field(default_factory=list)
    size: int = 0


class _Queue:
    """The batches of one model version and signature (TensorFlow's `internal::Queue`)."""

    def __init__(self, key: Hashable, run: RunBatch, options: BatchingOptions) -> None:
        self.key = key
        self.run = run
        self.options = options
        self.batches: collections.deque[_Batch] = collections.deque([_Batch()])
        self.open_since = 0.0
        self.running = 0

    @property
    def limit(self) -> int:
        return self.options.execution_batch_size

    def capacity(self) -> int:
        """Rows that may still be enqueued (`SchedulingCapacityInternal`)."""
        return ((self.options.max_enqueued_batches - len(self.batches)) * self.limit
                + self.limit - self.batches[-1].size)

    def check_room(self, rows: int) -> None:
        options, open_rows = self.options, self.batches[-1].size
        check_task_size(rows, options.max_batch_size)
        if options.enable_large_batch_splitting:
            if rows > self.capacity():
                raise ServingError(
                    grpc.StatusCode.UNAVAILABLE,
                    "The batch scheduling queue to which this task was submitted is full; "
                    f"task size is {rows} but scheduling capacity is only {self.capacity()} "
                    f"(num_enqueued_batches={len(self.batches)}, max_enqueued_batches="
                    f"{options.max_enqueued_batches}, open_batch_size={open_rows}, "
                    f"max_execution_batch_size={self.limit})")
        elif (open_rows + rows > options.max_batch_size
              and len(self.batches) >= options.max_enqueued_batches):
            raise ServingError(
                grpc.StatusCode.UNAVAILABLE,
                "The batch scheduling queue to which this task was submitted is full; "
                f"currently {len(self.batches)} batches enqueued and max_enqueued_batches is "
                f"{options.max_enqueued_batches}")

    def enqueue(self, inputs: Arrays, rows: int, now: float, timeout_in_ms: int = 0) -> _Result:
        self.check_room(rows)
        room = self.limit - self.batches[-1].size
        if rows <= room or not self.options.enable_large_batch_splitting:
            pieces = [rows]
        else:
            pieces = split_sizes(rows, room, self.limit)
        result = _Result(len(pieces), now, timeout_in_ms)
        start = 0
        for index, piece in enumerate(pieces):
            if self.batches[-1].size + piece > self.limit:
                self.batches.append(_Batch())
            if not self.batches[-1].tasks:
                self.open_since = now
            part = inputs if len(pieces) == 1 else {
                name: array[start:start + piece] for name, array in inputs.items()}
            self.batches[-1].tasks.append(_Task(part, piece, result, index))
            self.batches[-1].size += piece
            start += piece
        return result

    def ready_at(self) -> float | None:
        """When a batch can be taken: -inf if now, a time if on timeout, None if empty."""
        if len(self.batches) > 1:
            return -float("inf")
        open_batch = self.batches[-1]
        if not open_batch.tasks:
            return None
        if open_batch.size >= self.limit:
            return -float("inf")
        return self.open_since + self.options.batch_timeout_micros / 1e6

    def take(self, now: float, closing: bool) -> _Batch | None:
        ready = self.ready_at()
        if ready is None or (ready > now and not closing):
            return None
        if len(self.batches) == 1:
            self.batches.append(_Batch())
        self.running += 1
        return self.batches.popleft()

    def idle(self) -> bool:
        return self.running == 0 and len(self.batches) == 1 and not self.batches[-1].tasks


class BatchScheduler:
    """Merges concurrent requests into batches and runs them on a pool of threads.

    One queue per key (a model version and signature), created on its first
    request and dropped when it is empty; `options.num_batch_threads` threads
    take ready batches from the queues in turn, as TensorFlow's
    `SharedBatchScheduler` does. See the module docstring for the rules.

    Args:
        options: The batching settings.
        metrics: Where to record TF Serving's batching metrics; None records
            nothing.

    Example:

    >>> scheduler = BatchScheduler(BatchingOptions(max_batch_size=8))
    >>> double = lambda inputs: {"y": inputs["x"] * 2}
    >>> scheduler.submit("model", double, {"x": np.ones((3, 2))})["y"].shape
    (3, 2)
    >>> scheduler.stop()
    """

    def __init__(self, options: BatchingOptions, metrics: ServingMetrics | None = None) -> None:
        self.options = options
        self.metrics = metrics
        self._condition = threading.Condition()
        self._queues: dict[Hashable, _Queue] = {}
        self._turn = 0
        self._stopping = False
        self._threads = [
            threading.Thread(target=self._work, daemon=True,
                             name=f"{options.thread_pool_name}_{index}")
            for index in range(options.num_batch_threads)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, key: Hashable, run: RunBatch, inputs: Mapping[str, np.ndarray],
               timeout_in_ms: int = 0) -> Arrays:
        """Queues a request, waits for its batch to run and returns its rows of the outputs.

        Args:
            key: What may be batched together: requests of equal keys share
                batches and one `run`. Use the model version and signature.
            run: Runs the signature on merged inputs and returns every output,
                batch-major; the first request of a key sets it.
            inputs: Input name → array, the request's checked inputs.
            timeout_in_ms: The request's `RunOptions.timeout_in_ms`, counted
                from now; 0 or less for none (see the module docstring).

        Returns:
            Output name → this request's rows of the output.

        Raises:
            ServingError: INVALID_ARGUMENT for a request above `max_batch_size`,
                UNAVAILABLE for a full queue or a stopped scheduler,
                RESOURCE_EXHAUSTED when its whole batch waited past its
                timeouts, DEADLINE_EXCEEDED when the batch's run took longer
                than the batch's timeout, or the error of the batch's run.
        """
        inputs = dict(inputs)
        rows = batch_size_of(inputs)
        if self.metrics is not None:
            for _ in inputs:
                self.metrics.record_input_batch(rows)
        with self._condition:
            if self._stopping:
                raise ServingError(grpc.StatusCode.UNAVAILABLE,
                                   "The batch scheduler is stopping; no new requests.")
            queue = self._queues.get(key)
            if queue is None:
                queue = self._queues[key] = _Queue(key, run, self.options)
            try:
                result = queue.enqueue(inputs, rows, time.monotonic(), timeout_in_ms)
            finally:
                if queue.idle():
                    del self._queues[key]
            self._condition.notify()
        result.done.wait()
        return result.outputs()

    def stop(self, timeout: float | None = None) -> None:
        """Runs the batches already queued (at once, without waiting for timeouts) and stops.

        Args:
            timeout: Seconds to wait for the batch threads; None waits as long
                as the batches take.
        """
        with self._condition:
            self._stopping = True
            self._condition.notify_all()
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in self._threads:
            thread.join(None if deadline is None else max(deadline - time.monotonic(), 0))

    def _next_batch(self, now: float) -> tuple[_Queue, _Batch] | float | None:
        """A ready batch, taking the queues in turn; else when the next one is due (or None)."""
        keys = list(self._queues)
        soonest = None
        for offset in range(len(keys)):
            queue = self._queues[keys[(self._turn + offset) % len(keys)]]
            batch = queue.take(now, self._stopping)
            if batch is not None:
                self._turn = (self._turn + offset + 1) % max(len(keys), 1)
                return queue, batch
            ready = queue.ready_at()
            if ready is not None and (soonest is None or ready < soonest):
                soonest = ready
        return soonest

    def _work(self) -> None:
        while True:
            with self._condition:
                while True:
                    found = self._next_batch(time.monotonic())
                    if isinstance(found, tuple):
                        break
                    if self._stopping and not self._queues:
                        self._condition.notify_all()  # the other threads exit too
                        return
                    self._condition.wait(
                        None if found is None else max(found - time.monotonic(), 0))
                queue, batch = found
                # Another idle thread may take the next ready batch meanwhile.
                self._condition.notify()
            outcome = self._run(queue, batch)
            failed = outcome if isinstance(outcome, BaseException) else None
            with self._condition:
                for task in batch.tasks:
                    task.result.finish_piece(
                        task.piece, None if failed else outcome[id(task)], failed)
                queue.running -= 1
                if queue.idle() and self._queues.get(queue.key) is queue:
                    del self._queues[queue.key]
                self._condition.notify()

    def _run(self, queue: _Queue, batch: _Batch) -> dict[int, Arrays] | BaseException:
        """Merges a batch, runs it once and splits the outputs: task id → its rows."""
        now = time.monotonic()
        padded = padded_size(self.options.allowed_batch_sizes, batch.size)
        if self.metrics is not None:
            for task in batch.tasks:
                # TF Serving's model server creates its BatchingSession with
                # thread_pool_name "" (bundle_factory_util.cc), hence this label.
                self.metrics.record_queuing("", (now - task.result.enqueued) * 1e6)
        # batching_session.cc ProcessBatch: the batch runs if one of its tasks is still
        # within its timeout, bounded by the latest deadline, in whole milliseconds
        # (0 left, like no timeout at all, runs without one).
        deadline = max(task.result.deadline for task in batch.tasks)
        if deadline <= now:
            return ServingError(grpc.StatusCode.RESOURCE_EXHAUSTED, QUEUE_TIMEOUT_MESSAGE)
        timeout_in_ms = 0 if deadline == float("inf") else int((deadline - now) * 1000)
        if self.metrics is not None:
            self.metrics.record_batch(batch.size, padded)
        try:
            merged = _merge(batch.tasks, padded - batch.size)
            outputs = run_with_timeout(queue.run, merged, timeout_in_ms)
            return _split(outputs, batch.tasks, padded)
        except BaseException as error:  # every request of the batch gets the error
            if not isinstance(error, ServingError):
                logger.exception("A batch of %d rows failed.", batch.size)
            return error


def _merge(tasks: Sequence[_Task], padding: int) -> Arrays:
    merged = {}
    for name in tasks[0].inputs:
        arrays = [task.inputs[name] for task in tasks]
        if any(array.shape[1:] != arrays[0].shape[1:] for array in arrays):
            raise ServingError(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"Tensors with name '{name}' from different tasks have different shapes and "
                "padding is turned off. Set pad_variable_length_inputs to true, or ensure that "
                "all tensors with the same name have equal dimensions starting with the first "
                "dim.")
        if padding:
            # TF Serving pads with the first row of the last request: a valid input.
            arrays.append(np.repeat(arrays[-1][:1], padding, axis=0))
        merged[name] = np.concatenate(arrays)
    return merged


def _split(outputs: Mapping[str, np.ndarray], tasks: Sequence[_Task], padded: int
           ) -> dict[int, Arrays]:
    for array in outputs.values():
        if np.ndim(array) == 0:
            raise ServingError(grpc.StatusCode.FAILED_PRECONDITION,
                               "Batched output tensor has 0 dimensions")
        if array.shape[0] != padded:
            raise ServingError(
                grpc.StatusCode.FAILED_PRECONDITION,
                "Batched output tensor's 0th dimension does not equal the sum of the 0th "
                "dimension sizes of the input tensors")
    split: dict[int, Arrays] = {}
    start = 0
    for task in tasks:
        split[id(task)] = {name: array[start:start + task.size]
                           for name, array in outputs.items()}
        start += task.size
    return split
