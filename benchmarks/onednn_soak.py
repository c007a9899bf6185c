"""Soak test of TensorFlow's oneDNN CPU kernels: train and score every preset with them on.

Each (preset, jit) pair runs in its own process with `TF_ENABLE_ONEDNN_OPTS` set
(oneDNN is chosen when TensorFlow loads), trains one detector per seed on
synthetic data of the preset's shape for a few epochs, then scores, exports and
scores the SavedModel's `serving_default`. A crash (abort, segfault) ends that
process, so each seed's outcome is printed as a JSON line as soon as it is known
and the parent reports what ran, what crashed and where.

    python benchmarks/onednn_soak.py --presets mnist,cifar10,kdd --seeds 0,1,2 --epochs 5

Not a speed benchmark: the seconds are there to size later runs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VARIANTS = ("memae", "memae-nonspar", "ae")  # one per seed, in turn
SIZES = {"mnist": 1024, "cifar10": 512, "kdd": 2048}


def _synthetic(preset: str, rows: int, seed: int):
    import numpy as np

    from memae_tf.models import get_preset

    spec = get_preset(preset)
    rng = np.random.default_rng(seed)
    low, high = spec.input_range
    return rng.uniform(low, high, size=(rows, *spec.kwargs["input_shape"])).astype("float32")


def _run_seed(preset: str, seed: int, epochs: int, jit: bool | str) -> dict:
    import numpy as np
    import tensorflow as tf

    from memae_tf import MemAE
    from memae_tf.export import export_saved_model

    variant = VARIANTS[seed % len(VARIANTS)]
    x = _synthetic(preset, SIZES[preset], seed)
    start = time.perf_counter()
    detector = MemAE.from_preset(preset, variant=variant)
    detector.fit(x, epochs=epochs, batch_size=64, seed=seed, verbose=0, jit_compile=jit)
    losses = [float(v) for v in detector.history_.history["loss"]]
    scores = detector.score(x)
    detector.infer_threshold(x, fpr=0.05)
    with tempfile.TemporaryDirectory() as folder:
        path = export_saved_model(detector.model, Path(folder) / preset,
                                  threshold=detector.threshold_,
                                  scoring_graph=detector.scoring_graph)
        served = tf.saved_model.load(str(path)).signatures["serving_default"](
            x=tf.constant(x[:256]))["score"].numpy()
    return {
        "preset": preset, "seed": seed, "variant": variant, "jit": jit, "epochs": epochs,
        "losses_finite": bool(np.isfinite(losses).all()),
        "first_loss": losses[0], "last_loss": losses[-1],
        "scores_finite": bool(np.isfinite(scores).all()),
        "served_matches_score": bool(np.allclose(served, scores[:256], rtol=1e-4, atol=1e-6)),
        "seconds": round(time.perf_counter() - start, 1),
    }


def _child(args: argparse.Namespace) -> None:
    import tensorflow as tf

    # What TensorFlow itself reports: oneDNN is on unless the variable says 0.
    print(json.dumps({"onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS"),
                      "tensorflow": tf.__version__}), flush=True)
    jit = {"auto": "auto", "on": True, "off": False}[args.jit]
    for seed in args.seeds:
        print(json.dumps(_run_seed(args.presets[0], seed, args.epochs, jit)), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", default="mnist,cifar10,kdd",
                        type=lambda text: text.split(","))
    parser.add_argument("--seeds", default="0,1,2",
                        type=lambda text: [int(s) for s in text.split(",")])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--jit", default="off,auto", help="comma-separated: off, on, auto")
    parser.add_argument("--onednn", default="1", help="TF_ENABLE_ONEDNN_OPTS for the runs")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args)
        return 0
    env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": args.onednn, "TF_CPP_MIN_LOG_LEVEL": "2"}
    failures = 0
    for preset in args.presets:
        for jit in args.jit.split(","):
            command = [sys.executable, __file__, "--child", "--presets", preset,
                       "--seeds", ",".join(map(str, args.seeds)), "--epochs",
                       str(args.epochs), "--jit", jit]
            result = subprocess.run(command, env=env, capture_output=True, text=True)
            lines = [json.loads(line) for line in result.stdout.splitlines()
                     if line.startswith("{")]
            for line in lines:
                print(json.dumps(line), flush=True)
            ok = result.returncode == 0 and all(
                line.get("losses_finite", True) and line.get("scores_finite", True)
                and line.get("served_matches_score", True) for line in lines)
            if not ok:
                failures += 1
                print(json.dumps({"preset": preset, "jit": jit, "returncode": result.returncode,
                                  "stderr_tail": result.stderr[-3000:]}), flush=True)
    print(json.dumps({"failed_processes": failures}), flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
