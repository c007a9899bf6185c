"""Applies the frame-score rule of `benchmarks/VIDEO_PROTOCOL.md` to development runs.

Reads the `frame_score_metrics` that `memae experiment ... --frame-score-candidates`
recorded for MemAE and the AE of one development run, prints each candidate's
raw pooled AUROC per model, their mean, the other metrics (reported, not used),
and the candidate the rule picks: the highest mean of MemAE and AE raw `auroc`,
ties (equal at 4 decimals) to the earlier of clip, last, patch, relative.

    python benchmarks/frame_score_choice.py runs/i27fs/mm-dev
    python benchmarks/frame_score_choice.py runs/i27fs/vt-dev
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ORDER = ("clip", "last", "patch", "relative")
MODELS = ("memae", "ae")


def choose(means: dict[str, float]) -> str:
    """The rule: highest mean at 4 decimals, ties to the earliest of `ORDER`."""
    best = max(round(value, 4) for value in means.values())
    return next(name for name in ORDER if name in means and round(means[name], 4) == best)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", help="development experiment folder (results.json)")
    args = parser.parse_args(argv)
    tasks = json.loads((Path(args.run) / "results.json").read_text())["tasks"]
    metrics = {model: tasks[f"{model}/all"]["info"]["frame_score_metrics"] for model in MODELS}
    names = [name for name in ORDER if all(name in metrics[m] for m in MODELS)]
    means = {name: sum(metrics[m][name]["auroc"] for m in MODELS) / len(MODELS)
             for name in names}
    kinds = sorted(k for k in metrics["memae"][names[0]] if k.startswith("auroc_kind_"))
    print("| frame score | MemAE auroc | AE auroc | mean (rule) | MemAE normalised / per video"
          " | AE normalised / per video | " + " | ".join(
              f"{k.removeprefix('auroc_kind_')} MemAE / AE" for k in kinds) + " |")
    print("|---" * (6 + len(kinds)) + "|")
    for name in names:
        m, a = metrics["memae"][name], metrics["ae"][name]
        print(f"| {name} | {m['auroc']:.4f} | {a['auroc']:.4f} | {means[name]:.4f} | "
              f"{m['auroc_normalised']:.4f} / {m['auroc_macro']:.4f} | "
              f"{a['auroc_normalised']:.4f} / {a['auroc_macro']:.4f} | "
              + " | ".join(f"{m[k]:.3f} / {a[k]:.3f}" for k in kinds) + " |")
    print(f"chosen: {choose(means)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
