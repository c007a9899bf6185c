"""Temporal frame scores on the walkway (`VIDEO_PROTOCOL.md`, "Temporal frame scores").

Trains one network as `memae experiment vtest-dev|vtest --override num_items=500
--epochs 30 --train-stride 2 --seed S` does (the same data, network and
training), scores the test clips of the split, and evaluates each candidate
frame score with the protocol's metrics (`frame_level_evaluation`: a clip
scores its last frame, raw pooled `auroc` first). For a clip `x` and its
reconstruction `x̂` (`r = x − x̂`, `Δ` the change from the clip's frame L−2
to its last frame L−1), means over the last frame's pixels:

- `last`: `mean(r[L−1]²)` (`MemAE.score_map`'s last frame, the current score);
- `temporal`: `mean((Δx − Δx̂)²)`;
- `change_ratio`: `mean(Δx²) / (mean(Δx̂²) + 1e-4)`;
- `last_plus_temporal`: `last + temporal`.

    python benchmarks/temporal_probe.py --dataset vtest-dev --seed 100 --variant memae
    python benchmarks/temporal_probe.py --choose runs/i27tp/vtest-dev-s100-memae.json \
        runs/i27tp/vtest-dev-s100-ae.json
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

CANDIDATES = ("last", "temporal", "change_ratio", "last_plus_temporal")
RATIO_FLOOR = 1e-4


def temporal_scores(x: np.ndarray, rebuilt: np.ndarray, errors: np.ndarray) -> dict:
    """The candidates of clips `x`, reconstructions and per-pixel errors `(n, L, H, W, C)`."""
    from memae_tf.evaluation.frame_score import clip_frame_scores, temporal_error

    x, rebuilt = np.asarray(x, np.float64), np.asarray(rebuilt, np.float64)
    axes = tuple(range(1, x.ndim - 1))
    change, rebuilt_change = x[:, -1] - x[:, -2], rebuilt[:, -1] - rebuilt[:, -2]
    return {
        "last": clip_frame_scores(x, errors, "last"),
        "temporal": temporal_error(x, rebuilt),
        "change_ratio": (change**2).mean(axis=axes) / ((rebuilt_change**2).mean(axis=axes)
                                                       + RATIO_FLOOR),
        "last_plus_temporal": clip_frame_scores(x, errors, "last_plus_temporal",
                                                reconstructions=rebuilt),
    }


def probe(dataset: str, seed: int, variant: str, epochs: int = 30) -> dict:
    from memae_tf.cli import build_parser
    from memae_tf.data import make_clips
    from memae_tf.evaluation.cli import config_from_args
    from memae_tf.evaluation.experiment import Experiment
    from memae_tf.evaluation.experiment_models import make_scorer
    from memae_tf.evaluation.video import frame_level_evaluation

    args = build_parser().parse_args([
        "experiment", dataset, "--out", os.devnull, "--variants", variant,
        "--override", "num_items=500", "--epochs", str(epochs), "--train-stride", "2",
        "--seed", str(seed)])
    config = config_from_args(args)
    overrides = config.model_overrides()
    overrides.setdefault("input_shape", (config.clip_length, *config.video_frame_size(), 1))
    train, test = Experiment(config).data()
    scorer = make_scorer(variant, config.spec.preset, overrides, config.training(), None,
                         config.error)
    start, cpu = time.perf_counter(), time.process_time()
    x_train, _ = make_clips(train, config.clip_length, config.train_stride)
    scorer.fit(x_train)
    del x_train
    x_test, index = make_clips(test, config.clip_length, config.test_stride)
    detector = scorer.detector
    parts: dict[str, list[np.ndarray]] = {name: [] for name in CANDIDATES}
    for first in range(0, len(x_test), 64):
        clips = x_test[first : first + 64]
        scores = temporal_scores(detector.preprocess(clips), detector.reconstruct(clips),
                                 detector.score_map(clips))
        for name in CANDIDATES:
            parts[name].append(scores[name])
    metrics = {
        name: frame_level_evaluation(np.concatenate(parts[name]), index, test,
                                     config.clip_length, config.fill, config.alignment,
                                     config.smoothing).metrics
        for name in CANDIDATES
    }
    return {"dataset": dataset, "seed": seed, "variant": variant, "epochs": epochs,
            "metrics": metrics,
            "seconds": round(time.perf_counter() - start, 1),
            "cpu_seconds": round(time.process_time() - cpu, 1),
            "load_average": os.getloadavg()}


def choose(means: dict[str, float]) -> str:
    """The rule: the highest mean at 4 decimals, ties to the earliest of `CANDIDATES`."""
    best = max(round(value, 4) for value in means.values())
    return next(name for name in CANDIDATES if round(means[name], 4) == best)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", choices=("vtest-dev", "vtest"), default="vtest-dev")
    parser.add_argument("--seed", type=int, default=100)
    parser.add_argument("--variant", choices=("memae", "ae"), default="memae")
    parser.add_argument("--epochs", type=int, default=30,
                        help="the protocol's 30; fewer only to check the script runs")
    parser.add_argument("--out", default="runs/i27tp", help="folder of the result files")
    parser.add_argument("--choose", nargs="+", metavar="RESULT",
                        help="apply the rule to result files (MemAE's and the AE's)")
    args = parser.parse_args(argv)
    if args.choose:
        results = [json.loads(Path(path).read_text()) for path in args.choose]
        means = {name: float(np.mean([r["metrics"][name]["auroc"] for r in results]))
                 for name in CANDIDATES}
        for name in CANDIDATES:
            row = " | ".join(f"{r['variant']} {r['metrics'][name]['auroc']:.4f} (" + ", ".join(
                f"{key[len('auroc_kind_'):]} {value:.3f}"
                for key, value in sorted(r["metrics"][name].items())
                if key.startswith("auroc_kind_")) + f"; normalised "
                f"{r['metrics'][name]['auroc_normalised']:.4f}, per video "
                f"{r['metrics'][name]['auroc_macro']:.4f})" for r in results)
            print(f"{name}: mean {means[name]:.4f} | {row}")
        print("chosen:", choose(means))
        return 0
    result = probe(args.dataset, args.seed, args.variant, args.epochs)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{args.dataset}-s{args.seed}-{args.variant}.json"
    path.write_text(json.dumps(result, indent=2))
    print(json.dumps({k: v for k, v in result.items() if k != "metrics"}))
    print({name: round(m["auroc"], 4) for name, m in result["metrics"].items()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
