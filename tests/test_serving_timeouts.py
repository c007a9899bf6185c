"""Request timeouts as TF Serving applies them: in the batching queue and on the session run.

Each test names the TF Serving / TensorFlow source it follows:

- tensorflow_serving/batching/batching_session.cc `ProcessBatch`: a task's
  deadline is its enqueue time plus `RunOptions.timeout_in_ms` (<= 0: none);
  a batch whose tasks all passed their deadlines does not run and each gets
  RESOURCE_EXHAUSTED "Run() timeout exceeded while waiting in batching
  queue"; otherwise the batch runs with the latest deadline as its timeout;
- TensorFlow's tensorflow/core/common_runtime/direct_session.cc
  `WaitForNotification`: a run past its timeout is DEADLINE_EXCEEDED "Timed
  out waiting for notification";
- tensorflow_serving/model_servers/main.cc and server.h:
  `--rest_api_timeout_in_ms`, default 30000; http_rest_api_handler.cc: it is
  the REST predict's `RunOptions.timeout_in_ms` when positive; http_server.cc
  `ToHTTPStatusCode`: RESOURCE_EXHAUSTED → 429, DEADLINE_EXCEEDED → 504;
- tensorflow_serving/model_servers/prediction_service_impl.cc and
  prediction_service_util.cc `DeadlineToTimeoutMillis`: a gRPC Predict's
  timeout is its deadline's time left; util.cc `RecordModelRequestCount`
  counts the request by its status.

The signatures here are numpy functions whose answer is known; the slow one
sleeps, so that a run's length is set by the test and not by the machine.
Every wait in these tests is several times longer than the timeout it must
exceed (or shorter than the one it must not), so that a loaded machine only
makes them slower.
"""

import time

import grpc
import numpy as np
import pytest
import tensorflow as tf
from serving_helpers import (
    FEATURES,
    free_port,
    random_rows,
    reference_outputs,
    rest_call,
    small_model,
    submit_concurrently,
    wait_for,
)
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from memae_tf.export import export_saved_model
from memae_tf.serving import deadlines, parse_flags, start_model_server
from memae_tf.serving.deadlines import (
    QUEUE_TIMEOUT_MESSAGE,
    RUN_TIMEOUT_MESSAGE,
    run_with_timeout,
    timeout_in_ms,
)
from memae_tf.serving.errors import ServingError
from memae_tf.serving.metrics import ServingMetrics, parse_exposition

MODEL = "kdd"


class Signature:
    """y = 2x + 1 per row; records each call's batch size; sleeps `seconds` per call."""

    def __init__(self, seconds: float = 0.0) -> None:
        self.seconds = seconds
        self.calls: list[int] = []

    def __call__(self, inputs):
        self.calls.append(len(inputs["x"]))
        time.sleep(self.seconds)
        return {"y": inputs["x"] * 2.0 + 1.0}


def test_a_request_that_waited_past_its_timeout_in_the_queue_is_refused_without_a_run(
        make_scheduler):
    # batching_session.cc ProcessBatch: all tasks past their deadline → RESOURCE_EXHAUSTED,
    # the wrapped session is not run (no wrapped_run_count, no processed_batch_size), and
    # the queuing latency is still recorded.
    metrics = ServingMetrics()
    scheduler = make_scheduler(metrics, max_batch_size=64, batch_timeout_micros=1_000_000,
                               num_batch_threads=1)
    signature = Signature()
    with pytest.raises(ServingError) as refused:
        scheduler.submit("m", signature, {"x": random_rows(2, 0)}, 100)
    assert (refused.value.code, refused.value.message) == (
        grpc.StatusCode.RESOURCE_EXHAUSTED, QUEUE_TIMEOUT_MESSAGE)
    assert signature.calls == []
    assert metrics.wrapped_run_count.value() == 0
    assert metrics.processed_batch_size.cumulative_counts()[-1] == 0
    assert metrics.queuing_latency.cumulative_counts("")[-1] == 1


