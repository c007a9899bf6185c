"""The `memae serve` and `memae model-server` subcommands: the development server.

`memae model-server` takes `tensorflow_model_server`'s own flags
(`--port=8500 --model_config_file=...`), so the arguments of a Kubernetes
Deployment run unchanged; `memae serve` serves one model base path with this
project's flags. `memae export` needs a trained detector, so it is registered by
`memae_tf.cli`; this module only serves SavedModels, without any training code.
"""

from __future__ import annotations

import argparse
import logging
import pathlib
import sys

from memae_tf.common.contract import (
    GRPC_PORT,
    SERVE_GRACE_SECONDS,
    SERVE_LOAD_RETRY_INTERVAL_SECONDS,
    SERVE_MAX_NUM_LOAD_RETRIES,
    SERVE_POLL_INTERVAL_SECONDS,
)
from memae_tf.common.deprecation import add_deprecated_alias


def cmd_serve(args: argparse.Namespace) -> int:
    """Runs the development server until interrupted."""
    from memae_tf.serving.server import run_server
    from memae_tf.serving.tls import grpc_server_credentials, server_ssl_context

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    credentials = context = None
    if args.ssl_cert or args.ssl_key or args.ssl_client_ca:
        if not (args.ssl_cert and args.ssl_key):
            raise ValueError(
                "TLS needs both --ssl-cert and --ssl-key (and --ssl-client-ca for mutual TLS)."
            )
        credentials = grpc_server_credentials(args.ssl_cert, args.ssl_key, args.ssl_client_ca)
        if args.rest_port is not None:
            context = server_ssl_context(args.ssl_cert, args.ssl_key, args.ssl_client_ca)
    model_name = args.model_name or pathlib.Path(args.model_base_path).resolve().name
    run_server(args.model_base_path, model_name, args.port, args.rest_port,
               host=args.host, poll_interval=args.poll_interval,
               server_credentials=credentials, rest_ssl_context=context,
               max_message_mib=args.max_message_mib, max_batch_size=args.max_batch_size,
               max_num_load_retries=args.max_num_load_retries,
               load_retry_interval=args.load_retry_interval, grace=args.grace)
    return 0


def cmd_model_server(args: argparse.Namespace) -> int:
    """Runs the server that `tensorflow_model_server` would run with `args.flags`.

    Returns 0 after a SIGTERM/SIGINT drain, and 255 when the flags or files are
    refused, after printing `Failed to start server. Error: ...` as TF Serving's
    main.cc does.
    """
    from memae_tf.serving.flags import parse_flags, unknown_arguments, usage

    if "--help" in args.flags or "-h" in args.flags:
        print(usage(), end="")
        return 0
    try:
        options = parse_flags(args.flags)
    except ValueError as error:
        print(f"{error}\n{usage()}", end="", file=sys.stderr)
        return 255
    unknown = unknown_arguments(args.flags)
    if unknown:  # main.cc prints the first and the usage, then starts anyway
        print(f"unknown argument: {unknown[0]}\n{usage()}", end="")
    from memae_tf.serving.errors import ServingError
    from memae_tf.serving.server import start_model_server, wait_for_signal

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    try:
        handle = start_model_server(options)
    except ServingError as error:
        print(f"Failed to start server. Error: {error.code.name}: {error.message}",
              file=sys.stderr)
        return 255
    wait_for_signal(handle)
    return 0


def add_model_server_command(subparsers: argparse._SubParsersAction) -> None:
    """Registers `model-server`, which takes TF Serving's flags, on the `memae` parsers.

    Every argument after `model-server` is one of `tensorflow_model_server`'s
    flags in its own syntax (`--name=value`; see
    `memae_tf.serving.flags.usage`), so the flags of a Deployment's container
    are passed as they are.

    Args:
        subparsers: The object returned by `parser.add_subparsers(...)`.

    Example:

    >>> parser = argparse.ArgumentParser(prog="memae")
    >>> add_model_server_command(parser.add_subparsers(dest="command"))
    >>> parser.parse_args(["model-server", "--port=8500", "--enable_batching"]).flags
    ['--port=8500', '--enable_batching']
    """
    # "+" as the option prefix leaves every "--name=value" to TF Serving's syntax.
    server = subparsers.add_parser(
        "model-server", prefix_chars="+", add_help=False,
        help="run the development server with tensorflow_model_server's flags "
             "(--port=8500 --model_config_file=...; --help lists them)",
    )
    server.add_argument("flags", nargs="*", help="tensorflow_model_server flags")
    server.set_defaults(func=cmd_model_server)


