"""Bounded loopback load test of the development server: concurrent gRPC clients.

Starts `memae model-server` (TF Serving's flags, with the Deployment's
`--grpc_max_threads`) in its own process on this machine (a small exported MemAE
unless `--model-base-path` is given), then `--clients` threads, each with its
own `MemAEClient`, send `--requests` Predict calls in all with batch sizes drawn
from `--batch-sizes`, stopping early after `--max-seconds`. Reports errors,
latency percentiles, throughput and the server's resident memory at the start,
after the first thousand requests and at the end (a leak shows as growth between
the last two).

`--compare-batching` measures what TF Serving's server-side batching
(`--enable_batching` with the `batching_parameters.txt` of
serving/k8s/configmap.yaml, or `--batching-parameters FILE`) does for batch-1
traffic: one server with and one without batching, `--runs` runs each,
alternated, batch size 1; it reports each run, the medians, and the mean
number of rows per signature call read from the server's Prometheus metrics.
`--compare-splitting` sends `--rows`-row requests split by the client into
chunks of the ConfigMap's `max_batch_size` (sent concurrently) to the
ConfigMap's server, and unsplit to a server with `enable_large_batch_splitting`
(`max_batch_size` raised to `--rows`, `max_execution_batch_size` the
ConfigMap's `max_batch_size`).
The rule that reads `--compare-batching` for the shipped ConfigMap (set before the runs):
batching stays on if its median throughput is at least 10% above the
server's without batching and its median p99 latency at most twice as high;
otherwise the ConfigMap's comment says that batching does not pay for this
model on CPU. For `--compare-splitting`: splitting goes on only if the
server-side split's median rows/s is at least 10% above the client-side
split's, with no errors in either. The figures are the development server's (Python); TF
Serving's own per-request cost is lower, so they bound what batching can save
rather than predict TF Serving's throughput.

    python benchmarks/load_test.py                      # 16 clients, 8000 requests
    python benchmarks/load_test.py --clients 32 --requests 20000 --max-seconds 300
    python benchmarks/load_test.py --compare-batching --runs 5 --requests 3000
    python benchmarks/load_test.py --compare-splitting --clients 4 --requests 200
    python benchmarks/load_test.py --quick              # seconds; proves it works (CI)

Not part of the test suite's default run: it holds the machine for minutes.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import re
import socket
import statistics
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


CONFIGMAP = pathlib.Path(__file__).resolve().parents[1] / "serving" / "k8s" / "configmap.yaml"
DEPLOYMENT = CONFIGMAP.with_name("deployment.yaml")
MONITORING_CONFIG = 'prometheus_config { enable: true path: "/monitoring/prometheus/metrics" }\n'


def configmap_file(key: str) -> str:
    """Returns one file of the shipped ConfigMap (e.g. `batching_parameters.txt`)."""
    import yaml

    return yaml.safe_load(CONFIGMAP.read_text())["data"][key]


def start_server(base: pathlib.Path, folder: pathlib.Path, batching: str | None
                 ) -> tuple[subprocess.Popen, int, int]:
    """Starts `memae model-server` for `base` as model `memae`; returns it and its ports.

    `batching` is the text of a BatchingParameters file (None: no batching).
    Prometheus metrics are on, at TF Serving's default path.
    """
    port, rest_port = _free_port(), _free_port()
    monitoring = folder / f"monitoring-{port}.config"
    monitoring.write_text(MONITORING_CONFIG)
    import yaml

    # The Deployment's gRPC thread quota: TF Serving's default (4 per CPU) refuses what a
    # loopback load of many clients sends at once on a small machine.
    (deployment,) = [d for d in yaml.safe_load_all(DEPLOYMENT.read_text()) if d]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    threads = [a for a in container["args"] if a.startswith("--grpc_max_threads=")]
    flags = [f"--port={port}", f"--rest_api_port={rest_port}", "--model_name=memae",
             f"--model_base_path={base}", "--file_system_poll_wait_seconds=0",
             f"--monitoring_config_file={monitoring}", *threads]
    if batching is not None:
        parameters = folder / f"batching-{port}.txt"
        parameters.write_text(batching)
        flags += ["--enable_batching", f"--batching_parameters_file={parameters}"]
    with open(folder / f"server-{port}.log", "w") as log:  # a pipe left unread would block it
        server = subprocess.Popen(
            [sys.executable, "-m", "memae_tf.cli", "model-server", *flags],
            stdout=subprocess.DEVNULL, stderr=log,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        )
    server.log_path = log.name
    return server, port, rest_port


def batch_rows(rest_port: int) -> tuple[float, float]:
    """Rows run and signature calls made so far by batching (the server's Prometheus page)."""
    import urllib.request

    from memae_tf.serving.metrics import DEFAULT_PROMETHEUS_PATH, parse_exposition

    url = f"http://127.0.0.1:{rest_port}{DEFAULT_PROMETHEUS_PATH}"
    with urllib.request.urlopen(url, timeout=30) as response:
        page = parse_exposition(response.read().decode())
    name = ":tensorflow:serving:batching_session:processed_batch_size"
    return page.get(f"{name}_sum", {}).get((), 0.0), page.get(f"{name}_count", {}).get((), 0.0)


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
                    log = pathlib.Path(server.log_path).read_text()[-2000:]
                    raise RuntimeError(f"the server exited: {log}") from None
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)


