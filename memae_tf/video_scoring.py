"""Scoring a video file frame by frame with a trained video MemAE (`memae score-video`).

The file is read with the package's own reader (`memae_tf.data.read_frames`,
grayscale, resized to the model's frame size) and cut into every clip of
`clip_length` consecutive frames. A clip scores its last frame
(`memae_tf.evaluation.video`, `alignment="end"`), so frame `t` gets the score
of frames `t - clip_length + 1 .. t` and the first `clip_length - 1` frames
get none (NaN): the same scores a live stream gets from
`memae_tf.client.stream.StreamScorer`, frame for frame. `frame_score` says
which number of the clip's error and reconstruction scores the frame
(`memae_tf.evaluation.frame_score`); by default `"last_plus_temporal"`, the
last frame's mean error plus that of its change from the frame before (the
score chosen on real footage, `benchmarks/VIDEO_PROTOCOL.md`). The detector's
scoring graph computes it, the function that the exported `frame_score`
signature serves to a stream; `"clip"` is the clip's mean error
(`MemAE.score`). A frame is flagged when its score is above the detector's
threshold on that frame score (`MemAE.frame_threshold`), which
`infer_threshold` sets on held-out normal clips for every frame score.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from memae_tf.common.checks import check_choice
from memae_tf.common.contract import DEFAULT_FRAME_SCORE, FRAME_SCORES
from memae_tf.data import read_frames
from memae_tf.detector import MemAE
from memae_tf.plot import error_overlay, score_over_time
from memae_tf.thresholds import above_threshold


@dataclass(frozen=True)
class VideoScores:
    """The per-frame scores of one video.

    Attributes:
        frames: The frames as scored, uint8 `(t, H, W)`.
        scores: float64 `(t,)`; NaN for the first `clip_length - 1` frames.
        error_maps: float64 `(t, H, W)`: each scored frame's error map (the last
            frame of its clip's `score_map`), NaN where unscored; None unless asked for.
        threshold: The detector's threshold on `frame_score`
            (`MemAE.frame_threshold`; None when it has none).
        frame_score: How a clip's error scored its frame (`"clip"`, `"last"`,
            `"patch"`, `"relative"`, `"last_plus_temporal"`).
    """

    frames: np.ndarray
    scores: np.ndarray
    error_maps: np.ndarray | None
    threshold: float | None
    frame_score: str = DEFAULT_FRAME_SCORE


def score_video(
    detector: MemAE,
    source: str | os.PathLike | np.ndarray,
    *,
    max_frames: int | None = None,
    error_maps: bool = False,
    batch_size: int = 32,
    frame_score: str = DEFAULT_FRAME_SCORE,
) -> VideoScores:
    """Scores every frame of a video file (or uint8 frames) with a video MemAE.

    Args:
        detector: A fitted MemAE whose input is `(clip_length, H, W, 1)`.
        source: A video file or frame folder (read at `(H, W)`), or uint8 frames `(t, H, W)`.
        max_frames: Score only the first `max_frames` frames.
        error_maps: Also compute each scored frame's error map.
        batch_size: Clips scored at once (bounds the memory used).
        frame_score: How a clip's per-pixel error scores its last frame:
            `"last_plus_temporal"` (the default: the last frame's mean error
            plus that of its change from the frame before), `"last"`,
            `"patch"`, `"relative"` (`memae_tf.evaluation.frame_score`) or
            `"clip"` (its mean over the clip, `MemAE.score`). The detector's
            threshold on that score (`MemAE.frame_threshold`) is returned
            with the scores.

    Returns:
        A `VideoScores`.

    Example:

    ```python
    result = score_video(MemAE.load("walkway.keras"), "vtest.avi", max_frames=100)
    result.scores[15:]  # one score per frame from the 16th on
    ```
    """
    check_choice("frame_score", frame_score, FRAME_SCORES)
    shape = tuple(detector.model.input_shape[1:])
    if len(shape) != 4 or shape[-1] != 1:
        raise ValueError(f"Expected a video model with inputs (clip_length, H, W, 1). "
                         f"Received a model with inputs {shape}")
    clip_length, height, width = shape[:3]
    frames = source if isinstance(source, np.ndarray) else read_frames(source, (height, width))
    frames = frames[:max_frames] if max_frames is not None else frames
    if frames.dtype != np.uint8 or frames.shape[1:] != (height, width):
        raise ValueError(f"Expected uint8 frames (t, {height}, {width}). Received: "
                         f"{frames.dtype} {frames.shape}")
    if len(frames) < clip_length:
        raise ValueError(f"Expected at least {clip_length} frames (one clip). "
                         f"Received: {len(frames)}")
    windows = np.lib.stride_tricks.sliding_window_view(frames, clip_length, axis=0)
    scores = np.full(len(frames), np.nan)
    maps = np.full(frames.shape, np.nan) if error_maps else None
    for first in range(0, len(windows), batch_size):
        clips = np.moveaxis(windows[first : first + batch_size], -1, 1)[..., None]
        clips = np.ascontiguousarray(clips)
        last = first + clip_length - 1
        # The scoring graph's frame scores: the very function the exported
        # `frame_score` signature serves to `StreamScorer` (its "clip" is `MemAE.score`).
        prepared = detector.preprocess(clips)
        if maps is None:
            by_name = detector.scoring_graph.run_frame_scores(prepared, batch_size)
        else:  # the same network pass gives the overlay's error maps
            by_name, last_maps = detector.scoring_graph.run_frame_scores_and_maps(prepared,
                                                                                   batch_size)
            maps[last : last + len(clips)] = last_maps[..., 0]
        scores[last : last + len(clips)] = by_name[frame_score]
    return VideoScores(frames, scores, maps, detector.frame_threshold(frame_score), frame_score)


def write_video_scores(result: VideoScores, out: str | os.PathLike,
                       fps: float | None = None) -> dict[str, Path]:
    """Writes `scores.csv`, `scores.png` and, with error maps, the overlaid frames.

    Files in `out`:

    - `scores.csv`: `frame,score,is_anomaly` (empty for unscored frames;
      `is_anomaly` only with a threshold);
    - `scores.png`: the score over time (`memae_tf.plot.score_over_time`);
    - `overlay/frame_00015.png`, ...: each scored frame with its error map in
      red (`memae_tf.plot.error_overlay`, one colour scale for the video), and
      `overlay.avi` (Motion-JPEG) when OpenCV is installed.

    Returns:
        `{"csv": ..., "plot": ..., "overlay": ..., "video": ...}` for the files written.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = {"csv": out / "scores.csv", "plot": out / "scores.png"}
    with open(written["csv"], "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["frame", "score", "is_anomaly"])
        flags = (None if result.threshold is None
                 else above_threshold(result.scores, result.threshold))
        for frame, score in enumerate(result.scores):
            scored = not np.isnan(score)
            flag = int(flags[frame]) if scored and flags is not None else ""
            writer.writerow([frame, f"{score:.8g}" if scored else "", flag])
    figure = score_over_time(result.scores, threshold=result.threshold, fps=fps)
    figure.savefig(written["plot"], dpi=100)
    if result.error_maps is not None:
        from PIL import Image

        overlay = error_overlay(result.frames, result.error_maps)
        folder = out / "overlay"
        folder.mkdir(exist_ok=True)
        scored = np.flatnonzero(~np.isnan(result.scores))
        for frame in scored:
            Image.fromarray(overlay[frame]).save(folder / f"frame_{frame:05d}.png")
        written["overlay"] = folder
        video = _write_avi(overlay[scored], out / "overlay.avi", fps or 10.0)
        if video is not None:
            written["video"] = video
    return written


def _write_avi(frames: np.ndarray, path: Path, fps: float) -> Path | None:
    try:
        import cv2
    except ImportError:  # the `video` extra is optional: PNG frames only
        return None
    height, width = frames.shape[1:3]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (width, height))
    try:
        for frame in frames:
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    finally:
        writer.release()
    return path


def video_fps(source: str | os.PathLike) -> float | None:
    """Frames a second of a video file as OpenCV reads it; None for folders or without OpenCV."""
    if Path(source).is_dir():
        return None
    try:
        import cv2
    except ImportError:
        return None
    capture = cv2.VideoCapture(str(source))
    try:
        fps = capture.get(cv2.CAP_PROP_FPS) if capture.isOpened() else 0.0
    finally:
        capture.release()
    return float(fps) if fps and fps > 0 else None
