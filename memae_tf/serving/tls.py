"""TLS and mutual TLS settings of the development server, from PEM files.

The same certificate and key serve gRPC (`grpc.ssl_server_credentials`) and
REST (`ssl.SSLContext`); with a client CA, both ports require a client
certificate signed by it (mutual TLS) and refuse any other client. TF Serving's
`--ssl_config_file` (an `SSLConfig` holding the PEM text) secures the gRPC port
only, as in TF Serving.
"""

from __future__ import annotations

import os
import pathlib
import ssl

import grpc

from memae_tf.serving.proto import SSLConfig


def _pem(name: str, path: str | os.PathLike) -> pathlib.Path:
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"Expected `{name}` to be a PEM file. Received: {name}={str(path)!r} (not found)"
        )
    return path


def _read(name: str, path: str | os.PathLike) -> bytes:
    return _pem(name, path).read_bytes()


def grpc_server_credentials(
    cert: str | os.PathLike, key: str | os.PathLike, client_ca: str | os.PathLike | None = None
) -> grpc.ServerCredentials:
    """gRPC server credentials: TLS, or mutual TLS when `client_ca` is given.

    Args:
        cert: PEM certificate chain of the server.
        key: PEM private key of the server.
        client_ca: PEM certificates of the CAs whose client certificates are
            accepted; None accepts any client (TLS without client certificates).

    Returns:
        Credentials for `serve(..., server_credentials=...)`.
    """
    roots = None if client_ca is None else _read("client_ca", client_ca)
    return grpc.ssl_server_credentials(
        [(_read("key", key), _read("cert", cert))],
        root_certificates=roots,
        require_client_auth=roots is not None,
    )


def server_ssl_context(
    cert: str | os.PathLike, key: str | os.PathLike, client_ca: str | os.PathLike | None = None
) -> ssl.SSLContext:
    """An HTTPS server context (TLS 1.2 or later), requiring client certificates with `client_ca`.

    Args:
        cert: PEM certificate chain of the server.
        key: PEM private key of the server.
        client_ca: PEM certificates of the CAs whose client certificates are
            accepted; None asks for no client certificate.

    Returns:
        A context for `serve(..., rest_ssl_context=...)`.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(_pem("cert", cert), _pem("key", key))
    if client_ca is not None:
        context.load_verify_locations(cafile=_pem("client_ca", client_ca))
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def ssl_config_credentials(config: SSLConfig) -> grpc.ServerCredentials:
    """gRPC server credentials from TF Serving's `SSLConfig` (`--ssl_config_file`).

    As `BuildServerCredentials` in tensorflow_serving/model_servers/server.cc:
    the fields hold PEM text itself, not file names; `custom_ca` becomes the
    trusted roots, and `client_verify` requires a client certificate signed
    by them (mutual TLS).

    Args:
        config: An `SSLConfig` with `server_key` and `server_cert` set.

    Returns:
        Credentials for the gRPC port.

    Raises:
        ValueError: Without a key or certificate, or with `client_verify` but
            no `custom_ca`.
    """
    if not (config.server_key and config.server_cert):
        raise ValueError(
            "Expected an SSLConfig with PEM text in both server_key and server_cert. "
            f"Received: server_key set={bool(config.server_key)}, "
            f"server_cert set={bool(config.server_cert)}"
        )
    if config.client_verify and not config.custom_ca:
        raise ValueError(
            "Expected custom_ca (PEM CA certificates) with client_verify: true, to verify "
            "client certificates. Received: custom_ca empty"
        )
    return grpc.ssl_server_credentials(
        [(config.server_key.encode(), config.server_cert.encode())],
        root_certificates=config.custom_ca.encode() or None,
        require_client_auth=config.client_verify,
    )
