"""The development server end to end over loopback: gRPC via MemAEClient, REST, TLS, reloads."""

import asyncio
import json
import logging
import os
import shutil
import signal
import subprocess
import threading
import time
import types
import urllib.request

import grpc
import keras
import numpy as np
import pytest
import tensorflow as tf
from grpc_health.v1 import health_pb2, health_pb2_grpc
from serving_helpers import (
    FEATURES,
    free_port,
    reference_outputs,
    rest_call,
    small_model,
    wait_for,
)
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from memae_tf.client import (
    AsyncMemAEClient,
    FailedPreconditionError,
    InvalidArgumentError,
    MemAEClient,
    MemAEClientError,
    NotFoundError,
    UnavailableError,
)
from memae_tf.common.contract import SERVING_SIGNATURE
from memae_tf.export import export_saved_model
from memae_tf.serving import ModelServerOptions, serve, start_model_server
from memae_tf.serving.errors import ServingError
from memae_tf.serving.servable import Servable
from memae_tf.serving.server import wait_for_signal


@pytest.fixture(scope="module")
def rows() -> np.ndarray:
    return np.random.default_rng(1).uniform(-1, 1, size=(40, FEATURES)).astype("float32")


@pytest.fixture(scope="module")
def model() -> keras.Model:
    return small_model(11)


@pytest.fixture(scope="module")
def threshold(model, rows) -> float:
    return float(np.median(reference_outputs(model, rows)["score"]))


@pytest.fixture(scope="module")
def base_path(tmp_path_factory, model, threshold):
    base = tmp_path_factory.mktemp("models") / "kdd"
    export_saved_model(model, base, threshold=threshold)
    return base


@pytest.fixture(scope="module")
def server(base_path):
    handle = serve(base_path, "kdd", port=0, rest_port=0, host="127.0.0.1")
    yield handle
    handle.stop(grace=0)


