"""MemAEClient and AsyncMemAEClient against the development server run as the Deployment runs
TF Serving: its container args and the ConfigMap's files (batching with max_batch_size 64).

References are in-process: `MemAE.score` of the exported detector, on the same
float or uint8 inputs. TF Serving behaviours the tests lean on: a batching
server refuses a request larger than `max_batch_size` (batching_session.cc,
tensorflow/serving#1401) and resolves `version_label` to a version number
(ServerCore::GetServableHandle's kVersionLabel case, server_core.cc).
"""

import asyncio
import json
import os
import pathlib
import shutil
import urllib.request

import numpy as np
import pytest
import yaml
from client_helpers import anomalous_rows, normal_rows, trained_detector, uint8_rows
from serving_helpers import free_port, wait_for

from memae_tf import MemAE
from memae_tf.cli import main
from memae_tf.client import (
    AsyncMemAEClient,
    DeadlineExceededError,
    InvalidArgumentError,
    MemAEClient,
    read_max_batch_size,
)
from memae_tf.serving import parse_flags, serve, start_model_server

K8S = pathlib.Path(__file__).resolve().parents[1] / "serving" / "k8s"
CONFIG_MOUNT, MODELS_MOUNT = "/etc/tfserving", "/models"


def _publish(detector: MemAE, base: pathlib.Path, version: int, scratch: pathlib.Path) -> None:
    """Exports `version` elsewhere, then renames it into `base` (what a publish Job does)."""
    exported = detector.export(scratch / f"v{version}" / "memae", version=version)
    base.mkdir(parents=True, exist_ok=True)
    shutil.copytree(exported, base / f".{version}.tmp")
    os.rename(base / f".{version}.tmp", base / str(version))


@pytest.fixture(scope="module")
def detector() -> MemAE:
    return trained_detector(seed=1, input_range=(-1.0, 1.0))


@pytest.fixture(scope="module")
def newer() -> MemAE:
    """A second version, trained on its own and taking inputs in (0, 1)."""
    return trained_detector(seed=5, input_range=(0.0, 1.0))


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, detector):
    """The server started with the Deployment's args, reading the ConfigMap's files."""
    (manifest,) = [d for d in yaml.safe_load_all((K8S / "deployment.yaml").read_text()) if d]
    (container,) = manifest["spec"]["template"]["spec"]["containers"]
    configmap = yaml.safe_load((K8S / "configmap.yaml").read_text())
    root = tmp_path_factory.mktemp("deployment")
    local = {CONFIG_MOUNT: root / "etc", MODELS_MOUNT: root / "models"}
    local[CONFIG_MOUNT].mkdir()

    def rewrite(text: str) -> str:
        for mount, folder in local.items():
            text = text.replace(mount + "/", f"{folder}/")
        return text

    for name, text in configmap["data"].items():
        (local[CONFIG_MOUNT] / name).write_text(rewrite(text))
    _publish(detector, local[MODELS_MOUNT] / "memae", 1, root / "exports")
    ports = {"--port": str(free_port()), "--rest_api_port": str(free_port())}
    args = [f"{flag}={ports[flag]}" if flag in ports else rewrite(argument)
            for argument in container["args"] for flag in [argument.partition("=")[0]]]
    with start_model_server(parse_flags(args), host="127.0.0.1") as server:
        yield f"127.0.0.1:{server.port}", local[CONFIG_MOUNT]


@pytest.fixture(scope="module")
def rows() -> np.ndarray:
    return normal_rows(1000, seed=7)


# ------------------------------------------------- splitting against max_batch_size


def test_the_configmaps_batching_file_says_what_the_client_assumes(deployment):
    _, etc = deployment
    assert read_max_batch_size(etc / "batching_parameters.txt") == 64
    assert MemAEClient("localhost:8500", "memae")._config.max_batch_size == 64


def test_an_unsplit_request_above_max_batch_size_is_refused_by_the_batching_server(
    deployment, rows
):
    # Why the client splits: batching_session.cc refuses a task above max_batch_size.
    target, _ = deployment
    with MemAEClient(target, "memae", max_batch_size=None) as client, pytest.raises(
        InvalidArgumentError, match=r"larger than (the )?maximum (input )?batch size 64"
    ):
        client.score(rows[:65])