def test_a_request_within_its_timeout_is_served(make_scheduler):
    # batching_session.cc: the deadline is enqueue time + timeout; a batch taken before it runs.
    scheduler = make_scheduler(max_batch_size=64, batch_timeout_micros=100_000,
                               num_batch_threads=1)
    x = random_rows(3, 1)
    answer = scheduler.submit("m", Signature(), {"x": x}, 5_000)
    np.testing.assert_allclose(answer["y"], x * 2.0 + 1.0)


def test_a_zero_timeout_means_none(make_scheduler):
    # batching_session.cc: "If the caller doesn't populate RunOptions, the timeout is 0 by
    # default. Interpret that as 'no timeout'"; a negative one likewise (<= 0).
    scheduler = make_scheduler(max_batch_size=64, batch_timeout_micros=300_000,
                               num_batch_threads=1)
    for timeout in (0, -5):
        x = random_rows(2, 2)
        np.testing.assert_allclose(scheduler.submit("m", Signature(), {"x": x}, timeout)["y"],
                                   x * 2.0 + 1.0)


def test_a_batch_runs_for_all_its_requests_when_one_is_still_within_its_timeout(
        make_scheduler):
    # batching_session.cc ProcessBatch: only when *all* tasks exceeded their timeout is the
    # batch refused; an expired task in a live batch is served with the others.
    scheduler = make_scheduler(max_batch_size=64, batch_timeout_micros=600_000,
                               num_batch_threads=1)
    signature = Signature()
    expired, alive = random_rows(2, 3), random_rows(3, 4)
    answers = submit_concurrently(scheduler, signature, [expired, alive], "m", [100, 20_000])
    assert signature.calls == [5]
    np.testing.assert_allclose(answers[0]["y"], expired * 2.0 + 1.0)
    np.testing.assert_allclose(answers[1]["y"], alive * 2.0 + 1.0)


def test_every_request_of_an_expired_batch_gets_the_queue_timeout(make_scheduler):
    # batching_session.cc ProcessBatch: the batch's status goes to each of its tasks.
    scheduler = make_scheduler(max_batch_size=64, batch_timeout_micros=800_000,
                               num_batch_threads=1)
    signature = Signature()
    answers = submit_concurrently(scheduler, signature, [random_rows(1, 5), random_rows(2, 6)], "m",
                                  [100, 150])
    assert signature.calls == []
    assert [(a.code, a.message) for a in answers] == [
        (grpc.StatusCode.RESOURCE_EXHAUSTED, QUEUE_TIMEOUT_MESSAGE)] * 2


def test_a_run_longer_than_its_timeout_is_deadline_exceeded(make_scheduler):
    # batching_session.cc passes the time left to the wrapped session's Run();
    # direct_session.cc WaitForNotification: DEADLINE_EXCEEDED past it.
    scheduler = make_scheduler(max_batch_size=64, num_batch_threads=1)
    signature = Signature(seconds=1.2)
    with pytest.raises(ServingError) as failed:
        scheduler.submit("m", signature, {"x": random_rows(2, 7)}, 400)
    assert (failed.value.code, failed.value.message) == (
        grpc.StatusCode.DEADLINE_EXCEEDED, RUN_TIMEOUT_MESSAGE)
    assert signature.calls == [2]


def test_the_batch_run_is_bounded_by_the_latest_deadline_of_its_requests(make_scheduler):
    # batching_session.cc ProcessBatch: "find the latest task deadline which we'll use for
    # the overall batch": a run that outlasts the short timeout but not the long one serves
    # both requests, the short one included.
    scheduler = make_scheduler(max_batch_size=64, batch_timeout_micros=100_000,
                               num_batch_threads=1)
    signature = Signature(seconds=0.6)
    short, long = random_rows(1, 8), random_rows(2, 9)
    answers = submit_concurrently(scheduler, signature, [short, long], "m", [300, 20_000])
    assert signature.calls == [3]
    np.testing.assert_allclose(answers[0]["y"], short * 2.0 + 1.0)
    np.testing.assert_allclose(answers[1]["y"], long * 2.0 + 1.0)


