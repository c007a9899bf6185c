"""`memae serve --max-batch-size` against `memae model-server --enable_batching`.

The limit refuses a request above N rows with the error TF Serving gives with
`--enable_batching` and `max_batch_size` N (TensorFlow's shared_batch_scheduler.h
`ValidateBatchTaskQueueCapacity`), but `memae serve` runs every request on its
own: nothing is merged and no BatchingSession metric moves
(tensorflow_serving/batching/batching_session.cc records processed_batch_size
and wrapped_run_count per merged run). TF Serving without `--enable_batching`
has no such limit at all (tensorflow_serving/model_servers/server.cc builds the
batching session only with it), so the flag is a check, not batching; its help
says so.
"""

import socket
import threading

import grpc
import numpy as np
import pytest
import tensorflow as tf
from serving_helpers import FEATURES, small_model
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from memae_tf.cli import build_parser
from memae_tf.export import export_saved_model
from memae_tf.serving import parse_flags, serve, start_model_server

MODEL = "kdd"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def base_path(tmp_path_factory):
    base = tmp_path_factory.mktemp("limit") / MODEL
    export_saved_model(small_model(29), base, threshold=0.05)
    return base


def _predict(port: int, count: int) -> predict_pb2.PredictResponse:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = MODEL
    x = np.random.default_rng(count).uniform(size=(count, FEATURES)).astype("float32")
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(x))
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        return prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(
            request, timeout=30)


def _refusal(port: int, count: int) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as refused:
        _predict(port, count)
    return refused.value.code(), refused.value.details()


def _concurrently(port: int, sizes: list[int]) -> None:
    threads = [threading.Thread(target=_predict, args=(port, size)) for size in sizes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)


def test_serve_refuses_like_batching_tf_serving_but_runs_each_request_alone(base_path,
                                                                            tmp_path):
    parameters = tmp_path / "batching_parameters.txt"
    parameters.write_text("max_batch_size { value: 4 }\n"
                          "batch_timeout_micros { value: 500000 }\n")
    batching = parse_flags([f"--port={_free_port()}", f"--model_name={MODEL}",
                            f"--model_base_path={base_path}", "--enable_batching",
                            f"--batching_parameters_file={parameters}"])
    with serve(base_path, MODEL, port=0, max_batch_size=4) as limited, \
            start_model_server(batching, host="127.0.0.1") as batched:
        # The same refusal, status and message from both.
        assert _refusal(limited.port, 5) == _refusal(batched.port, 5) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            "Task size 5 is larger than maximum input batch size 4")
        assert _predict(limited.port, 4).outputs["score"].tensor_shape.dim[0].size == 4
        # Two concurrent 2-row requests: merged into one run by model-server only.
        _concurrently(limited.port, [2, 2])
        _concurrently(batched.port, [2, 2])
        assert limited.metrics.wrapped_run_count.value() == 0
        assert limited.metrics.processed_batch_size.cumulative_counts()[-1] == 0
        assert batched.metrics.wrapped_run_count.value() == 1
        # TensorFlow's buckets (below 1, [1, 2), [2, 4), [4, 8), ...): the merged batch
        # of 4 rows falls in the fourth.
        assert batched.metrics.processed_batch_size.cumulative_counts()[:4] == [0, 0, 0, 1]


def test_serve_help_says_the_limit_does_not_batch():
    parser = build_parser()
    serve_parser = next(action for action in parser._actions
                        if hasattr(action, "choices") and action.choices
                        and "serve" in action.choices).choices["serve"]
    help_text = " ".join(next(action.help for action in serve_parser._actions
                              if "--max-batch-size" in action.option_strings).split())
    assert "Task size ... is larger than maximum input batch size N" in help_text
    assert "requests are not merged" in help_text
    assert "memae model-server --enable_batching" in help_text
