"""Why a kind of a video benchmark is or is not detected: measurements per kind.

For the videos of a `memae experiment vtest-dev` / `vtest` / `moving-mnist` run
(regenerated from its seed) and the frame scores it stored, prints per anomaly
kind (`changed`: the walkway only):

- `changed`: the share of a labelled frame's pixels the injection changed, and
  the mean squared change over the whole frame in the model's [-1, 1] units (for
  `fast`: the mean squared frame-to-frame difference, against normal frames');
- `spill`: the share of normal frames whose 16-frame clip holds an anomalous frame
  of that kind (they inherit part of its score: a clip scores its last frame);
- `rise`: (median score of the kind's frames − median of normal frames) / the
  standard deviation of normal frames' scores, per model.

and per model, `crowd`: the correlation of normal frames' scores with their
foreground share (pixels more than 25 grey levels from the median training frame).

    python benchmarks/video_kinds.py runs/i27/vt-dev --dataset vtest-dev --seed 100
    python benchmarks/video_kinds.py runs/i27/mm-dev --dataset moving-mnist --seed 100
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

CLIP = 16


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="experiment folders (their scores/)")
    parser.add_argument("--dataset", default="vtest-dev",
                        choices=["vtest-dev", "vtest", "moving-mnist"])
    parser.add_argument("--seed", type=int, default=100)
    args = parser.parse_args(argv)

    from memae_tf.evaluation.datasets import get_dataset, load_videos

    train, test = load_videos(args.dataset, None, get_dataset(args.dataset).frame_size,
                              False, args.seed)
    footage = None
    if args.dataset.startswith("vtest"):
        from memae_tf.data import load_vtest

        footage = load_vtest(download=False)
    split = "dev" if args.dataset == "vtest-dev" else "test"
    kinds = np.concatenate(test.kinds)
    labels = np.concatenate(test.labels)
    lines = []
    for kind in sorted(set(kinds) - {""}):
        changed, energy, spill_frames, normal_frames = [], [], 0, 0
        for frames, video_kinds in zip(test.frames, test.kinds, strict=True):
            mine = video_kinds == kind
            if not mine.any():
                continue
            scaled = frames / 127.5 - 1.0
            if footage is not None and kind == "fast":
                motion = np.square(np.diff(scaled, axis=0)).mean(axis=(1, 2))
                energy.append((motion[mine[1:]].mean(), motion[~mine[1:]].mean()))
            elif footage is not None:  # the digits: only spill, rise and crowd
                original = _without_injection(frames, footage, split)
                difference = np.square(scaled - original / 127.5 + 1.0)[mine]
                changed.append((difference > 0).mean())
                energy.append(difference.mean())
            anomalous = np.flatnonzero(mine)
            for t in np.flatnonzero(video_kinds == ""):
                normal_frames += 1
                spill_frames += bool(((anomalous <= t) & (anomalous > t - CLIP)).any())
        if footage is None:
            change = "not measured"
        elif kind == "fast":
            fast, normal = np.mean(energy, axis=0)
            change = f"frame-to-frame MSE {fast:.4f} vs {normal:.4f} on normal frames"
        else:
            change = f"{np.mean(changed):.1%} of pixels, MSE {np.mean(energy):.4f} a frame"
        lines.append(f"{kind}: changed {change}; spill {spill_frames / normal_frames:.1%} "
                     "of the normal frames of its videos")
        for run in args.runs:
            for stored in sorted((Path(run) / "scores").glob("*.npz")):
                data = np.load(stored)
                scores = data["scores"]
                if len(scores) != len(labels):
                    sys.exit(f"{stored}: {len(scores)} scores for {len(labels)} frames")
                normal = scores[labels == 0]
                rise = (np.median(scores[kinds == kind]) - np.median(normal)) / normal.std()
                lines.append(f"  {run} {stored.stem}: rise {rise:+.2f} normal-score SDs")
    background = np.median(np.concatenate(train.frames), axis=0)
    foreground = np.concatenate([(np.abs(f - background) > 25).mean(axis=(1, 2))
                                 for f in test.frames])
    for run in args.runs:
        for stored in sorted((Path(run) / "scores").glob("*.npz")):
            scores = np.load(stored)["scores"]
            normal = labels == 0
            crowd = np.corrcoef(scores[normal], foreground[normal])[0, 1]
            lines.append(f"crowd: {run} {stored.stem}: correlation {crowd:+.2f}")
    print("\n".join(lines))
    return 0


def _without_injection(frames: np.ndarray, footage: np.ndarray, split: str) -> np.ndarray:
    """The footage frames a video shows: for each frame, the split's frame equal to it in
    the most pixels (the injection changes a small region only)."""
    from memae_tf.data.vtest import SPLITS

    candidates = footage[slice(*SPLITS[split])]
    flat = candidates.reshape(len(candidates), -1)
    chosen = [np.argmax((flat == f.reshape(1, -1)).sum(axis=1)) for f in frames]
    return candidates[chosen].astype(np.float64)


if __name__ == "__main__":
    raise SystemExit(main())
