"""Video protocol: clip scores → frame scores → per-video regularity → frame-level AUROC.

The same code serves UCSD Ped2, CUHK Avenue, ShanghaiTech and the moving-MNIST
benchmark, since every loader returns `memae_tf.data.Videos`.

1. The model trains on clips of `clip_length` (16) consecutive frames of the
   normal training videos, and scores every test clip by its mean squared
   reconstruction error.
2. Alignment: a clip starting at frame `s` scores its centre frame
   `s + clip_length // 2` (for 16 frames: the 9th, index `s + 8`; with an even
   length the later of the two middle frames).
3. Frames without a clip centred on them: the first `clip_length // 2` frames
   of each video, the last `clip_length - 1 - clip_length // 2`, and, with a
   test stride above 1, the frames between centres. With `fill="interpolate"`
   (default) they take the linearly interpolated score of the neighbouring
   centres, and the value of the nearest centre before the first / after the
   last one, so every labelled frame is evaluated. With `fill="drop"` they are
   left out of the ROC. A video shorter than one clip has no score at all and
   is always left out (counted in `Evaluation.info`).
4. Per video, frame scores `e` are min-max normalised: `(e - min) / (max - min)`
   (0 for a video of constant score); the regularity score is `1 - that`. The
   normalised error is the anomaly score.
5. One ROC over all evaluated frames of all test videos: the frame-level micro
   AUROC of the paper (`auroc`, `aupr`). `auroc_raw` is the same ROC over the
   frame errors before the per-video normalisation, which compares frames
   across videos as a deployed detector with one threshold would.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from memae_tf.data import Videos, make_clips
from memae_tf.evaluation.experiment_models import Scorer
from memae_tf.evaluation.metrics import Evaluation, ranking_metrics

FILLS = ("interpolate", "drop")


def centre_frames(starts: np.ndarray, clip_length: int) -> np.ndarray:
    """The frame each clip's score is assigned to: `start + clip_length // 2`.

    Example:

    >>> centre_frames(np.array([0, 4]), 16)
    array([ 8, 12])
    """
    return np.asarray(starts, np.int64) + clip_length // 2


def frame_scores(
    clip_scores: np.ndarray,
    index: np.ndarray,
    lengths: Sequence[int],
    clip_length: int,
    fill: str = "interpolate",
) -> list[np.ndarray]:
    """Maps clip scores to the frames of each video (see the module docstring).

    Args:
        clip_scores: One score per clip, `(n_clips,)`.
        index: `(n_clips, 2)` `(video, start frame)` of each clip, as
            `memae_tf.data.make_clips` returns it.
        lengths: Number of frames of each video.
        clip_length: Frames per clip.
        fill: `"interpolate"` or `"drop"` (unscored frames stay NaN).

    Returns:
        One float64 array per video, `(lengths[v],)`; NaN marks a frame
        without a score (all frames of a video without clips).

    Example:

    >>> frame_scores(np.array([1.0, 3.0]), np.array([[0, 0], [0, 2]]), [6], 2)
    [array([1., 1., 2., 3., 3., 3.])]
    """
    if fill not in FILLS:
        raise ValueError(f"Expected `fill` in {FILLS}. Received: fill={fill!r}")
    clip_scores = np.asarray(clip_scores, np.float64).reshape(-1)
    index = np.asarray(index, np.int64).reshape(-1, 2)
    if len(clip_scores) != len(index):
        raise ValueError(
            f"Expected one clip score per clip. Received: {len(clip_scores)} scores "
            f"for {len(index)} clips"
        )
    videos = []
    for video, length in enumerate(lengths):
        mine = index[:, 0] == video
        centres = centre_frames(index[mine, 1], clip_length)
        scores = np.full(length, np.nan)
        if len(centres) and centres.max() >= length:
            raise ValueError(
                f"Video {video}: a clip centre lies beyond its {length} frames; "
                "check `clip_length` and the index"
            )
        if len(centres):
            order = np.argsort(centres)
            centres, values = centres[order], clip_scores[mine][order]
            if fill == "interpolate":
                scores = np.interp(np.arange(length), centres, values)
            else:
                scores[centres] = values
        videos.append(scores)
    return videos


def normalise_per_video(scores: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Min-max normalises each video's frame scores to [0, 1], ignoring NaN.

    A video whose scored frames all share one value maps to 0 (fully regular).

    Example:

    >>> normalise_per_video([np.array([2.0, 4.0, 3.0]), np.array([5.0, 5.0])])
    [array([0. , 1. , 0.5]), array([0., 0.])]
    """
    normalised = []
    for video in scores:
        video = np.asarray(video, np.float64)
        scored = video[~np.isnan(video)]
        if scored.size == 0:
            normalised.append(video.copy())
            continue
        low, span = scored.min(), scored.max() - scored.min()
        normalised.append((video - low) / span if span > 0 else np.where(
            np.isnan(video), np.nan, 0.0))
    return normalised