@pytest.mark.parametrize("count", [1000, 1])
def test_blocking_client_scores_equal_in_process_scores(deployment, detector, rows, count):
    target, etc = deployment
    with MemAEClient(target, "memae",
                     max_batch_size=read_max_batch_size(etc / "batching_parameters.txt"),
                     concurrency=8) as client:
        served = client.score(rows[:count])
    assert served.shape == (count,)
    np.testing.assert_allclose(served, detector.score(rows[:count]), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("count", [1000, 1])
def test_async_client_scores_equal_in_process_scores(deployment, detector, rows, count):
    target, _ = deployment

    async def score() -> np.ndarray:
        async with AsyncMemAEClient(target, "memae", concurrency=8) as client:
            return await client.score(rows[:count])

    served = asyncio.run(score())
    assert served.shape == (count,)
    np.testing.assert_allclose(served, detector.score(rows[:count]), rtol=1e-5, atol=1e-7)


def test_predict_returns_every_output_of_every_chunk_in_order(deployment, detector, rows):
    target, _ = deployment
    with MemAEClient(target, "memae") as client:
        outputs = client.run_signature(rows[:200])
    np.testing.assert_allclose(outputs["reconstruction"], detector.reconstruct(rows[:200]),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(outputs["is_anomaly"],
                                  outputs["score"] > np.float32(detector.threshold_))


# ------------------------------------------------------------- inputs and range


def test_model_info_carries_the_detectors_range_threshold_and_reference(deployment, detector):
    target, _ = deployment
    with MemAEClient(target, "memae") as client:
        info = client.model_info()
    assert info.version == 1
    assert info.input_range == (-1.0, 1.0)
    assert info.threshold == float(np.float32(detector.threshold_))
    assert info.expected_rate == 0.05
    np.testing.assert_array_equal(info.reference_quantiles, detector.reference_quantiles_)


def test_uint8_inputs_score_as_the_detector_scores_them(deployment, detector):
    target, _ = deployment
    images = uint8_rows(300)
    with MemAEClient(target, "memae") as client:
        served = client.score(images)
    # The detector scales uint8 into its input range (-1, 1) itself.
    np.testing.assert_allclose(served, detector.score(images), rtol=1e-5, atol=1e-7)
    # ...and the scaling matters: the raw values as floats would be refused.
    with MemAEClient(target, "memae") as client, pytest.raises(InvalidArgumentError):
        client.score(images.astype("float32"))


def test_floats_outside_the_input_range_are_refused_without_sending(deployment, rows):
    target, _ = deployment
    bad = rows[:100].copy()
    bad[17, 3], bad[58, 0] = 1.5, -1.25
    with MemAEClient(target, "memae") as client:
        client.model_info()
        predict = client._rpcs["Predict"]
        sent = []
        client._rpcs["Predict"] = lambda request, **kw: sent.append(request) or predict(
            request, **kw)
        with pytest.raises(InvalidArgumentError) as info:
            client.score(bad)
        assert sent == []
        message = str(info.value)
        for part in ("[-1, 1]", "min=-1.25", "max=1.5", "[17, 58] of 100", "not sent"):
            assert part in message
        assert len(client.score(bad.clip(-1, 1))) == 100
        assert [len(r.inputs["x"].tensor_shape.dim) and r.inputs["x"].tensor_shape.dim[0].size
                for r in sent] == [64, 36]


def test_check_range_false_sends_floats_outside_the_range(deployment, detector, rows):
    target, _ = deployment
    bad = rows[:10] * 1.5
    with MemAEClient(target, "memae", check_range=False) as client:
        np.testing.assert_allclose(client.score(bad), detector.score(bad), rtol=1e-5)


# ------------------------------------------------------------------ versions


def test_version_labels_choose_the_labelled_version(tmp_path, detector, newer):
    """Labels as in TF Serving's models.config (model_server_config.proto version_labels)."""
    canary, images = newer, uint8_rows(150)
    base = tmp_path / "models" / "memae"
    _publish(detector, base, 1, tmp_path / "exports")
    _publish(canary, base, 2, tmp_path / "exports")
    config = tmp_path / "models.config"
    config.write_text(
        f'model_config_list {{ config {{ name: "memae" base_path: "{base}" '
        'model_platform: "tensorflow" model_version_policy { specific { versions: 1 '
        'versions: 2 } } version_labels { key: "stable" value: 1 } '
        'version_labels { key: "canary" value: 2 } } }\n'
    )
    flags = [f"--port={free_port()}", "--rest_api_port=0", f"--model_config_file={config}",
             "--allow_version_labels_for_unavailable_models=true"]
    with start_model_server(parse_flags(flags), host="127.0.0.1") as server:
        target = f"127.0.0.1:{server.port}"
        for label, expected in (("canary", canary), ("stable", detector)):
            with MemAEClient(target, "memae", version_label=label) as client:
                # Each version scales the images into its own input range.
                np.testing.assert_allclose(client.score(images), expected.score(images),
                                           rtol=1e-5, atol=1e-7)
                assert client.model_info().version == (2 if label == "canary" else 1)

        async def canary_scores() -> np.ndarray:
            async with AsyncMemAEClient(target, "memae", version_label="canary") as client:
                return await client.score(images)

        np.testing.assert_allclose(asyncio.run(canary_scores()), canary.score(images),
                                   rtol=1e-5, atol=1e-7)


def test_a_new_version_refreshes_the_cached_model_info(tmp_path, detector, newer):
    # The new version takes inputs in (0, 1): uint8 images must be scaled anew.
    base = tmp_path / "models" / "memae"
    _publish(detector, base, 1, tmp_path / "exports")
    images = uint8_rows(200)
    handle = serve(base, "memae", port=0, poll_interval=0.2, max_batch_size=64)
    try:
        with MemAEClient(f"127.0.0.1:{handle.port}", "memae") as client:
            np.testing.assert_allclose(client.score(images), detector.score(images), rtol=1e-5,
                                       atol=1e-7)
            assert client.model_info().input_range == (-1.0, 1.0)
            _publish(newer, base, 2, tmp_path / "exports")
            wait_for(lambda: [s.version for s in client.status() if s.state == "AVAILABLE"]
                     == [2], timeout=60)
            np.testing.assert_allclose(client.score(images), newer.score(images), rtol=1e-5,
                                       atol=1e-7)
            info = client.model_info()
            assert (info.version, info.input_range) == (2, (0.0, 1.0))
            np.testing.assert_array_equal(info.reference_quantiles, newer.reference_quantiles_)
    finally:
        handle.stop(grace=0)


def test_version_and_version_label_are_exclusive():
    with pytest.raises(ValueError, match="not both"):
        MemAEClient("localhost:8500", "memae", version=2, version_label="canary")


def test_whole_call_deadline_is_checked_before_each_chunk(deployment, rows):
    target, _ = deployment
    with MemAEClient(target, "memae") as client:
        client.model_info()
        # No cause in the message: no RPC failed, none was sent (test_client.py counts them).
        with pytest.raises(DeadlineExceededError, match="deadline of 1e-06 s ran out;"):
            client.score(rows, deadline=1e-6)


# ---------------------------------------------------------------- memae monitor


def test_memae_monitor_reports_drift_once_anomalous_traffic_arrives(
    deployment, tmp_path, capsys
):
    target, _ = deployment
    np.save(tmp_path / "normal.npy", normal_rows(1000, seed=21))
    np.savez(tmp_path / "anomalous.npz", x=anomalous_rows(1000, seed=22))
    port = free_port()
    assert main(["monitor", "--target", target, "--rows", "500", "--metrics-port", str(port),
                 str(tmp_path / "normal.npy"), str(tmp_path / "anomalous.npz")]) == 0
    reports = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["rows"], r["count"]) for r in reports] == [(500, 500), (500, 1000),
                                                          (500, 1500), (500, 2000)]
    assert (reports[1]["rate_level"], reports[1]["drift_level"]) == ("ok", "ok")
    assert (reports[3]["rate_level"], reports[3]["drift_level"]) == ("alert", "alert")
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        metrics = response.read().decode()
    assert f'memae_score_drift{{model_name="memae"}} {reports[3]["drift"]!r}' in metrics
