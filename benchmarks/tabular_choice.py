"""The choice rule of benchmarks/TABULAR_PROTOCOL.md over candidate suite folders.

Per table, the candidates' MemAE runs are ranked by mean AUROC over the splits
(1 = best, ties averaged); the best mean rank over the tables wins, ties broken
by the mean AUROC over the tables, then by the order given.

    python benchmarks/tabular_choice.py runs/tabular/c1 runs/tabular/c2 runs/tabular/c3

With `--within SUITE`, each candidate's MemAE is instead ranked among the other
models of the suite folder SUITE (its AE and baselines, the same seeds), and its
mean rank among them is its score (the second choice of TABULAR_PROTOCOL.md);
`--table` prints the suite's table with the first candidate as MemAE:

    python benchmarks/tabular_choice.py --within runs/tabular/c1 \\
        runs/tabular/c1 runs/tabular/m200 runs/tabular/m500

With `--models memae,ae` each candidate brings its own AE too (a candidate
that changes the network changes its AE; the third choice), and the suite
folder gives the baselines only. Each candidate's line then also gives its
MemAE's seed spread against IsolationForest's (the stability criterion):

    python benchmarks/tabular_choice.py --within runs/tabular/i26-base \\
        --models memae,ae --seeds 0,1,2 \\
        runs/tabular/i26-c0 runs/tabular/i26-w2 runs/tabular/i26-w4
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from scipy.stats import rankdata

from memae_tf.evaluation.tabular_suite import suite_summary, suite_table


def _tasks(folder: Path, seeds: set[int]) -> dict[str, dict]:
    tasks = json.loads((folder / "results.json").read_text())["tasks"]
    return {key: task for key, task in tasks.items() if task["seed"] in seeds}


def candidate_means(folder: Path) -> dict[str, float]:
    """Table → MemAE's mean AUROC over the stored seed-0 runs of a suite folder."""
    memae = {key: task for key, task in _tasks(folder, {0}).items() if task["model"] == "memae"}
    return {table: means["memae"] for table, means in suite_summary(memae)["mean"].items()}


def within_suite(folder: Path, suite: Path, seeds: set[int],
                 models: tuple[str, ...] = ("memae",)) -> dict[str, dict]:
    """The suite folder's tasks of other models with `folder`'s tasks of `models`, on `seeds`."""
    others = {key: task for key, task in _tasks(suite, seeds).items()
              if task["model"] not in models}
    own = {key: task for key, task in _tasks(folder, seeds).items() if task["model"] in models}
    return {**others, **own}


def stability(summary: dict) -> str:
    """MemAE's seed spread against IsolationForest's: mean over tables and the widest gap."""
    spread = summary["seed_spread"]
    tables = [t for t in summary["tables"] if spread[t].get("memae") is not None
              and spread[t].get("iforest") is not None]
    if not tables:
        return "seed spread: needs two seeds of MemAE and IsolationForest"
    gaps = {t: spread[t]["memae"] - spread[t]["iforest"] for t in tables}
    widest = max(gaps, key=gaps.get)
    return (f"seed spread MemAE {np.mean([spread[t]['memae'] for t in tables]):.4f} against "
            f"IsolationForest {np.mean([spread[t]['iforest'] for t in tables]):.4f}; "
            f"widest gap {widest} {gaps[widest]:.3f}")


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
    parser.add_argument("--within", type=Path, help="rank MemAE among this suite's models")
    parser.add_argument("--seeds", default="0", help="seeds of --within (default 0)")
    parser.add_argument("--table", action="store_true", help="print the first one's suite table")
    parser.add_argument("--models", default="memae",
                        help="with --within: models taken from each candidate (default memae)")
    args = parser.parse_args()
    if args.within is not None:
        seeds = {int(seed) for seed in args.seeds.split(",")}
        models = tuple(m for m in args.models.split(",") if m)
        merged = {folder.name: within_suite(folder, args.within, seeds, models)
                  for folder in args.folders}
        if args.table:
            print(suite_table(merged[args.folders[0].name]))
        summaries = [(name, suite_summary(tasks)) for name, tasks in merged.items()]
        order = sorted(range(len(summaries)), key=lambda i: (
            summaries[i][1]["mean_rank"]["memae"], -summaries[i][1]["mean_auroc"]["memae"], i))
        for position, i in enumerate(order, start=1):
            name, summary = summaries[i]
            print(f"{position}. {name}: MemAE's mean rank {summary['mean_rank']['memae']:.3f}"
                  f" among {len(summary['models'])} models, mean AUROC "
                  f"{summary['mean_auroc']['memae']:.4f}; {stability(summary)}")
        return
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
