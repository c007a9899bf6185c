"""Bounded loopback load test of `memae serve`: concurrent gRPC clients, mixed batch sizes.

Starts `memae serve` in its own process on 127.0.0.1 (a small exported MemAE
unless `--model-base-path` is given), then `--clients` threads, each with its
own `MemAEClient`, send `--requests` Predict calls in all with batch sizes
drawn from `--batch-sizes`, stopping early after `--max-seconds`. Reports
errors, latency percentiles, throughput and the server's resident memory at
the start, after the first thousand requests and at the end (a leak shows as
growth between the last two).

    python benchmarks/load_test.py                      # 16 clients, 8000 requests
    python benchmarks/load_test.py --clients 32 --requests 20000 --max-seconds 300
    python benchmarks/load_test.py --quick              # seconds; proves it works (CI)

Not part of the test suite's default run: it holds the machine for minutes.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import socket
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import _common

FEATURES = 12


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def rss_mib(pid: int) -> float:
    """Resident memory of a process, in MiB (Linux /proc)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def export_small_model(folder: pathlib.Path) -> pathlib.Path:
    """Exports a dense MemAE on 12 features (version 1) and returns its base path."""
    import keras

    from memae_tf.export import export_saved_model
    from memae_tf.models import build_autoencoder

    keras.utils.set_random_seed(0)
    model = build_autoencoder("kdd", "memae", input_shape=(FEATURES,), units=(64, 16),
                              num_items=50)
    base = folder / "memae"
    export_saved_model(model, base, threshold=0.1)
    return base


def wait_until_serving(server: subprocess.Popen, target: str, model_name: str,
                       timeout: float = 300.0) -> None:
    """Returns once the server answers a Predict; raises if it exits or takes too long."""
    from memae_tf.client import MemAEClient, MemAEClientError

    deadline = time.monotonic() + timeout
    with MemAEClient(target, model_name, retries=0, timeout=30) as probe:
        while True:
            try:
                probe.score(np.zeros((1, FEATURES), "f4"))
                return
            except MemAEClientError:
                if server.poll() is not None:
                    raise RuntimeError(
                        f"the server exited: {server.stderr.read()[-2000:]}") from None
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)


def run_load(target: str, model_name: str, pid: int, clients: int, requests: int,
             batch_sizes: list[int], max_seconds: float, features: int) -> dict:
    """Drives the load from `clients` threads; returns the measurements."""
    from memae_tf.client import MemAEClient

    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    issued = iter(range(requests))
    rss = {"start": rss_mib(pid)}
    deadline = time.monotonic() + max_seconds

    def client_loop(seed: int) -> None:
        rng = np.random.default_rng(seed)
        with MemAEClient(target, model_name, timeout=60, retries=0) as client:
            while time.monotonic() < deadline:
                with lock:
                    number = next(issued, None)
                if number is None:
                    return
                x = rng.uniform(size=(int(rng.choice(batch_sizes)), features)).astype("f4")
                start = time.perf_counter()
                try:
                    client.score(x)
                except Exception as error:  # counted and reported
                    with lock:
                        errors.append(f"{type(error).__name__}: {error}")
                    continue
                with lock:
                    latencies.append(time.perf_counter() - start)
                    if len(latencies) == 1000:
                        rss["after 1000"] = rss_mib(pid)

    threads = [threading.Thread(target=client_loop, args=(seed,)) for seed in range(clients)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - began
    rss["end"] = rss_mib(pid)
    p50, p99 = _common.percentiles(latencies, 50, 99) if latencies else (float("nan"),) * 2
    return {"requests": len(latencies) + len(errors), "ok": len(latencies),
            "errors": len(errors), "first_errors": errors[:3], "seconds": seconds,
            "p50_ms": p50 * 1e3, "p99_ms": p99 * 1e3,
            "max_ms": max(latencies, default=float("nan")) * 1e3,
            "requests_per_s": len(latencies) / seconds, "rss_mib": rss}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients (8-32)")
    parser.add_argument("--requests", type=int, default=8000, help="Predict calls in all")
    parser.add_argument("--batch-sizes", default="1,4,16,64",
                        help="comma-separated batch sizes drawn uniformly per request")
    parser.add_argument("--max-seconds", type=float, default=240.0,
                        help="stop issuing requests after this many seconds")
    parser.add_argument("--model-base-path", type=pathlib.Path,
                        help="serve this model (12 float features) instead of a fresh one")
    parser.add_argument("--quick", action="store_true",
                        help="2 clients, 60 requests: checks that the script works")
    args = parser.parse_args(argv)
    if args.quick:
        args.clients, args.requests, args.max_seconds = 2, 60, 60.0
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    batch_sizes = [int(size) for size in args.batch_sizes.split(",")]
    with tempfile.TemporaryDirectory() as folder:
        base = args.model_base_path or export_small_model(pathlib.Path(folder))
        port = _free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "memae_tf.cli", "serve", "--model-base-path", str(base),
             "--model-name", "memae", "--port", str(port), "--host", "127.0.0.1"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        )
        try:
            wait_until_serving(server, f"127.0.0.1:{port}", "memae")
            result = run_load(f"127.0.0.1:{port}", "memae", server.pid, args.clients,
                              args.requests, batch_sizes, args.max_seconds, FEATURES)
        finally:
            server.terminate()
            server.wait(timeout=120)
    facts = _common.machine()
    rss = result["rss_mib"]
    print(f"machine: {facts['cpu']}; load at start {facts['load average (1/5/15 min) at start']}")
    print(f"command: python benchmarks/load_test.py {' '.join(argv or sys.argv[1:])}")
    print("| clients | requests | errors | batch sizes | seconds | req/s | p50 ms | p99 ms "
          "| max ms | server RSS MiB: start / after 1000 / end |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    print(f"| {args.clients} | {result['requests']} | {result['errors']} | {args.batch_sizes} "
          f"| {result['seconds']:.1f} | {result['requests_per_s']:.0f} | {result['p50_ms']:.1f} "
          f"| {result['p99_ms']:.1f} | {result['max_ms']:.1f} | {rss['start']:.0f} / "
          f"{rss.get('after 1000', float('nan')):.0f} / {rss['end']:.0f} |")
    for error in result["first_errors"]:
        print(f"error: {error}")
    return 1 if result["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
