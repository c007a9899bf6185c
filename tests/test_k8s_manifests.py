"""Kubernetes manifests: schema-valid offline, and consistent with what `memae export` writes."""

import pathlib
import re

import kubernetes_validate
import pytest
import tensorflow as tf
import yaml
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from memae_tf.export import (
    BATCHING_PARAMETERS_FILENAME,
    DEFAULT_SERVING_ROOT,
    MODELS_CONFIG_FILENAME,
    BatchingParameters,
    write_models_config,
)

K8S = pathlib.Path(__file__).resolve().parents[1] / "serving" / "k8s"
KUBERNETES_VERSION = "1.33"
MANIFESTS = sorted(p.name for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


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


@pytest.mark.parametrize("manifest", MANIFESTS)
def test_manifest_is_valid_against_the_kubernetes_schema(manifest):
    for doc in _documents(manifest):
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


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


def test_readiness_probe_asks_tf_serving_for_the_model_status():
    (entry,) = _served_models()
    probe = _container()["readinessProbe"]["httpGet"]
    assert probe == {"path": f"/v1/models/{entry.name}", "port": "http"}
    assert "livenessProbe" in _container()


def test_prometheus_annotations_match_the_monitoring_config():
    annotations = _resource("Deployment", "memae-serving")["spec"]["template"]["metadata"][
        "annotations"]
    path = re.search(r'path:\s*"([^"]+)"', _config_map()["monitoring.config"])[1]
    assert annotations["prometheus.io/path"] == path
    assert annotations["prometheus.io/port"] == "8501"


def test_container_has_resource_requests_and_limits():
    resources = _container()["resources"]
    assert set(resources["requests"]) == set(resources["limits"]) == {"cpu", "memory"}


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
