"""An object-centric score on the moving-digit benchmark: each digit cropped and scored alone.

The video network rebuilds digits of classes it never saw, whatever it trains
on (`benchmarks/HISTORY.md`, "Moving digits: the video network on 1,024 and
4,096 training digits"), while an image model that sees each digit alone and
centred ranks unseen classes well (`digit_instances.py`). This probe scores
each frame by its objects, as Ionescu et al. (CVPR 2019) do: it finds them
without labels, crops each to 28×28, scores the crops with the `mnist` image
preset trained on the crops of the normal training videos only, and takes
the frame's largest object score. It can be fused with the video network's
frame score (`last_plus_temporal`), each standardised by the mean and
standard deviation of its scores over the training videos' frames.

Objects, exactly (`object_crops`): pixels above `THRESHOLD` form a mask; the
mask dilated once by a 3×3 square is cut into 8-connected components
(`scipy.ndimage.label`); a component with fewer than `MIN_PIXELS` mask pixels
is dropped. An object's crop is the frame inside the component's bounding
box, black outside the component; if its longer side exceeds 28 pixels it is
scaled down to 28 (bilinear, the same factor on both axes); it is placed
centred on a black 28×28 canvas. No position, class or count from the
generator is read.

The video network, its training videos and the test videos are those of
`digit_videos.py` (the benchmark's setting; `--videos 32 --length 64` is the
benchmark's own training set). The image network is the `mnist` preset as
`memae experiment mnist --epochs 10 --seed S` trains it, same variant as the
video network, on the crops of every `--frame-stride`-th training frame.

Recorded besides, choosing nothing: the object score on the test frames
whose digits stand apart (the `"scale"` extraction finds two or more
objects there; `objects-<large>-apart`), and each image network's AUROC of
MNIST's 10,000 test digits, classes 5-9 against 0-4, alone and centred as
MNIST draws them (`isolated_mnist_auroc_<large>`).

    python benchmarks/digit_objects.py --seed 100 --out runs/objects
    python benchmarks/digit_objects.py --seed 100 --videos 512 --length 16 --frame-stride 4 \\
        --out runs/objects
    python benchmarks/digit_objects.py --seed 100 --large scale --image-digits mnist \\
        --out runs/objects   # the ceiling probe: image networks fitted on MNIST's digits 0-4
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
from digit_videos import trained_network
from scipy import ndimage

THRESHOLD = 63
MIN_PIXELS = 10
CROP = 28
LARGE_OBJECTS = ("scale", "corners")
_EIGHT_CONNECTED = np.ones((3, 3), bool)


def object_crops(frame: np.ndarray, large: str = "scale") -> np.ndarray:
    """The objects of one uint8 frame `(H, W)`, each centred on a black 28×28 canvas.

    Args:
        frame: uint8 `(H, W)`.
        large: An object wider or taller than 28 pixels (touching digits) is
            `"scale"`d down to fit, or cut into the 28×28 windows at the
            `"corners"` of its bounding box (2 or 4 windows, each an object).

    Returns:
        uint8 `(n_objects, 28, 28)`, in `scipy.ndimage.label`'s order.

    Example:

    >>> frame = np.zeros((40, 40), np.uint8)
    >>> frame[2:6, 3:9] = 200; frame[20:36, 20:24] = 255
    >>> [int((c > 0).sum()) for c in object_crops(frame)]
    [24, 64]
    >>> frame[4:34, 10:14] = 255  # joins the block: one object of rows 1-34 (dilated)
    >>> [int((c > 0).sum()) for c in object_crops(frame, "corners")]  # rows 1-28, 7-34
    [124, 108, 64]
    """
    if large not in LARGE_OBJECTS:
        raise ValueError(f"Expected `large` in {LARGE_OBJECTS}. Received: large={large!r}")
    mask = frame > THRESHOLD
    components, _ = ndimage.label(ndimage.binary_dilation(mask, _EIGHT_CONNECTED),
                                  _EIGHT_CONNECTED)
    parts = []
    for number, box in enumerate(ndimage.find_objects(components), start=1):
        inside = components[box] == number
        if (mask[box] & inside).sum() < MIN_PIXELS:
            continue
        part = np.where(inside, frame[box], 0)
        if max(part.shape) <= CROP:
            parts.append(part)
        elif large == "scale":
            parts.append(np.clip(ndimage.zoom(part.astype(np.float32), CROP / max(part.shape),
                                              order=1, grid_mode=True, mode="grid-constant"),
                                 0, 255).astype(np.uint8)[:CROP, :CROP])
        else:
            rows, cols = ({0, max(n - CROP, 0)} for n in part.shape)
            parts.extend(part[r:r + CROP, c:c + CROP] for r in sorted(rows) for c in sorted(cols))
    canvases = np.zeros((len(parts), CROP, CROP), np.uint8)
    for canvas, part in zip(canvases, parts, strict=True):
        top, left = (CROP - part.shape[0]) // 2, (CROP - part.shape[1]) // 2
        canvas[top:top + part.shape[0], left:left + part.shape[1]] = part
    return canvases


def crops_of(videos, frame_stride: int, large: str) -> tuple[np.ndarray, np.ndarray]:
    """Crops of every `frame_stride`-th frame of each video, with `(video, frame)` of each."""
    crops, owners = [], []
    for video, frames in enumerate(videos.frames):
        for t in range(0, len(frames), frame_stride):
            found = object_crops(frames[t], large)
            crops.append(found)
            owners.extend([(video, t)] * len(found))
    return np.concatenate(crops), np.asarray(owners, np.int64).reshape(-1, 2)


def object_frame_scores(crop_scores: np.ndarray, owners: np.ndarray, videos,
                        frame_stride: int) -> list[np.ndarray]:
    """Each frame's largest object score; 0 for a frame without objects, NaN between strides."""
    scores = []
    for video, frames in enumerate(videos.frames):
        frame_score = np.full(len(frames), np.nan)
        frame_score[::frame_stride] = 0.0
        mine = owners[:, 0] == video
        np.maximum.at(frame_score, owners[mine, 1], crop_scores[mine])
        scores.append(frame_score)
    return scores


