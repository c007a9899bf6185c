"""Video protocol: clip scores → frame scores → frame-level AUROC, raw and per video.

The same code serves UCSD Ped2, CUHK Avenue, ShanghaiTech, the moving-MNIST
benchmark and the walkway footage benchmark (`memae_tf.data.vtest`), since
every loader returns `memae_tf.data.Videos`.

1. The model trains on clips of `clip_length` (16) consecutive frames of the
   normal training videos, and scores every test clip by its mean squared
   reconstruction error.
2. Alignment (`alignment="end"`, the default): a clip of frames `s .. s + L - 1`
   scores its last frame `s + L - 1`, so a frame's score uses only that frame
   and the `L - 1` before it, and a stream can be scored as it arrives
   (`memae_tf.client.stream`). With `alignment="centre"` a clip scores frame
   `s + L // 2` (for 16 frames the 9th, index `s + 8`), which looks 7 frames
   ahead.
3. Frames without a clip assigned to them: with `"end"` the first `L - 1`
   frames of each video (15 for 16-frame clips); with `"centre"` the first
   `L // 2` and the last `L - 1 - L // 2`; with a test stride above 1 also the
   frames in between. With `fill="interpolate"` (default) they take the
   linearly interpolated score of the neighbouring scored frames, and the
   value of the nearest scored frame before the first / after the last one
   (so the first 15 frames take the first clip's score). With `fill="drop"`
   they are left out of the ROC. A video shorter than one clip has no score
   at all and is always left out (counted in `Evaluation.info`).
4. Optional smoothing (`smoothing=w`): each frame's score becomes the mean of
   its own and the `w - 1` previous frame scores of its video (a causal moving
   average, deployable on a stream). Choose `w` on development data only
   (`choose_smoothing`); `w = 1` leaves the scores as they are.
5. Metrics (all frame-level):
   - `auroc` (the headline) and `aupr`: one ROC over all evaluated frames of
     all test videos pooled, on the raw scores: what a deployed detector with
     one threshold sees (micro AUROC, raw);
   - `auroc_normalised`: the same pooled ROC after the paper's per-video
     min-max normalisation `(e - min) / (max - min)` (0 for a video of
     constant score), which needs each whole video in advance (micro AUROC,
     per-video normalised; the literature mixes this with the raw one);
   - `auroc_macro`: the mean over test videos that hold both normal and
     anomalous frames of each video's own AUROC (unchanged by normalisation);
   - `auroc_kind_<kind>`, when the videos name their anomaly kinds: the raw
     ROC of that kind's frames against all normal frames of all test videos.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from memae_tf.choices import ALIGNMENTS as ALIGNMENTS
from memae_tf.choices import FILLS as FILLS
from memae_tf.common.checks import check_choice, check_positive_int
from memae_tf.data import Videos, make_clips
from memae_tf.evaluation.experiment_models import Scorer
from memae_tf.evaluation.frame_score import FRAME_SCORES as FRAME_SCORES
from memae_tf.evaluation.frame_score import frame_score_table
from memae_tf.evaluation.metrics import Evaluation, auroc, ranking_metrics


def scored_frames(starts: np.ndarray, clip_length: int, alignment: str = "end") -> np.ndarray:
    """The frame each clip's score is assigned to (see the module docstring).

    Args:
        starts: First frame of each clip.
        clip_length: Frames per clip.
        alignment: `"end"`: the clip's last frame, `start + clip_length - 1`;
            `"centre"`: `start + clip_length // 2`.

    Returns:
        int64 array of frame indices, shaped like `starts`.

    Example:

    >>> scored_frames(np.array([0, 4]), 16)
    array([15, 19])
    >>> scored_frames(np.array([0, 4]), 16, alignment="centre")
    array([ 8, 12])
    """
    check_choice("alignment", alignment, ALIGNMENTS)
    offset = clip_length - 1 if alignment == "end" else clip_length // 2
    return np.asarray(starts, np.int64) + offset


def centre_frames(starts: np.ndarray, clip_length: int) -> np.ndarray:
    """The centre frame of each clip, `start + clip_length // 2` (`alignment="centre"`).

    Example:

    >>> centre_frames(np.array([0, 4]), 16)
    array([ 8, 12])
    """
    return scored_frames(starts, clip_length, "centre")


def frame_scores(
    clip_scores: np.ndarray,
    index: np.ndarray,
    lengths: Sequence[int],
    clip_length: int,
    fill: str = "interpolate",
    alignment: str = "end",
) -> list[np.ndarray]:
    """Maps clip scores to the frames of each video (see the module docstring).

    Args:
        clip_scores: One score per clip, `(n_clips,)`.
        index: `(n_clips, 2)` `(video, start frame)` of each clip, as
            `memae_tf.data.make_clips` returns it.
        lengths: Number of frames of each video.
        clip_length: Frames per clip.
        fill: `"interpolate"` or `"drop"` (unscored frames stay NaN).
        alignment: `"end"` (a clip scores its last frame) or `"centre"`.

    Returns:
        One float64 array per video, `(lengths[v],)`; NaN marks a frame
        without a score (all frames of a video without clips).

    Example:

    >>> frame_scores(np.array([1.0, 3.0]), np.array([[0, 0], [0, 2]]), [6], 2)
    [array([1., 1., 2., 3., 3., 3.])]
    >>> frame_scores(np.array([1.0, 3.0]), np.array([[0, 0], [0, 2]]), [6], 2, "drop")
    [array([nan,  1., nan,  3., nan, nan])]
    """
    check_choice("fill", fill, FILLS)
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
        targets = scored_frames(index[mine, 1], clip_length, alignment)
        scores = np.full(length, np.nan)
        if len(targets) and targets.max() >= length:
            raise ValueError(
                f"Video {video}: a clip's scored frame lies beyond its {length} frames; "
                "check `clip_length` and the index"
            )
        if len(targets):
            order = np.argsort(targets)
            targets, values = targets[order], clip_scores[mine][order]
            if fill == "interpolate":
                scores = np.interp(np.arange(length), targets, values)
            else:
                scores[targets] = values
        videos.append(scores)
    return videos


def smooth_scores(scores: Sequence[np.ndarray], width: int) -> list[np.ndarray]:
    """Causal moving average of each video's frame scores over `width` frames.

    Frame `t` gets the mean of the scored frames among `t - width + 1 .. t` of
    its video (fewer at the start); an unscored (NaN) frame stays NaN.

    Args:
        scores: One float array per video.
        width: Frames averaged, positive; 1 returns copies of the scores.

    Returns:
        One float64 array per video, shaped like the input.

    Example:

    >>> smooth_scores([np.array([0.0, 3.0, 0.0, 6.0])], 2)
    [array([0. , 1.5, 1.5, 3. ])]
    """
    width = check_positive_int("width", width)
    smoothed = []
    for video in scores:
        video = np.asarray(video, np.float64)
        scored = ~np.isnan(video)
        sums = np.cumsum(np.where(scored, video, 0.0))
        counts = np.cumsum(scored)
        before = np.arange(len(video)) - width
        sums = sums - np.where(before >= 0, sums[np.maximum(before, 0)], 0.0)
        counts = counts - np.where(before >= 0, counts[np.maximum(before, 0)], 0)
        smoothed.append(np.where(scored, sums / np.maximum(counts, 1), np.nan))
    return smoothed


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


def video_metrics(
    scores: Sequence[np.ndarray],
    labels: Sequence[np.ndarray],
    kinds: Sequence[np.ndarray] | None = None,
) -> dict[str, float]:
    """Frame-level metrics of per-video frame scores (see the module docstring, step 5).

    Args:
        scores: One float array of raw frame scores per video; NaN frames are
            left out.
        labels: One 0/1 array per video, shaped like the scores.
        kinds: Optional, one str array per video naming each anomalous frame's
            kind (`""` on normal frames).

    Returns:
        `auroc` and `aupr` (raw, pooled), `auroc_normalised` (pooled after
        per-video min-max), `auroc_macro` (mean of per-video AUROCs over the
        videos holding both classes; NaN when none does) and one
        `auroc_kind_<kind>` per kind.

    Example:

    >>> m = video_metrics([np.array([0.0, 1.0]), np.array([5.0, 6.0])],
    ...                   [np.array([0, 1]), np.array([0, 1])])
    >>> m["auroc"], m["auroc_normalised"], m["auroc_macro"]
    (0.75, 1.0, 1.0)
    """
    if len(scores) != len(labels):
        raise ValueError(f"Expected one label array per video. Received: {len(scores)} score "
                         f"arrays and {len(labels)} label arrays")
    raw = np.concatenate([np.asarray(s, np.float64) for s in scores])
    flat_labels = np.concatenate([np.asarray(v, np.int64) for v in labels])
    if raw.shape != flat_labels.shape:
        raise ValueError(f"Expected one label per frame. Received: {raw.shape} scores, "
                         f"{flat_labels.shape} labels")
    kept = ~np.isnan(raw)
    metrics = ranking_metrics(flat_labels[kept], raw[kept])
    normalised = np.concatenate(normalise_per_video(scores))
    metrics["auroc_normalised"] = auroc(flat_labels[kept], normalised[kept])
    per_video = []
    for video_scores, video_labels in zip(scores, labels, strict=True):
        scored = ~np.isnan(video_scores)
        if len(np.unique(np.asarray(video_labels)[scored])) == 2:
            per_video.append(auroc(np.asarray(video_labels)[scored], video_scores[scored]))
    metrics["auroc_macro"] = float(np.mean(per_video)) if per_video else float("nan")
    if kinds is not None:
        flat_kinds = np.concatenate([np.asarray(k, str) for k in kinds])
        normal = kept & (flat_labels == 0)
        for kind in sorted(set(flat_kinds[kept & (flat_labels == 1)].tolist())):
            chosen = normal | (kept & (flat_kinds == kind))
            metrics[f"auroc_kind_{kind}"] = auroc(flat_labels[chosen], raw[chosen])
    return metrics


def choose_smoothing(
    scores: Sequence[np.ndarray], labels: Sequence[np.ndarray], widths: Sequence[int]
) -> tuple[int, dict[int, float]]:
    """Picks the smoothing width with the highest raw pooled AUROC, on development data.

    Ties go to the narrowest width (less delay). Use it on development videos
    only, then apply the chosen width to the test set.

    Args:
        scores: Raw frame scores of the development videos, one array per video.
        labels: Their frame labels.
        widths: Candidate widths, e.g. `(1, 4, 8, 16)`.

    Returns:
        `(width, {width: auroc})`.

    Example:

    >>> width, by_width = choose_smoothing([np.array([1.0, 5.0, 0.0, 5.0, 1.0, 1.0])],
    ...                                    [np.array([0, 1, 1, 1, 0, 0])], (1, 2))
    >>> width, round(by_width[1], 4), round(by_width[2], 4)
    (2, 0.6667, 0.7222)
    """
    if not widths:
        raise ValueError("Expected at least one candidate width. Received: widths=()")
    by_width = {
        int(w): video_metrics(smooth_scores(scores, w), labels)["auroc"] for w in widths
    }
    best = max(by_width.values())
    return min(w for w, value in by_width.items() if value == best), by_width


def frame_level_evaluation(
    clip_scores: np.ndarray,
    index: np.ndarray,
    videos: Videos,
    clip_length: int,
    fill: str = "interpolate",
    alignment: str = "end",
    smoothing: int = 1,
) -> Evaluation:
    """Frame-level metrics of clip scores over all frames of all test videos.

    Args:
        clip_scores: One anomaly score per test clip.
        index: `(video, start)` of each clip.
        videos: The test videos with their frame labels (and kinds, if named).
        clip_length: Frames per clip.
        fill: Handling of frames without a clip (`"interpolate"`/`"drop"`).
        alignment: The frame a clip's score belongs to (`"end"`/`"centre"`).
        smoothing: Width of the causal moving average of frame scores (1 = none).

    Returns:
        An `Evaluation` over the evaluated frames: its scores are the raw
        (smoothed) frame scores, its metrics those of `video_metrics`.
    """
    lengths = [len(f) for f in videos.frames]
    raw = smooth_scores(frame_scores(clip_scores, index, lengths, clip_length, fill, alignment),
                        smoothing)
    scores = np.concatenate(raw) if raw else np.zeros(0)
    labels = np.concatenate(videos.labels) if raw else np.zeros(0, np.int64)
    kept = ~np.isnan(scores)
    return Evaluation(
        scores[kept],
        labels[kept].astype(np.int64),
        video_metrics(raw, videos.labels, videos.kinds),
        {
            "n_frames": len(scores),
            "n_scored_frames": int(kept.sum()),
            "n_videos": len(raw),
            "n_videos_without_clips": int(sum(np.isnan(v).all() for v in raw)),
            "anomaly_share": float(labels[kept].mean()),
            "alignment": alignment,
            "smoothing": smoothing,
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
    alignment: str = "end",
    smoothing: int = 1,
    smoothing_candidates: Sequence[int] = (),
    frame_score: str = "clip",
    frame_score_candidates: Sequence[str] = (),
) -> Evaluation:
    """Trains on the clips of the normal training videos and evaluates frame by frame.

    Args:
        scorer: Unfitted model taking clips `(n, clip_length, H, W, 1)` in [-1, 1].
        train: Normal training videos.
        test: Test videos with frame labels.
        clip_length: Frames per clip (16 in the paper).
        train_stride: Frames between training clip starts.
        test_stride: Frames between test clip starts (1 scores every frame).
        fill: Handling of frames without a clip.
        alignment: The frame a clip's score belongs to (`"end"`/`"centre"`).
        smoothing: Width of the causal moving average of frame scores (1 = none).
        smoothing_candidates: On development data, widths to compare: `info`
            then holds `smoothing_auroc` (`{width: raw pooled AUROC}`) and
            `smoothing_chosen` (`choose_smoothing`).
        frame_score: How a clip's per-pixel error scores its frame
            (`memae_tf.evaluation.frame_score`): `"clip"` (its mean over the
            clip, `scorer.score`), `"last"`, `"patch"`, `"relative"` or
            `"last_plus_temporal"`; all but `"clip"` need a scorer with
            `frame_score_table(x)` (every frame score of each clip in one pass,
            as `MemAEScorer` computes them with the detector's scoring graph)
            or with `score_map(x)` (and, for `"last_plus_temporal"`,
            `reconstruct(x)`), from which the NumPy definitions compute them.
        frame_score_candidates: On development data, frame scores to compare,
            all computed from the one trained network: `info` then holds
            `frame_score_auroc` (`{name: raw pooled AUROC}`, at `smoothing`)
            and `frame_score_metrics` (`{name: video_metrics}`).

    Returns:
        An `Evaluation` as in `frame_level_evaluation`, with the clip counts in `info`.
    """
    names = list(dict.fromkeys([frame_score, *frame_score_candidates]))
    for name in names:
        check_choice("frame_score", name, FRAME_SCORES)
    table = getattr(scorer, "frame_score_table", None)
    if names != ["clip"] and table is None and not hasattr(scorer, "score_map"):
        raise ValueError(f"Frame scores other than 'clip' need a scorer with per-pixel errors "
                         f"(`score_map`). Received: {type(scorer).__name__} for {names}")
    if ("last_plus_temporal" in names and table is None
            and not hasattr(scorer, "reconstruct")):
        raise ValueError(f"The frame score 'last_plus_temporal' needs a scorer with "
                         f"reconstructions (`reconstruct`). Received: {type(scorer).__name__}")
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
    if names == ["clip"]:
        by_name = {"clip": np.asarray(scorer.score(x_test), np.float64)}
    elif table is not None:
        by_name = table(x_test)
    else:
        by_name = _frame_scores_of(scorer, x_test, names)
    clip_scores = by_name[frame_score]
    evaluation = frame_level_evaluation(clip_scores, index, test, clip_length, fill, alignment,
                                        smoothing)
    evaluation.info.update({"n_train_clips": n_train_clips, "n_test_clips": len(index),
                            "frame_score": frame_score})
    if frame_score_candidates:
        metrics = {
            name: frame_level_evaluation(by_name[name], index, test, clip_length, fill,
                                         alignment, smoothing).metrics
            for name in frame_score_candidates
        }
        evaluation.info.update({
            "frame_score_auroc": {name: m["auroc"] for name, m in metrics.items()},
            "frame_score_metrics": metrics,
        })
    if smoothing_candidates:
        lengths = [len(f) for f in test.frames]
        raw = frame_scores(clip_scores, index, lengths, clip_length, fill, alignment)
        chosen, by_width = choose_smoothing(raw, test.labels, smoothing_candidates)
        evaluation.info.update({"smoothing_auroc": by_width, "smoothing_chosen": chosen})
    return evaluation


def _frame_scores_of(scorer: Scorer, clips: np.ndarray, names: Sequence[str],
                     batch_size: int = 64) -> dict[str, np.ndarray]:
    """Frame scores `names` of every clip, from the scorer's error maps (and
    reconstructions, for `"last_plus_temporal"`), a batch at a time."""
    parts: dict[str, list[np.ndarray]] = {name: [] for name in names}
    for start in range(0, len(clips), batch_size):
        batch = clips[start : start + batch_size]
        rebuilt = scorer.reconstruct(batch) if "last_plus_temporal" in names else None
        for name, scores in frame_score_table(batch, scorer.score_map(batch), names,
                                              rebuilt).items():
            parts[name].append(scores)
    return {name: np.concatenate(chunks) if chunks else np.zeros(0)
            for name, chunks in parts.items()}
