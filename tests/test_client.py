"""MemAEClient against a scripted fake server: retries, deadlines, splitting, filters."""

import asyncio
import os
import pathlib
import re
import subprocess
import sys
import textwrap
import threading
import time
from concurrent import futures

import grpc
import numpy as np
import pytest
import tensorflow as tf
import yaml
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from memae_tf.client import (
    AsyncMemAEClient,
    DeadlineExceededError,
    InvalidArgumentError,
    MemAEClient,
    MemAEClientError,
    TensorInfo,
    UnavailableError,
    VersionStatus,
    read_max_batch_size,
)

FEATURES = 4
# gRPC sends a deadline as a timeout rounded up (grpc-core's timeout encoding keeps three
# significant figures), so the server's deadline may lie up to 1% past the client's.
SENT_DEADLINE_ROUNDING = 1.01


class ScriptedService(prediction_service_pb2_grpc.PredictionServiceServicer,
                      model_service_pb2_grpc.ModelServiceServicer):
    """Answers Predict with `score = x[:, 0]` after the scripted failures or delay.

    Requests past the first `answered` are held until the client ends them (its
    deadline), so that a test sees a deadline act without timing anything; each
    request's `time_remaining` is the deadline the server received with it (gRPC
    propagates the client's deadline), and `events` orders the starts and ends.
    With `info` set (output name -> one row), the metadata lists a `model_info`
    signature that answers those outputs, as an export's does (common/contract.py);
    GetModelStatus answers the `statuses` (version, state) in their order.
    """

    def __init__(self) -> None:
        self.requests: list[predict_pb2.PredictRequest] = []
        self.time_remaining: list[float | None] = []
        self.events: list[tuple[str, int]] = []
        self.failures: list[grpc.StatusCode] = []
        self.delay = 0.0
        self.answered: int | None = None
        self.lock = threading.Lock()
        self.in_flight = 0
        self.most_in_flight = 0
        self.info: dict[str, list] | None = None
        self.metadata_requests = 0
        self.statuses: list[tuple[int, int]] = []

    def GetModelMetadata(self, request, context):  # noqa: N802
        self.metadata_requests += 1
        signature = get_model_metadata_pb2.SignatureDefMap()
        serving = signature.signature_def["serving_default"]
        serving.inputs["x"].dtype = types_pb2.DT_FLOAT
        for size in (-1, FEATURES):
            serving.inputs["x"].tensor_shape.dim.add(size=size)
        serving.outputs["score"].dtype = types_pb2.DT_FLOAT
        serving.outputs["score"].tensor_shape.dim.add(size=-1)
        if self.info is not None:
            signature.signature_def["model_info"].inputs["x"].CopyFrom(serving.inputs["x"])
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = request.model_spec.name
        response.model_spec.version.value = 7
        response.metadata["signature_def"].Pack(signature)
        return response

    def Predict(self, request, context):  # noqa: N802
        if request.model_spec.signature_name == "model_info":
            response = predict_pb2.PredictResponse()
            response.model_spec.version.value = 7
            for name, row in self.info.items():
                response.outputs[name].CopyFrom(tf.make_tensor_proto(np.float32([row])))
            return response
        with self.lock:
            self.requests.append(request)
            self.time_remaining.append(context.time_remaining())
            number = len(self.requests) - 1
            failure = self.failures.pop(0) if self.failures else None
        if failure is not None:
            context.abort(failure, f"scripted {failure.name}")
        with self.lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            self.events.append(("start", number))
        if self.answered is not None and number >= self.answered:
            ended = threading.Event()
            context.add_callback(ended.set)
            ended.wait(60)  # a client without a deadline gets its answer after 60 s
        time.sleep(self.delay)
        with self.lock:
            self.in_flight -= 1
            self.events.append(("end", number))
        x = tf.make_ndarray(request.inputs["x"])
        response = predict_pb2.PredictResponse()
        response.model_spec.name = request.model_spec.name
        response.model_spec.version.value = 7
        response.outputs["score"].CopyFrom(tf.make_tensor_proto(x[:, 0]))
        return response

    def GetModelStatus(self, request, context):  # noqa: N802
        response = get_model_status_pb2.GetModelStatusResponse()
        for version, state in self.statuses:
            response.model_version_status.add(version=version, state=state)
        return response


