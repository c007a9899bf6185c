"""Training-data statistics of a one-class network, to look at memory collapse.

Trains the dataset's preset (with overrides) on one normal class exactly as
`dev_search.py` does at its first checkpoint, then reports what can be measured
without any anomaly: on the training images, how many memory items the queries
use, how many items one query uses, the share of the most used item, and how
much the reconstructions vary from image to image compared with the inputs
(`spread`: total variance of the reconstructions over total variance of the
inputs; near 0 when every image is rebuilt as the same picture). The test AUROC
is printed beside, to read the statistics against it on the development set.

    python benchmarks/collapse_probe.py fashion-mnist --normal 6 --override latent_dim=64
"""

from __future__ import annotations

import argparse

import keras

from memae_tf.detector import MemAE
from memae_tf.evaluation import datasets
from memae_tf.evaluation.cli import parse_override
from memae_tf.evaluation.metrics import auroc
from memae_tf.evaluation.one_class import one_class_split
from memae_tf.inspection import memory_report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", nargs="?", default="fashion-mnist")
    parser.add_argument("--normal", type=int, required=True)
    parser.add_argument("--variant", default="memae")
    parser.add_argument("--override", type=parse_override, action="append", default=[])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    train, test = datasets.load_images(args.dataset, None)
    split = one_class_split(train, test, args.normal, seed=args.seed)
    keras.utils.set_random_seed(args.seed)
    detector = MemAE.from_preset(datasets.get_dataset(args.dataset).preset, args.variant,
                                 **dict(args.override))
    detector.fit(split.x_train, epochs=args.epochs, batch_size=64, learning_rate=1e-3,
                 seed=args.seed, verbose=0)
    x_train = detector.preprocess(split.x_train)
    rebuilt = detector.reconstruct(x_train, batch_size=1024)
    spread = rebuilt.reshape(len(rebuilt), -1).var(axis=0).sum() / \
        x_train.reshape(len(x_train), -1).var(axis=0).sum()
    facts = {"spread": f"{spread:.3f}"}
    if args.variant != "ae":
        report = memory_report(detector.memory_attention(x_train, batch_size=1024))
        facts.update(items_used=report.num_items - len(report.unused_items),
                     per_query=f"{report.nonzeros.mean():.2f}",
                     top_item_share=f"{report.mean_weight.max():.3f}")
    facts["auroc"] = f"{auroc(split.labels, detector.score(split.x_test, batch_size=1024)):.4f}"
    overrides = ",".join(f"{k}={v}" for k, v in args.override) or "defaults"
    print(f"{args.dataset} class {args.normal} {args.variant} {overrides} seed {args.seed}: "
          + " ".join(f"{k}={v}" for k, v in facts.items()), flush=True)


if __name__ == "__main__":
    main()
