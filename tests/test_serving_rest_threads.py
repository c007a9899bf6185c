"""`--rest_api_num_threads`: the REST requests handled at once, as TF Serving sizes and uses it.

Each test names the TF Serving / TensorFlow source it follows:

- tensorflow_serving/model_servers/main.cc declares `--rest_api_num_threads`
  ("Number of threads for HTTP/REST API processing"); server.h defaults it to
  `4.0 * port::NumSchedulableCPUs()`, which on Linux counts the CPUs of the
  process's affinity mask (tsl's platform/default/port.cc, `sched_getaffinity`);
- server.cc `Server::BuildAndStart` builds the REST server only when
  `--rest_api_port` is not 0, with http_server.cc `CreateAndStartHttpServer`
  giving its requests a `ThreadPoolExecutor` of that many threads; TensorFlow's
  `thread::ThreadPool` aborts the process on fewer than one
  (tensorflow/core/platform/threadpool.cc `CHECK_GE(num_threads, 1)`);
- a request that finds every thread busy waits in the pool's queue (it is not
  refused), and http_rest_api_handler.cc sets its `RunOptions.timeout_in_ms`
  from `--rest_api_timeout_in_ms` only when a thread runs it;
- util/net_http/server/internal/evhttp_server.cc schedules a request's handler
  on the pool only once libevent has read the request whole.

The model's run is held at a gate by the test, so that which requests run at
once is set by the test and not by the machine's speed.
"""

import http.client
import json
import os
import subprocess
import sys
import threading
import time

import grpc
import numpy as np
import pytest
from serving_helpers import (
    FEATURES,
    exported_small_model,
    free_port,
    random_rows,
    reference_outputs,
    rest_call,
    wait_for,
)

from memae_tf.serving import parse_flags, start_model_server
from memae_tf.serving.deadlines import RUN_TIMEOUT_MESSAGE
from memae_tf.serving.errors import ServingError
from memae_tf.serving.servable import Servable