def regularity_scores(scores: Sequence[np.ndarray]) -> list[np.ndarray]:
    """The paper's regularity score per frame: `1 - min-max normalised error` per video."""
    return [1.0 - video for video in normalise_per_video(scores)]


def frame_level_evaluation(
    clip_scores: np.ndarray,
    index: np.ndarray,
    videos: Videos,
    clip_length: int,
    fill: str = "interpolate",
) -> Evaluation:
    """Frame-level micro AUROC/AUPR of clip scores over all frames of all videos.

    Args:
        clip_scores: One anomaly score per test clip.
        index: `(video, start)` of each clip.
        videos: The test videos with their frame labels.
        clip_length: Frames per clip.
        fill: Handling of frames without a centred clip (`"interpolate"`/`"drop"`).

    Returns:
        An `Evaluation` over the evaluated frames; its scores are the
        per-video normalised errors (`1 - regularity`); its metrics are
        `auroc` and `aupr` of those, and `auroc_raw` of the errors as they are.
    """
    raw = frame_scores(clip_scores, index, [len(f) for f in videos.frames], clip_length, fill)
    per_video = normalise_per_video(raw)
    scores = np.concatenate(per_video) if per_video else np.zeros(0)
    raw = np.concatenate(raw) if per_video else np.zeros(0)
    labels = np.concatenate(videos.labels) if per_video else np.zeros(0, np.int64)
    kept = ~np.isnan(scores)
    metrics = ranking_metrics(labels[kept], scores[kept])
    metrics["auroc_raw"] = ranking_metrics(labels[kept], raw[kept])["auroc"]
    return Evaluation(
        scores[kept],
        labels[kept].astype(np.int64),
        metrics,
        {
            "n_frames": len(scores),
            "n_scored_frames": int(kept.sum()),
            "n_videos": len(per_video),
            "n_videos_without_clips": int(sum(np.isnan(v).all() for v in per_video)),
            "anomaly_share": float(labels[kept].mean()),
        },
    )


def evaluate_video(
    scorer: Scorer,
    train: Videos,
    test: Videos,
    clip_length: int = 16,
    train_stride: int = 1,
    test_stride: int = 1,
    fill: str = "interpolate",
) -> Evaluation:
    """Trains on the clips of the normal training videos and evaluates frame by frame.

    Args:
        scorer: Unfitted model taking clips `(n, clip_length, H, W, 1)` in [-1, 1].
        train: Normal training videos.
        test: Test videos with frame labels.
        clip_length: Frames per clip (16 in the paper).
        train_stride: Frames between training clip starts.
        test_stride: Frames between test clip starts (1 scores every frame).
        fill: Handling of frames without a centred clip.

    Returns:
        An `Evaluation` as in `frame_level_evaluation`, with the clip counts in `info`.
    """
    x_train, _ = make_clips(train, clip_length, train_stride)
    if len(x_train) == 0:
        raise ValueError(
            f"The training videos give no clip of {clip_length} frames. Received videos of "
            f"lengths {[len(f) for f in train.frames]}"
        )
    scorer.fit(x_train)
    n_train_clips = len(x_train)
    del x_train  # clips are large; free them before cutting the test clips
    x_test, index = make_clips(test, clip_length, test_stride)
    clip_scores = np.asarray(scorer.score(x_test), np.float64)
    evaluation = frame_level_evaluation(clip_scores, index, test, clip_length, fill)
    evaluation.info.update({"n_train_clips": n_train_clips, "n_test_clips": len(index)})
    return evaluation