@pytest.fixture(scope="module")
def client(server):
    with MemAEClient(f"127.0.0.1:{server.port}", "kdd", timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def stub(server):
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        yield prediction_service_pb2_grpc.PredictionServiceStub(channel)


def _rpc_error(call, request) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call(request, timeout=30)
    return info.value


def _rest(server, method: str, path: str, body: object = None) -> tuple[int, dict]:
    return rest_call(server.rest_port, method, path, body)


# ---------------------------------------------------------------- gRPC Predict


def test_predict_matches_in_process_scores(client, model, rows, threshold):
    outputs = client.run_signature(rows)
    expected = reference_outputs(model, rows)
    assert set(outputs) == {"score", "is_anomaly", "reconstruction"}
    np.testing.assert_allclose(outputs["score"], expected["score"], rtol=1e-5)
    np.testing.assert_allclose(outputs["reconstruction"], expected["reconstruction"],
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(outputs["is_anomaly"], outputs["score"] > np.float32(threshold))


def test_score_returns_only_the_scores(client, model, rows):
    scores = client.score(rows)
    assert scores.dtype == np.float32 and scores.shape == (len(rows),)
    np.testing.assert_allclose(scores, reference_outputs(model, rows)["score"], rtol=1e-5)


def test_signature_selection_runs_the_named_signature(client, model, rows):
    outputs = client.run_signature(rows, signature="score_map")
    np.testing.assert_allclose(outputs["score_map"], reference_outputs(model, rows)["score_map"],
                               rtol=1e-4, atol=1e-7)
    attention = client.run_signature(rows, signature="memory_attention")["memory_attention"]
    assert attention.shape == (len(rows), 10)


def test_output_filter_returns_only_the_requested_outputs(client, rows):
    assert set(client.run_signature(rows, output_filter=["is_anomaly"])) == {"is_anomaly"}


def test_specific_version_is_answered_by_that_version(tmp_path, base_path, model, rows):
    # Versions 1 and 2 (copies of one export) served together (policy `all`): a
    # request for version 1 must not be answered by the latest.
    for version in (1, 2):
        shutil.copytree(base_path / "1", tmp_path / "kdd" / str(version))
    config = tmp_path / "models.config"
    config.write_text(f'model_config_list {{ config {{ name: "kdd" base_path: "{tmp_path / "kdd"}"'
                      ' model_platform: "tensorflow" model_version_policy { all {} } } }')
    options = ModelServerOptions(port=free_port(), model_config_file=str(config))
    with start_model_server(options, host="127.0.0.1") as server, \
            grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        for version in (1, 2):
            request = predict_pb2.PredictRequest()
            request.model_spec.name = "kdd"
            request.model_spec.version.value = version
            request.inputs["x"].CopyFrom(tf.make_tensor_proto(rows))
            response = stub.Predict(request, timeout=30)
            assert response.model_spec.version.value == version
            np.testing.assert_allclose(tf.make_ndarray(response.outputs["score"]),
                                       reference_outputs(model, rows)["score"], rtol=1e-5)


def test_metadata_lists_the_signatures(client):
    metadata = client.metadata()
    assert (metadata.name, metadata.version) == ("kdd", 1)
    serving = metadata.signatures["serving_default"]
    assert serving.inputs["x"].shape == (None, FEATURES)
    assert serving.inputs["x"].dtype == np.float32
    assert serving.outputs["is_anomaly"].dtype == np.bool_
    assert {"score_map", "memory_attention"} <= set(metadata.signatures)


def test_status_reports_the_loaded_version_available(client):
    (status,) = client.status()
    assert (status.version, status.state, status.error_code) == (1, "AVAILABLE", "OK")


# ------------------------------------------------------------ gRPC error cases


def test_unknown_model_is_not_found(server, rows):
    with MemAEClient(f"127.0.0.1:{server.port}", "nope") as client, pytest.raises(
        NotFoundError, match="nope"
    ) as info:
        client.score(rows)
    assert info.value.code == grpc.StatusCode.NOT_FOUND


def test_unknown_version_is_not_found(server, rows):
    with MemAEClient(f"127.0.0.1:{server.port}", "kdd", version=9) as client:
        with pytest.raises(NotFoundError, match=r"Specific\(kdd, 9\)"):
            client.score(rows)
        with pytest.raises(NotFoundError, match="version 9"):
            client.status()


def test_wrong_shape_is_invalid_argument_saying_the_expected_shape(client, rows):
    with pytest.raises(InvalidArgumentError, match=r"expects shape \(None, 12\)") as info:
        client.score(rows[:, :5])
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "Received: shape=(40, 5)" in info.value.details


def test_wrong_input_name_is_invalid_argument_naming_the_expected_input(stub, rows):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "kdd"
    request.inputs["features"].CopyFrom(tf.make_tensor_proto(rows))
    error = _rpc_error(stub.Predict, request)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    # TensorFlow's cc/saved_model/util.cc GetInputValues, as TF Serving's Predict answers.
    assert error.details().startswith("Signature input alias: x(feed name: serving_default_x:0)")


def test_wrong_dtype_is_invalid_argument_naming_the_expected_dtype(stub, rows):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "kdd"
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(rows.astype(np.float64)))
    error = _rpc_error(stub.Predict, request)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "expects dtype float32" in error.details() and "float64" in error.details()


def test_unknown_output_filter_is_invalid_argument(client, rows):
    with pytest.raises(InvalidArgumentError, match="output tensor alias not found"):
        client.run_signature(rows, output_filter=["nope"])


def test_unknown_signature_fails_the_precondition(client, rows):
    # predict_util.cc RunPredict: 'Serving signature key "<name>" not found.'
    with pytest.raises(FailedPreconditionError, match=r'Serving signature key "nope" not found\.$'):
        client.run_signature(rows, signature="nope")


def test_a_label_the_config_does_not_define_is_invalid_argument(stub, rows):
    # tensorflow_serving/model_servers/server_core.cc (GetModelVersionForLabel).
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "kdd"
    request.model_spec.version_label = "stable"
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(rows))
    error = _rpc_error(stub.Predict, request)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == "Unrecognized servable version label: stable"


def test_metadata_request_without_field_is_invalid_argument(stub):
    request = get_model_metadata_pb2.GetModelMetadataRequest()
    request.model_spec.name = "kdd"
    error = _rpc_error(stub.GetModelMetadata, request)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "signature_def" in error.details()


def test_classify_is_refused_at_the_signature_as_tf_serving_refuses_it(stub):
    # classifier.cc PreProcessClassification: serving_default has three outputs
    # (tests/test_serving_inference.py covers Classify, Regress and MultiInference).
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = "kdd"
    error = _rpc_error(stub.Classify, request)
    assert (error.code(), error.details()) == (grpc.StatusCode.INVALID_ARGUMENT,
                                               "Expected one or two output Tensors, found 3")