def video_frame_scores(scorer, videos, config) -> list[np.ndarray]:
    """The video network's frame scores of `videos`, as the benchmark evaluates test videos."""
    from memae_tf.data import Videos, make_clips
    from memae_tf.evaluation.video import frame_scores, smooth_scores

    scores = []
    for frames, labels, name in zip(videos.frames, videos.labels, videos.names, strict=True):
        clips, index = make_clips(Videos((frames,), (labels,), (name,)), config.clip_length,
                                  config.test_stride)
        clip_scores = scorer.frame_score_table(clips)[config.frame_score]
        scores.extend(smooth_scores(frame_scores(clip_scores, index, [len(frames)],
                                                 config.clip_length, config.fill,
                                                 config.alignment), config.smoothing))
    return scores


def standardised(train: list[np.ndarray], test: list[np.ndarray]) -> tuple[list, dict]:
    """`test` as z-scores by the mean and standard deviation of the `train` frame scores."""
    pooled = np.concatenate(train)
    mean, std = float(np.nanmean(pooled)), float(np.nanstd(pooled))
    test_pooled = np.concatenate(test)
    facts = {"train_mean": mean, "train_std": std, "test_mean": float(np.nanmean(test_pooled)),
             "test_std": float(np.nanstd(test_pooled))}
    return [(scores - mean) / std for scores in test], facts


def image_scorer(variant: str, seed: int):
    """The `mnist` preset's `variant`, trained as `memae experiment mnist --epochs 10` does."""
    from memae_tf.cli import build_parser
    from memae_tf.evaluation.cli import config_from_args
    from memae_tf.evaluation.experiment_models import make_scorer

    config = config_from_args(build_parser().parse_args([
        "experiment", "mnist", "--out", os.devnull, "--variants", variant, "--epochs", "10",
        "--seed", str(seed)]))
    return make_scorer(variant, config.spec.preset, config.model_overrides(), config.training(),
                       None, config.error)