def test_a_split_request_shares_its_timeout_across_its_pieces(make_scheduler):
    # batching_session.cc SplitInputTask copies enqueue_time_micros and run_options to each
    # piece, and a split request fails when one of its pieces fails: 6 rows in pieces of
    # 4 and 2; the full piece runs at once, the 2 rows left wait 1 s for the batch
    # timeout, past the request's 300 ms.
    scheduler = make_scheduler(max_batch_size=8, batch_timeout_micros=1_000_000,
                               enable_large_batch_splitting=True, max_execution_batch_size=4,
                               num_batch_threads=1)
    signature = Signature()
    with pytest.raises(ServingError) as refused:
        scheduler.submit("m", signature, {"x": random_rows(6, 10)}, 300)
    assert (refused.value.code, refused.value.message) == (
        grpc.StatusCode.RESOURCE_EXHAUSTED, QUEUE_TIMEOUT_MESSAGE)
    assert signature.calls == [4]


def test_grpc_time_left_becomes_whole_milliseconds():
    # prediction_service_util.cc DeadlineToTimeoutMillis (gpr_time_to_millis truncates);
    # no deadline is no timeout.
    assert timeout_in_ms(1.2349) == 1234
    assert timeout_in_ms(0.0004) == 0
    assert timeout_in_ms(None) == 0


class _SteppedClock:
    """A monotonic clock that a run moves forward by exactly the seconds it takes."""

    def __init__(self) -> None:
        self.now = 100.0

    def monotonic(self) -> float:
        return self.now

    def run_taking(self, seconds: float):
        def run(inputs):
            self.now += seconds
            return {"y": inputs["x"]}
        return run


@pytest.mark.parametrize(("timeout", "seconds", "exceeded"), [
    (1000, 1.0, False),  # exactly the timeout: not longer than it
    (1000, 1.001, True),
    (1, 0.002, True),  # the shortest timeout is still one
    (0, 1e6, False),  # 0 or less: no timeout
    (-5, 1e6, False),
])
def test_a_run_longer_than_its_timeout_in_ms_is_deadline_exceeded(monkeypatch, timeout,
                                                                  seconds, exceeded):
    # direct_session.cc: RunOptions.timeout_in_ms > 0 bounds the run's wait
    # (WaitForNotification, "Timed out waiting for notification"); <= 0 is no timeout.
    clock = _SteppedClock()
    monkeypatch.setattr(deadlines, "time", clock)
    run = clock.run_taking(seconds)
    if exceeded:
        with pytest.raises(ServingError) as refused:
            run_with_timeout(run, {"x": 1}, timeout)
        assert (refused.value.code, refused.value.message) == (
            grpc.StatusCode.DEADLINE_EXCEEDED, RUN_TIMEOUT_MESSAGE)
    else:
        assert run_with_timeout(run, {"x": 1}, timeout) == {"y": 1}


def test_rest_timeout_flag_defaults_to_tf_servings_30_seconds():
    # main.cc "rest_api_timeout_in_ms" → server.h http_timeout_in_ms = 30000.
    assert parse_flags([]).rest_api_timeout_in_ms == 30000
    assert parse_flags(["--rest_api_timeout_in_ms=250"]).rest_api_timeout_in_ms == 250
    with pytest.raises(ValueError, match="rest_api_timeout_in_ms"):
        parse_flags(["--rest_api_timeout_in_ms=soon"])


# End to end: `memae model-server`'s flags, requests over loopback with
# tensorflow-serving-api's stub and plain HTTP.


@pytest.fixture(scope="module")
def model():
    return small_model(23)


@pytest.fixture(scope="module")
def base_path(tmp_path_factory, model):
    base = tmp_path_factory.mktemp("timeouts") / MODEL
    export_saved_model(model, base, threshold=0.05)
    return base


def _server(base_path, *flags):
    return start_model_server(parse_flags([
        f"--port={free_port()}", f"--rest_api_port={free_port()}",
        f"--model_name={MODEL}", f"--model_base_path={base_path}", *flags]), host="127.0.0.1")


def _batching_flags(tmp_path, batch_timeout_micros):
    parameters = tmp_path / "batching_parameters.txt"
    parameters.write_text(f"max_batch_size {{ value: 64 }}\n"
                          f"batch_timeout_micros {{ value: {batch_timeout_micros} }}\n"
                          "num_batch_threads { value: 1 }\n")
    return ["--enable_batching", f"--batching_parameters_file={parameters}"]