def test_malformed_tensor_is_invalid_argument(stub):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "kdd"
    tensor = request.inputs["x"]
    tensor.dtype = 1
    tensor.tensor_shape.dim.add(size=3)
    tensor.tensor_content = b"\x00" * 5
    assert _rpc_error(stub.Predict, request).code() == grpc.StatusCode.INVALID_ARGUMENT


def test_health_is_serving_with_a_loaded_model(server):
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", "tensorflow.serving.PredictionService"):
            response = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=30)
            assert response.status == health_pb2.HealthCheckResponse.SERVING


def test_async_client_scores_like_the_blocking_client(server, client, rows):
    async def run():
        async with AsyncMemAEClient(f"127.0.0.1:{server.port}", "kdd") as aclient:
            scores = await aclient.score(rows)
            status = await aclient.status()
            with pytest.raises(NotFoundError):
                await AsyncMemAEClient(f"127.0.0.1:{server.port}", "nope").score(rows)
            return scores, status

    scores, status = asyncio.run(run())
    np.testing.assert_array_equal(scores, client.score(rows))
    assert status == client.status()


# ------------------------------------------------------------- batch splitting


def test_client_splits_batches_beyond_the_message_limit(base_path, model):
    big = np.random.default_rng(2).uniform(size=(100_000, FEATURES)).astype("float32")
    assert big.nbytes > 4 * 2**20
    with serve(base_path, "kdd", port=0, host="127.0.0.1", max_message_mib=4) as server:
        target = f"127.0.0.1:{server.port}"
        with MemAEClient(target, "kdd", max_message_mib=1, max_batch_size=None,
                         timeout=60) as client:
            outputs = client.run_signature(big)
        expected = reference_outputs(model, big)
        np.testing.assert_allclose(outputs["score"], expected["score"], rtol=1e-5)
        np.testing.assert_allclose(outputs["reconstruction"], expected["reconstruction"],
                                   rtol=1e-5, atol=1e-6)
        unsplit = MemAEClient(target, "kdd", max_message_mib=64, max_batch_size=None,
                              timeout=60)
        with unsplit, pytest.raises(MemAEClientError) as info:
            unsplit.score(big)
        assert info.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED


# ------------------------------------------------------------ version handling


def test_health_follows_whether_a_version_serves(tmp_path, model, rows):
    # `memae serve`'s health: SERVING once started (the start waits for a version, as TF
    # Serving's ServerCore does), NOT_SERVING while no version serves (a base path emptied:
    # file_system_storage_path_source.cc aspires no version), SERVING again once one does.
    base = tmp_path / "kdd"
    version = export_saved_model(model, base, threshold=0.1)
    with serve(base, "kdd", port=0, host="127.0.0.1", poll_interval=0.1) as server:
        target = f"127.0.0.1:{server.port}"
        with grpc.insecure_channel(target) as channel:
            health = health_pb2_grpc.HealthStub(channel)

            def status():
                request = health_pb2.HealthCheckRequest(service="")
                return health.Check(request, timeout=30).status

            assert status() == health_pb2.HealthCheckResponse.SERVING
            shutil.rmtree(version)
            wait_for(lambda: status() == health_pb2.HealthCheckResponse.NOT_SERVING, timeout=60)
            with MemAEClient(target, "kdd") as client, pytest.raises(NotFoundError):
                client.score(rows)
            export_saved_model(model, base, threshold=0.1)
            wait_for(lambda: status() == health_pb2.HealthCheckResponse.SERVING, timeout=60)


def test_new_version_is_swapped_in_without_dropping_requests(tmp_path, model, rows):
    base = tmp_path / "kdd"
    export_saved_model(model, base, threshold=0.1)
    newer = small_model(23)
    before, after = reference_outputs(model, rows)["score"], reference_outputs(newer, rows)["score"]
    with serve(base, "kdd", port=0, host="127.0.0.1", poll_interval=0.1) as server, \
            MemAEClient(f"127.0.0.1:{server.port}", "kdd", timeout=30) as client, \
            MemAEClient(f"127.0.0.1:{server.port}", "kdd", timeout=30,
                        max_batch_size=8) as split:
        # `split` sends each call as five requests, the last four pinned to the version
        # that answered the first: one the swap unloads meanwhile starts the call again.
        results, errors, stop = [], [], threading.Event()

        def hammer():
            while not stop.is_set():
                for caller in (client, split):
                    try:
                        results.append(caller.score(rows))
                    except Exception as error:  # collected for the assertion below
                        errors.append(error)

        thread = threading.Thread(target=hammer)
        thread.start()
        try:
            export_saved_model(newer, base, threshold=0.1)
            wait_for(lambda: client.metadata().version == 2, timeout=60)
            time.sleep(0.3)
        finally:
            stop.set()
            thread.join()
        assert errors == [] and results
        for scores in results:
            assert np.allclose(scores, before, rtol=1e-5) or np.allclose(scores, after, rtol=1e-5)
        np.testing.assert_allclose(client.score(rows), after, rtol=1e-5)
        assert [(s.version, s.state) for s in client.status()] == [(1, "END"), (2, "AVAILABLE")]
        old = MemAEClient(f"127.0.0.1:{server.port}", "kdd", version=1)
        with old, pytest.raises(NotFoundError):
            old.score(rows)


