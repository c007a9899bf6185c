"""Training throughput of the `mnist` and `video` presets' networks with Keras on JAX.

Made for an accelerator machine that has JAX (and Keras) but no TensorFlow and no
package index: it needs only the package's pure-Python model code
(`memae_tf/layers`, `memae_tf/models`, `memae_tf/common`, `memae_tf/choices.py`),
which it imports with TensorFlow blocked, so a stray TensorFlow import fails at
once instead of after a long install. Data are synthetic (throughput only).

    KERAS_BACKEND=jax python benchmarks/gpu_keras_jax.py                 # both presets
    KERAS_BACKEND=jax python benchmarks/gpu_keras_jax.py --quick         # seconds, CPU (CI)
    KERAS_BACKEND=jax python benchmarks/gpu_keras_jax.py --precision mixed_float16

It prints one JSON line per preset: the device JAX trains on, the batch, the
seconds of each of the `--repeats` timed epochs (`epoch_s`; the first, compiling
epoch is timed apart, `first_epoch_s`), their median samples/s and each epoch's
loss (`losses`, the last also as `last_loss`); `--json PATH` writes them too.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import sys
import time

# Full-size workloads per preset: (training samples, batch size, builder overrides).
WORKLOADS = {
    "mnist": (8192, 256, {}),
    "video": (64, 8, {}),
}
# `--quick`: a few seconds on a CPU, to prove the script runs (tests/test_backends.py).
QUICK = {
    "mnist": (64, 32, {}),
    "video": (4, 2, {"input_shape": (4, 32, 32, 1), "filters": (8, 16, 16, 16),
                     "num_items": 50}),
}


def _import_model_code():
    """Imports Keras and the builders with TensorFlow made unimportable."""
    sys.modules["tensorflow"] = None  # any `import tensorflow` now raises ImportError
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
    import keras

    from memae_tf.models import build_autoencoder

    return keras, build_autoencoder


def measure(keras, build_autoencoder, preset: str, workload, repeats: int,
            precision: str) -> dict:
    """Trains one preset network for `repeats + 1` epochs; returns its throughput."""
    import numpy as np

    count, batch, overrides = workload
    keras.mixed_precision.set_global_policy(precision)
    keras.utils.set_random_seed(0)
    model = build_autoencoder(preset, "memae", **overrides)
    shape = model.input_shape[1:]
    x = np.random.default_rng(0).uniform(-1, 1, size=(count, *shape)).astype("float32")
    model.compile(optimizer=keras.optimizers.Adam(1e-4), loss="mse", jit_compile=True)
    seconds = []

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            seconds.append(time.perf_counter() - self.start)

    history = model.fit(x, x, batch_size=batch, epochs=repeats + 1, verbose=0,
                        callbacks=[Timer()])
    import jax

    return {
        "preset": preset, "input_shape": list(shape), "batch": batch, "samples": count,
        "device": str(jax.devices()[0]), "precision": precision,
        "first_epoch_s": round(seconds[0], 2), "epoch_s": seconds[1:],
        "samples_per_s": round(count / statistics.median(seconds[1:]), 1),
        "losses": [float(loss) for loss in history.history["loss"]],
        "last_loss": float(history.history["loss"][-1]),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", default="mnist,video",
                        help="comma-separated presets (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="timed epochs after the compiling one (default: %(default)s)")
    parser.add_argument("--precision", default="float32",
                        help="Keras dtype policy, e.g. mixed_float16 (default: %(default)s)")
    parser.add_argument("--quick", action="store_true",
                        help="tiny workloads that run in seconds on a CPU (default: off)")
    parser.add_argument("--json", type=pathlib.Path, help="also write the results here")
    args = parser.parse_args(argv)
    if os.environ.get("KERAS_BACKEND") != "jax":
        parser.error(f"run with KERAS_BACKEND=jax. Received: "
                     f"KERAS_BACKEND={os.environ.get('KERAS_BACKEND')!r}")
    keras, build_autoencoder = _import_model_code()
    workloads = QUICK if args.quick else WORKLOADS
    results = []
    for preset in args.presets.split(","):
        if preset not in workloads:
            parser.error(f"--presets: expected names from {sorted(workloads)}. "
                         f"Received: {preset!r}")
        result = measure(keras, build_autoencoder, preset, workloads[preset], args.repeats,
                         args.precision)
        results.append(result)
        print(json.dumps(result), flush=True)
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
