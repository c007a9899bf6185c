"""Every Python snippet of client/README.md runs, in order, as one session.

The servers are the development server started as the Deployment starts TF
Serving (batching on, the ConfigMap's batching_parameters.txt, a models.config
with `stable` and `canary` labels) and one with mutual TLS; the README's
addresses and ports are replaced by theirs (SUBSTITUTIONS), and the files it
reads (images.npy, batching_parameters.txt, ca.pem, client.pem, client.key) are
made in the session's working folder. The session's results are then checked
against in-process scores.
"""

import datetime
import ipaddress
import os
import pathlib
import re
import socket
import urllib.request

import numpy as np
import pytest
import yaml
from client_helpers import trained_detector, uint8_rows
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from memae_tf.serving import parse_flags, serve, start_model_server
from memae_tf.serving.tls import grpc_server_credentials

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = ROOT / "client" / "README.md"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _write_pem(folder: pathlib.Path, stem: str, key, certificate) -> None:
    (folder / f"{stem}.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    (folder / f"{stem}.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))


def _make_pki(folder: pathlib.Path) -> None:
    """ca.pem, server.pem/.key (for localhost) and client.pem/.key, signed by the CA."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")])

    def sign(name: x509.Name, key, *, ca: bool = False, san=()) -> x509.Certificate:
        builder = (x509.CertificateBuilder().subject_name(name).issuer_name(ca_name)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if san:
            builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
        return builder.sign(ca_key, hashes.SHA256())

    _write_pem(folder, "ca", ca_key, sign(ca_name, ca_key, ca=True))
    for stem, san in (("server", [x509.DNSName("localhost"),
                                  x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                      ("client", [])):
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, stem)])
        _write_pem(folder, stem, key, sign(name, key, san=san))


def python_snippets(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.DOTALL | re.MULTILINE)


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    """The working folder, the two servers' addresses and the detector they serve."""
    folder = tmp_path_factory.mktemp("readme")
    detector = trained_detector(seed=1, input_range=(-1.0, 1.0))
    base = folder / "models" / "memae"
    for version in (1, 2):
        detector.export(base, version=version)
    configmap = yaml.safe_load((ROOT / "serving" / "k8s" / "configmap.yaml").read_text())
    (folder / "batching_parameters.txt").write_text(configmap["data"]["batching_parameters.txt"])
    (folder / "models.config").write_text(
        f'model_config_list {{ config {{ name: "memae" base_path: "{base}" '
        'model_platform: "tensorflow" model_version_policy { specific { versions: 1 '
        'versions: 2 } } version_labels { key: "stable" value: 1 } '
        'version_labels { key: "canary" value: 2 } } }\n')
    np.save(folder / "images.npy", uint8_rows(300))
    _make_pki(folder)
    flags = [f"--port={_free_port()}", "--rest_api_port=0",
             f"--model_config_file={folder / 'models.config'}", "--enable_batching=true",
             f"--batching_parameters_file={folder / 'batching_parameters.txt'}",
             "--allow_version_labels_for_unavailable_models=true"]
    tls = serve(base, "memae", port=0, server_credentials=grpc_server_credentials(
        folder / "server.pem", folder / "server.key", folder / "ca.pem"))
    try:
        with start_model_server(parse_flags(flags), host="127.0.0.1") as server:
            yield folder, server.port, tls.port, detector
    finally:
        tls.stop(grace=0)


def test_every_python_snippet_of_the_client_readme_runs_and_scores_as_in_process(
    session, capsys
):
    folder, port, tls_port, detector = session
    metrics_port = _free_port()
    substitutions = {
        "localhost:8500": f"localhost:{port}",
        "memae.example.com:8500": f"localhost:{tls_port}",
        "memae-serving-headless.default.svc.cluster.local:8500": f"localhost:{port}",
        "start_http_server(9100)": f"start_http_server({metrics_port})",
    }
    snippets = python_snippets(README.read_text())
    assert len(snippets) >= 10
    used = set()
    namespace: dict = {}
    previous = os.getcwd()
    os.chdir(folder)
    try:
        for snippet in snippets:
            for old, new in substitutions.items():
                if old in snippet:
                    used.add(old)
                    snippet = snippet.replace(old, new)
            exec(compile(snippet, str(README), "exec"), namespace)
    finally:
        os.chdir(previous)
    assert used == set(substitutions)  # no substitution has gone stale

    images = np.load(folder / "images.npy")
    expected = detector.score(images)
    for name in ("scores", "canary_scores", "stable_scores"):
        np.testing.assert_allclose(namespace[name], expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(np.concatenate(namespace["batch_scores"]), expected,
                               rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(namespace["flagged"],
                                  namespace["outputs"]["score"] > np.float32(detector.threshold_))
    assert namespace["limit"] == 64
    assert namespace["report"].count == len(images)
    printed = capsys.readouterr().out
    assert "Expected values in the model's input range [-1, 1]" in printed
    assert "DEADLINE_EXCEEDED" in printed and "2 1" in printed
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics",
                                timeout=10) as response:
        assert 'memae_score_drift{model_name="memae"}' in response.read().decode()