def test_a_server_whose_latest_version_fails_to_load_does_not_start(
        tmp_path, model, caplog):
    # load_servables_fast.cc ConnectSourcesWithFastInitialLoad (server_core.cc, first
    # config): TF Serving waits for each model's latest aspired version and refuses to
    # start when it ends in an error ("servable(s)", not the "model(s)" of a reload's
    # WaitUntilModelsAvailable), although version 1
    # loads (latest { num_versions: 1 } does not aspire it). A broken version arriving
    # later is tests/reliability/test_version_faults.py's case: the old one keeps serving.
    base = tmp_path / "kdd"
    export_saved_model(model, base, threshold=0.1)
    (base / "2").mkdir()
    (base / "2" / "saved_model.pb").write_bytes(b"not a SavedModel")
    threads = set(threading.enumerate())
    # loader_harness.cc: the load is tried max_num_load_retries more times first.
    with pytest.raises(ServingError) as info, caplog.at_level(
            logging.INFO, logger="memae_tf.serving.model_manager"):
        serve(base, "kdd", port=0, host="127.0.0.1", max_num_load_retries=1,
              load_retry_interval=0)
    assert set(threading.enumerate()) <= threads  # its polling stopped with it
    assert "Retrying of Loading servable: {name: kdd version: 2} retry: 1" in caplog.messages
    assert info.value.code == grpc.StatusCode.UNKNOWN
    assert info.value.message.startswith(
        "1 servable(s) did not become available: {{{name: kdd version: 2} due to error: ")
    assert info.value.message.endswith("}, }")


# ------------------------------------------------------------ stopping on SIGTERM
# TF Serving's model server has no SIGTERM handler (tensorflow/serving#1853, open): it
# dies with its requests in flight. The development server stops the way its
# maintainers pointed to (tensorflow/serving#356: gRPC's Server::Shutdown(deadline),
# Python's `grpc.Server.stop(grace)`): new RPCs are refused at once, those in flight
# run until the grace period ends, and those still running then are cancelled. A run
# held on an event stands for a slow request, so no test depends on a clock.


@pytest.fixture
def held_run(monkeypatch):
    """Holds the first run of the scoring signature once `armed` is set, until `release`.

    (The client runs `model_info` first; that run goes through.)"""
    held = types.SimpleNamespace(armed=threading.Event(), entered=threading.Event(),
                                 release=threading.Event())
    original = Servable.run

    def run(self, signature_name, inputs):
        if (held.armed.is_set() and signature_name in ("", SERVING_SIGNATURE)
                and not held.entered.is_set()):
            held.entered.set()
            held.release.wait(60)
        return original(self, signature_name, inputs)

    monkeypatch.setattr(Servable, "run", run)
    yield held
    held.release.set()


def _serve_until_sigterm(handle, target: str, rows: np.ndarray, grace: float, held,
                         after_signal) -> list:
    """Sends one request that `held` holds, then SIGTERM; runs `wait_for_signal` here (the
    main thread, where Python handles signals). Returns the request's scores or error."""
    default = signal.getsignal(signal.SIGTERM)
    outcome = []

    def in_flight() -> None:
        with MemAEClient(target, "kdd", timeout=60, retries=0) as client:
            try:
                outcome.append(client.score(rows))
            except MemAEClientError as error:
                outcome.append(error)

    def terminate() -> None:
        held.entered.wait(60)
        wait_for(lambda: signal.getsignal(signal.SIGTERM) is not default, timeout=30)
        os.kill(os.getpid(), signal.SIGTERM)
        after_signal()

    held.armed.set()
    threads = [threading.Thread(target=in_flight), threading.Thread(target=terminate)]
    for thread in threads:
        thread.start()
    wait_for_signal(handle, grace=grace)
    held.release.set()
    for thread in threads:
        thread.join()
    assert signal.getsignal(signal.SIGTERM) is default
    return outcome


