"""How many digit instances an image model needs to tell digits 5-9 from digits 0-4.

The moving-digit benchmark trains on 32 videos of 2 digits each: at most 64
distinct digit images of classes 0-4, each seen at many positions. Its "unseen
class" anomaly swaps one digit for an image of class 5-9. This probe asks
how far the digits' shapes alone can separate the classes when a model learns
from that few instances: the `mnist` preset (MemAE and its AE) trained on
`K` clean, centred 28×28 images of classes 0-4, scoring held-out images of
all classes, no video, no positions, no motion.

Data: the MNIST *training* split only (the pool the benchmark's training
videos draw from). A fixed permutation (seed 0) sets aside its first 10,000
images as the held-out set; each run draws `K` images of classes 0-4 from the
rest with `numpy.random.default_rng((seed, K))`, repeats them to at least
4,096 rows (the same number of steps for every `K` up to 4,096) and fits 10
epochs after `keras.utils.set_random_seed(seed)`. Reported: the held-out
AUROC of classes 5-9 against 0-4, per `K`, variant and seed, and mean ± std.

It chooses nothing: no setting of the benchmark or of the package is taken
from it.

    python benchmarks/digit_instances.py --out runs/instances.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

HELD_OUT = 10_000
MIN_ROWS = 4_096
SIZES = (64, 256, 1024, 4096, 16384)


def held_out_auroc(k: int, variant: str, seed: int, epochs: int) -> float:
    """Held-out AUROC of classes 5-9 against 0-4 after fitting on `k` images of 0-4."""
    import keras
    from sklearn.metrics import roc_auc_score

    from memae_tf import MemAE
    from memae_tf.data import load_mnist

    (x, y), _ = load_mnist()
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], y[order]
    pool = x[HELD_OUT:][y[HELD_OUT:] < 5]
    chosen = pool[np.random.default_rng((seed, k)).choice(len(pool), k, replace=False)]
    rows = np.repeat(chosen, -(-MIN_ROWS // k), axis=0)
    keras.utils.set_random_seed(seed)
    detector = MemAE.from_preset("mnist", variant=variant)
    detector.fit(rows, epochs=epochs, verbose=0)
    scores = detector.score(x[:HELD_OUT])
    return float(roc_auc_score(y[:HELD_OUT] >= 5, scores))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)),
                        help=f"numbers of training images K (default: {','.join(map(str, SIZES))})")
    parser.add_argument("--variants", default="memae,ae")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--out", default=None, help="JSON file for every run's figure")
    args = parser.parse_args(argv)
    runs = []
    for k in map(int, args.sizes.split(",")):
        for variant in args.variants.split(","):
            for seed in map(int, args.seeds.split(",")):
                start = time.perf_counter()
                auroc = held_out_auroc(k, variant, seed, args.epochs)
                runs.append({"k": k, "variant": variant, "seed": seed, "auroc": auroc,
                             "seconds": round(time.perf_counter() - start, 1)})
                print(json.dumps(runs[-1]), flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"epochs": args.epochs, "runs": runs}, f, indent=1)
    variants = args.variants.split(",")
    print("| K | " + " | ".join(f"{v}: mean ± std (seeds)" for v in variants) + " |")
    print("|---" * (1 + len(variants)) + "|")
    for k in map(int, args.sizes.split(",")):
        cells = []
        for variant in variants:
            values = [r["auroc"] for r in runs if r["k"] == k and r["variant"] == variant]
            cells.append(f"{np.mean(values):.3f} ± {np.std(values):.3f} ("
                         + " / ".join(f"{v:.3f}" for v in values) + ")")
        print(f"| {k} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