def run(seed: int, variant: str, videos: int, length: int, frame_stride: int,
        large_objects: tuple[str, ...] = LARGE_OBJECTS, image_digits: str = "crops") -> dict:
    """Object-only, video-only and fused figures of `variant` on the test videos of `seed`.

    `image_digits="mnist"` fits the image networks on every MNIST training-split
    digit of classes 0-4, alone and centred, instead of the training videos' crops
    (a ceiling probe that leaves the benchmark's training set; chooses nothing).
    """
    from memae_tf.evaluation.datasets import load_images
    from memae_tf.evaluation.metrics import auroc
    from memae_tf.evaluation.video import video_metrics

    config, network, train, test, evaluation, video_seconds = trained_network(
        seed, variant, videos, length, [])
    lengths = [len(frames) for frames in test.frames]
    if evaluation.info["n_scored_frames"] != sum(lengths):
        raise RuntimeError(f"Expected every test frame scored. Received: {evaluation.info}")
    video_test = np.split(evaluation.scores, np.cumsum(lengths)[:-1])
    video_train = video_frame_scores(network, train, config)

    video_z, video_facts = standardised(video_train, video_test)
    # Diagnostics (choose nothing): frames whose digits stand apart, and isolated digits.
    _, scale_owners = crops_of(test, 1, "scale")
    joined = [counts < 2 for counts in object_counts(scale_owners, test, 1)]
    (train_x, train_y), (mnist_x, mnist_y) = load_images("mnist", None)
    result = {
        "seed": seed, "variant": variant, "videos": videos, "length": length,
        "frame_stride": frame_stride, "image_digits": image_digits,
        "metrics": {"video": video_metrics(video_test, test.labels, test.kinds)},
        "standardisation": {"video": video_facts},
        "training_crops": {}, "test_crops": {}, "objects_per_frame": {}, "object_seconds": {},
        "video_seconds": round(video_seconds, 1),
    }
    for large in large_objects:
        start = time.perf_counter()
        objects = image_scorer(variant, seed)
        train_crops, train_owners = crops_of(train, frame_stride, large)
        objects.fit(train_crops if image_digits == "crops" else train_x[train_y < 5])
        object_train = object_frame_scores(objects.score(train_crops), train_owners, train,
                                           frame_stride)
        test_crops, test_owners = crops_of(test, 1, large)
        object_test = object_frame_scores(objects.score(test_crops), test_owners, test, 1)
        object_z, object_facts = standardised(object_train, object_test)
        fused = [v + o for v, o in zip(video_z, object_z, strict=True)]
        result["metrics"][f"objects-{large}"] = video_metrics(object_test, test.labels,
                                                              test.kinds)
        result["metrics"][f"fused-{large}"] = video_metrics(fused, test.labels, test.kinds)
        result["metrics"][f"objects-{large}-apart"] = video_metrics(
            [np.where(j, np.nan, scores) for j, scores in zip(joined, object_test, strict=True)],
            test.labels, test.kinds)
        result[f"isolated_mnist_auroc_{large}"] = auroc(mnist_y >= 5, objects.score(mnist_x))
        result["standardisation"][f"objects-{large}"] = object_facts
        result["training_crops"][large], result["test_crops"][large] = (len(train_crops),
                                                                        len(test_crops))
        result["objects_per_frame"][large] = {
            "train": objects_per_frame(train_owners, train, frame_stride),
            "test": objects_per_frame(test_owners, test, 1)}
        result["object_seconds"][large] = round(time.perf_counter() - start, 1)
    result["load_average"] = os.getloadavg()
    return result


def object_counts(owners: np.ndarray, videos, stride: int) -> list[np.ndarray]:
    """The number of objects of every `stride`-th frame, one array per video."""
    return [np.bincount(owners[owners[:, 0] == v, 1], minlength=len(f))[::stride]
            for v, f in enumerate(videos.frames)]


def objects_per_frame(owners: np.ndarray, videos, stride: int) -> dict[str, int]:
    """How many of every `stride`-th frame hold 0, 1, 2, ... objects."""
    counts = np.concatenate(object_counts(owners, videos, stride))
    return {str(k): int(n) for k, n in enumerate(np.bincount(counts))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=100)
    parser.add_argument("--variants", default="memae,ae")
    parser.add_argument("--videos", type=int, default=32, help="training videos (32)")
    parser.add_argument("--length", type=int, default=64, help="frames a training video (64)")
    parser.add_argument("--frame-stride", type=int, default=1,
                        help="frames between the training frames whose objects are cropped (1)")
    parser.add_argument("--large", default=",".join(LARGE_OBJECTS),
                        help="ways to crop joined digits (scale,corners)")
    parser.add_argument("--image-digits", choices=("crops", "mnist"), default="crops",
                        help="the image networks' training rows: the training videos' crops "
                             "(default) or MNIST's training digits 0-4 (a ceiling probe)")
    parser.add_argument("--out", default="runs/objects", help="folder of result files")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for variant in args.variants.split(","):
        result = run(args.seed, variant, args.videos, args.length, args.frame_stride,
                     tuple(args.large.split(",")), args.image_digits)
        name = f"s{args.seed}-{variant}-{args.videos}x{args.length}" + (
            "-mnist" if args.image_digits == "mnist" else "")
        (out / f"{name}.json").write_text(json.dumps(result, indent=2))
        print(json.dumps({key: result[key] for key in ("seed", "variant", "videos", "length")}
                         | {"auroc": {k: round(m["auroc"], 4)
                                      for k, m in result["metrics"].items()}}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
