"""The `memae monitor` subcommand: score inputs through the client and watch the scores.

It imports only the client (no TensorFlow), so it runs wherever the
TensorFlow-free client is installed.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time
from typing import TYPE_CHECKING

import numpy as np

from memae_tf.common.contract import DEFAULT_MAX_BATCH_SIZE

if TYPE_CHECKING:  # gRPC is imported when a command runs, not for `memae --help`
    import grpc


def read_rows(path: str | pathlib.Path) -> np.ndarray:
    """Loads the rows of a `.npy` file, or of the `x` (else the only) array of a `.npz`."""
    path = pathlib.Path(path)
    if path.suffix == ".npy":
        return np.load(path, allow_pickle=False)
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as arrays:
            if "x" in arrays.files or len(arrays.files) == 1:
                return arrays["x" if "x" in arrays.files else arrays.files[0]]
            raise ValueError(
                f"Expected {path} to hold an array named 'x' or a single array. "
                f"Received: {arrays.files}"
            )
    raise ValueError(f"Expected a .npy or .npz file. Received: {path}")


def _credentials(args: argparse.Namespace) -> grpc.ChannelCredentials | None:
    if not (args.ca_cert or args.client_cert or args.client_key):
        return None
    import grpc

    if bool(args.client_cert) != bool(args.client_key):
        raise ValueError("Mutual TLS needs both --client-cert and --client-key.")

    def read(path: str | None) -> bytes | None:
        return None if path is None else pathlib.Path(path).read_bytes()

    return grpc.ssl_channel_credentials(read(args.ca_cert), read(args.client_key),
                                        read(args.client_cert))


def cmd_monitor(args: argparse.Namespace) -> int:
    """Scores each file through `MemAEClient`, printing the monitor's report per call."""
    from memae_tf.client import MemAEClient, ScoreMonitor

    with MemAEClient(args.target, args.model_name, version_label=args.version_label,
                     max_batch_size=args.max_batch_size, credentials=_credentials(args),
                     check_range=not args.no_check_range, deadline=args.deadline) as client:
        monitor = ScoreMonitor.from_model_info(client.model_info(), window=args.window,
                                               model_name=args.model_name)
        if args.metrics_port is not None:
            try:
                import prometheus_client
            except ImportError as error:
                raise SystemExit("--metrics-port needs prometheus_client: "
                                 'pip install "memae-tf-client[monitor]" '
                                 '(or "memae-tf[monitor]" beside the full package)') from error

            registry = prometheus_client.CollectorRegistry()
            monitor.export_metrics(registry)
            prometheus_client.start_http_server(args.metrics_port, registry=registry)
        for path in args.inputs:
            rows = read_rows(path)
            for start in range(0, len(rows), args.rows):
                chunk = rows[start:start + args.rows]
                monitor.update(client.score(chunk))
                print(json.dumps({"file": str(path), "rows": len(chunk),
                                  **vars(monitor.report())}), flush=True)
    time.sleep(args.hold)
    return 0


def add_monitor_command(subparsers: argparse._SubParsersAction) -> None:
    """Registers `memae monitor` on the `memae` parser's subcommands."""
    monitor = subparsers.add_parser(
        "monitor", help="score inputs through a served model and report the anomaly rate "
                        "and score drift (Prometheus gauges with --metrics-port)",
        description="Scores the rows of each .npy/.npz file through MemAEClient, keeps the "
                    "recent scores in a ScoreMonitor and prints its report as one JSON line "
                    "per call: anomaly rate against the threshold's expected rate, and the "
                    "PSI of the scores over the export's reference deciles (see "
                    "client/README.md).")
    monitor.add_argument("inputs", nargs="+", help=".npy or .npz files of rows to score")
    monitor.add_argument("--target", default="localhost:8500", help="gRPC target")
    monitor.add_argument("--model-name", default="memae", help="served model name")
    monitor.add_argument("--version-label", help="e.g. canary (default: the latest version)")
    monitor.add_argument("--rows", type=int, default=1000, help="rows per client call")
    monitor.add_argument("--max-batch-size", type=int, default=DEFAULT_MAX_BATCH_SIZE,
                         help="rows per request: the server's batching max_batch_size")
    monitor.add_argument("--deadline", type=float, help="seconds for each client call")
    monitor.add_argument("--window", type=int, default=10_000,
                         help="how many recent scores the report covers")
    monitor.add_argument("--no-check-range", action="store_true",
                         help="send floats outside the model's input range")
    monitor.add_argument("--metrics-port", type=int,
                         help="serve the gauges at http://0.0.0.0:PORT/metrics "
                              "(needs prometheus_client: memae-tf-client[monitor])")
    monitor.add_argument("--hold", type=float, default=0.0,
                         help="seconds to keep serving the gauges after the last file")
    monitor.add_argument("--ca-cert", help="PEM root certificates for TLS")
    monitor.add_argument("--client-cert", help="PEM client certificate for mutual TLS")
    monitor.add_argument("--client-key", help="PEM client key for mutual TLS")
    monitor.set_defaults(func=cmd_monitor)


def main(argv: list[str] | None = None) -> int:
    """`python -m memae_tf.client.cli monitor ...` where only the client is installed."""
    parser = argparse.ArgumentParser(prog="memae")
    add_monitor_command(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
