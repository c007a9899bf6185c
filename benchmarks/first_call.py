"""Where the first `fit` and `score` calls of a new detector spend their extra time.

A notebook user meets the first call of every new detector: it traces the
training step, draws the memory items from encodings (`adapt_memory`) and traces
the encoder pass of the memory checks, all of which the second call reuses.
This script times both calls, and the phases inside them, in CPU seconds of the
process (all threads) beside wall seconds: CPU time stays comparable on a
busy machine, where wall time does not.

    python benchmarks/first_call.py                       # mnist preset, 6,000 images, 5 epochs
    python benchmarks/first_call.py --samples 1000 --epochs 1  # seconds (tests)

Prints one JSON object: per call, total CPU and wall seconds, CPU seconds per
epoch and per phase (`adapt_memory`, the memory checks at each epoch end,
the input pipeline), and the first and second `score` of `--score` samples.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import Any

import _common
import keras
import numpy as np

import memae_tf.training.memory_check as memory_check
import memae_tf.training.trainer as trainer
from memae_tf import MemAE
from memae_tf.data import load_mnist


class _Phases:
    """CPU and wall seconds spent inside instrumented functions, per name."""

    def __init__(self) -> None:
        self.seconds: dict[str, list[float]] = {}

    def wrap(self, name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            cpu, wall = time.process_time(), time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                spent = self.seconds.setdefault(name, [0.0, 0.0])
                spent[0] += time.process_time() - cpu
                spent[1] += time.perf_counter() - wall

        return timed


class _EpochCpu(keras.callbacks.Callback):
    def __init__(self, out: list[float]) -> None:
        super().__init__()
        self.out = out

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.start = time.process_time()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.out.append(round(time.process_time() - self.start, 2))


def measure(preset: str, x: np.ndarray, epochs: int, score: int) -> dict[str, Any]:
    """Times two `fit` and two `score` calls of one new detector."""
    phases = _Phases()
    for name in ("reconstruction_dataset", "adapt_memory"):
        setattr(trainer, name, phases.wrap(name, getattr(trainer, name)))
    check = memory_check.MemoryCollapseCheck
    check.on_epoch_end = phases.wrap("memory_checks", check.on_epoch_end)
    detector = MemAE.from_preset(preset)
    result: dict[str, Any] = {}
    for call in ("first_fit", "second_fit"):
        phases.seconds.clear()
        epochs_cpu: list[float] = []
        cpu, wall = time.process_time(), time.perf_counter()
        detector.fit(x, epochs=epochs, verbose=0, callbacks=[_EpochCpu(epochs_cpu)])
        result[call] = {
            "cpu_s": round(time.process_time() - cpu, 2),
            "wall_s": round(time.perf_counter() - wall, 2),
            "epochs_cpu_s": epochs_cpu,
            "phases_cpu_s": {k: round(v[0], 2) for k, v in phases.seconds.items()},
        }
    for call in ("first_score", "second_score"):
        cpu, wall = time.process_time(), time.perf_counter()
        detector.score(x[:score])
        result[call] = {"cpu_s": round(time.process_time() - cpu, 2),
                        "wall_s": round(time.perf_counter() - wall, 2)}
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="mnist", help="(default: %(default)s)")
    parser.add_argument("--samples", type=int, default=6000,
                        help="training images of digit 3 (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=5, help="(default: %(default)s)")
    parser.add_argument("--score", type=int, default=4096,
                        help="samples scored per score call (default: %(default)s)")
    args = parser.parse_args(argv)
    (x, y), _ = load_mnist()
    x = x[y == 3][: args.samples]
    report = {"machine": _common.machine(), "preset": args.preset, "samples": len(x),
              "epochs": args.epochs, **measure(args.preset, x, args.epochs, args.score)}
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
