"""Multi-worker training manifests (serving/k8s/training): valid offline, and coherent.

Built-in kinds (Job, Service, PersistentVolumeClaim) are validated strictly
against the Kubernetes schema. A TFJob is a Kubeflow custom resource, absent
from those schemas, so each of its replica pod templates is validated as a
core `PodTemplate`, and the rest of it against the fields of the
`kubeflow.org/v1` TFJob CRD that the training operator reads.
"""

import argparse
import json
import pathlib
import re

import kubernetes_validate
import pytest
import yaml

from memae_tf import cli

TRAINING = pathlib.Path(__file__).resolve().parents[1] / "serving" / "k8s" / "training"
KUBERNETES_VERSION = "1.33"
MANIFESTS = sorted(p.name for p in TRAINING.glob("*.yaml"))

# The parts of the kubeflow.org/v1 TFJob CRD (training operator v1.x) used here.
TFJOB_SPEC_FIELDS = {"runPolicy", "tfReplicaSpecs", "successPolicy", "enableDynamicWorker"}
RUN_POLICY_FIELDS = {"cleanPodPolicy", "ttlSecondsAfterFinished", "activeDeadlineSeconds",
                     "backoffLimit", "schedulingPolicy", "suspend", "managedBy"}
CLEAN_POD_POLICIES = {"All", "Running", "None"}
REPLICA_TYPES = {"Chief", "Master", "Worker", "PS", "Evaluator"}
REPLICA_FIELDS = {"replicas", "template", "restartPolicy"}
RESTART_POLICIES = {"Always", "OnFailure", "Never", "ExitCode"}
# The operator injects TF_CONFIG into, and takes the port from, this container.
TFJOB_CONTAINER, TFJOB_PORT = "tensorflow", "tfjob-port"


def _documents(name: str) -> list[dict]:
    return [doc for doc in yaml.safe_load_all((TRAINING / name).read_text()) if doc]


def _resource(kind: str) -> dict:
    (found,) = [doc for name in MANIFESTS for doc in _documents(name) if doc["kind"] == kind]
    return found


def _train_arguments(container: dict) -> list[str]:
    """What the container passes to `memae train`."""
    command = container.get("command", [])
    if command[:2] == ["memae", "train"]:
        return command[2:]
    assert "exec memae train \"$@\"" in command[-2], command
    return container["args"]


@pytest.mark.parametrize("manifest", MANIFESTS)
def test_built_in_kinds_are_valid_against_the_kubernetes_schema(manifest):
    for doc in _documents(manifest):
        if doc["apiVersion"].startswith("kubeflow.org/"):
            continue
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_tfjob_pod_templates_are_valid_pod_templates():
    tfjob = _resource("TFJob")
    for replica_type, replica in tfjob["spec"]["tfReplicaSpecs"].items():
        pod_template = {"apiVersion": "v1", "kind": "PodTemplate",
                        "metadata": {"name": f"memae-train-{replica_type.lower()}"},
                        "template": replica["template"]}
        kubernetes_validate.validate(pod_template, KUBERNETES_VERSION, strict=True)


def test_tfjob_uses_only_fields_of_the_crd():
    tfjob = _resource("TFJob")
    assert tfjob["apiVersion"] == "kubeflow.org/v1"
    assert set(tfjob) == {"apiVersion", "kind", "metadata", "spec"}
    spec = tfjob["spec"]
    assert set(spec) <= TFJOB_SPEC_FIELDS
    assert set(spec.get("runPolicy", {})) <= RUN_POLICY_FIELDS
    assert spec["runPolicy"]["cleanPodPolicy"] in CLEAN_POD_POLICIES
    assert set(spec["tfReplicaSpecs"]) <= REPLICA_TYPES
    for replica in spec["tfReplicaSpecs"].values():
        assert set(replica) <= REPLICA_FIELDS
        assert replica["restartPolicy"] in RESTART_POLICIES
        assert isinstance(replica["replicas"], int) and replica["replicas"] >= 1


def test_tfjob_trains_on_several_workers_in_the_operators_container():
    workers = _resource("TFJob")["spec"]["tfReplicaSpecs"]["Worker"]
    assert workers["replicas"] >= 2
    (container,) = workers["template"]["spec"]["containers"]
    assert container["name"] == TFJOB_CONTAINER
    assert [port["name"] for port in container["ports"]] == [TFJOB_PORT]
    assert "--strategy=multiworker" in _train_arguments(container)


def _indexed_job_tf_config(index: int) -> dict:
    (container,) = _resource("Job")["spec"]["template"]["spec"]["containers"]
    (exported,) = re.findall(r'export TF_CONFIG="(.*)"', container["command"][-2])
    return json.loads(exported.replace('\\"', '"').replace("$JOB_COMPLETION_INDEX", str(index)))


def test_indexed_job_tf_config_names_every_worker_by_its_dns_name():
    job, service = _resource("Job"), _resource("Service")
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed"
    assert spec["completions"] == spec["parallelism"] >= 2
    (container,) = spec["template"]["spec"]["containers"]
    (port,) = container["ports"]
    subdomain = spec["template"]["spec"]["subdomain"]
    expected = [f"{job['metadata']['name']}-{i}.{subdomain}:{port['containerPort']}"
                for i in range(spec["completions"])]
    for index in range(spec["completions"]):
        tf_config = _indexed_job_tf_config(index)
        assert tf_config == {"cluster": {"worker": expected},
                             "task": {"type": "worker", "index": index}}
    assert subdomain == service["metadata"]["name"]


def test_headless_service_resolves_the_worker_pods_before_they_are_ready():
    service, job = _resource("Service"), _resource("Job")
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["publishNotReadyAddresses"] is True
    labels = job["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    (container,) = job["spec"]["template"]["spec"]["containers"]
    (port,) = service["spec"]["ports"]
    assert port["targetPort"] == container["ports"][0]["name"]


@pytest.mark.parametrize("kind", ["TFJob", "Job"])
def test_training_arguments_are_accepted_by_memae_train(kind):
    resource = _resource(kind)
    template = (resource["spec"]["tfReplicaSpecs"]["Worker"]["template"] if kind == "TFJob"
                else resource["spec"]["template"])
    (container,) = template["spec"]["containers"]
    arguments = _train_arguments(container)
    distribution = argparse.ArgumentParser()
    cli.add_distribution_arguments(distribution)
    options, rest = distribution.parse_known_args(arguments)
    assert options.strategy == "multiworker"
    train = cli.build_parser().parse_args(["train", *rest])
    assert train.command == "train"
    # The chief writes under --out, which must be on the shared volume.
    mounts = [m["mountPath"] for m in container["volumeMounts"]]
    assert any(train.out.startswith(mount) for mount in mounts)
    assert any(options.checkpoint_dir.startswith(mount) for mount in mounts)