def test_sigterm_refuses_new_requests_and_lets_those_in_flight_finish(
    base_path, model, rows, held_run
):
    handle = serve(base_path, "kdd", port=0, host="127.0.0.1")
    target = f"127.0.0.1:{handle.port}"
    refused = []

    def refused_now() -> bool:
        try:
            with MemAEClient(target, "kdd", timeout=30, retries=0) as client:
                client.score(rows[:1])
        except MemAEClientError as error:
            # The port closed (UNAVAILABLE), or cancelled as it arrived during the stop.
            refused.append(error.code)
            return True
        return False  # answered: the signal has not been handled yet

    def refuse_then_release() -> None:
        try:
            wait_for(refused_now, timeout=60)
        finally:
            held_run.release.set()  # only now can the request in flight finish

    (scores,) = _serve_until_sigterm(handle, target, rows, 60, held_run, refuse_then_release)
    assert refused in ([grpc.StatusCode.UNAVAILABLE], [grpc.StatusCode.CANCELLED])
    np.testing.assert_allclose(scores, reference_outputs(model, rows)["score"], rtol=1e-5)


def test_requests_still_running_when_the_grace_period_ends_are_cancelled(
    base_path, rows, held_run
):
    handle = serve(base_path, "kdd", port=0, host="127.0.0.1")
    (error,) = _serve_until_sigterm(handle, f"127.0.0.1:{handle.port}", rows, 0.2, held_run,
                                    lambda: None)
    # gRPC's server ends them with UNAVAILABLE ("Cancelling all calls"): a status
    # clients retry, on another replica behind a load balancer.
    assert isinstance(error, UnavailableError), error


# ------------------------------------------------------------------------ TLS


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
         "-keyout", str(folder / "key.pem"), "-out", str(folder / "cert.pem")],
        check=True, capture_output=True, timeout=60,
    )
    return (folder / "key.pem").read_bytes(), (folder / "cert.pem").read_bytes()


def test_tls_client_scores_over_an_encrypted_channel(base_path, certificate, model, rows):
    key, cert = certificate
    credentials = grpc.ssl_server_credentials([(key, cert)])
    with serve(base_path, "kdd", port=0, host="127.0.0.1",
               server_credentials=credentials) as server:
        trusted = grpc.ssl_channel_credentials(root_certificates=cert)
        with MemAEClient(f"localhost:{server.port}", "kdd", credentials=trusted) as client:
            np.testing.assert_allclose(client.score(rows), reference_outputs(model, rows)["score"],
                                       rtol=1e-5)
        plain = MemAEClient(f"127.0.0.1:{server.port}", "kdd", retries=0, timeout=5)
        with plain, pytest.raises(UnavailableError):
            plain.score(rows)


# ----------------------------------------------------------------------- REST


def test_rest_model_status_uses_tf_serving_json(server):
    assert _rest(server, "GET", "/v1/models/kdd") == (200, {"model_version_status": [
        {"version": "1", "state": "AVAILABLE",
         "status": {"error_code": "OK", "error_message": ""}}]})