def run_load(target: str, model_name: str, pid: int, clients: int, requests: int,
             batch_sizes: list[int], max_seconds: float, features: int,
             max_batch_size: int | None = 64) -> dict:
    """Drives the load from `clients` threads; returns the measurements.

    Each client splits its batches at `max_batch_size` rows (`MemAEClient`'s
    default is the shipped ConfigMap's) and sends the chunks concurrently.
    """
    from memae_tf.client import MemAEClient

    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    issued = iter(range(requests))
    rss = {"start": rss_mib(pid)}
    deadline = time.monotonic() + max_seconds

    def client_loop(seed: int) -> None:
        rng = np.random.default_rng(seed)
        with MemAEClient(target, model_name, timeout=60, retries=0,
                         max_batch_size=max_batch_size) as client:
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
    parser.add_argument("--requests", type=int, default=8000,
                        help="Predict calls in all (per run with --compare-batching)")
    parser.add_argument("--batch-sizes", default="1,4,16,64",
                        help="comma-separated batch sizes drawn uniformly per request "
                             "(1 with --compare-batching)")
    parser.add_argument("--max-seconds", type=float, default=240.0,
                        help="stop issuing requests after this many seconds (per run)")
    parser.add_argument("--model-base-path", type=pathlib.Path,
                        help="serve this model (12 float features) instead of a fresh one")
    parser.add_argument("--compare-batching", action="store_true",
                        help="batch-1 traffic against a server with and one without batching")
    parser.add_argument("--compare-splitting", action="store_true",
                        help="--rows-row requests split by the client (the ConfigMap as "
                             "shipped) against split by the server (large-batch splitting)")
    parser.add_argument("--rows", type=int, default=1000,
                        help="rows per request with --compare-splitting")
    parser.add_argument("--batching-parameters", type=pathlib.Path,
                        help="BatchingParameters file for --compare-batching (default: the "
                             "shipped ConfigMap's batching_parameters.txt)")
    parser.add_argument("--runs", type=int, default=3,
                        help="runs per server with --compare-batching (medians reported)")
    parser.add_argument("--quick", action="store_true",
                        help="2 clients, 60 requests (1 run each): checks that the script works")
    args = parser.parse_args(argv)
    if args.quick:
        args.clients, args.requests, args.max_seconds, args.runs, args.rows = 2, 60, 60.0, 1, 200
    return args


def stop(server: subprocess.Popen) -> None:
    server.terminate()
    server.wait(timeout=120)


def load_test(args: argparse.Namespace, base: pathlib.Path, folder: pathlib.Path) -> int:
    """The mixed-batch load test of one server without batching."""
    batch_sizes = [int(size) for size in args.batch_sizes.split(",")]
    server, port, _ = start_server(base, folder, None)
    try:
        wait_until_serving(server, f"127.0.0.1:{port}", "memae")
        result = run_load(f"127.0.0.1:{port}", "memae", server.pid, args.clients,
                          args.requests, batch_sizes, args.max_seconds, FEATURES)
    finally:
        stop(server)
    rss = result["rss_mib"]
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


def compare_batching(args: argparse.Namespace, base: pathlib.Path, folder: pathlib.Path) -> int:
    """Batch-1 traffic against a server without and one with batching, runs alternated."""
    parameters = (args.batching_parameters.read_text() if args.batching_parameters
                  else configmap_file("batching_parameters.txt"))
    print("batching parameters: " + " ".join(parameters.split()))
    servers = {"no batching": start_server(base, folder, None),
               "batching": start_server(base, folder, parameters)}
    runs: dict[str, list[dict]] = {mode: [] for mode in servers}
    errors = 0
    try:
        for server, port, _ in servers.values():
            wait_until_serving(server, f"127.0.0.1:{port}", "memae")
        for _ in range(args.runs):
            for mode, (server, port, rest_port) in servers.items():
                rows_before, calls_before = batch_rows(rest_port)
                result = run_load(f"127.0.0.1:{port}", "memae", server.pid, args.clients,
                                  args.requests, [1], args.max_seconds, FEATURES)
                rows_after, calls_after = batch_rows(rest_port)
                calls = calls_after - calls_before
                result["rows_per_call"] = (rows_after - rows_before) / calls if calls else 1.0
                runs[mode].append(result)
                errors += result["errors"]
                for error in result["first_errors"]:
                    print(f"error ({mode}): {error}")
    finally:
        for server, _, _ in servers.values():
            stop(server)
    print(f"| server ({args.clients} clients, batch size 1) | runs | req/s per run "
          "| median req/s | median p50 ms | median p99 ms | mean rows per signature call |")
    print("|---|---|---|---|---|---|---|")
    for mode, results in runs.items():
        median = {key: statistics.median(result[key] for result in results)
                  for key in ("requests_per_s", "p50_ms", "p99_ms", "rows_per_call")}
        each = ", ".join(f"{result['requests_per_s']:.0f}" for result in results)
        print(f"| {mode} | {len(results)} | {each} | {median['requests_per_s']:.0f} "
              f"| {median['p50_ms']:.1f} | {median['p99_ms']:.1f} "
              f"| {median['rows_per_call']:.2f} |")
    return 1 if errors else 0


