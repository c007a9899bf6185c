"""Which `fit` settings are fastest for the user's call: XLA and steps per execution.

Times `MemAE.from_preset("mnist").fit(x, epochs=5)` on 6,000 synthetic images
as a user calls it (a new detector, set-up included), then a second `fit` call
on the same detector, for each combination of `jit_compile` and
`steps_per_execution`, each in a fresh process (XLA's runtime threads would
otherwise stay behind and slow the settings measured after it), with the eager
PyTorch reference (`torch_mnist.py`, when torch is installed) running the same
epochs in each round. This is the measurement behind `fit`'s
`jit_compile="auto"` on CPU-only hosts.

    python benchmarks/fit_settings.py --rounds 2
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys

from speed import time_fit_calls, time_torch_epochs

SETTINGS = {
    "XLA, 32 steps per call": {"jit_compile": True, "steps_per_execution": 32},
    "XLA, 1 step per call": {"jit_compile": True, "steps_per_execution": 1},
    "no XLA, 32 steps per call": {"jit_compile": False, "steps_per_execution": 32},
    "no XLA, 1 step per call": {"jit_compile": False, "steps_per_execution": 1},
}


def _images(args: argparse.Namespace):
    import numpy as np

    return np.random.default_rng(0).random((args.samples, 28, 28, 1)).astype("float32")


def _child(args: argparse.Namespace) -> list[float]:
    """Seconds of the first and second `fit` call (or of PyTorch) in this process."""
    x = _images(args)
    if args.child == "torch":
        from torch_mnist import TorchMnistBench

        bench = TorchMnistBench(os.cpu_count())
        return [time_torch_epochs(bench, TorchMnistBench.to_tensor(x), args.epochs)]
    return list(time_fit_calls("mnist", x, args.epochs, **SETTINGS[args.child]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--samples", type=int, default=6000)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(args)))
        return
    names = [*SETTINGS, *(["torch"] if importlib.util.find_spec("torch") else [])]
    seconds: dict[str, list[float]] = {}
    for _ in range(args.rounds):
        for name in names:
            done = subprocess.run(
                [sys.executable, __file__, "--child", name, "--samples", str(args.samples),
                 "--epochs", str(args.epochs)],
                check=True, capture_output=True, text=True)
            calls = json.loads(done.stdout.strip().splitlines()[-1])
            labels = (["eager PyTorch"] if name == "torch"
                      else [f"{name}: first call", f"{name}: second call"])
            for label, value in zip(labels, calls, strict=True):
                seconds.setdefault(label, []).append(value)
    print(f"| `fit(x, epochs={args.epochs})`, {args.samples:,} images | seconds, median "
          f"of {args.rounds} | samples/s |")
    print("|---|---|---|")
    for name, values in seconds.items():
        median = statistics.median(values)
        print(f"| {name} | {median:.1f} | {args.samples * args.epochs / median:,.0f} |")


if __name__ == "__main__":
    main()