def test_rest_metadata_lists_signature_defs(server):
    status, body = _rest(server, "GET", "/v1/models/kdd/versions/1/metadata")
    assert status == 200
    assert body["model_spec"] == {"name": "kdd", "version": "1", "signature_name": ""}
    serving = body["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert serving["inputs"]["x"]["dtype"] == "DT_FLOAT"
    assert set(serving["outputs"]) == {"score", "is_anomaly", "reconstruction"}


def test_rest_predict_row_format_answers_predictions(server, model, rows, threshold):
    status, body = _rest(server, "POST", "/v1/models/kdd:predict",
                         {"instances": rows[:3].tolist()})
    assert status == 200
    predictions = body["predictions"]
    expected = reference_outputs(model, rows[:3])["score"]
    np.testing.assert_allclose([p["score"] for p in predictions], expected, rtol=1e-5)
    assert [p["is_anomaly"] for p in predictions] == [
        bool(s) for s in np.float32([p["score"] for p in predictions]) > np.float32(threshold)]
    assert len(predictions[0]["reconstruction"]) == FEATURES


def test_rest_predict_answers_the_bytes_tf_serving_writes(server, client, rows):
    """json_tensor.cc MakeRowFormatJsonFromTensors with rapidjson's PrettyWriter: one
    object a row, a member a line, each output's row on one line; WriteDecimal: a float
    in six significant digits when they read back as the same float32, else nine, with
    ".0" after a number without '.' or 'e'. Checked against the gRPC answer."""
    outputs = client.run_signature(rows[:2])

    def decimal(value):
        text = f"{value:.6g}" if np.float32(f"{value:.6g}") == value else f"{value:.9g}"
        return text if "." in text or "e" in text else text + ".0"

    def row_text(name, item):
        values = outputs[name][item]
        if values.dtype == np.bool_:
            return "true" if values else "false"
        if values.ndim == 0:
            return decimal(float(values))
        return "[" + ", ".join(decimal(float(value)) for value in values) + "]"

    request = urllib.request.Request(
        f"http://127.0.0.1:{server.rest_port}/v1/models/kdd:predict", method="POST",
        data=json.dumps({"instances": rows[:2].tolist()}).encode())
    with urllib.request.urlopen(request, timeout=30) as response:
        body = response.read()
    names = list(json.loads(body)["predictions"][0])  # the order this server writes
    assert sorted(names) == sorted(outputs)
    items = ["        {\n" + ",\n".join(f'            "{name}": {row_text(name, item)}'
                                        for name in names) + "\n        }" for item in (0, 1)]
    assert body.decode() == '{\n    "predictions": [\n' + ",\n".join(items) + "\n    ]\n}"


def test_rest_predict_columnar_format_answers_outputs(server, model, rows):
    status, body = _rest(server, "POST", "/v1/models/kdd/versions/1:predict",
                         {"signature_name": "score_map", "inputs": {"x": rows[:2].tolist()}})
    assert status == 200
    np.testing.assert_allclose(body["outputs"], reference_outputs(model, rows[:2])["score_map"],
                               rtol=1e-4, atol=1e-7)


def test_rest_predict_accepts_named_instances_and_bare_inputs(server, model, rows):
    expected = reference_outputs(model, rows[:2])["score"]
    _, named = _rest(server, "POST", "/v1/models/kdd:predict",
                     {"instances": [{"x": row} for row in rows[:2].tolist()]})
    np.testing.assert_allclose([p["score"] for p in named["predictions"]], expected, rtol=1e-5)
    _, columns = _rest(server, "POST", "/v1/models/kdd:predict", {"inputs": rows[:2].tolist()})
    assert set(columns["outputs"]) == {"score", "is_anomaly", "reconstruction"}
    np.testing.assert_allclose(columns["outputs"]["score"], expected, rtol=1e-5)


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "message"),
    [
        ("GET", "/v1/models/nope", None, 404, "nope"),
        ("POST", "/v1/models/kdd/versions/5:predict", {"instances": [[0.0] * 12]}, 404,
         "Specific(kdd, 5)"),
        ("POST", "/v1/models/kdd:predict", {"instances": [[0.0] * 5]}, 400,
         "expects shape (None, 12)"),
        ("POST", "/v1/models/kdd:predict", {"instances": [[0.0]], "inputs": [[0.0]]}, 400,
         "expecting only one of 'inputs' or 'instances' keys to exist"),
        ("POST", "/v1/models/kdd:predict", b"{not json", 400,
         "JSON Parse error: Missing a name for object member. at offset: 1"),
        ("POST", "/v1/models/kdd:predict", {"instances": [[0.0] * 12, [0.0]]}, 400,
         "Expecting tensor size: 12 but got: 1"),
        ("POST", "/v1/models/kdd:classify", {"examples": []}, 400,
         "'examples' value is an empty array"),
        ("GET", "/v1/models/kdd/oops", None, 400, "Malformed request"),
        ("GET", "/elsewhere", None, 404, "/v1/"),
    ],
)
def test_rest_errors_use_tf_serving_status_codes(server, method, path, body, status, message):
    got_status, got_body = _rest(server, method, path, body)
    assert got_status == status
    assert message in got_body["error"]


def test_serve_takes_the_former_max_message_mb_with_a_warning():
    # The limit is checked before anything is loaded: the refusal quotes the value passed
    # under the former name, so it reached the check.
    with pytest.warns(DeprecationWarning, match="use `max_message_mib`"), pytest.raises(
        ValueError, match=r"Received: max_message_mib=-1"
    ):
        serve("no-such-models", "m", port=0, max_message_mb=-1)
