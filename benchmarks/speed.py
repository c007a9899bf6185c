"""Throughput, latency and memory of training, scoring and serving, per preset.

For each preset: samples/s of `MemAE.fit` (steady state: the first, tracing
epoch is dropped), of `MemAE.score`, and of the exported SavedModel's
`serving_default` called in-process; p50/p99 latency of `serving_default` at
batch 1 and 64; optionally the development gRPC server (`--grpc`); the peak
memory of the process (each preset runs in its own process). With `--torch`,
the eager PyTorch reference of the MNIST preset (`torch_mnist.py`) runs
interleaved with ours, round by round, so that both see the same machine load,
and the table gives the ratios.

    python benchmarks/speed.py --quick                # seconds; proves it works (CI)
    python benchmarks/speed.py --torch --grpc --write # full CPU run → RESULTS.md "Speed"
    python benchmarks/speed.py --torch --presets mnist --isa-cap avx2  # AVX2 kernels only

Timings are medians (and bests) over `--repeats` rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import _common

# Before TensorFlow, as a user's `from memae_tf import MemAE` comes: the import
# sets TensorFlow's oneDNN switch (see memae_tf/__init__.py).
import memae_tf  # noqa: F401
from memae_tf.choices import score_batch_size

PRESETS = ("mnist", "cifar10", "kdd", "video")
# Untimed epochs: tracing and XLA compilation can spill into the second one.
_WARM_EPOCHS = 2


@dataclass(frozen=True)
class Workload:
    """How much of each preset one round measures."""

    train: int
    batch: int
    score: int
    score_batch: int
    overrides: dict[str, Any] = field(default_factory=dict)
    max_rounds: int | None = None  # cap on --repeats where one round takes minutes
    jit: bool | None = None  # overrides --jit


FULL = {
    "mnist": Workload(train=3200, batch=64, score=8192, score_batch=1024),
    "cifar10": Workload(train=1280, batch=64, score=4096, score_batch=512),
    "kdd": Workload(train=25600, batch=64, score=65536, score_batch=4096),
    # XLA:CPU runs the 3-D convolutions about 20× slower than TensorFlow's kernels
    # (a training step on one clip: 92-100 s against 4-6 s).
    "video": Workload(train=4, batch=2, score=4, score_batch=2, max_rounds=2, jit=False),
}
GPU = {
    "mnist": Workload(train=25600, batch=64, score=65536, score_batch=4096),
    "cifar10": Workload(train=12800, batch=64, score=32768, score_batch=2048),
    "kdd": Workload(train=51200, batch=64, score=262144, score_batch=16384),
    "video": Workload(train=64, batch=8, score=64, score_batch=8),
}
QUICK = {
    "mnist": Workload(train=256, batch=64, score=512, score_batch=256),
    "cifar10": Workload(train=128, batch=64, score=256, score_batch=128),
    "kdd": Workload(train=512, batch=64, score=1024, score_batch=512),
    "video": Workload(train=4, batch=2, score=4, score_batch=2,
                      overrides={"input_shape": (4, 32, 32, 1), "filters": (8, 8, 16, 16),
                                 "num_items": 20}),
}


WORKLOADS = {"cpu": FULL, "gpu": GPU, "quick": QUICK}
# The user's default path (issue 13): `MemAE.from_preset(preset).fit(x, epochs=5)` as a
# new user calls it, on this many samples, set-up (memory initialisation, tracing,
# compilation) included; then a second `fit` call on the same detector.
DEFAULT_PATH = {"cpu": (6000, 5), "gpu": (6000, 5), "quick": (256, 1)}


def _synthetic(detector, count: int):
    import numpy as np

    low, high = detector.input_range
    rng = np.random.default_rng(0)
    return (rng.random((count, *detector.input_shape)) * (high - low) + low).astype("float32")


def _train(detector, x, work: Workload, args, torch_bench) -> dict[str, Any]:
    """Steady-state training rate; the PyTorch epochs run between ours."""
    import keras

    seconds: dict[str, list[float]] = {"train": [], "torch.train": []}
    torch_data = None if torch_bench is None else torch_bench.to_tensor(x)

    class Rounds(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            if epoch < _WARM_EPOCHS:
                return
            seconds["train"].append(time.perf_counter() - self.start)
            if torch_bench is not None:
                start = time.perf_counter()
                torch_bench.train(torch_data, work.batch)
                seconds["torch.train"].append(time.perf_counter() - start)

    if torch_bench is not None:
        torch_bench.train(torch_data, work.batch)  # warm-up
    detector.fit(x, epochs=args.repeats + _WARM_EPOCHS, batch_size=work.batch, verbose=0,
                 shuffle=True, seed=0, jit_compile=args.jit,
                 steps_per_execution=args.steps_per_execution, strategy=args.strategy,
                 precision=args.precision, callbacks=[Rounds()])
    replicas = detector.history_.model.distribute_strategy.num_replicas_in_sync
    samples = len(x) // (work.batch * replicas) * work.batch * replicas
    seconds = {name: values for name, values in seconds.items() if values}
    return {"rates": {name: _common.rate(samples, values) for name, values in seconds.items()},
            "seconds": seconds}


def time_fit_calls(preset: str, x, epochs: int, **settings: Any) -> tuple[float, float]:
    """Seconds of a new detector's first `fit(x, epochs=epochs)` call, then of a second one.

    The calls are made as a user makes them (Keras' progress bar prints, to a
    null stream here); `settings` are further `fit` settings, none by default.
    """
    import contextlib
    import io

    from memae_tf import MemAE

    detector = MemAE.from_preset(preset)
    with contextlib.redirect_stdout(io.StringIO()):
        start = time.perf_counter()
        detector.fit(x, epochs=epochs, **settings)
        first = time.perf_counter()
        detector.fit(x, epochs=epochs, **settings)
    return first - start, time.perf_counter() - first


def time_torch_epochs(bench, data, epochs: int) -> float:
    """Seconds of `epochs` epochs of the PyTorch reference `bench` (batch 64)."""
    start = time.perf_counter()
    for _ in range(epochs):
        bench.train(data, 64)
    return time.perf_counter() - start


def _default_path(preset: str, detector, args, torch_factory) -> dict[str, Any]:
    """Seconds of `fit(x, epochs=5)` as called, on a new detector, then again; PyTorch beside.

    Nothing is set but the epochs: XLA and steps per execution are whatever
    `MemAE.fit` chooses. Each round builds a new detector (and a new PyTorch
    model), so the first call pays the set-up a user pays.
    """
    count, epochs = DEFAULT_PATH[args.workload]
    x = _synthetic(detector, count)
    second_seconds: list[float] = []

    def ours() -> float:
        first, second = time_fit_calls(preset, x, epochs)
        second_seconds.append(second)
        return first

    functions: dict[str, Any] = {"fit": ours}
    if torch_factory is not None:
        data = torch_factory().to_tensor(x)
        functions["torch.fit"] = lambda: time_torch_epochs(torch_factory(), data, epochs)
    rounds = _common.interleave(functions, min(args.repeats, 3))
    rounds["fit.second"] = second_seconds
    return {"samples": count, "epochs": epochs, "seconds": rounds,
            "rates": {name: _common.rate(count * epochs, values)
                      for name, values in rounds.items()}}


def _score(detector, x, work: Workload, args, serve, torch_bench) -> dict[str, Any]:
    """Rates of MemAE.score, in-process serving_default and PyTorch, interleaved."""
    import numpy as np
    import tensorflow as tf

    def timed(function):
        def run() -> float:
            start = time.perf_counter()
            function()
            return time.perf_counter() - start
        return run

    def serving() -> None:
        for begin in range(0, len(x), work.score_batch):
            serve(x=tf.constant(x[begin:begin + work.score_batch]))["score"].numpy()

    functions = {"score": timed(lambda: detector.score(x, batch_size=work.score_batch)),
                 "savedmodel": timed(serving)}
    if torch_bench is not None:
        data = torch_bench.to_tensor(x)
        functions["torch.score"] = timed(lambda: torch_bench.score(data, work.score_batch))
        # As a user calls it: `score(x)` at its default batch, PyTorch at the same batch.
        functions["score.default"] = timed(lambda: detector.score(x))
        functions["torch.score.default"] = timed(
            lambda: torch_bench.score(data, score_batch_size(x.shape[1:])))
    for function in functions.values():
        function()  # warm-up
    rounds = _common.interleave(functions, args.repeats)
    rates = {name: _common.rate(len(x), values) for name, values in rounds.items()}

    latencies = {}
    for batch in (1, min(64, work.score_batch)):
        request = tf.constant(x[:batch] if len(x) >= batch else np.resize(x, (batch, *x.shape[1:])))
        serve(x=request)
        calls: list[float] = []
        deadline = time.perf_counter() + (1 if args.quick else 10)
        while len(calls) < 300 and (len(calls) < 5 or time.perf_counter() < deadline):
            start = time.perf_counter()
            serve(x=request)["score"].numpy()
            calls.append(time.perf_counter() - start)
        latencies[batch] = [1e3 * v for v in _common.percentiles(calls, 50, 99)]
    return {"rates": rates, "seconds": rounds, "latency_ms": latencies}


def _grpc(base_path: Path, x, serve, args, input_range) -> dict[str, Any]:
    """The development gRPC server (another process) against in-process serving, batch 64.

    The batch is 64 uint8 images, sent as the float32 the client makes of them
    (`grpc`) and as uint8 to the export's `serving_default_uint8` (`grpc.uint8`).
    """
    import socket

    import numpy as np
    import tensorflow as tf

    from memae_tf.client import MemAEClient
    from memae_tf.common.scaling import scale_uint8

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-c", "import sys; from memae_tf.cli import main; sys.exit(main())",
         "serve", "--model-base-path", str(base_path), "--port", str(port),
         "--host", "127.0.0.1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        client = MemAEClient(f"127.0.0.1:{port}", base_path.name, timeout=30.0)
        deadline = time.monotonic() + 120
        while True:
            try:
                client.score(x[:1])
                break
            except Exception:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.5)
        low, high = input_range
        pixels = np.round((x[:64] - low) / (high - low) * 255).astype(np.uint8)
        batch = scale_uint8(pixels, input_range)
        if not np.array_equal(client.score(pixels), client.score(batch)):
            raise AssertionError("uint8 and float32 requests of the same images score apart")
        calls = 20 if args.quick else 200

        def grpc_round(inputs=batch) -> float:
            start = time.perf_counter()
            for _ in range(calls):
                client.score(inputs)
            return time.perf_counter() - start

        def local_round() -> float:
            start = time.perf_counter()
            for _ in range(calls):
                serve(x=tf.constant(batch))["score"].numpy()
            return time.perf_counter() - start

        def status_round() -> float:  # the per-RPC floor: no tensor, no TensorFlow
            start = time.perf_counter()
            for _ in range(calls):
                client.status()
            return time.perf_counter() - start

        rounds = _common.interleave({"grpc": grpc_round, "grpc.uint8": lambda: grpc_round(pixels),
                                     "in-process": local_round, "status": status_round},
                                    args.repeats)
        per_call_ms = {name: 1e3 * statistics.median(values) / calls
                       for name, values in rounds.items()}
        rates = {name: _common.rate(calls * len(batch), values) for name, values in rounds.items()
                 if name != "status"}

        concurrent: list[float] = []
        lock = threading.Lock()

        def worker() -> None:
            own = MemAEClient(f"127.0.0.1:{port}", base_path.name, timeout=30.0)
            mine = []
            for _ in range(calls // 4):
                start = time.perf_counter()
                own.score(batch)
                mine.append(time.perf_counter() - start)
            own.close()
            with lock:
                concurrent.extend(mine)

        threads = [threading.Thread(target=worker) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        client.close()
        return {"rates": rates, "per_call_ms": per_call_ms, "seconds": rounds,
                "uint8_over_float": statistics.median(
                    f / u for f, u in zip(rounds["grpc"], rounds["grpc.uint8"], strict=True)),
                "concurrent_8_ms": [1e3 * v for v in _common.percentiles(concurrent, 50, 99)]}
    finally:
        server.terminate()
        server.wait(timeout=30)


def measure(preset: str, args) -> dict[str, Any]:
    """All measurements of one preset, in this process."""
    import tensorflow as tf

    from memae_tf import MemAE
    from memae_tf.export import export_saved_model

    work = WORKLOADS[args.workload][preset]
    if work.max_rounds is not None:
        args.repeats = min(args.repeats, work.max_rounds)
    if work.jit is not None:
        args.jit = work.jit
    torch_bench = torch_factory = None
    if args.torch and preset == "mnist":
        from torch_mnist import TorchMnistBench

        def torch_factory() -> TorchMnistBench:
            return TorchMnistBench(args.torch_threads or args.threads or os.cpu_count())

        torch_bench = torch_factory()
    detector = MemAE.from_preset(preset, **work.overrides)
    result: dict[str, Any] = {"preset": preset, "input_shape": list(detector.input_shape),
                              "params": detector.model.count_params(), "work": work.__dict__,
                              "rounds": args.repeats, "xla": args.jit}
    x_train = _synthetic(detector, work.train)
    if preset == "mnist" and not args.grpc_only:
        result["default_path"] = _default_path(preset, detector, args, torch_factory)
    if not args.grpc_only:
        result["training"] = _train(detector, x_train, work, args, torch_bench)
    x = _synthetic(detector, work.score)
    with tempfile.TemporaryDirectory() as tmp:
        version = export_saved_model(detector.model, Path(tmp) / preset, threshold=1.0,
                                     scoring_graph=detector.scoring_graph,
                                     input_range=detector.input_range)
        serve = tf.saved_model.load(str(version)).signatures["serving_default"]
        if not args.grpc_only:
            result.update(_score(detector, x, work, args, serve, torch_bench))
        if args.grpc and preset == "mnist":
            result["grpc"] = _grpc(Path(tmp) / preset, x, serve, args, detector.input_range)
    result["peak_rss_mib"] = _common.peak_rss_mib()
    if tf.config.list_physical_devices("GPU"):
        result["gpu_peak_mib"] = tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20
    return result


def _child_command(preset: str, args, out: Path) -> list[str]:
    command = [sys.executable, __file__, "--child", preset, "--json", str(out),
               "--workload", args.workload,
               "--repeats", str(args.repeats), "--strategy", args.strategy,
               "--precision", args.precision,
               "--steps-per-execution", str(args.steps_per_execution),
               "--jit" if args.jit else "--no-jit"]
    for flag, value in (("--threads", args.threads), ("--torch-threads", args.torch_threads)):
        if value is not None:
            command += [flag, str(value)]
    command += (["--quick"] * args.quick + ["--torch"] * args.torch + ["--grpc"] * args.grpc
                + ["--grpc-only"] * args.grpc_only)
    return command


def _fmt(pair: list[float] | tuple[float, float] | None, digits: int = 0) -> str:
    if not pair:
        return "–"
    return f"{pair[0]:,.{digits}f} ({pair[1]:,.{digits}f})"


def _paired(seconds: dict[str, list[float]], ours: str, theirs: str) -> float:
    """Median over rounds of (their time / our time) for the same work: our speed-up."""
    return statistics.median(t / o for o, t in zip(seconds[ours], seconds[theirs], strict=True))


def _default_path_lines(path: dict[str, Any], facts: dict[str, str]) -> list[str]:
    """The default-path table: `fit(x, epochs=5)` as called, against eager PyTorch."""
    rates, seconds = path["rates"], path["seconds"]
    work = f"{path['samples']:,} samples × {path['epochs']} epochs"
    lines = [
        f"The default path (MNIST preset): `MemAE.from_preset('mnist').fit(x, epochs="
        f"{path['epochs']})` as a user calls it ({work}, nothing else set, set-up "
        f"included, a new detector every round), then a second `fit` call on the same "
        f"detector; eager PyTorch {facts.get('torch', '')} runs the same epochs on a "
        f"new model, interleaved. Samples/s, median (best) over "
        f"{len(seconds['fit'])} rounds; seconds per call in the last column.",
        "",
        "| | samples/s | against PyTorch (ratio of medians) | seconds (median) | target |",
        "|---|---|---|---|---|",
    ]
    theirs = rates.get("torch.fit")
    # Issue 28's targets: the first call of a new detector ≥ 1.5× eager PyTorch, the second ≥ 2×.
    for name, label, target in (("fit", "first `fit` call (set-up included)", "≥ 1.5×"),
                                ("fit.second", "second `fit` call (compiled)", "≥ 2×")):
        ratio = f"{rates[name][0] / theirs[0]:.2f}×" if theirs else "–"
        lines.append(f"| {label} | {_fmt(rates[name])} | {ratio} | "
                     f"{statistics.median(seconds[name]):.1f} | {target} |")
    if theirs:
        lines.append(f"| eager PyTorch | {_fmt(theirs)} | 1× | "
                     f"{statistics.median(seconds['torch.fit']):.1f} | |")
    return lines


def report(rows: list[dict[str, Any]], facts: dict[str, str], args, command: str) -> str:
    """The markdown of the measured part of RESULTS.md's Speed section."""
    lines = [
        f"Measured {time.strftime('%Y-%m-%d %H:%M %Z')} with `{command}`.",
        "",
        "| | |", "|---|---|",
        *(f"| {key} | {value} |" for key, value in facts.items()),
        f"| settings | strategy {args.strategy}, precision {args.precision}, "
        f"XLA {'on' if args.jit else 'off'} for training, steps_per_execution "
        f"{args.steps_per_execution}, TF threads {args.threads or 'default'}, "
        f"{args.repeats} rounds |",
        "",
    ]
    if args.grpc_only:
        return "\n".join(lines + [line for row in rows for line in _grpc_lines(row)])
    lines += [
        "Samples/s (clips of 16 frames/s for video), median over rounds (best in brackets); "
        "latency of in-process `serving_default` calls at batch 1 and 64 (video: its "
        "scoring batch; up to 300 calls or 10 s), "
        "p50 (p99) ms; peak RSS of the preset's process.",
        "",
        "| preset | train | MemAE.score | SavedModel serving_default | latency b1 | "
        "latency b64 | peak RSS MiB |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        rates = row["rates"]
        latency = list(row["latency_ms"].values())
        memory = f"{row['peak_rss_mib']:,.0f}"
        if "gpu_peak_mib" in row:
            memory += f" (GPU {row['gpu_peak_mib']:,.0f})"
        digits = 2 if row["preset"] == "video" else 0
        lines.append(
            f"| {row['preset']} {tuple(row['input_shape'])} | "
            f"{_fmt(row['training']['rates'].get('train'), digits)} | "
            f"{_fmt(rates['score'], digits)} | "
            f"{_fmt(rates['savedmodel'], digits)} | "
            f"{_fmt(latency[0], 2)} | {_fmt(latency[1], 2)} | {memory} |"
        )
    batches = ", ".join(f"{r['preset']} train {r['work']['batch']} / score "
                        f"{r['work']['score_batch']}" for r in rows)
    fewer = ", ".join(f"{r['preset']} {r['rounds']}" for r in rows if r["rounds"] != args.repeats)
    no_xla = ", ".join(r["preset"] for r in rows if r["xla"] != args.jit)
    lines += ["", f"Batch sizes: {batches}." + (f" Rounds: {fewer}." if fewer else "")
              + (f" XLA {'off' if args.jit else 'on'} for: {no_xla}." if no_xla else "")]
    for row in rows:
        if row["preset"] == "video":
            frames = 16 * row["rates"]["score"][0]
            lines.append(f"Video scoring: {frames:,.1f} frames/s (16 × clips/s; the paper "
                         "reports about 38 frames/s on a GPU).")
    for row in rows:
        if "torch.train" in row["training"]["rates"]:
            rates = row["training"]["rates"]
            train, torch_train = rates["train"], rates["torch.train"]
            paired_train = _paired(row["training"]["seconds"], "train", "torch.train")
            score = row["rates"]
            lines += [
                "",
                f"MNIST preset against eager PyTorch {facts.get('torch')} (same network, "
                f"Adam, batch {row['work']['batch']}; scoring batch "
                f"{row['work']['score_batch']}), interleaved round by round:",
                "",
                "Ratios: of the medians, of the bests, and the median of the per-round ratios "
                "(each round times ours and PyTorch back to back).",
                "",
                "| | ours | PyTorch | ratio of medians | of bests | per-round | target |",
                "|---|---|---|---|---|---|---|",
                f"| training | {_fmt(train)} | {_fmt(torch_train)} | "
                f"{train[0] / torch_train[0]:.2f}× | {train[1] / torch_train[1]:.2f}× | "
                f"{paired_train:.2f}× | ≥ 2× |",
            ]
            for name, label in (("score", "MemAE.score"), ("savedmodel", "serving_default")):
                ours, theirs = score[name], score["torch.score"]
                paired = _paired(row["seconds"], name, "torch.score")
                lines.append(f"| {label} | {_fmt(ours)} | {_fmt(theirs)} | "
                             f"{ours[0] / theirs[0]:.2f}× | {ours[1] / theirs[1]:.2f}× | "
                             f"{paired:.2f}× | ≥ 2.5× |")
            if "score.default" in score:
                ours, theirs = score["score.default"], score["torch.score.default"]
                paired = _paired(row["seconds"], "score.default", "torch.score.default")
                default = score_batch_size(tuple(row["input_shape"]))
                lines.append(f"| `score(x)`, default batch ({default}) | {_fmt(ours)} | "
                             f"{_fmt(theirs)} | {ours[0] / theirs[0]:.2f}× | "
                             f"{ours[1] / theirs[1]:.2f}× | {paired:.2f}× | ≥ 2.5× |")
        if "default_path" in row:
            lines += ["", *_default_path_lines(row["default_path"], facts)]
        if "grpc" in row:
            lines += _grpc_lines(row)
    return "\n".join(lines)


def _grpc_lines(row: dict[str, Any]) -> list[str]:
    """The report's lines on the gRPC development server."""
    grpc = row["grpc"]
    over = grpc["rates"]["in-process"][0] / grpc["rates"]["grpc"][0] - 1
    p50, p99 = grpc["concurrent_8_ms"]
    lines = [
        "",
        f"gRPC development server ({row['preset']}, batch 64, server in another "
        f"process): {_fmt(grpc['rates']['grpc'])} samples/s against "
        f"{_fmt(grpc['rates']['in-process'])} in-process, overhead {100 * over:.0f}% "
        f"(target ≤ 15%); 8 concurrent clients p50 {p50:.1f} ms, p99 {p99:.1f} ms "
        f"(p99/p50 {p99 / p50:.1f}, target ≤ 3).",
    ]
    if "grpc.uint8" in grpc["rates"]:
        lines.append(
            f"The same 64 images sent as uint8 (`serving_default_uint8`, a quarter of the "
            f"bytes): {_fmt(grpc['rates']['grpc.uint8'])} samples/s, "
            f"{grpc['uint8_over_float']:.2f}× the float32 requests (median of the rounds' "
            f"ratios).")
    per_call = grpc.get("per_call_ms")
    if per_call:
        lines.append(
            f"Per call (medians): Predict over gRPC {per_call['grpc']:.2f} ms"
            + (f" (uint8 {per_call['grpc.uint8']:.2f} ms)" if "grpc.uint8" in per_call else "")
            + f", in-process {per_call['in-process']:.2f} ms, a GetModelStatus round trip "
            f"(no tensor, no TensorFlow: the per-RPC floor of Python gRPC here) "
            f"{per_call['status']:.2f} ms."
        )
    return lines


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="tiny workloads (--workload quick), one round")
    parser.add_argument("--workload", choices=sorted(WORKLOADS),
                        help="samples per round (default: gpu when a GPU is visible, else cpu)")
    parser.add_argument("--presets", default=",".join(PRESETS),
                        help=f"comma-separated subset of {','.join(PRESETS)}")
    parser.add_argument("--repeats", type=int, help="rounds per measurement (default 5; quick 1)")
    parser.add_argument("--threads", type=int, help="TensorFlow intra/inter-op threads")
    parser.add_argument("--torch", action="store_true",
                        help="compare the MNIST preset with eager PyTorch (bench extra)")
    parser.add_argument("--torch-threads", type=int, help="PyTorch threads (default: --threads)")
    parser.add_argument("--grpc", action="store_true",
                        help="also measure the gRPC dev server (MNIST preset)")
    parser.add_argument("--grpc-only", action="store_true",
                        help="measure only the gRPC dev server (implies --grpc; no training, "
                             "no in-process scoring table)")
    parser.add_argument("--strategy", default="default", help="MemAE.fit strategy")
    parser.add_argument("--precision", default="float32", help="MemAE.fit precision")
    parser.add_argument("--jit", action=argparse.BooleanOptionalAction, default=True,
                        help="XLA-compile the train step (default on)")
    parser.add_argument("--steps-per-execution", type=int, default=32)
    parser.add_argument("--write", action="store_true",
                        help="write the tables into benchmarks/RESULTS.md (section Speed)")
    parser.add_argument("--results", type=Path, default=_common.RESULTS,
                        help="markdown file for --write")
    parser.add_argument("--section", default="Speed", help="section title for --write")
    parser.add_argument("--isa-cap", choices=sorted(_common.ISA_CAPS),
                        help="cap the CPU kernels' instruction set of TensorFlow, XLA and "
                             "PyTorch (e.g. avx2 on an AVX-512 machine; default: no cap)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeats is None:
        args.repeats = 1 if args.quick else 5
    if args.quick:
        args.workload = "quick"
    args.grpc = args.grpc or args.grpc_only
    if args.grpc_only and args.write:
        parser.error("--grpc-only measures part of the Speed section; it does not --write")
    unknown = set(args.presets.split(",")) - set(PRESETS)
    if unknown:
        parser.error(f"unknown presets {sorted(unknown)}; expected some of {PRESETS}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    _common.cap_isa(args.isa_cap)
    _common.configure_threads(args.threads)
    if args.workload is None:
        import tensorflow as tf

        args.workload = "gpu" if tf.config.list_physical_devices("GPU") else "cpu"
    if args.child:
        args.json.write_text(json.dumps(measure(args.child, args)))
        return 0
    facts = _common.machine()  # before the runs: its load average is the machine's own
    rows = []
    for preset in args.presets.split(","):
        if args.quick:
            rows.append(measure(preset, args))
            continue
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "result.json"
            subprocess.run(_child_command(preset, args, out), check=True)
            rows.append(json.loads(out.read_text()))
        print(f"[speed] {preset}: {json.dumps(rows[-1])}", file=sys.stderr, flush=True)
    command = "python benchmarks/speed.py " + " ".join(argv if argv is not None else sys.argv[1:])
    text = report(rows, facts, args, command.strip())
    print(text)
    if args.write:
        _common.write_measured(args.results, args.section, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
