"""Where the time goes: a tf.profiler trace of training and scoring, per operation.

Traces steady-state `MemAE.fit` epochs (XLA: the compiled step's thunks, each
mapped to the Keras layer it comes from through XLA's HLO dump; `--no-xla`:
the TensorFlow graph `fit` trains with by default on CPU, its ops) and
`MemAE.score` calls (a TensorFlow graph: its ops), and prints the costliest
operations per call. Each operation's time is its shortest run times its
count, which discounts preemption on a shared machine. The raw trace stays in
`--trace-dir` for TensorBoard's profile plugin.

    python benchmarks/profile_ops.py --preset mnist --threads 1
    python benchmarks/profile_ops.py --preset mnist --threads 0 --no-xla --top 30
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import sys
import tempfile
from pathlib import Path

import _common

# Before TensorFlow, as a user's `from memae_tf import MemAE` comes: the import
# sets TensorFlow's oneDNN switch (see memae_tf/__init__.py).
import memae_tf  # noqa: F401

_SUFFIXES = re.compile(r"(_inference)?(_\d+)?$")
# Runtime and input-pipeline events that wrap or overlap the operations.
_RUNTIME = ("Dataset", ":Execute", ":ExecuteAsyncOnStream")
_NUMBERED = re.compile(r"[.]\d+$")  # HLO instruction names: convolution.3


def _hlo_op_names(dump: Path) -> dict[str, str]:
    """Instruction name → TensorFlow op name, from XLA's optimised HLO text dumps."""
    names: dict[str, str] = {}
    for path in dump.glob("*after_optimizations.txt"):
        for line in path.read_text().splitlines():
            found = re.match(r"\s*(?:ROOT )?%([\w.\-]+) = .*?op_name=\"([^\"]+)\"", line)
            if found:
                names.setdefault(found.group(1), found.group(2))
    return names


def _label(op_name: str, layers: set[str]) -> str:
    """`layer · op type` for a TensorFlow op name (`model/layer/.../name:Type`)."""
    path, _, kind = op_name.rpartition(":")
    segments = [_SUFFIXES.sub("", segment) for segment in path.split("/")]
    where = next((segment for segment in segments if segment in layers), "–")
    if any(segment in ("adam", "Adam") for segment in segments) or kind.startswith(
            "ResourceApply"):
        where = "optimizer"  # its scalars (in a multi-step loop, scoped under it) and updates
    if "gradient_tape" in segments:
        where += " (backward)"
    return f"{where} · {kind or _NUMBERED.sub('', path)}"


def _aggregate(trace_dir: Path, calls: int, hlo: dict[str, str],
               layers: set[str]) -> list[tuple[float, str]]:
    """Per `layer · op`, ms per call: the ops of a TensorFlow graph (`name:Type`
    events) and the thunks of XLA executables (events named like HLO instructions)."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    durations: dict[str, list[float]] = collections.defaultdict(list)
    for path in trace_dir.rglob("*.xplane.pb"):
        space = xplane_pb2.XSpace()
        space.ParseFromString(path.read_bytes())
        for plane in space.planes:
            for line in plane.lines:
                for event in line.events:
                    name = plane.event_metadata[event.metadata_id].name
                    if name in hlo:
                        name = f"{hlo[name]}:{_NUMBERED.sub('', name)}"
                    elif ":" not in name or " " in name or "::" in name or name.endswith(
                            _RUNTIME):
                        continue
                    durations[name].append(event.duration_ps / 1e9)
    per_label: dict[str, float] = collections.defaultdict(float)
    for name, values in durations.items():
        per_label[_label(name, layers)] += min(values) * len(values) / calls
    return sorted(((ms, label) for label, ms in per_label.items()), reverse=True)


def _table(title: str, rows: list[tuple[float, str]], top: int) -> str:
    total = sum(ms for ms, _ in rows)
    lines = [f"**{title}** — {total:.2f} ms of operations per call", "",
             "| ms/call | share | layer · operation |", "|---|---|---|"]
    lines += [f"| {ms:.3f} | {100 * ms / total:.0f}% | {label} |" for ms, label in rows[:top]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="mnist")
    parser.add_argument("--batch", type=int, default=64, help="training batch")
    parser.add_argument("--score-batch", type=int, default=1024)
    parser.add_argument("--threads", type=int, default=1,
                        help="TensorFlow's intra- and inter-op threads; 0: TensorFlow's default")
    parser.add_argument("--xla", action=argparse.BooleanOptionalAction, default=True,
                        help="train with XLA (--no-xla: the default path's TensorFlow graph)")
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--trace-dir", type=Path, help="keep the traces here")
    parser.add_argument("--quick", action="store_true", help="few calls, to prove it works")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="memae-profile-"))
    trace_dir = args.trace_dir or work / "trace"
    dump = work / "hlo"
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_enable_xprof_traceme"
                               f" --xla_dump_to={dump} --xla_dump_hlo_as_text").strip()
    _common.configure_threads(args.threads or None)
    import keras
    import numpy as np
    import tensorflow as tf

    from memae_tf import MemAE

    detector = MemAE.from_preset(args.preset)
    layers = {layer.name for layer in detector.model.layers}
    steps = 4 if args.quick else 40
    rng = np.random.default_rng(0)
    x = rng.random((steps * args.batch, *detector.input_shape)).astype("float32")

    class TraceLastEpoch(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 2:  # after tracing and XLA compilation
                tf.profiler.experimental.start(str(trace_dir / "train"))

        def on_epoch_end(self, epoch, logs=None):
            if epoch == 2:
                tf.profiler.experimental.stop()

    detector.fit(x, epochs=3, batch_size=args.batch, jit_compile=args.xla, verbose=0,
                 callbacks=[TraceLastEpoch()])
    train = _aggregate(trace_dir / "train", steps, _hlo_op_names(dump), layers)

    score_calls = 2 if args.quick else 10
    batch = x[: args.score_batch] if len(x) >= args.score_batch else np.resize(
        x, (args.score_batch, *x.shape[1:]))
    detector.score(batch, batch_size=args.score_batch)
    tf.profiler.experimental.start(str(trace_dir / "score"))
    for _ in range(score_calls):
        detector.score(batch, batch_size=args.score_batch)
    tf.profiler.experimental.stop()
    score = _aggregate(trace_dir / "score", score_calls, {}, layers)

    threads = args.threads or "default"
    print(f"Preset {args.preset}, TF threads {threads}, {steps} training steps and "
          f"{score_calls} scoring calls traced.\n")
    kind = "XLA" if args.xla else "TensorFlow graph"
    print(_table(f"Training step ({kind}, batch {args.batch})", train, args.top))
    print()
    print(_table(f"MemAE.score (TensorFlow graph, batch {args.score_batch})", score, args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