def _features(count: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 1, size=(count, FEATURES)).astype("float32")


def _request_counts(server) -> dict:
    page = parse_exposition(server.metrics.render())
    return {dict(labels)["status"]: value for labels, value in
            page.get(":tensorflow:serving:request_count", {}).items()
            if dict(labels)["model_name"] == MODEL}


def test_rest_request_past_the_timeout_in_the_batching_queue_gets_429(base_path, tmp_path):
    # main.cc --rest_api_timeout_in_ms → http_rest_api_handler.cc RunOptions → batching_session.cc
    # RESOURCE_EXHAUSTED → http_server.cc ToHTTPStatusCode 429 with {"error": message}.
    flags = ["--rest_api_timeout_in_ms=200", *_batching_flags(tmp_path, 1_500_000)]
    with _server(base_path, *flags) as server:
        status, answer = rest_call(server.rest_port, "POST", f"/v1/models/{MODEL}:predict",
                                   {"instances": _features(2, 0).tolist()})
        assert (status, answer) == (429, {"error": QUEUE_TIMEOUT_MESSAGE})
        assert _request_counts(server).get("RESOURCE_EXHAUSTED") == 1


def test_rest_request_within_the_timeout_is_served_with_batching(base_path, tmp_path, model):
    # The same batch wait with the default 30000 ms (server.h) is well within it.
    with _server(base_path, *_batching_flags(tmp_path, 300_000)) as server:
        x = _features(3, 1)
        status, answer = rest_call(server.rest_port, "POST", f"/v1/models/{MODEL}:predict",
                                   {"instances": x.tolist()})
    assert status == 200
    np.testing.assert_allclose([row["score"] for row in answer["predictions"]],
                               reference_outputs(model, x)["score"], rtol=1e-5)


def test_rest_run_longer_than_the_timeout_gets_504(base_path, monkeypatch):
    # Without batching the timeout bounds the session run: direct_session.cc
    # DEADLINE_EXCEEDED "Timed out waiting for notification" → http_server.cc 504.
    # The signature is made slower than the 100 ms timeout by a 0.5 s wait before it.
    from memae_tf.serving.servable import Servable

    run = Servable.run

    def slow_run(self, signature_name, inputs):
        time.sleep(0.5)
        return run(self, signature_name, inputs)

    with _server(base_path, "--rest_api_timeout_in_ms=100") as server:
        monkeypatch.setattr(Servable, "run", slow_run)
        status, answer = rest_call(server.rest_port, "POST", f"/v1/models/{MODEL}:predict",
                                   {"instances": _features(2, 2).tolist()})
        assert (status, answer) == (504, {"error": RUN_TIMEOUT_MESSAGE})
        assert _request_counts(server).get("DEADLINE_EXCEEDED") == 1


def test_grpc_deadline_shorter_than_the_batch_wait_is_refused_by_the_server(base_path,
                                                                            tmp_path):
    # prediction_service_impl.cc: the deadline's time left is the run timeout; the lone
    # request waits 1.5 s for its batch, past its 0.3 s, so batching_session.cc refuses it
    # without running the signature. The client has already given up with gRPC's own
    # DEADLINE_EXCEEDED; the server's status shows in request_count (util.cc).
    with _server(base_path, *_batching_flags(tmp_path, 1_500_000)) as server, \
            grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        request = predict_pb2.PredictRequest()
        request.model_spec.name = MODEL
        request.inputs["x"].CopyFrom(tf.make_tensor_proto(_features(2, 3)))
        runs_before = server.metrics.wrapped_run_count.value()
        with pytest.raises(grpc.RpcError) as failed:
            stub.Predict(request, timeout=0.3)
        assert failed.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        wait_for(lambda: "RESOURCE_EXHAUSTED" in _request_counts(server), timeout=30)
        assert _request_counts(server).get("OK", 0) == 0
        assert server.metrics.wrapped_run_count.value() == runs_before
        # A call with time to spare on the same server is served.
        response = stub.Predict(request, timeout=30)
        assert tf.make_ndarray(response.outputs["score"]).shape == (2,)