MODEL = "kdd"


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs Linux CPU affinity")
def test_the_default_is_four_threads_per_cpu_of_the_affinity_mask():
    # server.h: 4.0 * port::NumSchedulableCPUs(), the CPU_COUNT of sched_getaffinity.
    # The child process may run on one CPU only: 4 threads, whatever the machine has.
    code = ("import os\n"
            "os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})\n"
            "from memae_tf.serving.flags import parse_flags\n"
            "print(parse_flags([]).rest_api_num_threads)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=True)
    assert done.stdout.split() == ["4"]
    assert parse_flags([]).rest_api_num_threads == 4 * len(os.sched_getaffinity(0))


def test_the_flag_takes_an_integer_as_tensorflows_flag_parser_does():
    # main.cc: tensorflow::Flag("rest_api_num_threads", int32).
    assert parse_flags(["--rest_api_num_threads=3"]).rest_api_num_threads == 3
    with pytest.raises(ValueError,
                       match=r"^Couldn't interpret value many for flag rest_api_num_threads\."):
        parse_flags(["--rest_api_num_threads=many"])


@pytest.mark.parametrize("threads", [0, -2])
def test_a_rest_port_with_fewer_than_one_thread_is_refused_where_tf_serving_aborts(threads):
    # threadpool.cc CHECK_GE(num_threads, 1) fails when server.cc builds the REST server.
    flags = ["--model_base_path=/m/a", f"--rest_api_port={free_port()}",
             f"--rest_api_num_threads={threads}"]
    with pytest.raises(ServingError) as info:
        start_model_server(parse_flags(flags), host="127.0.0.1")
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.message.startswith(f"Check failed: num_threads >= 1 ({threads} vs. 1)")
    assert f"Received: --rest_api_num_threads={threads}" in info.value.message


# End to end: `memae model-server`'s flags, REST requests over loopback.


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    return exported_small_model(tmp_path_factory.mktemp("rest_threads"), 31, MODEL)


def _rows(count: int, seed: int) -> np.ndarray:
    return random_rows(count, seed, FEATURES).astype("float32")


def _server(base_path, *flags):
    return start_model_server(parse_flags([
        f"--port={free_port()}", f"--model_name={MODEL}", f"--model_base_path={base_path}",
        "--file_system_poll_wait_seconds=0", *flags]), host="127.0.0.1")


class GatedRuns:
    """Replaces `Servable.run`: each run counts itself in, then waits for `release()`.

    Installed once the server has started, as its warm-up runs the model too.
    """

    def __init__(self, monkeypatch) -> None:
        self.entered = 0
        self.running = 0
        self.most_at_once = 0
        self._lock = threading.Lock()
        self._gate = threading.Semaphore(0)
        run = Servable.run

        def gated_run(servable, signature_name, inputs):
            with self._lock:
                self.entered += 1
                self.running += 1
                self.most_at_once = max(self.most_at_once, self.running)
            try:
                if not self._gate.acquire(timeout=60):
                    raise AssertionError("the test never released this run")
                return run(servable, signature_name, inputs)
            finally:
                with self._lock:
                    self.running -= 1

        monkeypatch.setattr(Servable, "run", gated_run)

    def release(self, count: int = 1) -> None:
        self._gate.release(count)


def _predict_in_background(port: int, rows: list[np.ndarray]) -> tuple[list, list]:
    answers: list = [None] * len(rows)

    def call(index: int) -> None:
        answers[index] = rest_call(port, "POST", f"/v1/models/{MODEL}:predict",
                                   {"instances": rows[index].tolist()})

    threads = [threading.Thread(target=call, args=(index,)) for index in range(len(rows))]
    for thread in threads:
        thread.start()
    return threads, answers


@pytest.mark.parametrize("threads", [1, 2])
def test_at_most_rest_api_num_threads_requests_run_at_once_and_the_rest_wait(
        exported, monkeypatch, threads):
    model, base_path = exported
    # http_server.cc: a ThreadPoolExecutor of --rest_api_num_threads threads runs the
    # requests; one more request than threads waits until a thread is free, then is served.
    rows = [_rows(2, seed) for seed in range(threads + 1)]
    with _server(base_path, f"--rest_api_port={free_port()}",
                 f"--rest_api_num_threads={threads}") as server:
        runs = GatedRuns(monkeypatch)
        callers, answers = _predict_in_background(server.rest_port, rows)
        wait_for(lambda: runs.entered == threads, timeout=60)
        time.sleep(1.0)  # ample time for a server without the limit to start the last one
        assert (runs.entered, runs.running) == (threads, threads)
        runs.release()  # one thread frees up: the waiting request takes it
        wait_for(lambda: runs.entered == threads + 1, timeout=60)
        runs.release(threads)
        for caller in callers:
            caller.join(timeout=60)
    assert runs.most_at_once == threads
    for x, (status, answer) in zip(rows, answers, strict=True):
        assert status == 200, answer
        np.testing.assert_allclose([row["score"] for row in answer["predictions"]],
                                   reference_outputs(model, x)["score"], rtol=1e-5)


def test_time_spent_waiting_for_a_rest_thread_does_not_count_against_the_timeout(
        exported, monkeypatch):
    model, base_path = exported
    # http_rest_api_handler.cc sets RunOptions.timeout_in_ms when a pool thread runs the
    # request. The first request's run is held about 1.5 s, five times the 300 ms timeout:
    # direct_session.cc's DEADLINE_EXCEEDED, 504. The second waits as long for the only
    # thread, then runs at once: within its timeout, it is served.
    first, second = _rows(2, 10), _rows(3, 11)
    with _server(base_path, f"--rest_api_port={free_port()}", "--rest_api_num_threads=1",
                 "--rest_api_timeout_in_ms=300") as server:
        runs = GatedRuns(monkeypatch)
        callers, answers = _predict_in_background(server.rest_port, [first])
        wait_for(lambda: runs.entered == 1, timeout=60)
        more, late = _predict_in_background(server.rest_port, [second])
        time.sleep(1.5)
        assert runs.entered == 1  # the second request is still waiting for the thread
        runs.release(2)
        for caller in callers + more:
            caller.join(timeout=60)
    assert answers == [(504, {"error": RUN_TIMEOUT_MESSAGE})]
    status, answer = late[0]
    assert status == 200, answer
    np.testing.assert_allclose([row["score"] for row in answer["predictions"]],
                               reference_outputs(model, second)["score"], rtol=1e-5)


def test_a_request_still_uploading_its_body_holds_no_rest_thread(exported):
    # util/net_http/server/internal/evhttp_server.cc: libevent calls DispatchEvRequest
    # once it has read a request whole, and only then is its handler scheduled on the
    # executor. With one thread, a client that has sent part of its body holds none:
    # a status request is answered meanwhile, and the upload is served once complete.
    model, base_path = exported
    x = _rows(2, 20)
    body = json.dumps({"instances": x.tolist()}).encode()
    with _server(base_path, f"--rest_api_port={free_port()}",
                 "--rest_api_num_threads=1") as server:
        upload = http.client.HTTPConnection("127.0.0.1", server.rest_port, timeout=60)
        upload.putrequest("POST", f"/v1/models/{MODEL}:predict")
        upload.putheader("Content-Type", "application/json")
        upload.putheader("Content-Length", str(len(body)))
        upload.endheaders(body[:10])
        time.sleep(0.5)  # the server has the headers and is waiting for the rest
        status, answer = rest_call(server.rest_port, "GET", f"/v1/models/{MODEL}")
        assert status == 200
        assert answer["model_version_status"][0]["state"] == "AVAILABLE"
        upload.send(body[10:])
        response = upload.getresponse()
        predictions = json.loads(response.read())["predictions"]
        upload.close()
    assert response.status == 200
    np.testing.assert_allclose([row["score"] for row in predictions],
                               reference_outputs(model, x)["score"], rtol=1e-5)


def test_without_a_rest_port_the_thread_count_is_not_used(exported):
    _, base_path = exported
    # server.cc builds no REST server (and so no thread pool) when --rest_api_port is 0.
    with _server(base_path, "--rest_api_num_threads=0") as server:
        assert server.rest_port is None
        assert server.manager.available_versions == [1]
