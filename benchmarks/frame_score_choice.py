"""Applies a frame-score rule of `benchmarks/VIDEO_PROTOCOL.md` to development runs.

Reads the `frame_score_metrics` that `memae experiment ... --frame-score-candidates`
recorded for the AE and for MemAE (one or several memory sizes, each from its
run's `--override num_items=N`, else the preset's), and prints each candidate's
raw pooled AUROC per model, their mean, the other metrics (reported, not used)
and the candidate the rule picks: a candidate is a frame score with one of
MemAE's memory sizes, scored by the mean of that MemAE's and the AE's raw
`auroc` with that frame score; the highest mean wins, ties (equal at 4
decimals) go to the earliest in `--order`, then to the larger memory.

    python benchmarks/frame_score_choice.py runs/i27fs/mm-dev
    python benchmarks/frame_score_choice.py runs/i27fs/vt-dev
    python benchmarks/frame_score_choice.py runs/video/mm-dev-memae-n2000 \
        runs/video/mm-dev-memae-n500 runs/video/mm-dev-memae-n100 runs/video/mm-dev-ae \
        --order patch,clip,last,relative,last_plus_temporal
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ORDER = ("clip", "last", "patch", "relative")


def _default_items(dataset: str) -> int:
    from memae_tf.evaluation.datasets import get_dataset
    from memae_tf.models.presets import get_preset

    spec = get_dataset(dataset)
    return spec.overrides.get("num_items", get_preset(spec.preset).kwargs["num_items"])


def read_runs(runs: list[str | Path]) -> tuple[dict, dict[int, dict]]:
    """The AE's and each MemAE memory size's `frame_score_metrics`: `(ae, {N: memae})`."""
    ae, memae = None, {}
    for run in runs:
        stored = json.loads((Path(run) / "results.json").read_text())
        config = stored["config"]
        for key, task in stored["tasks"].items():
            metrics = task["info"]["frame_score_metrics"]
            if key == "ae/all":
                if ae is not None:
                    raise ValueError(f"Expected one AE run. Received a second in {run}")
                ae = metrics
            elif key == "memae/all":
                items = int(config["overrides"].get("num_items")
                            or _default_items(config["dataset"]))
                if items in memae:
                    raise ValueError(f"Expected one MemAE run per memory size. Received a "
                                     f"second with {items} items in {run}")
                memae[items] = metrics
    if ae is None or not memae:
        raise ValueError(f"Expected an AE run and at least one MemAE run. Received: "
                         f"AE {'found' if ae else 'missing'}, MemAE sizes {sorted(memae)}")
    return ae, memae


def candidates(ae: dict, memae: dict[int, dict], order: tuple[str, ...]) -> list[tuple]:
    """`(frame score, N, mean)` of every candidate, in tie-breaking order."""
    return [(name, items, (memae[items][name]["auroc"] + ae[name]["auroc"]) / 2)
            for name in order if name in ae
            for items in sorted(memae, reverse=True) if name in memae[items]]


def choose(rows: list[tuple]) -> tuple[str, int]:
    """The rule: highest mean at 4 decimals, ties to the earliest row."""
    best = max(round(mean, 4) for _, _, mean in rows)
    name, items, _ = next(row for row in rows if round(row[2], 4) == best)
    return name, items


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+",
                        help="development experiment folders (results.json): the AE's and "
                             "MemAE's, in one folder or several")
    parser.add_argument("--order", default=",".join(ORDER),
                        help="frame scores compared, earliest first on ties "
                             f"(default: {','.join(ORDER)})")
    args = parser.parse_args(argv)
    ae, memae = read_runs(args.runs)
    rows = candidates(ae, memae, tuple(args.order.split(",")))
    if not rows:
        raise SystemExit(f"No frame score of --order {args.order} was recorded for both models")
    kinds = sorted(k for k in ae[rows[0][0]] if k.startswith("auroc_kind_"))
    print("| frame score | MemAE items | MemAE auroc | AE auroc | mean (rule) | MemAE normalised"
          " / per video | AE normalised / per video | " + " | ".join(
              f"{k.removeprefix('auroc_kind_')} MemAE / AE" for k in kinds) + " |")
    print("|---" * (7 + len(kinds)) + "|")
    for name, items, mean in rows:
        m, a = memae[items][name], ae[name]
        print(f"| {name} | {items} | {m['auroc']:.4f} | {a['auroc']:.4f} | {mean:.4f} | "
              f"{m['auroc_normalised']:.4f} / {m['auroc_macro']:.4f} | "
              f"{a['auroc_normalised']:.4f} / {a['auroc_macro']:.4f} | "
              + " | ".join(f"{m[k]:.3f} / {a[k]:.3f}" for k in kinds) + " |")
    name, items = choose(rows)
    print(f"chosen: {name}" + (f", {items} items" if len(memae) > 1 else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
