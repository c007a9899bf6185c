"""`memae model-server`: the development server driven by TF Serving's own flags and files.

The Deployment's container args and the ConfigMap's files start it; several
models with version policies and labels; config reloads by file polling and by
ModelService.HandleReloadConfigRequest; a canary rollout by `models.config`
edits; TLS from `--ssl_config_file`. Requests go through
tensorflow-serving-api's own stubs, and every answer is checked for the version
that gave it (`model_spec.version`) and against that version's in-process scores.
"""

import _thread
import logging
import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from concurrent import futures

import grpc
import numpy as np
import pytest
import tensorflow as tf
import yaml
from google.protobuf import text_format
from grpc_health.v1 import health_pb2, health_pb2_grpc
from serving_helpers import (
    FEATURES,
    StandInServable,
    reference_outputs,
    rest_call,
    small_model,
    wait_for,
)
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import (
    get_model_status_pb2,
    model_management_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_log_pb2,
    prediction_service_pb2_grpc,
)
from tensorflow_serving.config import model_server_config_pb2

from memae_tf.cli import main
from memae_tf.export import export_saved_model
from memae_tf.serving import (
    ModelRegistry,
    ServingError,
    model_manager,
    parse_flags,
    start_model_server,
)
from memae_tf.serving.proto import BatchingParameters, MonitoringConfig, SSLConfig

K8S = pathlib.Path(__file__).resolve().parents[1] / "serving" / "k8s"
SEEDS = {1: 11, 2: 23, 3: 37}  # version → seed of its small model
AVAILABLE = get_model_status_pb2.ModelVersionStatus.AVAILABLE
END = get_model_status_pb2.ModelVersionStatus.END


@pytest.fixture(scope="module")
def rows() -> np.ndarray:
    return np.random.default_rng(5).uniform(-1, 1, size=(7, FEATURES)).astype("float32")


@pytest.fixture(scope="module")
def exported(tmp_path_factory, rows):
    """Versions 1-3 of one model, exported once: (base path, version → in-process scores)."""
    base = tmp_path_factory.mktemp("exports") / "kdd"
    scores = {}
    for version, seed in SEEDS.items():
        model = small_model(seed)
        scores[version] = reference_outputs(model, rows)["score"]
        export_saved_model(model, base, threshold=0.1, version=version)
    return base, scores


def _publish(exported_base: pathlib.Path, base: pathlib.Path, *versions: int) -> None:
    """Copies exported versions under `base`, each atomically (hidden copy, then rename)."""
    base.mkdir(parents=True, exist_ok=True)
    for version in versions:
        shutil.copytree(exported_base / str(version), base / f".{version}.tmp")
        os.rename(base / f".{version}.tmp", base / str(version))


def _one_version(tmp_path: pathlib.Path, exported) -> list[str]:
    """Flags serving model kdd with version 1 published: requests for "default" find none.

    The start waits until every model has a version (server_core.cc), so a server
    whose test needs no model serves this one.
    """
    _publish(exported[0], tmp_path / "kdd", 1)
    return [f"--model_base_path={tmp_path / 'kdd'}", "--model_name=kdd"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _write_config(path: pathlib.Path, text: str) -> None:
    """Replaces a config file atomically, as an operator's tooling (or kubelet) does."""
    path.with_suffix(".tmp").write_text(text)
    os.replace(path.with_suffix(".tmp"), path)


def _predict(channel, rows, name, *, version=None, label=None) -> predict_pb2.PredictResponse:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = name
    if version is not None:
        request.model_spec.version.value = version
    if label is not None:
        request.model_spec.version_label = label
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(rows))
    return prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=30)


def _answer(channel, rows, name, **spec) -> tuple[int, np.ndarray]:
    """(version that answered, its scores)."""
    response = _predict(channel, rows, name, **spec)
    return response.model_spec.version.value, tf.make_ndarray(response.outputs["score"])


def _check_answer(channel, rows, scores, name, expected_version, **spec) -> None:
    version, served = _answer(channel, rows, name, **spec)
    assert version == expected_version
    np.testing.assert_allclose(served, scores[expected_version], rtol=1e-5)


def _states(channel, name) -> list[tuple[int, int]]:
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = name
    response = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(request,
                                                                               timeout=30)
    return [(status.version, status.state) for status in response.model_version_status]


def _rpc_error(call) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value


# ------------------------------------------------- the Kubernetes Deployment


def _probe(probe: dict, rest_port: int, local_ports) -> bool:
    """Runs a container probe of the Deployment against the local server: True if it passes."""
    if "httpGet" in probe:
        status, body = rest_call(rest_port, "GET", probe["httpGet"]["path"])
        return status == 200 and "AVAILABLE" in {s["state"] for s in body["model_version_status"]}
    command = [local_ports(part) for part in probe["exec"]["command"]]
    return subprocess.run(command, capture_output=True, timeout=30).returncode == 0


def test_the_deployments_args_and_configmap_files_serve_requests(tmp_path, exported, rows):
    """Follows tensorflow_serving/model_servers/main.cc and server.cc (flags, files, ports)."""
    (deployment,) = [d for d in yaml.safe_load_all((K8S / "deployment.yaml").read_text()) if d]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["tensorflow_model_server"]
    configmap = yaml.safe_load((K8S / "configmap.yaml").read_text())
    # Temporary folders stand in for the two mounts: only their prefixes are
    # rewritten, in the args and in the files; and the container's two ports are
    # replaced by free ones (in the args and the probes), so that tests can run
    # in parallel.
    mounts = {mount["name"]: mount["mountPath"] for mount in container["volumeMounts"]}
    local = {mounts["config"]: tmp_path / "etc-tfserving", mounts["models"]: tmp_path / "models"}
    ports = {str(port["containerPort"]): str(_free_port()) for port in container["ports"]}

    def local_paths(text: str) -> str:
        for mount, folder in local.items():
            text = text.replace(mount + "/", f"{folder}/")
        return text

    def local_ports(text: str) -> str:
        return re.sub(r"\b(" + "|".join(ports) + r")\b", lambda m: ports[m[1]], text)

    local[mounts["config"]].mkdir()
    for name, text in configmap["data"].items():
        (local[mounts["config"]] / name).write_text(local_paths(text))
    base, scores = exported
    _publish(base, local[mounts["models"]] / "memae", 1)
    args = [local_ports(local_paths(argument)) for argument in container["args"]]
    assert args != container["args"]

    with start_model_server(parse_flags(args)) as server, \
            grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        named = {port["name"]: int(ports[str(port["containerPort"])])
                 for port in container["ports"]}
        assert (server.port, server.rest_port) == (named["grpc"], named["http"])
        _check_answer(channel, rows, scores, "memae", 1)
        assert _states(channel, "memae") == [(1, AVAILABLE)]
        for probe in ("startupProbe", "readinessProbe"):
            if probe in container:
                assert _probe(container[probe], server.rest_port, local_ports), probe
        # --enable_batching with batching_parameters.txt's max_batch_size: a larger
        # request is refused (tensorflow_serving/batching/batching_session.cc).
        limit = text_format.Parse(configmap["data"]["batching_parameters.txt"],
                                  BatchingParameters()).max_batch_size.value
        error = _rpc_error(lambda: _predict(channel, np.repeat(rows[:1], limit + 1, axis=0),
                                            "memae"))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert f"{limit + 1} is larger than maximum input batch size {limit}" in error.details()
        # monitoring.config's Prometheus path answers with TF Serving's metric names
        # (tensorflow_serving/model_servers/http_server.cc, prometheus_exporter.cc).
        path = text_format.Parse(configmap["data"]["monitoring.config"],
                                 MonitoringConfig()).prometheus_config.path
        with urllib.request.urlopen(f"http://127.0.0.1:{server.rest_port}{path}",
                                    timeout=30) as response:
            page = response.read().decode()
        version_dir = local[mounts["models"]] / "memae" / "1"
        assert (':tensorflow:cc:saved_model:load_attempt_count{model_path="'
                f'{version_dir}",status="success"}} 1') in page
        assert ':tensorflow:serving:request_count{model_name="memae",status="OK"}' in page