@pytest.fixture
def service():
    service = ScriptedService()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(service, server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(service, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    service.target = f"127.0.0.1:{port}"
    yield service
    server.stop(0)


@pytest.fixture
def x() -> np.ndarray:
    return np.random.default_rng(0).uniform(size=(10_000, FEATURES)).astype("float32")


# ------------------------------------------------------------------ transport


def test_unavailable_calls_are_retried_until_they_succeed(service, x):
    service.failures = [grpc.StatusCode.UNAVAILABLE] * 2
    with MemAEClient(service.target, "m", retries=3) as client:
        np.testing.assert_array_equal(client.score(x[:5]), x[:5, 0])
    assert len(service.requests) == 3


def test_retries_give_up_with_an_unavailable_error(service, x):
    service.failures = [grpc.StatusCode.UNAVAILABLE] * 5
    with MemAEClient(service.target, "m", retries=1) as client, pytest.raises(
        UnavailableError, match="scripted UNAVAILABLE"
    ) as info:
        client.score(x[:5])
    assert info.value.code == grpc.StatusCode.UNAVAILABLE
    assert len(service.requests) == 2


def test_other_errors_are_not_retried(service, x):
    service.failures = [grpc.StatusCode.INVALID_ARGUMENT]
    with MemAEClient(service.target, "m", retries=3) as client, pytest.raises(
        InvalidArgumentError, match="scripted INVALID_ARGUMENT"
    ):
        client.score(x[:5])
    assert len(service.requests) == 1


def test_each_call_has_a_deadline(service, x):
    service.answered = 0  # held until the client's deadline ends it
    with MemAEClient(service.target, "m", timeout=0.3) as client, pytest.raises(
        DeadlineExceededError
    ) as info:
        client.score(x[:5])
    assert info.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
    # The RPC carried the 0.3 s deadline to the server, and was not retried.
    (remaining,) = service.time_remaining
    assert 0 < remaining <= 0.3 * SENT_DEADLINE_ROUNDING


def test_large_batches_are_split_under_the_limit_and_reassembled_in_order(service, x):
    limit = int(0.1 * 2**20)
    with MemAEClient(service.target, "m", max_message_mib=0.1) as client:
        scores = client.score(x)
    np.testing.assert_array_equal(scores, x[:, 0])
    sizes = [tf.make_ndarray(r.inputs["x"]).shape[0] for r in service.requests]
    assert len(sizes) > 1 and sum(sizes) == len(x)
    assert all(r.ByteSize() < limit for r in service.requests)


def test_the_former_max_message_mb_still_sets_the_limit_with_a_warning(service, x):
    with pytest.warns(DeprecationWarning, match="use `max_message_mib`"):
        client = MemAEClient(service.target, "m", max_message_mb=0.1)
    with client:
        np.testing.assert_array_equal(client.score(x), x[:, 0])
    assert len(service.requests) > 1
    assert all(r.ByteSize() < int(0.1 * 2**20) for r in service.requests)
    with pytest.warns(DeprecationWarning), pytest.raises(
        ValueError, match="pass `max_message_mib` only"
    ):
        MemAEClient(service.target, "m", max_message_mib=1, max_message_mb=0.1)


def test_later_chunks_ask_for_the_version_that_answered_the_first(service, x):
    with MemAEClient(service.target, "m", max_message_mib=0.1) as client:
        client.score(x)
    first, *rest = service.requests
    assert not first.model_spec.HasField("version")
    assert rest and all(r.model_spec.version.value == 7 for r in rest)


def test_score_asks_the_server_for_the_score_output_only(service, x):
    with MemAEClient(service.target, "m") as client:
        client.score(x[:5])
    (request,) = service.requests
    assert list(request.output_filter) == ["score"]


def test_run_signature_asks_for_every_output_unless_filtered(service, x):
    with MemAEClient(service.target, "m") as client:
        client.run_signature(x[:5])
        client.run_signature(x[:5], output_filter=["score"])
    assert [list(r.output_filter) for r in service.requests] == [[], ["score"]]


@pytest.mark.parametrize("bad", ["score", [""], [1], [None]])
def test_an_output_filter_must_be_a_list_of_output_names(service, x, bad):
    # A bare string would be read as its letters (TF Serving's output_filter is a
    # repeated string field), so it is refused like an empty or non-string name.
    with MemAEClient(service.target, "m") as client, pytest.raises(
        ValueError, match=r"expected None or a list of output names"
    ):
        client.run_signature(x[:5], output_filter=bad)
    assert service.requests == []


def test_an_output_filter_may_be_any_sequence_of_names(service, x):
    with MemAEClient(service.target, "m") as client:
        outputs = client.run_signature(x[:5], output_filter=("score",))
    np.testing.assert_array_equal(outputs["score"], x[:5, 0])
    assert [list(r.output_filter) for r in service.requests] == [["score"]]


# The defaults client/README.md documents: "timeout (10 s): the deadline of each RPC",
# "retries (3)", "concurrency ... (4 by default)", and floats outside the served
# input range refused ("pass check_range=False" to send them).


def test_each_rpc_gets_ten_seconds_by_default(service, x):
    with MemAEClient(service.target, "m") as client:
        client.score(x[:5])
    # gRPC carries the deadline to the server (its time_remaining), rounded up by at
    # most 1%; the lower bound leaves 5 s for a loaded machine to deliver it.
    (remaining,) = service.time_remaining
    assert 5.0 < remaining <= 10.0 * SENT_DEADLINE_ROUNDING


def test_unavailable_is_retried_three_times_by_default(service, x):
    service.failures = [grpc.StatusCode.UNAVAILABLE] * 10
    with MemAEClient(service.target, "m") as client, pytest.raises(UnavailableError):
        client.score(x[:5])
    assert len(service.requests) == 4  # the first try and 3 retries


def test_four_chunks_are_in_flight_at_once_by_default(service, x):
    service.delay = 0.3
    with MemAEClient(service.target, "m", max_batch_size=10) as client:
        scores = client.score(x[:90])  # 1 alone, then 8 at most 4 at a time
    np.testing.assert_array_equal(scores, x[:90, 0])
    assert service.most_in_flight == 4


def test_floats_outside_the_served_input_range_are_refused_by_default(service, x):
    service.info = {"input_range": [0.0, 1.0], "threshold": 0.5}
    with MemAEClient(service.target, "m") as client, pytest.raises(
        InvalidArgumentError, match=r"input range \[0, 1\]"
    ):
        client.score(x[:5] + 1.5)
    assert service.requests == []
    with MemAEClient(service.target, "m", check_range=False) as client:
        np.testing.assert_array_equal(client.score(x[:5] + 1.5), x[:5, 0] + 1.5)


# ---------------------------------------------------------- metadata and status


def _client_calls(transport: str, target: str, calls: list[tuple], **options) -> list:
    """Runs `calls`, each `(method, *args)`, in turn on one blocking or asyncio client."""
    async def run_async() -> list:
        async with AsyncMemAEClient(target, "m", **options) as client:
            return [await getattr(client, name)(*args) for name, *args in calls]

    if transport == "asyncio":
        return asyncio.run(run_async())
    with MemAEClient(target, "m", **options) as client:
        return [getattr(client, name)(*args) for name, *args in calls]


@pytest.mark.parametrize("transport", ["blocking", "asyncio"])
def test_metadata_names_the_served_version_and_its_signatures(service, transport):
    (metadata,) = _client_calls(transport, service.target, [("metadata",)])
    assert (metadata.name, metadata.version) == ("m", 7)
    serving = metadata.signatures["serving_default"]
    assert serving.inputs["x"] == TensorInfo(np.dtype("float32"), (None, FEATURES))
    assert serving.outputs["score"] == TensorInfo(np.dtype("float32"), (None,))


@pytest.mark.parametrize("transport", ["blocking", "asyncio"])
def test_model_info_is_fetched_once_and_again_by_metadata(service, transport):
    service.info = {"input_range": [-1.0, 1.0], "threshold": 0.25}
    info, again, _ = _client_calls(transport, service.target,
                                   [("model_info",), ("model_info",), ("metadata",)])
    assert (info.version, info.input_range, info.threshold) == (7, (-1.0, 1.0), 0.25)
    assert info.expected_rate is None and info.reference_quantiles is None
    assert again is info
    assert service.metadata_requests == 2  # the first model_info's, then metadata's


@pytest.mark.parametrize("transport", ["blocking", "asyncio"])
def test_model_info_is_none_for_an_export_without_it(service, transport):
    assert _client_calls(transport, service.target, [("model_info",)]) == [None]
    assert service.requests == [] and service.metadata_requests == 1


@pytest.mark.parametrize("transport", ["blocking", "asyncio"])
def test_status_lists_the_versions_in_order(service, transport):
    states = get_model_status_pb2.ModelVersionStatus.State
    service.statuses = [(3, states.LOADING), (2, states.AVAILABLE), (1, states.END)]
    assert _client_calls(transport, service.target, [("status",)]) == [[
        VersionStatus(1, "END", "OK", ""), VersionStatus(2, "AVAILABLE", "OK", ""),
        VersionStatus(3, "LOADING", "OK", "")]]


@pytest.mark.parametrize("transport", ["blocking", "asyncio"])
def test_a_refused_chunk_ends_the_call_and_the_chunks_not_sent_are_dropped(
    service, x, transport
):
    # The second of ten chunks is refused (INVALID_ARGUMENT, not retried): the call
    # raises it and its eight chunks left are dropped, where sending them would only
    # load the server. One of them may have started as the refusal freed its sender.
    # The next call's second chunk goes through the same senders, after anything still
    # queued, so the count after it would include the dropped chunks had they been kept.
    service.failures = [None, grpc.StatusCode.INVALID_ARGUMENT]

    def calls(client):
        with pytest.raises(InvalidArgumentError, match="scripted INVALID_ARGUMENT"):
            client.score(x[:100])
        np.testing.assert_array_equal(client.score(x[:20]), x[:20, 0])

    async def calls_async(client):
        with pytest.raises(InvalidArgumentError, match="scripted INVALID_ARGUMENT"):
            await client.score(x[:100])
        np.testing.assert_array_equal(await client.score(x[:20]), x[:20, 0])

    options = {"max_batch_size": 10, "concurrency": 1}
    if transport == "asyncio":
        async def run() -> None:
            async with AsyncMemAEClient(service.target, "m", **options) as client:
                await calls_async(client)

        asyncio.run(run())
    else:
        with MemAEClient(service.target, "m", **options) as client:
            calls(client)
    assert len(service.requests) in (4, 5)


@pytest.mark.parametrize("rows", [5, 100])
def test_closing_the_client_ends_a_call_in_flight_with_a_cancelled_error(service, x, rows):
    # close() does not wait for the chunk held by the server: it cancels the chunks not
    # sent yet and closes the channel, which ends the RPC in flight with gRPC's
    # CANCELLED "Channel closed!" (grpc/_channel.py Channel.close). A call of one chunk
    # (5 rows) and one of ten (100 rows, the second held) end alike, as a
    # MemAEClientError, as every failure; nothing more reaches the server.
    service.answered = 0 if rows == 5 else 1
    client = MemAEClient(service.target, "m", timeout=30.0, max_batch_size=10,
                         concurrency=1)
    failure = []

    def score() -> None:
        try:
            client.score(x[:rows])
        except Exception as error:  # the test checks its type
            failure.append(error)

    caller = threading.Thread(target=score)
    caller.start()
    while len(service.events) < 2 * service.answered + 1:  # the held chunk started
        time.sleep(0.01)
    client.close()
    caller.join()
    (error,) = failure
    assert isinstance(error, MemAEClientError), repr(error)
    assert error.code == grpc.StatusCode.CANCELLED
    assert len(service.requests) == service.answered + 1


@pytest.mark.parametrize("transport", ["blocking", "asyncio"])
def test_the_former_predict_runs_the_signature_with_a_warning(service, x, transport):
    # The clients' predict was the signature call; renamed so that `predict` does not mean
    # the outputs dict here and MemAE.predict's 0/1 labels on the detector.
    async def predict_async() -> dict:
        async with AsyncMemAEClient(service.target, "m") as client:
            return await client.predict(x[:5], output_filter=["score"])

    def predict() -> dict:
        with MemAEClient(service.target, "m") as client:
            return client.predict(x[:5], output_filter=["score"])

    with pytest.warns(DeprecationWarning, match="renamed run_signature"):
        outputs = asyncio.run(predict_async()) if transport == "asyncio" else predict()
    np.testing.assert_array_equal(outputs["score"], x[:5, 0])
    assert [list(r.output_filter) for r in service.requests] == [["score"]]


def _rows_sent(service) -> list[int]:
    return [tf.make_ndarray(r.inputs["x"]).shape[0] for r in service.requests]


def test_batches_are_split_into_max_batch_size_rows(service, x):
    with MemAEClient(service.target, "m", max_batch_size=30) as client:
        np.testing.assert_array_equal(client.score(x[:100]), x[:100, 0])
    # The first chunk goes alone (it pins the version); the rest go concurrently, so
    # they may reach the server in any order.
    first, *rest = _rows_sent(service)
    assert first == 30 and sorted(rest) == [10, 30, 30]


def test_the_default_row_limit_is_the_shipped_configmaps_max_batch_size(service, x):
    configmap = (pathlib.Path(__file__).resolve().parents[1] / "serving" / "k8s"
                 / "configmap.yaml")
    batching = yaml.safe_load(configmap.read_text())["data"]["batching_parameters.txt"]
    with MemAEClient(service.target, "m") as client:
        client.score(x[:200])
    expected = int(re.search(r"max_batch_size \{ value: (\d+) \}", batching).group(1))
    assert max(_rows_sent(service)) == expected and sum(_rows_sent(service)) == 200


def test_chunks_after_the_first_run_concurrently_up_to_the_limit_and_keep_their_order(
    service, x
):
    service.delay = 0.2
    with MemAEClient(service.target, "m", max_batch_size=10, concurrency=3) as client:
        scores = client.score(x[:70])  # 1 alone, then 6 at most 3 at a time
    np.testing.assert_array_equal(scores, x[:70, 0])
    assert service.events[:2] == [("start", 0), ("end", 0)]  # the first chunk alone
    assert service.most_in_flight == 3


def test_the_async_client_bounds_its_concurrent_chunks_too(service, x):
    service.delay = 0.2

    async def score() -> np.ndarray:
        async with AsyncMemAEClient(service.target, "m", max_batch_size=10,
                                    concurrency=2) as client:
            return await client.score(x[:50])

    np.testing.assert_array_equal(asyncio.run(score()), x[:50, 0])
    assert service.most_in_flight == 2


@pytest.mark.parametrize("transport", ["blocking", "asyncio"])
def test_a_deadline_that_runs_out_across_chunks_raises_the_deadline_error(
    service, x, transport
):
    # The first chunk is answered, the second held: only the whole call's deadline,
    # never the per-RPC timeout of 60 s, can end it.
    service.answered = 1
    service.delay = 0.05  # at least this much of the deadline is spent on the first
    options = {"max_batch_size": 10, "concurrency": 1, "timeout": 60.0}

    async def score_async() -> None:
        async with AsyncMemAEClient(service.target, "m", **options) as client:
            await client.score(x[:100], deadline=0.5)

    def score() -> None:
        with MemAEClient(service.target, "m", **options) as client:
            client.score(x[:100], deadline=0.5)

    with pytest.raises(DeadlineExceededError, match=r"deadline of 0\.5 s ran out") as info:
        asyncio.run(score_async()) if transport == "asyncio" else score()
    assert info.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
    # The second RPC's timeout is what the first left of the 0.5 s; nothing came after it.
    first, second = service.time_remaining
    assert first <= 0.5 * SENT_DEADLINE_ROUNDING
    assert 0 < second <= (first - 0.05) * SENT_DEADLINE_ROUNDING


@pytest.mark.parametrize("transport", ["blocking", "asyncio"])
def test_a_call_whose_version_is_unloaded_midway_starts_again(service, x, transport):
    # The second request, pinned to the version the first named, is answered NOT_FOUND
    # (as TF Serving answers once a rollout unloaded it): the client sends the call
    # again from its first request, and the caller gets every row's score.
    service.failures = [None, grpc.StatusCode.NOT_FOUND]
    options = {"max_batch_size": 10, "concurrency": 1}

    async def score_async() -> np.ndarray:
        async with AsyncMemAEClient(service.target, "m", **options) as client:
            return await client.score(x[:30])

    def score() -> np.ndarray:
        with MemAEClient(service.target, "m", **options) as client:
            return client.score(x[:30])

    scores = asyncio.run(score_async()) if transport == "asyncio" else score()
    np.testing.assert_array_equal(scores, x[:30, 0])
    pinned = [request.model_spec.HasField("version") for request in service.requests]
    # The first request, a pinned follower (refused), then the call again: first, two
    # followers. Either client may have started the other follower of the first try as
    # the refused one returned; the blocking client's can reach the server after the
    # new first request, so only the counts around that request are fixed.
    assert pinned[:2] == [False, True] and pinned.count(False) == 2
    assert pinned[pinned.index(False, 1) + 1:].count(True) in (2, 3)
    assert len(pinned) in (5, 6)


def test_no_request_is_sent_once_the_whole_call_deadline_has_run_out(service, x):
    # 1 µs runs out while the rows are encoded: the deadline is checked before each chunk.
    with MemAEClient(service.target, "m", max_batch_size=10) as client, pytest.raises(
        DeadlineExceededError, match=r"deadline of 1e-06 s ran out;"
    ) as info:
        client.score(x[:100], deadline=1e-6)
    assert info.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert service.requests == []


def test_retries_stop_at_the_whole_call_deadline(service, x):
    service.failures = [grpc.StatusCode.UNAVAILABLE] * 50
    with MemAEClient(service.target, "m", retries=20) as client, pytest.raises(
        DeadlineExceededError, match=r"deadline of 2 s ran out"
    ):
        # The deadline ends the retries, during a backoff wait ("before retrying
        # UNAVAILABLE: ...") or just after one.
        client.score(x[:5], deadline=2.0)
    # All 20 retries would wait at least 38 s of backoff (0.1 s doubling to 5 s,
    # jitter ≥ 0.5), and 2 s holds at least two attempts even on a loaded machine.
    assert 2 <= len(service.requests) < 21  # retried, but not all 20 retries


def test_uint8_inputs_are_refused_by_exports_without_model_info(service):
    # The scripted server's signatures predate model_info: the input range is unknown.
    with MemAEClient(service.target, "m") as client, pytest.raises(
        InvalidArgumentError, match="no 'model_info' signature"
    ):
        client.score(np.zeros((2, FEATURES), np.uint8))
    assert service.requests == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("max_batch_size { value: 32 }\nbatch_timeout_micros { value: 1000 }\n", 32),
        # Every field of TF Serving's BatchingParameters parses.
        ("max_batch_size { value: 128 } batch_timeout_micros { value: 0 } "
         "max_enqueued_batches { value: 8 } num_batch_threads { value: 2 } "
         'thread_pool_name { value: "p" } allowed_batch_sizes: 64 allowed_batch_sizes: 128 '
         "pad_variable_length_inputs: true enable_large_batch_splitting { value: true } "
         "max_execution_batch_size { value: 64 }", 128),
        # Unset: TF Serving's QueueOptions::input_batch_size_limit.
        ("batch_timeout_micros { value: 1000 }", 1000),
    ],
)
def test_max_batch_size_is_read_from_tf_servings_batching_file(tmp_path, text, expected):
    path = tmp_path / "batching_parameters.txt"
    path.write_text(text)
    assert read_max_batch_size(path) == expected