def add_serve_command(subparsers: argparse._SubParsersAction) -> None:
    """Registers `serve` on the `memae` subcommand parsers.

    The subcommand sets `func` to a handler taking the parsed namespace and
    returning an exit code, like the other `memae` commands.

    Args:
        subparsers: The object returned by `parser.add_subparsers(...)`.

    Example:

    >>> parser = argparse.ArgumentParser(prog="memae")
    >>> add_serve_command(parser.add_subparsers(dest="command"))
    >>> parser.parse_args(["serve", "--model-base-path", "models/memae"]).port
    8500
    """
    serve = subparsers.add_parser(
        "serve", help="run the TF Serving-compatible development server"
    )
    serve.add_argument("--model-base-path", required=True,
                       help="directory of the model's versions, e.g. models/memae")
    serve.add_argument("--model-name",
                       help="name clients ask for (default: the base path's name)")
    serve.add_argument("--port", type=int, default=GRPC_PORT, help="gRPC port")
    serve.add_argument("--rest-port", type=int, help="REST port (default: no REST)")
    serve.add_argument("--host", default="127.0.0.1",
                       help="interface to bind (default loopback only; 0.0.0.0 or :: for all)")
    poll = serve.add_argument("--poll-interval", type=float,
                              default=SERVE_POLL_INTERVAL_SECONDS, metavar="SECONDS",
                              help="seconds between two checks for new versions")
    add_deprecated_alias(serve, poll, "--poll-seconds")
    serve.add_argument("--max-num-load-retries", type=int, default=SERVE_MAX_NUM_LOAD_RETRIES,
                       metavar="N",
                       help="tries of a failed version load after the first, as TF Serving's "
                            "--max_num_load_retries; 0 tries once")
    serve.add_argument("--load-retry-interval", type=float,
                       default=SERVE_LOAD_RETRY_INTERVAL_SECONDS, metavar="SECONDS",
                       help="seconds between two tries of a failed load, as TF Serving's "
                            "--load_retry_interval_micros")
    serve.add_argument("--ssl-cert",
                       help="PEM certificate chain for TLS on the gRPC and REST ports")
    serve.add_argument("--ssl-key", help="PEM private key for TLS on the gRPC and REST ports")
    serve.add_argument("--ssl-client-ca",
                       help="PEM CA certificates: require client certificates signed by them "
                            "(mutual TLS)")
    size = serve.add_argument("--max-message-mib", type=float, metavar="MIB",
                              help="largest request (gRPC message or REST body) in MiB, "
                                   "refused before it is read (default: gRPC's 2 GiB)")
    add_deprecated_alias(serve, size, "--max-message-mb")
    serve.add_argument("--max-batch-size", type=int, metavar="N",
                       help="refuse a request of more than N rows with TF Serving's batching "
                            "error (INVALID_ARGUMENT 'Task size ... is larger than maximum "
                            "input batch size N'), as TF Serving with --enable_batching and "
                            "this max_batch_size answers; requests are not merged (for "
                            "server-side batching run 'memae model-server --enable_batching "
                            "--batching_parameters_file=...') (default: no limit)")
    grace = serve.add_argument("--grace", type=float, default=SERVE_GRACE_SECONDS,
                               metavar="SECONDS",
                               help="on SIGTERM/SIGINT, seconds in-flight requests get to "
                                    "finish")
    add_deprecated_alias(serve, grace, "--drain-seconds")
    serve.set_defaults(func=cmd_serve)
