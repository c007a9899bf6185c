"""AUROC of each anomaly class against the normal rows, from a tabular experiment's stored scores.

A tabular experiment (`memae experiment tabular ...`) stores every test score in
`OUT/scores/`. This re-draws each run's seeded split to recover the original
class of every test row and prints, per model, the AUROC of each anomalous
class alone against the normal test rows (mean over the runs): it shows which
anomalies a model cannot tell from normal data.

Example:

```
python benchmarks/auroc_by_class.py runs/s3/satellite --mlbench Satellite \\
    --normal-classes "red soil,grey soil,very damp grey soil"
```
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from memae_tf.data import load_mlbench
from memae_tf.evaluation.metrics import auroc
from memae_tf.evaluation.report import SCORES_DIR, score_file
from memae_tf.evaluation.tabular import random_split


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir")
    parser.add_argument("--mlbench", required=True)
    parser.add_argument("--normal-classes", required=True)
    args = parser.parse_args()
    out = Path(args.run_dir)
    stored = json.loads((out / "results.json").read_text())
    config = stored["config"]
    table = load_mlbench(args.mlbench, tuple(args.normal_classes.split(",")))
    units = sorted({task["unit"] for task in stored["tasks"].values()})
    models = list(dict.fromkeys(task["model"] for task in stored["tasks"].values()))
    classes = sorted({str(c) for c in table.labels[table.y == 1]})
    print("| model | " + " | ".join(classes) + " |")
    print("|---|" + "---|" * len(classes))
    for model in models:
        per_class: dict[str, list[float]] = {c: [] for c in classes}
        for unit in units:
            run = int(unit.split("=")[1])
            _, test_rows = random_split(len(table.y), config["seed"], run,
                                        config["train_fraction"])
            saved = np.load(out / SCORES_DIR / score_file(model, unit))
            names = table.labels[test_rows].astype(str)
            assert np.array_equal(saved["labels"], table.y[test_rows]), "split mismatch"
            normal = saved["labels"] == 0
            for name in classes:
                rows = normal | (names == name)
                per_class[name].append(auroc(saved["labels"][rows], saved["scores"][rows]))
        print(f"| {model} | " + " | ".join(f"{np.mean(v):.4f}" for v in per_class.values())
              + " |")


if __name__ == "__main__":
    main()
