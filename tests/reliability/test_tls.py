"""TLS and mutual TLS on both ports with certificates made here; loopback unless told otherwise."""

import argparse
import datetime
import ipaddress
import json
import ssl
import urllib.request

import grpc
import numpy as np
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from reliability_helpers import reference_scores

from memae_tf.cli import add_serving_commands
from memae_tf.client import MemAEClient, UnavailableError
from memae_tf.serving import serve
from memae_tf.serving.tls import grpc_server_credentials, server_ssl_context


def _certificate(name, key, issuer_name, issuer_key, *, ca=False, san=()):
    now = datetime.datetime.now(datetime.UTC)
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
               .issuer_name(issuer_name).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(san)), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _write_pair(folder, stem, key, certificate):
    key_path, cert_path = folder / f"{stem}.key", folder / f"{stem}.pem"
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


def _authority(folder, stem):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{stem} CA")])
    certificate = _certificate(f"{stem} CA", key, name, key, ca=True)
    cert_path, _ = _write_pair(folder, stem, key, certificate)
    return key, certificate, cert_path


def _leaf(folder, stem, authority, san=()):
    ca_key, ca_cert, _ = authority
    key = ec.generate_private_key(ec.SECP256R1())
    return _write_pair(folder, stem, key,
                       _certificate(stem, key, ca_cert.subject, ca_key, san=san))


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A CA with a server and a client certificate, and a rogue CA with its own client."""
    folder = tmp_path_factory.mktemp("pki")
    authority, rogue = _authority(folder, "ca"), _authority(folder, "rogue")
    san = (x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    return {"ca": authority[2], "server": _leaf(folder, "server", authority, san),
            "client": _leaf(folder, "client", authority), "rogue": _leaf(folder, "intruder", rogue)}


def _channel_credentials(pki, client=None):
    pair = {} if client is None else {"certificate_chain": pki[client][0].read_bytes(),
                                      "private_key": pki[client][1].read_bytes()}
    return grpc.ssl_channel_credentials(root_certificates=pki["ca"].read_bytes(), **pair)


def _score(port, credentials, rows):
    with MemAEClient(f"localhost:{port}", "kdd", credentials=credentials, retries=0,
                     timeout=30) as client:
        return client.score(rows)


@pytest.fixture(scope="module")
def mutual_tls_server(base_path, pki):
    cert, key = pki["server"]
    with serve(base_path, "kdd", port=0, rest_port=0,
               server_credentials=grpc_server_credentials(cert, key, pki["ca"]),
               rest_ssl_context=server_ssl_context(cert, key, pki["ca"])) as server:
        yield server


def test_grpc_tls_serves_clients_trusting_the_ca_and_refuses_plaintext(base_path, pki, model,
                                                                       rows):
    cert, key = pki["server"]
    with serve(base_path, "kdd", port=0,
               server_credentials=grpc_server_credentials(cert, key)) as server:
        np.testing.assert_allclose(_score(server.port, _channel_credentials(pki), rows),
                                   reference_scores(model, rows), rtol=1e-5)
        with pytest.raises(UnavailableError):
            _score(server.port, None, rows)


def test_grpc_mutual_tls_serves_only_clients_with_a_certificate_of_the_ca(mutual_tls_server,
                                                                           pki, model, rows):
    port = mutual_tls_server.port
    np.testing.assert_allclose(_score(port, _channel_credentials(pki, "client"), rows),
                               reference_scores(model, rows), rtol=1e-5)
    for refused in (None, "rogue"):
        with pytest.raises(UnavailableError):
            _score(port, _channel_credentials(pki, refused), rows)


def _https_scores(port, context, rows):
    body = json.dumps({"instances": rows.tolist()}).encode()
    request = urllib.request.Request(f"https://127.0.0.1:{port}/v1/models/kdd:predict",
                                     data=body, method="POST")
    with urllib.request.urlopen(request, timeout=30, context=context) as response:
        return [p["score"] for p in json.loads(response.read())["predictions"]]


def _client_context(pki, client=None):
    context = ssl.create_default_context(cafile=str(pki["ca"]))
    if client is not None:
        context.load_cert_chain(*pki[client])
    return context


def test_rest_mutual_tls_serves_only_clients_with_a_certificate_of_the_ca(mutual_tls_server,
                                                                           pki, model, rows):
    port = mutual_tls_server.rest_port
    np.testing.assert_allclose(_https_scores(port, _client_context(pki, "client"), rows),
                               reference_scores(model, rows), rtol=1e-5)
    for refused in (None, "rogue"):
        with pytest.raises(OSError):  # ssl.SSLError or a reset connection
            _https_scores(port, _client_context(pki, refused), rows)
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models/kdd", timeout=30)
    # The refused handshakes did not stop the port.
    np.testing.assert_allclose(_https_scores(port, _client_context(pki, "client"), rows),
                               reference_scores(model, rows), rtol=1e-5)


def test_rest_tls_without_client_ca_serves_any_client_trusting_the_server(base_path, pki,
                                                                         model, rows):
    cert, key = pki["server"]
    with serve(base_path, "kdd", port=0, rest_port=0,
               rest_ssl_context=server_ssl_context(cert, key)) as server:
        np.testing.assert_allclose(_https_scores(server.rest_port, _client_context(pki), rows),
                                   reference_scores(model, rows), rtol=1e-5)


def test_server_listens_on_loopback_unless_told_otherwise(base_path):
    parser = argparse.ArgumentParser()
    add_serving_commands(parser.add_subparsers())
    assert parser.parse_args(["serve", "--model-base-path", "m"]).host == "127.0.0.1"
    with serve(base_path, "kdd", port=0, rest_port=0) as server:
        assert server._rest_server.server_address[0] == "127.0.0.1"


def test_missing_certificate_file_is_named_in_the_error(tmp_path):
    (tmp_path / "key.pem").write_text("a key")
    with pytest.raises(FileNotFoundError, match="Expected `cert` to be a PEM file"):
        grpc_server_credentials(tmp_path / "nope.pem", tmp_path / "key.pem")
