"""The choice rule of benchmarks/TABULAR_PROTOCOL.md over candidate suite folders.

Per table, the candidates' MemAE runs are ranked by mean AUROC over the splits
(1 = best, ties averaged); the best mean rank over the tables wins, ties broken
by the mean AUROC over the tables, then by the order given.

    python benchmarks/tabular_choice.py runs/tabular/c1 runs/tabular/c2 runs/tabular/c3
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from scipy.stats import rankdata

from memae_tf.evaluation.tabular_suite import suite_summary


def candidate_means(folder: Path) -> dict[str, float]:
    """Table → MemAE's mean AUROC over the stored seed-0 runs of a suite folder."""
    tasks = json.loads((folder / "results.json").read_text())["tasks"]
    memae = {key: task for key, task in tasks.items()
             if task["model"] == "memae" and task["seed"] == 0}
    return {table: means["memae"] for table, means in suite_summary(memae)["mean"].items()}


def choose(means: dict[str, dict[str, float]]) -> list[tuple[str, float, float]]:
    """Candidates ordered by the rule: `(name, mean rank, mean AUROC)`, best first."""
    names = list(means)
    tables = sorted(set.intersection(*(set(m) for m in means.values())))
    ranks = np.array([rankdata([-means[n][t] for n in names]) for t in tables])
    mean_rank = ranks.mean(axis=0)
    mean_auroc = [float(np.mean([means[n][t] for t in tables])) for n in names]
    order = sorted(range(len(names)), key=lambda i: (mean_rank[i], -mean_auroc[i], i))
    return [(names[i], float(mean_rank[i]), mean_auroc[i]) for i in order]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="+", type=Path)
    args = parser.parse_args()
    means = {folder.name: candidate_means(folder) for folder in args.folders}
    tables = sorted(set.intersection(*(set(m) for m in means.values())))
    print("| table | " + " | ".join(means) + " |")
    print("|---|" + "---|" * len(means))
    for table in tables:
        print(f"| {table} | " + " | ".join(f"{means[n][table]:.4f}" for n in means) + " |")
    for position, (name, rank, auroc) in enumerate(choose(means), start=1):
        print(f"{position}. {name}: mean rank {rank:.3f}, mean AUROC {auroc:.4f}")


if __name__ == "__main__":
    main()