def test_a_batching_file_that_is_not_batching_parameters_is_refused(tmp_path):
    path = tmp_path / "batching_parameters.txt"
    path.write_text("max_batch_size: 64\n")
    with pytest.raises(ValueError, match="BatchingParameters in text format"):
        read_max_batch_size(path)


def test_a_batching_file_limit_of_0_is_refused_and_a_negative_one_is_no_limit(tmp_path):
    # TensorFlow's shared_batch_scheduler.h AddQueue refuses input_batch_size_limit 0
    # ("must be positive"), so a limit of 0 starts no server and 1 row is the smallest that
    # does; bundle_factory_util.h GetQueueOptions puts the Int64Value into that size_t, so
    # TF Serving serves a negative one as 2**64 + value rows: no limit for the client.
    path = tmp_path / "batching_parameters.txt"
    path.write_text("max_batch_size { value: 0 }")
    with pytest.raises(ValueError, match=r"max_batch_size other than 0 .* max_batch_size=0$"):
        read_max_batch_size(path)
    path.write_text("max_batch_size { value: 1 }")
    assert read_max_batch_size(path) == 1
    path.write_text("max_batch_size { value: -3 }")
    assert read_max_batch_size(path) is None


def test_a_sample_larger_than_the_limit_is_rejected_before_sending(service):
    with MemAEClient(service.target, "m", max_message_mib=0.01) as client, pytest.raises(
        ValueError, match="raise `max_message_mib`"
    ):
        client.score(np.zeros((2, 2**20), np.float32))
    assert service.requests == []


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"target": ""}, "expected 'host:port'"),
        ({"model_name": ""}, "expected a non-empty string"),
        ({"version": 0}, "positive integer"),
        ({"signature": ""}, "expected a non-empty string"),
        ({"timeout": 0}, "positive number of seconds"),
        ({"max_message_mib": 0}, r"number in \(0, 2048\)"),
        ({"retries": -1}, "non-negative integer"),
        ({"max_batch_size": 0}, "positive integer"),
        ({"concurrency": 0}, "positive integer"),
        ({"deadline": 0}, "positive number of seconds for the whole call"),
        ({"version_label": ""}, "'stable' or 'canary'"),
    ],
)
def test_invalid_arguments_say_what_was_expected(kwargs, message):
    arguments = {"target": "localhost:8500", "model_name": "m", **kwargs}
    with pytest.raises(ValueError, match=message):
        MemAEClient(**arguments)