def splitting_parameters(parameters: str, max_batch_size: int) -> tuple[str, int]:
    """`parameters` with large-batch splitting on, and the batch size they run.

    Requests of up to `max_batch_size` rows are accepted and run in batches of
    the original `max_batch_size` (now `max_execution_batch_size`).
    """
    from google.protobuf import text_format

    from memae_tf.serving.proto import BatchingParameters

    message = text_format.Parse(parameters, BatchingParameters())
    execution = message.max_batch_size.value
    message.max_execution_batch_size.value = execution
    message.max_batch_size.value = max_batch_size
    message.enable_large_batch_splitting.value = True
    return text_format.MessageToString(message), execution


def compare_splitting(args: argparse.Namespace, base: pathlib.Path, folder: pathlib.Path) -> int:
    """Requests of `--rows` rows: split by the client (ConfigMap as shipped) or by the server."""
    parameters = (args.batching_parameters.read_text() if args.batching_parameters
                  else configmap_file("batching_parameters.txt"))
    split, execution = splitting_parameters(parameters, args.rows)
    print("client splits: " + " ".join(parameters.split()))
    print("server splits: " + " ".join(split.split()))
    modes = {"client splits": (start_server(base, folder, parameters), execution),
             "server splits": (start_server(base, folder, split), args.rows)}
    runs: dict[str, list[dict]] = {mode: [] for mode in modes}
    errors = 0
    try:
        for (server, port, _), _ in modes.values():
            wait_until_serving(server, f"127.0.0.1:{port}", "memae")
        for _ in range(args.runs):
            for mode, ((server, port, _), client_limit) in modes.items():
                result = run_load(f"127.0.0.1:{port}", "memae", server.pid, args.clients,
                                  args.requests, [args.rows], args.max_seconds, FEATURES,
                                  max_batch_size=client_limit)
                runs[mode].append(result)
                errors += result["errors"]
                for error in result["first_errors"]:
                    print(f"error ({mode}): {error}")
    finally:
        for (server, _, _), _ in modes.values():
            stop(server)
    print(f"| {args.rows}-row requests, {args.clients} clients | runs | rows/s per run "
          "| median rows/s | median p50 ms | median p99 ms | errors |")
    print("|---|---|---|---|---|---|---|")
    for mode, results in runs.items():
        median = {key: statistics.median(result[key] for result in results)
                  for key in ("requests_per_s", "p50_ms", "p99_ms")}
        each = ", ".join(f"{result['requests_per_s'] * args.rows:.0f}" for result in results)
        print(f"| {mode} | {len(results)} | {each} | {median['requests_per_s'] * args.rows:.0f} "
              f"| {median['p50_ms']:.1f} | {median['p99_ms']:.1f} "
              f"| {sum(result['errors'] for result in results)} |")
    return 1 if errors else 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    facts = _common.machine()  # before the load: its load average is the machine's own
    with tempfile.TemporaryDirectory() as folder:
        base = args.model_base_path or export_small_model(pathlib.Path(folder))
        run = (compare_batching if args.compare_batching else
               compare_splitting if args.compare_splitting else load_test)
        status = run(args, base, pathlib.Path(folder))
    with open("/proc/cpuinfo") as info:
        isa = sorted(set(re.findall(r"\b(avx2|avx512f|avx512bw|avx512_vnni|avx512_bf16)\b",
                                    info.read())))
    print(f"machine: {facts['cpu']} ({' '.join(isa) or 'no AVX2'}); load average "
          f"(1/5/15 min) at start {facts['load average (1/5/15 min) at start']}, at the end "
          f"{' / '.join(f'{v:.1f}' for v in os.getloadavg())}")
    print(f"command: python benchmarks/load_test.py {' '.join(argv or sys.argv[1:])}")
    return status


if __name__ == "__main__":
    sys.exit(main())