def test_the_model_server_command_serves_until_sigterm(exported, rows):
    # tensorflow_serving/model_servers/main.cc: flags in, serve until terminated. The
    # command runs in this (main) thread, where Python handles signals; another
    # thread queries it, then sends SIGTERM once the command's handler is in place.
    base, scores = exported
    port, default = _free_port(), signal.getsignal(signal.SIGTERM)
    answers = []

    def query_then_terminate() -> None:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            grpc.channel_ready_future(channel).result(timeout=120)
            answers.append(_answer(channel, rows, "kdd"))
        wait_for(lambda: signal.getsignal(signal.SIGTERM) is not default, timeout=30)
        os.kill(os.getpid(), signal.SIGTERM)

    thread = threading.Thread(target=query_then_terminate)
    thread.start()
    code = main(["model-server", f"--port={port}", "--model_name=kdd",
                 f"--model_base_path={base}", "--file_system_poll_wait_seconds=0"])
    thread.join()
    assert code == 0 and signal.getsignal(signal.SIGTERM) is default
    ((version, served),) = answers
    assert version == 3
    np.testing.assert_allclose(served, scores[3], rtol=1e-5)


# ------------------------------------------------------ the start waits for models


def _connects(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _start_in_thread(flags: list[str]) -> futures.Future:
    return futures.ThreadPoolExecutor(1).submit(start_model_server, parse_flags(flags),
                                                host="127.0.0.1")


@pytest.mark.parametrize("base_exists", [True, False], ids=["empty-base-path", "no-base-path"])
def test_the_start_waits_for_a_version_with_its_ports_closed_then_serves(
        tmp_path, exported, rows, base_exists):
    """Server::BuildAndStart (model_servers/server.cc) builds ServerCore before any port:
    its first config waits, without timeout, until each model's latest version is
    available (server_core.cc AddModelsViaModelConfigList ->
    ConnectAdaptersToManagerAndAwaitModelLoads, core/load_servables_fast.cc), while each
    poll logs file_system_storage_path_source.cc's warning (no version) or error (no
    base path, PollFileSystemForServable). A version published later is loaded and the
    ports open."""
    base = tmp_path / "kdd"
    if base_exists:
        base.mkdir()
    port, rest_port = _free_port(), _free_port()
    polled = _LogEvent(f"No versions of servable kdd found under base path {base}"
                       if base_exists else
                       "FileSystemStoragePathSource encountered a filesystem access error: "
                       f"Could not find base path {base} for servable kdd with error NOT_FOUND")
    logger = logging.getLogger("memae_tf.serving.model_manager")
    logger.addHandler(polled)
    starting = _start_in_thread([f"--port={port}", f"--rest_api_port={rest_port}",
                                 f"--model_base_path={base}", "--model_name=kdd"])
    try:
        assert polled.event.wait(120), "the base path was not listed"
        polled.event.clear()
        assert polled.event.wait(120), "the base path was not listed again"
        assert not starting.done()
        assert not _connects(port) and not _connects(rest_port)
    finally:
        logger.removeHandler(polled)
        _publish(exported[0], base, 2)  # also ends the start when an assert failed
        server = starting.result(timeout=120)
    with server, grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        _check_answer(channel, rows, exported[1], "kdd", 2)
        assert _connects(rest_port)


def test_an_interrupt_during_the_wait_ends_the_start_and_its_polling(tmp_path):
    # The wait for models (core/load_servables_fast.cc) has no timeout: tensorflow_model_
    # server waits until it is killed. Here Ctrl-C (a KeyboardInterrupt in the main thread,
    # where serve() runs in a notebook) ends the start: no polling thread and no port stay.
    port = _free_port()
    polled = _LogEvent("No versions of servable kdd found")
    logger = logging.getLogger("memae_tf.serving.model_manager")
    logger.addHandler(polled)

    ended = threading.Event()

    def interrupt() -> None:
        assert polled.event.wait(120), "the base path was not listed"
        _thread.interrupt_main()
        if not ended.wait(60):  # the interrupt was lost: a version that cannot load ends
            (tmp_path / "1").mkdir()  # the wait (no retries), so the test fails, not hangs

    # pytest-xdist's workers ignore SIGINT, and interrupt_main() then does nothing: take
    # Python's own handler, as an interactive process (a notebook's kernel) has it.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    interrupter = threading.Thread(target=interrupt, daemon=True)
    interrupter.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            start_model_server(parse_flags([f"--port={port}", f"--model_base_path={tmp_path}",
                                            "--model_name=kdd", "--max_num_load_retries=0"]),
                               host="127.0.0.1")
    finally:
        ended.set()
        signal.signal(signal.SIGINT, previous)
        logger.removeHandler(polled)
    interrupter.join()
    assert [t for t in threading.enumerate() if t.name == "poll-models"] == []
    assert not _connects(port)


def test_a_reload_adding_a_model_answers_once_the_model_has_a_version(tmp_path, exported, rows):
    """ModelService.HandleReloadConfigRequest (model_servers/model_service_impl.cc) answers
    with ServerCore::ReloadConfig's status, which waits without timeout for the new models
    (server_core.cc WaitUntilModelsAvailable); the models already served serve on."""
    base = tmp_path / "kdd"
    _publish(exported[0], base, 1)
    flags = [f"--port={_free_port()}", f"--model_base_path={base}", "--model_name=kdd"]
    config = "model_config_list { " + "".join(
        f'config {{ name: "{name}" base_path: "{tmp_path / name}" model_platform: "tensorflow" }} '
        for name in ("kdd", "new")) + "}"
    with start_model_server(parse_flags(flags), host="127.0.0.1") as server, \
            grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        reloading = futures.ThreadPoolExecutor(1).submit(_reload, channel, config)
        try:
            wait_for(lambda: "new" in server.models, timeout=60)
            time.sleep(2.5)  # two polls of --file_system_poll_wait_seconds=1
            assert not reloading.done()
            _check_answer(channel, rows, exported[1], "kdd", 1)
            assert _rpc_error(lambda: _states(channel, "new")).details() == (
                "Could not find any versions of model new")
        finally:
            _publish(exported[0], tmp_path / "new", 3)
            response = reloading.result(timeout=120)
        assert response.status.error_code == 0
        _check_answer(channel, rows, exported[1], "new", 3)


# ------------------------------------ several models, policies, labels, reload


def _model_config(base: pathlib.Path, models: dict[str, str]) -> str:
    """models.config text: name → the body of its model_version_policy and labels."""
    entries = "".join(
        f'  config {{ name: "{name}" base_path: "{base}" model_platform: "tensorflow" {extra} }}\n'
        for name, extra in models.items()
    )
    return f"model_config_list {{\n{entries}}}\n"


def _reload(channel, text: str) -> model_management_pb2.ReloadConfigResponse:
    request = model_management_pb2.ReloadConfigRequest()
    text_format.Parse(text, request.config)
    stub = model_service_pb2_grpc.ModelServiceStub(channel)
    return stub.HandleReloadConfigRequest(request, timeout=60)


POLICIES = {
    "every": "model_version_policy { all {} }",
    "newest-two": "model_version_policy { latest { num_versions: 2 } }",
    "first": "model_version_policy { specific { versions: 1 } }",
    "default": "",
}


@pytest.fixture(scope="module")
def several(tmp_path_factory, exported):
    """One server of four models over versions 1-3, each with another version policy."""
    base = tmp_path_factory.mktemp("models") / "kdd"
    _publish(exported[0], base, 1, 2, 3)
    etc = tmp_path_factory.mktemp("etc")
    (etc / "models.config").write_text(_model_config(base, POLICIES))
    options = parse_flags(["--port=" + str(_free_port()), "--rest_api_port=" + str(_free_port()),
                           f"--model_config_file={etc / 'models.config'}"])
    with start_model_server(options, host="127.0.0.1") as server, \
            grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        yield server, channel, base


def test_each_model_serves_the_versions_of_its_policy(several, exported, rows):
    # tensorflow_serving/sources/storage_path/file_system_storage_path_source.cc.
    _, channel, _ = several
    scores = exported[1]
    served = {"every": [1, 2, 3], "newest-two": [2, 3], "first": [1], "default": [3]}
    for name, versions in served.items():
        assert _states(channel, name) == [(v, AVAILABLE) for v in versions]
        _check_answer(channel, rows, scores, name, max(versions))  # no version: the latest
        for version in versions:
            _check_answer(channel, rows, scores, name, version, version=version)
    error = _rpc_error(lambda: _predict(channel, rows, "newest-two", version=1))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert "Servable not found for request: Specific(newest-two, 1)" in error.details()


def test_labels_route_grpc_and_rest_requests_and_move_on_reload(several, exported, rows):
    # tensorflow_serving/model_servers/server_core.cc (labels, ReloadConfig) and
    # model_service_impl.cc (HandleReloadConfigRequest).
    server, channel, base = several
    scores = exported[1]
    labelled = {**POLICIES, "every": POLICIES["every"]
                + ' version_labels { key: "stable" value: 1 }'
                + ' version_labels { key: "canary" value: 2 }'}
    assert _reload(channel, _model_config(base, labelled)).status.error_code == 0
    _check_answer(channel, rows, scores, "every", 1, label="stable")
    _check_answer(channel, rows, scores, "every", 2, label="canary")
    status, body = rest_call(server.rest_port, "POST", "/v1/models/every/labels/canary:predict",
                         {"instances": rows.tolist()})
    assert status == 200
    np.testing.assert_allclose([p["score"] for p in body["predictions"]], scores[2], rtol=1e-5)

    labelled["every"] = labelled["every"].replace("value: 1", "value: 3")
    _reload(channel, _model_config(base, labelled))
    _check_answer(channel, rows, scores, "every", 3, label="stable")
    status, body = rest_call(server.rest_port, "POST", "/v1/models/every/labels/stable:predict",
                         {"inputs": {"x": rows.tolist()}})
    np.testing.assert_allclose(body["outputs"]["score"], scores[3], rtol=1e-5)


def test_a_reload_other_than_a_model_config_list_is_refused(several):
    # tensorflow_serving/model_servers/model_service_impl.cc (HandleReloadConfigRequest).
    _, channel, _ = several
    request = model_management_pb2.ReloadConfigRequest()
    request.config.custom_model_config.type_url = "type.example/Custom"
    stub = model_service_pb2_grpc.ModelServiceStub(channel)
    error = _rpc_error(lambda: stub.HandleReloadConfigRequest(request, timeout=30))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == ("ServerModelConfig type not supported by "
                               "HandleReloadConfigRequest. Only ModelConfigList is currently "
                               "supported")


def test_an_unknown_label_is_invalid_argument_in_grpc_andrest_call(several, rows):
    # tensorflow_serving/model_servers/server_core.cc (GetModelVersionForLabel).
    server, channel, _ = several
    error = _rpc_error(lambda: _predict(channel, rows, "first", label="nope"))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == "Unrecognized servable version label: nope"
    status, body = rest_call(server.rest_port, "POST", "/v1/models/first/labels/nope:predict",
                         {"instances": rows.tolist()})
    assert (status, body["error"]) == (400, "Unrecognized servable version label: nope")


def test_a_label_on_a_version_not_available_is_refused_and_nothing_changes(several, exported,
                                                                          rows):
    # tensorflow_serving/model_servers/server_core.cc (UpdateModelVersionLabelMap).
    _, channel, base = several
    bad = {**POLICIES, "first": POLICIES["first"] + ' version_labels { key: "next" value: 2 }'}
    error = _rpc_error(lambda: _reload(channel, _model_config(base, bad)))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error.details() == ("Request to assign label to version 2 of model first, which is "
                               "not currently available for inference")
    assert _states(channel, "first") == [(1, AVAILABLE)]
    assert _rpc_error(lambda: _predict(channel, rows, "first", label="next")).code() == (
        grpc.StatusCode.INVALID_ARGUMENT)


def test_a_model_left_out_of_the_config_is_unloaded_and_one_added_is_loaded(tmp_path, exported,
                                                                           rows):
    # tensorflow_serving/model_servers/server_core.cc (AddModelsViaModelConfigList).
    base = tmp_path / "kdd"
    _publish(exported[0], base, 1, 2)
    # A model added by a later config is listed by the next poll (file_system_storage_path_
    # source.cc UpdateConfig lists nothing itself), which 0 would never run.
    registry = ModelRegistry(file_system_poll_wait_seconds=0.05)
    for models in ({"old": ""}, {"new": POLICIES["first"]}):
        registry.reload_config(text_format.Parse(_model_config(base, models),
                                                 model_server_config_pb2.ModelServerConfig()))
    try:
        assert list(registry) == ["new"]
        assert registry["new"].servable(None).version == 1
        assert {v: s.state for v, s in registry.version_states("old").items()} == {2: END}
    finally:
        registry.stop()


def test_allowing_labels_for_unavailable_models_lets_new_labels_but_not_moves(tmp_path,
                                                                             exported):
    # tensorflow_serving/model_servers/server_core.cc, with
    # --allow_version_labels_for_unavailable_models (model_servers/main.cc).
    base = tmp_path / "kdd"
    _publish(exported[0], base, 1)
    registry = ModelRegistry(0, allow_version_labels_for_unavailable_models=True)

    def config(labels: str) -> model_server_config_pb2.ModelServerConfig:
        return text_format.Parse(_model_config(base, {"m": POLICIES["every"] + labels}),
                                 model_server_config_pb2.ModelServerConfig())

    try:
        # At startup nothing is loaded yet: without the flag this label would fail.
        registry.reload_config(config(' version_labels { key: "stable" value: 1 }'))
        registry.reload_config(config(' version_labels { key: "stable" value: 1 }'
                                      ' version_labels { key: "canary" value: 2 }'))
        assert registry.labels("m") == {"stable": 1, "canary": 2}
        with pytest.raises(ServingError) as info:
            registry.reload_config(config(' version_labels { key: "stable" value: 2 }'))
        assert info.value.code == grpc.StatusCode.FAILED_PRECONDITION
        assert registry.labels("m") == {"stable": 1, "canary": 2}
    finally:
        registry.stop()


def _config(text: str) -> model_server_config_pb2.ModelServerConfig:
    return text_format.Parse(text, model_server_config_pb2.ModelServerConfig())


def test_the_registry_is_available_only_when_every_listed_model_serves(tmp_path, exported):
    # server_core.cc: the server reports ready once every model of the config has a
    # version serving; a model whose base path has no version yet holds it back, and the
    # config load waits for it (WaitUntilModelsAvailable).
    base = tmp_path / "kdd"
    _publish(exported[0], base, 1)
    registry = ModelRegistry(0.05)
    seen = []
    registry.add_listener(seen.append)
    config = _config(_model_config(base, {"served": "", "waiting": ""}))
    config.model_config_list.config[1].base_path = str(tmp_path / "waiting")
    (tmp_path / "waiting").mkdir()  # a base path that does not exist would hold "served" too
    loading = futures.ThreadPoolExecutor(1).submit(registry.reload_config, config)
    try:
        wait_for(lambda: "served" in registry and registry["served"].available, timeout=60)
        assert registry.available is False and not loading.done()
        _publish(exported[0], tmp_path / "waiting", 2)
        loading.result(timeout=60)
        assert registry.available is True
        assert seen[0] is False and seen[-1] is True
    finally:
        registry.stop()


# ------------------------------------------- the registry without a SavedModel


@pytest.fixture
def stand_in(monkeypatch):
    monkeypatch.setattr(model_manager, "Servable", StandInServable)


def _models(tmp_path: pathlib.Path, *names: str):
    """A model_config_list of models sharing a base path with version 1 (a stand-in loads it)."""
    (tmp_path / "kdd" / "1").mkdir(parents=True, exist_ok=True)
    return _config(_model_config(tmp_path / "kdd", dict.fromkeys(names, "")))


def test_a_base_path_that_does_not_exist_leaves_every_model_without_new_versions(
        tmp_path, stand_in):
    """FileSystemStoragePathSource::PollFileSystemAndInvokeCallback
    (sources/storage_path/file_system_storage_path_source.cc) lists the config's base
    paths in order (PollFileSystemForConfig) and returns at the first that does not exist
    (PollFileSystemForServable: "Could not find base path ..."): no model takes that
    listing, and the polling thread logs "FileSystemStoragePathSource encountered a
    filesystem access error: <message>"."""
    for name in ("a", "b"):
        (tmp_path / name / "1").mkdir(parents=True)
    gone = tmp_path / "gone"
    config = _config("model_config_list { " + "".join(
        f'config {{ name: "{name}" base_path: "{tmp_path / name}" model_platform: "tensorflow" }} '
        for name in ("a", "gone", "b")) + "}")
    registry = ModelRegistry(0.05)
    failed = _LogEvent("FileSystemStoragePathSource encountered a filesystem access error: "
                       f"Could not find base path {gone} for servable gone with error NOT_FOUND")
    logger = logging.getLogger("memae_tf.serving.model_manager")
    logger.addHandler(failed)

    def two_listings_fail() -> None:
        failed.event.clear()
        assert failed.event.wait(60), "no listing failed"
        failed.event.clear()
        assert failed.event.wait(60), "no second listing failed"

    loading = futures.ThreadPoolExecutor(1).submit(registry.reload_config, config)
    try:
        two_listings_fail()
        assert not loading.done()
        assert [registry[name].available_versions for name in ("a", "gone", "b")] == [[]] * 3
        (gone / "4").mkdir(parents=True)
        loading.result(timeout=60)
        assert [registry[name].available_versions for name in ("a", "gone", "b")] == [
            [1], [4], [1]]
        # Once serving, a base path that disappears holds back the other models' new
        # versions; the versions loaded serve on.
        shutil.rmtree(gone)
        (tmp_path / "b" / "2").mkdir()
        two_listings_fail()
        assert [registry[name].available_versions for name in ("a", "gone", "b")] == [
            [1], [4], [1]]
        gone.mkdir()  # back, empty: its versions unload and b takes version 2
        wait_for(lambda: registry["b"].available_versions == [2], timeout=60)
        assert registry["gone"].available_versions == []
    finally:
        logger.removeHandler(failed)
        registry.stop()


def test_a_reload_changes_a_model_at_the_next_listing_and_never_without_polling(
        tmp_path, stand_in):
    """ServerCore::ReloadConfig hands a model's new version policy to
    FileSystemStoragePathSource::UpdateConfig (file_system_storage_path_source.cc), which
    lists nothing: the next poll does. With file_system_poll_wait_seconds = 0 the source
    polls once, on its one-shot thread, so the change never takes effect."""
    for version in (1, 2):
        (tmp_path / "kdd" / str(version)).mkdir(parents=True)

    def config(version: int) -> model_server_config_pb2.ModelServerConfig:
        return _config(_model_config(
            tmp_path / "kdd",
            {"m": f"model_version_policy {{ specific {{ versions: {version} }} }}"}))

    once, polling = ModelRegistry(0), ModelRegistry(0.05)
    try:
        for registry in (once, polling):
            registry.reload_config(config(1))
            assert registry["m"].available_versions == [1]
            registry.reload_config(config(2))
        wait_for(lambda: polling["m"].available_versions == [2], timeout=60)
        time.sleep(0.5)  # ten listings of the polling registry
        assert once["m"].available_versions == [1]
    finally:
        once.stop()
        polling.stop()


def test_the_registry_defaults_are_tf_servings_server_options():
    # model_servers/server.h Server::Options: file_system_poll_wait_seconds = 1,
    # allow_version_labels_for_unavailable_models = false, enable_model_warmup = true.
    registry = ModelRegistry()
    assert registry.file_system_poll_wait_seconds == 1
    assert registry.allow_version_labels_for_unavailable_models is False
    assert registry.enable_model_warmup is True


def test_the_config_is_none_before_the_first_and_a_copy_of_the_last_after(tmp_path,
                                                                          stand_in):
    registry = ModelRegistry(0)
    assert registry.config is None
    config = _models(tmp_path, "a", "b")
    registry.reload_config(config)
    try:
        copy = registry.config
        assert copy == config
        copy.model_config_list.config[0].name = "changed"
        assert registry.config == config
        assert (len(registry), list(registry)) == (2, ["a", "b"])
        assert registry.available is True  # the load waited for each model's version
    finally:
        registry.stop()


def test_a_platform_the_server_lacks_is_refused_after_the_config_is_taken(tmp_path, stand_in):
    # server_core.cc ReloadConfig: ValidateModelConfigList and ValidateNoModelsChangePlatforms
    # come before `config_ = new_config`; CreateStoragePathRoutes refuses the platform after
    # it (in AddModelsViaModelConfigList), so the refused list is the config now and no
    # model of it is added.
    registry = ModelRegistry(0)
    registry.reload_config(_models(tmp_path, "a"))
    try:
        refused = _models(tmp_path, "a", "b")
        refused.model_config_list.config[1].model_platform = "tflite"
        with pytest.raises(ServingError) as info:
            registry.reload_config(refused)
        assert (info.value.code, info.value.message) == (
            grpc.StatusCode.INVALID_ARGUMENT, "Model b requests unsupported platform tflite")
        assert registry.config == refused and list(registry) == ["a"]
        changed = _models(tmp_path, "a")
        changed.model_config_list.config[0].model_platform = "tflite"
        with pytest.raises(ServingError, match="Illegal to change a model's platform"):
            registry.reload_config(changed)
        assert registry.config == refused  # refused before it was taken
    finally:
        registry.stop()


def test_only_a_model_config_list_may_follow_a_model_config_list(tmp_path, stand_in):
    # server_core.cc ReloadConfig: a transition is accepted from no config, to the same
    # config, or from one ModelConfigList to another; else FAILED_PRECONDITION.
    registry = ModelRegistry(0.05)
    registry.reload_config(_config(""))  # an empty first config: no action, still first
    assert registry.config is None
    config = _models(tmp_path, "a")
    registry.reload_config(config)
    try:
        custom = _config('custom_model_config { type_url: "type.example/Custom" }')
        for refused in (custom, _config("")):
            with pytest.raises(ServingError) as info:
                registry.reload_config(refused)
            assert info.value.code == grpc.StatusCode.FAILED_PRECONDITION
            assert info.value.message == ("Cannot transition to requested config. It is only "
                                          "legal to transition from one ModelConfigList to "
                                          "another.")
        assert registry.config == config
        registry.reload_config(config)  # the same config again
        registry.reload_config(_models(tmp_path, "b"))
        assert list(registry) == ["b"]
    finally:
        registry.stop()


def test_states_of_a_model_never_listed_are_not_found_with_tf_servings_messages(tmp_path):
    # get_model_status_impl.cc: "Could not find version <v> of model <name>" when a
    # version is asked, "Could not find any versions of model <name>" when none is: also
    # for a model listed whose config load still waits for a version (server_core.cc).
    registry = ModelRegistry(0.05)
    polled = _LogEvent("No versions of servable a found under base path")
    logging.getLogger("memae_tf.serving.model_manager").addHandler(polled)
    (tmp_path / "kdd").mkdir()
    loading = futures.ThreadPoolExecutor(1).submit(registry.reload_config,
                                                   _config(_model_config(tmp_path / "kdd",
                                                                         {"a": ""})))
    try:
        assert polled.event.wait(60), "the base path was not listed"
        for model, version, message in (
                ("ghost", 3, "Could not find version 3 of model ghost"),
                ("ghost", None, "Could not find any versions of model ghost"),
                ("a", None, "Could not find any versions of model a")):
            with pytest.raises(ServingError) as info:
                registry.version_states(model, version)
            assert (info.value.code, info.value.message) == (grpc.StatusCode.NOT_FOUND, message)
        assert not loading.done()
    finally:
        registry.stop()
        logging.getLogger("memae_tf.serving.model_manager").removeHandler(polled)
    assert loading.exception(timeout=60).code == grpc.StatusCode.CANCELLED


class _LogEvent(logging.Handler):
    """Sets `event` when a record of `logger_name` holding `text` is emitted."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text, self.event = text, threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage():
            self.event.set()


def test_polling_the_config_file_takes_each_new_config(tmp_path, stand_in):
    # server.cc: with --model_config_file_poll_wait_seconds > 0 the file is re-read on a
    # PeriodicFunction thread (PollFilesystemAndReloadConfig), which never holds the
    # process open.
    path = tmp_path / "models.config"
    _write_config(path, text_format.MessageToString(_models(tmp_path, "a")))
    registry = ModelRegistry(0.05)
    registry.reload_config_file(path)
    taken = threading.Event()
    registry.add_listener(lambda available: "b" in registry and taken.set())
    registry.poll_config_file(path, 0.01)
    try:
        assert [t.daemon for t in threading.enumerate() if t.name == "poll-config"] == [True]
        _write_config(path, text_format.MessageToString(_models(tmp_path, "b")))
        assert taken.wait(60), "the new config was not taken"
        assert list(registry) == ["b"]
        wait_for(lambda: registry.available, timeout=60)
    finally:
        registry.stop()


def test_polling_logs_a_refused_config_and_serves_on_unchanged(tmp_path, stand_in):
    # server.cc PollFilesystemAndReloadConfig: a failed ReloadConfig is logged (LOG(ERROR))
    # and the models stay as they were.
    path = tmp_path / "models.config"
    _write_config(path, text_format.MessageToString(_models(tmp_path, "a")))
    registry = ModelRegistry(0)
    registry.reload_config_file(path)
    config = registry.config
    logged = _LogEvent("Failed to reload")
    logging.getLogger("memae_tf.serving.model_registry").addHandler(logged)
    _write_config(path, 'custom_model_config { type_url: "type.example/Custom" }')
    registry.poll_config_file(path, 0.01)
    try:
        assert logged.event.wait(60), "the refused config was not logged"
        assert registry.config == config and list(registry) == ["a"]
    finally:
        registry.stop()
        logging.getLogger("memae_tf.serving.model_registry").removeHandler(logged)


def test_polling_needs_a_positive_wait(tmp_path):
    registry = ModelRegistry(0)
    for wait in (0, -1, float("nan")):
        with pytest.raises(ValueError, match=r"expected a positive number of seconds. "
                                             rf"Received: wait_seconds={wait!r}"):
            registry.poll_config_file(tmp_path / "models.config", wait)
    registry.poll_config_file(tmp_path / "models.config", 0.5)  # a fraction of a second
    registry.stop()


# ------------------------------------------------------------- the canary


def test_canary_rollout_promotion_and_rollback_by_models_config_edits(tmp_path, exported, rows):
    """Publish version 2, label it canary, promote it to stable, roll back: all by editing
    models.config, which the server re-reads every --model_config_file_poll_wait_seconds
    (tensorflow_serving/model_servers/server.cc, server_core.cc)."""
    base, etc = tmp_path / "models" / "memae", tmp_path / "etc"
    etc.mkdir()
    config = etc / "models.config"
    stable_model, canary_model = small_model(SEEDS[1]), small_model(SEEDS[2])
    scores = {1: exported[1][1], 2: reference_outputs(canary_model, rows)["score"]}
    export_saved_model(stable_model, base, threshold=0.1, version=1)

    def edit(versions: str, labels: dict[str, int]) -> None:
        text = "".join(f' version_labels {{ key: "{k}" value: {v} }}' for k, v in labels.items())
        _write_config(config, _model_config(
            base, {"memae": f"model_version_policy {{ specific {{ {versions} }} }}{text}"}))

    def answers(label: str) -> int:
        return _answer(channel, rows, "memae", label=label)[0]

    def label_points(label: str, version: int) -> bool:
        try:
            return answers(label) == version
        except grpc.RpcError:  # not yet re-read
            return False

    edit("versions: 1", {})
    flags = [f"--port={_free_port()}", f"--model_config_file={config}",
             "--model_config_file_poll_wait_seconds=1", "--file_system_poll_wait_seconds=1"]
    with start_model_server(parse_flags(flags), host="127.0.0.1") as server, \
            grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        _check_answer(channel, rows, scores, "memae", 1)
        edit("versions: 1", {"stable": 1})
        wait_for(lambda: label_points("stable", 1), timeout=30)
        # A file that does not parse is logged and the models serve on unchanged
        # (server.cc, PollFilesystemAndReloadConfig); two polls pass.
        _write_config(config, "model_config_list { config { name: ")
        time.sleep(2.5)
        _check_answer(channel, rows, scores, "memae", 1, label="stable")

        # Publish version 2 (the exporter writes a hidden directory, then renames it).
        export_saved_model(canary_model, base, threshold=0.1, version=2)
        # Serve both: a label may only point at a loaded version, so the policy
        # comes first and the canary label in the next edit.
        edit("versions: 1 versions: 2", {"stable": 1})
        wait_for(lambda: (2, AVAILABLE) in _states(channel, "memae"), timeout=30)
        edit("versions: 1 versions: 2", {"stable": 1, "canary": 2})
        wait_for(lambda: label_points("canary", 2), timeout=30)
        # A share of the traffic goes to the canary; each answer names its version.
        for label in ["stable", "canary", "stable", "stable", "canary"]:
            _check_answer(channel, rows, scores, "memae", {"stable": 1, "canary": 2}[label],
                          label=label)
        _check_answer(channel, rows, scores, "memae", 2)  # no label: the latest

        edit("versions: 1 versions: 2", {"stable": 2, "canary": 2})  # promote
        wait_for(lambda: label_points("stable", 2), timeout=30)
        _check_answer(channel, rows, scores, "memae", 2, label="stable")

        edit("versions: 1 versions: 2", {"stable": 1, "canary": 2})  # roll back
        wait_for(lambda: label_points("stable", 1), timeout=30)
        _check_answer(channel, rows, scores, "memae", 1, label="stable")
        _check_answer(channel, rows, scores, "memae", 2, label="canary")
        assert _states(channel, "memae") == [(1, AVAILABLE), (2, AVAILABLE)]


# -------------------------------------------------------------------- TLS


def _self_signed(folder: pathlib.Path, name: str) -> tuple[str, str]:
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "1", "-subj", f"/CN={name}",
         "-addext", f"subjectAltName=DNS:{name}", "-keyout", str(folder / f"{name}.key"),
         "-out", str(folder / f"{name}.pem")],
        check=True, capture_output=True, timeout=60,
    )
    return (folder / f"{name}.key").read_text(), (folder / f"{name}.pem").read_text()


def test_ssl_config_file_serves_mutual_tls_on_the_grpc_port(tmp_path, exported, rows):
    # tensorflow_serving/model_servers/server.cc (BuildServerCredentials): SSLConfig
    # holds PEM text; client_verify requires a client certificate signed by custom_ca.
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make test certificates")
    server_key, server_cert = _self_signed(tmp_path, "localhost")
    client_key, client_cert = _self_signed(tmp_path, "client")  # its own CA
    ssl_config = tmp_path / "ssl.config"
    ssl_config.write_text(text_format.MessageToString(
        SSLConfig(server_key=server_key, server_cert=server_cert, custom_ca=client_cert,
                  client_verify=True)))
    base, scores = exported
    flags = [f"--port={_free_port()}", f"--model_base_path={base}", "--model_name=kdd",
             f"--ssl_config_file={ssl_config}"]
    with start_model_server(parse_flags(flags), host="127.0.0.1") as server:
        target = f"localhost:{server.port}"
        trusted = grpc.ssl_channel_credentials(
            root_certificates=server_cert.encode(), private_key=client_key.encode(),
            certificate_chain=client_cert.encode())
        with grpc.secure_channel(target, trusted) as channel:
            _check_answer(channel, rows, scores, "kdd", 3)
        anonymous = grpc.ssl_channel_credentials(root_certificates=server_cert.encode())
        with grpc.secure_channel(target, anonymous) as channel:
            assert _rpc_error(lambda: _predict(channel, rows, "kdd")).code() == (
                grpc.StatusCode.UNAVAILABLE)


# ------------------------------------------------------ --enable_model_warmup


def _broken_warmup_flags(tmp_path: pathlib.Path, exported) -> list[str]:
    """Flags serving version 1 whose warmup file is no TFRecord file; one try per load."""
    _publish(exported[0], tmp_path / "kdd", 1)
    warmup = tmp_path / "kdd" / "1" / "assets.extra" / "tf_serving_warmup_requests"
    assert warmup.is_file()
    warmup.write_bytes(b"not a TFRecord file")
    return [f"--port={_free_port()}", f"--model_base_path={tmp_path / 'kdd'}",
            "--model_name=kdd", "--max_num_load_retries=0"]


def test_a_broken_warmup_file_fails_the_load_by_default(tmp_path, exported):
    # saved_model_bundle_source_adapter.cc: with enable_model_warmup (server.h default
    # true) the load runs RunSavedModelWarmup, whose error fails it; the server does not
    # start (load_servables_fast.cc ConnectSourcesWithFastInitialLoad).
    with pytest.raises(ServingError) as info:
        start_model_server(parse_flags(_broken_warmup_flags(tmp_path, exported)),
                           host="127.0.0.1")
    assert info.value.code == grpc.StatusCode.UNKNOWN
    assert info.value.message.startswith("1 servable(s) did not become available: "
                                         "{{{name: kdd version: 1} due to error: ")


def test_without_model_warmup_the_warmup_file_is_not_read_and_the_version_serves(
        tmp_path, exported, rows):
    # saved_model_bundle_source_adapter.cc GetServableCreator: with --enable_model_warmup=false
    # RunSavedModelWarmup is not called, so the file is never opened.
    flags = [*_broken_warmup_flags(tmp_path, exported), "--enable_model_warmup=false"]
    with start_model_server(parse_flags(flags), host="127.0.0.1") as server, \
            grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        _check_answer(channel, rows, exported[1], "kdd", 1)


@pytest.mark.parametrize(("flag", "iterations"), [
    ([], 1), (["--num_request_iterations_for_warmup=3"], 3),
    (["--num_request_iterations_for_warmup=0"], 1)])
def test_each_warmup_record_is_replayed_the_flags_number_of_times_in_a_row(
        tmp_path, exported, monkeypatch, flag, iterations):
    # saved_model_warmup_util.cc RunSavedModelWarmup: each record's request runs
    # num_request_iterations times before the next record is read, once when the option is
    # unset; server.cc sets it from --num_request_iterations_for_warmup only when > 0.
    from memae_tf.serving.servable import Servable

    flags = [f"--port={_free_port()}", *_one_version(tmp_path, exported), *flag]
    records = tf.data.TFRecordDataset(str(tmp_path / "kdd" / "1" / "assets.extra" /
                                          "tf_serving_warmup_requests"))
    signatures = [prediction_log_pb2.PredictionLog.FromString(record.numpy())
                  .predict_log.request.model_spec.signature_name for record in records]
    assert len(set(signatures)) > 1  # the order shows
    replayed, run = [], Servable.run

    def recorded(self, signature_name, *args, **kwargs):  # each signature run
        replayed.append(signature_name)
        return run(self, signature_name, *args, **kwargs)

    monkeypatch.setattr(Servable, "run", recorded)
    with start_model_server(parse_flags(flags), host="127.0.0.1"):
        pass
    assert replayed == [name for name in signatures for _ in range(iterations)]


# ------------------------------------------------------- --grpc_max_threads


def _status_of_no_model(channel) -> grpc.RpcError:
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = "default"
    stub = model_service_pb2_grpc.ModelServiceStub(channel)
    return _rpc_error(lambda: stub.GetModelStatus(request, timeout=30))


@pytest.mark.parametrize(("threads", "code", "message"), [
    # server.cc sets the flag as ResourceQuota::SetMaxThreads; with one thread the sync
    # server's only poller finds no thread for the work (thread_manager.cc
    # ThreadManager::MainWorkLoop): server_cc.cc answers "Server Threadpool Exhausted".
    (1, grpc.StatusCode.RESOURCE_EXHAUSTED, "Server Threadpool Exhausted"),
    # With two, the RPC runs: a model without versions is NOT_FOUND
    # (get_model_status_impl.cc).
    (2, grpc.StatusCode.NOT_FOUND, "Could not find any versions of model default"),
])
def test_grpc_max_threads_sizes_the_grpc_server_as_tf_servings_thread_quota(
        tmp_path, exported, caplog, threads, code, message):
    flags = [f"--port={_free_port()}", *_one_version(tmp_path, exported),
             f"--grpc_max_threads={threads}"]
    with caplog.at_level(logging.WARNING, logger="memae_tf.serving.server"), \
            start_model_server(parse_flags(flags), host="127.0.0.1") as server, \
            grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        error = _status_of_no_model(channel)
    assert (error.code(), error.details()) == (code, message)
    assert ("every RPC is answered RESOURCE_EXHAUSTED" in caplog.text) is (threads == 1)


def test_the_thread_quota_runs_one_rpc_less_than_its_threads_and_refuses_the_next():
    # thread_manager.cc ThreadManager::MainWorkLoop: a poller that takes work leaves no
    # poller behind once the quota is spent, and that work is answered RESOURCE_EXHAUSTED
    # instead of waiting; a thread freed takes the next RPC.
    from memae_tf.serving.server import _GrpcThreadQuota

    entered, release = threading.Semaphore(0), threading.Event()

    def hold(request, context):
        entered.release()
        release.wait(30)
        return request

    handler = grpc.method_handlers_generic_handler(
        "test.Hold", {"Hold": grpc.unary_unary_rpc_method_handler(hold)})
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=3),
                         interceptors=[_GrpcThreadQuota(3)], handlers=[handler])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            call = channel.unary_unary("/test.Hold/Hold")
            running = [call.future(b"a", timeout=30), call.future(b"b", timeout=30)]
            assert entered.acquire(timeout=30) and entered.acquire(timeout=30)
            error = _rpc_error(lambda: call(b"c", timeout=30))
            assert (error.code(), error.details()) == (
                grpc.StatusCode.RESOURCE_EXHAUSTED, "Server Threadpool Exhausted")
            release.set()
            assert [future.result() for future in running] == [b"a", b"b"]
            assert call(b"d", timeout=30) == b"d"
    finally:
        server.stop(None)


# ------------------------------------------------- --grpc_channel_arguments


@pytest.mark.parametrize(("text", "arguments"), [
    ("", []),
    ("grpc.max_connection_age_ms=2000", [("grpc.max_connection_age_ms", 2000)]),
    ("a=1,b=x", [("a", 1), ("b", "x")]),
    ("a= +7 ", [("a", 7)]),  # absl::SimpleAtoi: spaces around and a sign are taken
    ("a=-2147483648", [("a", -2147483648)]),
    ("a=2147483648", [("a", "2147483648")]),  # no int32: passed as a string
    ("a=0x10", [("a", "0x10")]),
    ("a=b=c", [("a", "b")]),  # str_util::Split at every '=': key_val[1] only
    ("a=", [("a", "")]),
])
def test_channel_arguments_are_split_and_typed_as_tf_serving_reads_them(text, arguments):
    # model_servers/server.cc parseGrpcChannelArgs and BuildAndStart (an int32 value via
    # AddChannelArgument(key, int), any other as a string).
    from memae_tf.serving.server import _channel_arguments

    assert _channel_arguments(text) == arguments


@pytest.mark.parametrize("text", ["grpc.max_connection_age_ms", "a=1,", ",a=1"])
def test_a_channel_argument_without_a_value_is_refused_at_start(text):
    # server.cc reads key_val[1] unchecked, past the end for these pieces.
    with pytest.raises(ServingError) as info:
        start_model_server(parse_flags(["--model_base_path=/m/a",
                                        f"--grpc_channel_arguments={text}"]))
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "is not key=value" in info.value.message


def test_channel_arguments_reach_the_grpc_server_over_its_message_limit(tmp_path, exported):
    # server.cc passes each argument to ServerBuilder::AddChannelArgument: a receive limit
    # among them applies (gRPC releases whose ServerBuilder::BuildAndStart sets its own
    # limit, server.cc SetMaxMessageSize, after the options keep the first value), so a
    # request larger than 64 bytes is refused by gRPC itself.
    flags = [f"--port={_free_port()}", *_one_version(tmp_path, exported),
             "--grpc_channel_arguments=grpc.max_receive_message_length=64"]
    with start_model_server(parse_flags(flags), host="127.0.0.1") as server, \
            grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        stub = model_service_pb2_grpc.ModelServiceStub(channel)
        small = get_model_status_pb2.GetModelStatusRequest()
        small.model_spec.name = "default"
        large = get_model_status_pb2.GetModelStatusRequest()
        large.model_spec.name = "m" * 100
        assert _rpc_error(lambda: stub.GetModelStatus(small, timeout=30)).code() == (
            grpc.StatusCode.NOT_FOUND)
        error = _rpc_error(lambda: stub.GetModelStatus(large, timeout=30))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "vs. 64" in error.details()


# ----------------------------------------- --enable_grpc_healthcheck_service


def _health(channel, service: str):
    request = health_pb2.HealthCheckRequest(service=service)
    return health_pb2_grpc.HealthStub(channel).Check(request, timeout=30).status


def test_without_the_healthcheck_flag_there_is_no_health_service(tmp_path, exported):
    # server.cc: EnableDefaultHealthCheckService(enable_grpc_healthcheck_service), false by
    # default (server.h): the method is not registered.
    flags = [f"--port={_free_port()}", *_one_version(tmp_path, exported)]
    with start_model_server(parse_flags(flags), host="127.0.0.1") as server, \
            grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        error = _rpc_error(lambda: _health(channel, ""))
    assert error.code() == grpc.StatusCode.UNIMPLEMENTED


def test_the_healthcheck_flag_serves_tf_servings_three_services_whatever_the_models(
        tmp_path, exported):
    # default_health_check_service.cc starts "" SERVING; server.cc sets "ModelService" and
    # "PredictionService" SERVING once ServerCore is built and never changes them: a
    # model whose versions are gone does not make them NOT_SERVING. grpc_max_threads=1
    # refuses every other RPC: the default health service does not run on the sync
    # server's threads.
    flags = [f"--port={_free_port()}", *_one_version(tmp_path, exported),
             "--enable_grpc_healthcheck_service", "--grpc_max_threads=1"]
    with start_model_server(parse_flags(flags), host="127.0.0.1") as server, \
            grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        shutil.rmtree(tmp_path / "kdd" / "1")
        wait_for(lambda: not server.models["kdd"].available, timeout=60)
        statuses = [_health(channel, name) for name in ("", "ModelService", "PredictionService")]
        unknown = _rpc_error(lambda: _health(channel, "tensorflow.serving.PredictionService"))
        assert _status_of_no_model(channel).code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert statuses == [health_pb2.HealthCheckResponse.SERVING] * 3
    assert unknown.code() == grpc.StatusCode.NOT_FOUND


# -------------------------------------------------- --rest_api_enable_cors_support


@pytest.mark.parametrize(("flag", "origin"), [
    ([], None), (["--rest_api_enable_cors_support"], "*")])
def test_the_cors_flag_reaches_the_rest_port(tmp_path, exported, flag, origin):
    # server.cc copies enable_cors_support to ServerCore, which http_server.cc reads.
    flags = [f"--port={_free_port()}", f"--rest_api_port={_free_port()}",
             *_one_version(tmp_path, exported), *flag]
    with start_model_server(parse_flags(flags), host="127.0.0.1") as server:
        request = urllib.request.Request(f"http://127.0.0.1:{server.rest_port}/v1/models/default")
        with pytest.raises(urllib.error.HTTPError) as info:  # no such model: 404
            urllib.request.urlopen(request, timeout=30)
    assert info.value.code == 404
    assert info.value.headers.get("Access-Control-Allow-Origin") == origin


# --------------------------------------------- --enable_signature_method_name_check


@pytest.fixture(scope="module")
def custom_method(tmp_path_factory, exported) -> pathlib.Path:
    """Version 1 whose serving_default SignatureDef has method_name 'custom/score'."""
    base = tmp_path_factory.mktemp("custom_method") / "kdd"
    _publish(exported[0], base, 1)
    path = base / "1" / "saved_model.pb"
    saved_model = saved_model_pb2.SavedModel.FromString(path.read_bytes())
    saved_model.meta_graphs[0].signature_def["serving_default"].method_name = "custom/score"
    path.write_bytes(saved_model.SerializeToString())
    return base


def test_the_method_name_check_refuses_a_predict_on_another_method(custom_method, rows):
    # predict_util.cc PreProcessPrediction -> VerifySignature, on with server.cc
    # SetSignatureMethodNameCheckFeature(--enable_signature_method_name_check): INTERNAL.
    # Without warmup: the export's warmup record on serving_default would fail the load.
    flags = [f"--port={_free_port()}", f"--model_base_path={custom_method}",
             "--model_name=kdd", "--enable_signature_method_name_check",
             "--enable_model_warmup=false"]
    with start_model_server(parse_flags(flags), host="127.0.0.1") as server, \
            grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        error = _rpc_error(lambda: _predict(channel, rows, "kdd"))
    assert (error.code(), error.details()) == (
        grpc.StatusCode.INTERNAL,
        "Expected prediction signature method_name to be one of {tensorflow/serving/predict, "
        "tensorflow/serving/classify, tensorflow/serving/regress}. Was: custom/score")


def test_the_method_name_check_fails_a_warmup_record_on_another_method(custom_method):
    # util.cc: the check is process-wide, so saved_model_warmup.cc's RunPredict of the
    # export's serving_default record fails VerifySignature, the load fails and the server
    # does not start (load_servables_fast.cc ConnectSourcesWithFastInitialLoad).
    flags = [f"--port={_free_port()}", f"--model_base_path={custom_method}",
             "--model_name=kdd", "--enable_signature_method_name_check",
             "--max_num_load_retries=0"]
    with pytest.raises(ServingError) as info:
        start_model_server(parse_flags(flags), host="127.0.0.1")
    assert (info.value.code, info.value.message) == (
        grpc.StatusCode.UNKNOWN,
        "1 servable(s) did not become available: {{{name: kdd version: 1} due to error: "
        "INTERNAL: Expected prediction signature method_name to be one of "
        "{tensorflow/serving/predict, tensorflow/serving/classify, "
        "tensorflow/serving/regress}. Was: custom/score}, }")


@pytest.mark.parametrize("check", [False, True], ids=["no check", "method name check"])
def test_a_predict_on_the_init_op_signature_is_refused_after_its_lookup(
        tmp_path, exported, rows, check):
    # predict_util.cc RunPredict finds __saved_model_init_op in the MetaGraph; then
    # PreProcessPrediction: VerifySignature (its method_name is empty: INTERNAL) under the
    # flag, else VerifyRequestInputsSize refuses the `x` it has no input for.
    _publish(exported[0], tmp_path / "kdd", 1)
    flags = [f"--port={_free_port()}", f"--model_base_path={tmp_path / 'kdd'}",
             "--model_name=kdd", *(["--enable_signature_method_name_check"] if check else [])]
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "kdd"
    request.model_spec.signature_name = "__saved_model_init_op"
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(rows))
    with start_model_server(parse_flags(flags), host="127.0.0.1") as server, \
            grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        error = _rpc_error(lambda: stub.Predict(request, timeout=30))
    assert (error.code(), error.details()) == ((
        grpc.StatusCode.INTERNAL,
        "Expected prediction signature method_name to be one of {tensorflow/serving/predict, "
        "tensorflow/serving/classify, tensorflow/serving/regress}. Was: ") if check else (
        grpc.StatusCode.INVALID_ARGUMENT,
        "input size does not match signature: 1!=0 len({x}) != len({}). Sent extra: {x}. "
        "Missing but required: {}."))


def test_without_the_method_name_check_any_method_is_served(custom_method, exported, rows):
    # server.h: enable_signature_method_name_check = false ("Disable this if serving
    # native TF2 regression/classification models", main.cc).
    flags = [f"--port={_free_port()}", f"--model_base_path={custom_method}",
             "--model_name=kdd"]
    with start_model_server(parse_flags(flags), host="127.0.0.1") as server, \
            grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        _check_answer(channel, rows, exported[1], "kdd", 1)


# ---------------------------------------------------------- --grpc_socket_path


@pytest.mark.parametrize("tcp", [True, False])
def test_grpc_listens_on_the_unix_socket_too_or_only(tmp_path, exported, tcp):
    # server.cc BuildAndStart: AddListeningPort("unix:" + grpc_socket_path) with the port's
    # credentials, and the TCP port only when --port is not 0 (both unset is refused).
    socket_path = tmp_path / "grpc.sock"
    flags = [f"--port={_free_port() if tcp else 0}", f"--grpc_socket_path={socket_path}",
             *_one_version(tmp_path, exported)]
    with start_model_server(parse_flags(flags), host="127.0.0.1") as server:
        targets = [f"unix:{socket_path}"] + ([f"127.0.0.1:{server.port}"] if tcp else [])
        for target in targets:
            with grpc.insecure_channel(target) as channel:
                assert _status_of_no_model(channel).code() == grpc.StatusCode.NOT_FOUND
    assert (server.port is None) is not tcp


# ------------------------------------------------------- ports that do not bind


@pytest.fixture
def busy_port():
    """A loopback port another socket listens on (without SO_REUSEPORT)."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


def test_a_grpc_port_that_does_not_bind_fails_the_start_as_tf_serving(tmp_path, exported,
                                                                     busy_port):
    # server.cc BuildAndStart: no server from ServerBuilder::BuildAndStart is
    # INVALID_ARGUMENT "Failed to BuildAndStart gRPC server".
    flags = [f"--port={busy_port}", *_one_version(tmp_path, exported)]
    with pytest.raises(ServingError) as info:
        start_model_server(parse_flags(flags), host="127.0.0.1")
    assert (info.value.code, info.value.message) == (
        grpc.StatusCode.INVALID_ARGUMENT, "Failed to BuildAndStart gRPC server")


def test_a_rest_port_that_does_not_bind_is_logged_and_grpc_serves_alone(
        tmp_path, exported, busy_port, caplog):
    # server.cc BuildAndStart: LOG(ERROR) "Failed to start HTTP Server at ..." and OK.
    flags = [f"--port={_free_port()}", f"--rest_api_port={busy_port}",
             *_one_version(tmp_path, exported)]
    with caplog.at_level(logging.ERROR, logger="memae_tf.serving.server"), \
            start_model_server(parse_flags(flags), host="127.0.0.1") as server, \
            grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        assert _status_of_no_model(channel).code() == grpc.StatusCode.NOT_FOUND
    assert server.rest_port is None
    assert f"Failed to start HTTP Server at localhost:{busy_port}" in caplog.messages


# ------------------------------------------- --enable_serialization_as_tensor_content


@pytest.mark.parametrize("flag", [[], ["--enable_serialization_as_tensor_content"]])
def test_predict_outputs_fill_the_typed_fields_unless_tensor_content_is_asked(
        tmp_path, exported, rows, flag):
    # predict_util.cc PostProcessPredictionResult: Tensor::AsProtoField (float_val, bool_val,
    # ...) unless server.h's enable_serialization_as_tensor_content (default false), then
    # AsProtoTensorContent. A client that reads float_val works only with the default.
    base = tmp_path / "kdd"
    _publish(exported[0], base, 1)
    flags = [f"--port={_free_port()}", f"--model_base_path={base}", "--model_name=kdd", *flag]
    with start_model_server(parse_flags(flags), host="127.0.0.1") as server, \
            grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        response = _predict(channel, rows, "kdd")
    score, is_anomaly = response.outputs["score"], response.outputs["is_anomaly"]
    if flag:
        assert (list(score.float_val), list(is_anomaly.bool_val)) == ([], [])
        assert len(score.tensor_content) == 4 * len(rows)
    else:
        assert score.tensor_content == b"" and is_anomaly.tensor_content == b""
        assert len(score.float_val) == len(is_anomaly.bool_val) == len(rows)
    np.testing.assert_allclose(tf.make_ndarray(score), exported[1][1], rtol=1e-6)