def test_credentials_must_be_channel_credentials():
    with pytest.raises(TypeError, match=r"grpc\.ChannelCredentials"):
        MemAEClient("localhost:8500", "m", credentials="cert.pem")


@pytest.mark.parametrize("bad", [1.0, [["a", "b"]]])
def test_inputs_must_be_a_numeric_batch(bad):
    with MemAEClient("localhost:8500", "m") as client, pytest.raises(ValueError,
                                                                      match="Expected `x`"):
        client.score(bad)


# ----------------------------------------------------------------- isolation


@pytest.mark.slow
def test_client_and_server_import_no_training_code():
    script = textwrap.dedent(
        """
        import importlib.util, sys, types

        # A bare parent package, so that only the imports of the subpackages count.
        spec = importlib.util.find_spec("memae_tf")
        package = types.ModuleType("memae_tf")
        package.__path__ = list(spec.submodule_search_locations)
        sys.modules["memae_tf"] = package
        import memae_tf.client
        client = sorted(m for m in sys.modules if m.startswith("memae_tf."))
        import memae_tf.serving.server
        serving = sorted(m for m in sys.modules if m.startswith("memae_tf."))
        # memae_tf.common: the dependency-free serving contract and argument checks.
        assert all(m.startswith(("memae_tf.client", "memae_tf.common")) for m in client), client
        allowed = ("memae_tf.client", "memae_tf.common", "memae_tf.serving", "memae_tf._lazy")
        assert all(m.startswith(allowed) for m in serving), serving
        """
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    subprocess.run([sys.executable, "-c", script], check=True, env=env, timeout=300)
