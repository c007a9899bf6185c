"""Development-set search: AUROC against epochs and reconstruction errors in one training.

For every normal class of a one-class image dataset and every variant, one
network is trained in segments up to the largest checkpoint; at each
checkpoint the test split is reconstructed once and scored with each
candidate score (`CANDIDATES`). One training thus gives the
AUROC curve over epochs for every error. Results go to OUT/dev.json after each
(variant, class), so an interrupted search continues where it stopped.

Use it on the development sets only (Fashion-MNIST): anomalies of the test
sets never choose anything. Each training segment is a `MemAE.fit` call that
continues the previous one (the compiled model and Adam's moments are kept);
the shuffling restarts from the same seed at each segment.

Example:

```
python benchmarks/dev_search.py fashion-mnist --variants memae,ae \\
    --override latent=global --checkpoints 5,10,20,30 --out runs/dev/global
python benchmarks/dev_search.py fashion-mnist --variants memae --override latent_dim=64 \\
    --fit memory_restart=true --checkpoints 10 --out runs/dev/restart64
python benchmarks/dev_search.py --summary runs/dev/global runs/dev/local
```
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from memae_tf.common.deprecation import add_deprecated_alias
from memae_tf.detector import MemAE
from memae_tf.evaluation import datasets
from memae_tf.evaluation.cli import parse_ints, parse_list, parse_override
from memae_tf.evaluation.metrics import auroc
from memae_tf.evaluation.one_class import one_class_split
from memae_tf.models import VARIANTS, encode_queries, find_memory_layer
from memae_tf.scoring_graph import ERRORS, ssim_map

RESULTS = "dev.json"


# Candidate scores measured at every checkpoint: the package's errors, the squared
# error relative to the input's energy above the range's floor (black), which asks
# whether an error that tracks the amount of ink can be divided out, and for the
# memory variants two memory-based scores: the squared distance between the
# encoder's query and its rebuild from the memory (`latent`), and that distance
# over the query's squared norm (`latent_relative`); the addressing itself: its
# entropy (`entropy`) and one minus its largest weight (`spread`), both of the mean
# over a sample's queries; and the squared error with a sharper shrinkage at
# scoring time only (`mse_lam2`, `mse_lam4`: λ = 2/N, 4/N in inference, the
# network trained with its own λ); and one minus the structural similarity of
# image and reconstruction (`ssim`: the package's `error="ssim"`; the runs of
# round 7 before it existed used `tf.image.ssim`, which drops the border).
TEST_THRESHOLDS = {"mse_lam2": 2.0, "mse_lam4": 4.0}
CANDIDATES = (*ERRORS, "relative", "latent", "latent_relative", "entropy", "spread",
              *TEST_THRESHOLDS)


def errors_of(x: np.ndarray, reconstruction: np.ndarray, low: float, high: float
              ) -> dict[str, np.ndarray]:
    """Per-sample scores of each candidate (from one reconstruction)."""
    axes = tuple(range(1, x.ndim))
    similarity = tf.reduce_mean(ssim_map(tf.constant(x, tf.float32),
                                         tf.constant(reconstruction, tf.float32), (low, high)),
                                axis=axes).numpy()
    x = x.astype(np.float64)
    diff = x - reconstruction
    squared = np.mean(diff**2, axis=axes)
    energy = np.mean((x - low) ** 2, axis=axes)
    return {"mse": squared, "l1": np.mean(np.abs(diff), axis=axes),
            "relative": squared / np.maximum(energy, 1e-12), "ssim": 1.0 - similarity}


def memory_scores(model: keras.Model, x: np.ndarray, batch_size: int = 1024
                  ) -> dict[str, np.ndarray]:
    """Per-sample memory-based scores (inference mode), from one encoding of `x`; {} without memory.

    The distance between query and memory rebuild (`latent`, `latent_relative`),
    the addressing's entropy and spread, and the squared error at a sharper
    test-time λ (`TEST_THRESHOLDS`).
    """
    queries = encode_queries(model, x, batch_size)
    if queries is None:
        return {}
    layer = find_memory_layer(model)
    rebuilt = keras.ops.convert_to_numpy(layer(queries, training=False))
    query = queries.reshape(len(x), -1).astype(np.float64)
    distance = np.sum((query - rebuilt.reshape(len(x), -1)) ** 2, axis=1)
    scores = {"latent": distance,
              "latent_relative": distance / np.maximum(np.sum(query ** 2, axis=1), 1e-12)}
    weights = keras.ops.convert_to_numpy(layer.addressing(queries)).astype(np.float64)
    weights = weights.reshape(len(x), -1, layer.num_items)
    entropy = -np.sum(weights * np.log(weights + 1e-12), axis=-1)
    scores.update(entropy=entropy.mean(axis=1), spread=1.0 - weights.max(axis=-1).mean(axis=1))
    trained = layer.shrink_threshold
    axes = tuple(range(1, x.ndim))
    try:
        for name, multiple in TEST_THRESHOLDS.items():
            layer.shrink_threshold = multiple / layer.num_items
            rebuilt = np.concatenate([
                keras.ops.convert_to_numpy(model(x[i:i + batch_size], training=False))
                for i in range(0, len(x), batch_size)])
            scores[name] = np.mean((x.astype(np.float64) - rebuilt) ** 2, axis=axes)
    finally:
        layer.shrink_threshold = trained
    return scores


def learning_rate_of(args: argparse.Namespace, samples: int
                     ) -> float | keras.optimizers.schedules.LearningRateSchedule:
    """The constant rate, or a cosine decay to zero over the whole search (the last checkpoint).

    One schedule object serves every segment: the optimizer's step count carries
    over between `fit` calls, so the segments follow one decay.
    """
    if args.lr_decay == "none":
        return args.learning_rate
    steps = -(-samples // args.batch_size) * max(args.checkpoints)
    return keras.optimizers.schedules.CosineDecay(args.learning_rate, decay_steps=steps)


def search(args: argparse.Namespace) -> None:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / RESULTS
    settings = {"dataset": args.dataset, "overrides": dict(args.override), "seed": args.seed,
                "batch_size": args.batch_size, "learning_rate": args.learning_rate,
                "checkpoints": args.checkpoints}
    stored = json.loads(path.read_text()) if path.exists() else {"settings": settings,
                                                                  "runs": {}}
    if args.fit:  # only when given, so that searches stored before the option still match
        settings["fit"] = dict(args.fit)
    if args.lr_decay != "none":  # likewise
        settings["lr_decay"] = args.lr_decay
    if args.input_range is not None:  # likewise
        settings["input_range"] = list(args.input_range)
    if stored["settings"] != settings:
        raise SystemExit(f"{path} holds another search: {stored['settings']}")
    train, test = datasets.load_images(args.dataset, None)
    preset = datasets.get_dataset(args.dataset).preset
    for variant in args.variants:
        for normal in args.normal_classes:
            key = f"{variant}/class={normal}"
            if key in stored["runs"]:
                continue
            split = one_class_split(train, test, normal, seed=args.seed)
            keras.utils.set_random_seed(args.seed)
            detector = MemAE({"preset": preset, "variant": variant,
                              "overrides": dict(args.override)}, input_range=args.input_range)
            x_test = detector.preprocess(split.x_test)
            learning_rate = learning_rate_of(args, len(split.x_train))
            curve, done, begin, used = {}, 0, time.monotonic(), []
            for epochs in args.checkpoints:
                detector.fit(split.x_train, epochs=epochs - done, batch_size=args.batch_size,
                             learning_rate=learning_rate, seed=args.seed, verbose=0,
                             **dict(args.fit))
                done = epochs
                used += detector.history_.history.get("memory_items_used", [])
                scores = errors_of(x_test, detector.reconstruct(x_test, batch_size=1024),
                                   *detector.input_range)
                scores.update(memory_scores(detector.model, x_test))
                curve[str(epochs)] = {e: auroc(split.labels, s) for e, s in scores.items()}
            stored["runs"][key] = {"auroc": curve, "seconds": round(time.monotonic() - begin, 1)}
            if used:  # memory items used by training queries after each epoch (memory_restart)
                stored["runs"][key]["items_used"] = used
            partial = path.with_suffix(".tmp")
            partial.write_text(json.dumps(stored, indent=1))
            partial.replace(path)
            last = curve[str(done)]
            print(f"{out.name} {key}: " + " ".join(f"{e}={v:.4f}" for e, v in last.items())
                  + (f" items used {used}" if used else "")
                  + f" ({stored['runs'][key]['seconds']} s)", flush=True)


def summary(folders: list[str]) -> None:
    """Prints a Markdown table: mean AUROC over classes per (folder, variant, epochs, error)."""
    print("| search | overrides | variant | epochs | " + " | ".join(CANDIDATES) + " | classes |")
    print("|---|---|---|---|" + "---|" * len(CANDIDATES) + "---|")
    for folder in folders:
        stored = json.loads((Path(folder) / RESULTS).read_text())
        overrides = ", ".join(f"{k}={v}" for k, v in stored["settings"]["overrides"].items())
        by_variant: dict[str, list[dict]] = {}
        for key, run in stored["runs"].items():
            by_variant.setdefault(key.split("/")[0], []).append(run["auroc"])
        for variant, runs in by_variant.items():
            for epochs in stored["settings"]["checkpoints"]:
                means = [np.mean([r[str(epochs)].get(e, np.nan) for r in runs])
                         for e in CANDIDATES]
                print(f"| {Path(folder).name} | {overrides or '—'} | {variant} | {epochs} | "
                      + " | ".join(f"{m:.4f}" for m in means) + f" | {len(runs)} |")


def parse_range(text: str) -> tuple[float, float]:
    """`"-1,1"` → `(-1.0, 1.0)`."""
    low, high = (float(v) for v in text.split(","))
    return low, high


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", nargs="?", default="fashion-mnist",
                        choices=["fashion-mnist", "mnist"])
    parser.add_argument("--variants", type=parse_list(VARIANTS), default=["memae", "ae"])
    classes = parser.add_argument("--normal-classes", type=parse_ints, default=list(range(10)),
                                  help="the classes taken in turn as the normal class")
    add_deprecated_alias(parser, classes, "--classes")
    parser.add_argument("--checkpoints", type=parse_ints, default=[5, 10, 20, 30])
    parser.add_argument("--override", type=parse_override, action="append", default=[])
    parser.add_argument("--fit", type=parse_override, action="append", default=[],
                        help="a MemAE.fit setting KEY=VALUE, e.g. memory_restart=true")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--lr-decay", choices=("cosine", "none"), default="none",
                        help="cosine: decay the learning rate to zero at the last checkpoint")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--input-range", type=parse_range, default=None, metavar="LOW,HIGH",
                        help="the range uint8 images are scaled into (default: the preset's)")
    parser.add_argument("--out")
    parser.add_argument("--summary", nargs="+", metavar="FOLDER")
    args = parser.parse_args()
    if args.summary:
        summary(args.summary)
    elif args.out:
        search(args)
    else:
        parser.error("give --out to search or --summary FOLDER... to summarise")


if __name__ == "__main__":
    main()
