"""The `memae export` and `memae serve` subcommands."""

from __future__ import annotations

import argparse
import logging
import pathlib
import sys


def cmd_export(args: argparse.Namespace) -> int:
    """Exports a saved detector as the next (or given) SavedModel version."""
    from memae_tf.detector import MemAE
    from memae_tf.export import export_saved_model

    detector = MemAE.load(args.model)
    path = export_saved_model(
        detector.model,
        args.model_base_path,
        threshold=detector.threshold_,
        version=args.version,
        model_name=args.model_name,
        serving_root=args.serving_root,
        scoring_graph=detector.scoring_graph,
    )
    print(f"memae export: wrote {path}", file=sys.stderr)
    return 0


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
               host=args.host, poll_interval=args.poll_seconds,
               server_credentials=credentials, rest_ssl_context=context,
               max_message_mb=args.max_message_mb, max_batch_size=args.max_batch_size,
               grace=args.drain_seconds)
    return 0


def add_serving_commands(subparsers: argparse._SubParsersAction) -> None:
    """Registers `export` and `serve` on the `memae` subcommand parsers.

    Each subcommand sets `func` to a handler taking the parsed namespace and
    returning an exit code, like the other `memae` commands.

    Args:
        subparsers: The object returned by `parser.add_subparsers(...)`.

    Example:

    >>> parser = argparse.ArgumentParser(prog="memae")
    >>> add_serving_commands(parser.add_subparsers(dest="command"))
    >>> parser.parse_args(["serve", "--model-base-path", "models/memae"]).port
    8500
    """
    export = subparsers.add_parser(
        "export", help="export a saved detector as a TF Serving SavedModel version"
    )
    export.add_argument("--model", required=True, help="path to detector.keras")
    export.add_argument("--model-base-path", required=True,
                        help="directory of the model's versions, e.g. models/memae")
    export.add_argument("--version", type=int,
                        help="version number (default: one more than the latest)")
    export.add_argument("--model-name",
                        help="name in models.config (default: the base path's name)")
    export.add_argument("--serving-root", default="/models",
                        help="mount path of the models directory in the TF Serving container")
    export.set_defaults(func=cmd_export)

    serve = subparsers.add_parser(
        "serve", help="run the TF Serving-compatible development server"
    )
    serve.add_argument("--model-base-path", required=True,
                       help="directory of the model's versions, e.g. models/memae")
    serve.add_argument("--model-name",
                       help="name clients ask for (default: the base path's name)")
    serve.add_argument("--port", type=int, default=8500, help="gRPC port")
    serve.add_argument("--rest-port", type=int, help="REST port (default: no REST)")
    serve.add_argument("--host", default="127.0.0.1",
                       help="interface to bind (default loopback only; 0.0.0.0 or :: for all)")
    serve.add_argument("--poll-seconds", type=float, default=1.0,
                       help="seconds between two checks for new versions")
    serve.add_argument("--ssl-cert",
                       help="PEM certificate chain for TLS on the gRPC and REST ports")
    serve.add_argument("--ssl-key", help="PEM private key for TLS on the gRPC and REST ports")
    serve.add_argument("--ssl-client-ca",
                       help="PEM CA certificates: require client certificates signed by them "
                            "(mutual TLS)")
    serve.add_argument("--max-message-mb", type=float,
                       help="largest request (gRPC message or REST body) in MiB, refused "
                            "before it is read (default: gRPC's 2 GiB)")
    serve.add_argument("--max-batch-size", type=int,
                       help="largest batch of one request (default: no limit)")
    serve.add_argument("--drain-seconds", type=float, default=30.0,
                       help="on SIGTERM/SIGINT, seconds in-flight requests get to finish")
    serve.set_defaults(func=cmd_serve)
