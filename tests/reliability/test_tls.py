"""TLS and mutual TLS on both ports with certificates made here; loopback unless told otherwise."""

import argparse
import datetime
import ipaddress
import json
import ssl
import urllib.request
from concurrent import futures

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
from memae_tf.serving.proto import SSLConfig
from memae_tf.serving.tls import (
    grpc_server_credentials,
    server_ssl_context,
    ssl_config_credentials,
)


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


# ----------------------------------------------- --ssl_config_file (SSLConfig)


def _ssl_config(pki, **fields) -> SSLConfig:
    cert, key = pki["server"]
    return SSLConfig(server_key=key.read_text(), server_cert=cert.read_text(), **fields)


def _pings(credentials, channel_credentials) -> bool:
    """Whether a client with `channel_credentials` gets an answer from a gRPC server
    listening with `credentials` (an echo method; no model involved)."""
    echo = grpc.unary_unary_rpc_method_handler(lambda request, context: request)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2), handlers=[
        grpc.method_handlers_generic_handler("test.Echo", {"Ping": echo})])
    port = server.add_secure_port("localhost:0", credentials)
    server.start()
    try:
        with grpc.secure_channel(f"localhost:{port}", channel_credentials) as channel:
            return channel.unary_unary("/test.Echo/Ping")(b"ping", timeout=30) == b"ping"
    except grpc.RpcError as error:
        assert error.code() == grpc.StatusCode.UNAVAILABLE, error  # the handshake failed
        return False
    finally:
        server.stop(0)


def test_ssl_config_with_client_verify_serves_only_clients_with_a_certificate_of_its_ca(pki):
    # tensorflow_serving/model_servers/server.cc BuildServerCredentials: the fields hold
    # PEM text; client_verify asks for, requires and verifies a client certificate
    # against custom_ca (GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY).
    credentials = ssl_config_credentials(
        _ssl_config(pki, custom_ca=pki["ca"].read_text(), client_verify=True))
    assert _pings(credentials, _channel_credentials(pki, "client"))
    assert not _pings(credentials, _channel_credentials(pki))
    assert not _pings(credentials, _channel_credentials(pki, "rogue"))


def test_ssl_config_without_client_verify_asks_no_client_certificate(pki):
    # GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE, with or without custom_ca.
    for fields in ({}, {"custom_ca": pki["ca"].read_text()}):
        assert _pings(ssl_config_credentials(_ssl_config(pki, **fields)),
                      _channel_credentials(pki))


@pytest.mark.parametrize("missing", ["server_key", "server_cert", "both"])
def test_ssl_config_without_a_key_or_a_certificate_is_refused(pki, missing):
    config = _ssl_config(pki)
    for name in ("server_key", "server_cert") if missing == "both" else (missing,):
        config.ClearField(name)
    with pytest.raises(ValueError, match=(
            rf"PEM text in both server_key and server_cert\. Received: server_key set="
            rf"{missing == 'server_cert'}, server_cert set={missing == 'server_key'}$")):
        ssl_config_credentials(config)


def test_ssl_config_with_client_verify_but_no_ca_is_refused(pki):
    # gRPC would have no roots to verify client certificates against.
    with pytest.raises(ValueError, match=r"Expected custom_ca .* with client_verify: true"):
        ssl_config_credentials(_ssl_config(pki, client_verify=True))
