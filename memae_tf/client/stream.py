"""Live video streams scored frame by frame by a served video MemAE.

Each stream keeps a sliding window of its last `clip_length` frames. When a new
frame arrives, the window's clip (that frame and the `clip_length - 1` before
it) is sent to the served model and its score is the new frame's score: the
clip scores its last frame, as `memae_tf.evaluation.video` (`alignment="end"`)
and `memae score-video` do offline, so a stream gets exactly the offline
scores. The first `clip_length - 1` frames of a stream complete no clip and
get NaN. Frames of several streams pushed together travel in one request.

`frame_score` chooses how a clip's error scores its frame, as `memae
score-video --frame-score` does: `"clip"` is the served `score`, the clip's
mean error; `"last"`, `"patch"`, `"relative"` and `"last_plus_temporal"` (the
default, `DEFAULT_FRAME_SCORE`) are the outputs of the exported `frame_score`
signature (`memae_tf.common.contract`), computed by the same graph function as
offline. `push_flagged` also returns the served flag of each frame: the served
model's threshold on that frame score, as `memae score-video` flags frames;
`threshold` says what that threshold is.

Only numpy and the public `MemAEClient` API: no TensorFlow.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Hashable, Iterable, Mapping
from typing import Any, NamedTuple

import numpy as np

from memae_tf.client.errors import MemAEClientError
from memae_tf.common.checks import check_choice, check_positive_int
from memae_tf.common.contract import (
    DEFAULT_FRAME_SCORE,
    FRAME_SCORE_SIGNATURE,
    FRAME_SCORES,
    IS_ANOMALY_OUTPUT,
    SCORE_OUTPUT,
    SERVING_SIGNATURE,
    frame_flag_output,
)


class ScoredFrame(NamedTuple):
    """A stream's new frame as `StreamScorer.push_flagged` returns it.

    Attributes:
        score: The frame's score; NaN while the stream has fewer than
            `clip_length` frames.
        is_anomaly: Whether the served model flags it (its score above the
            model's threshold on the scorer's frame score); None while the
            stream has fewer than `clip_length` frames.
    """

    score: float
    is_anomaly: bool | None


def _one_per_clip(values: Any, output: str, clips: int) -> np.ndarray:
    """The served `output`, refused unless it holds one value per clip sent.

    The frames' scores are matched to their streams by position: an answer
    with another number of rows would give a stream another stream's score.
    """
    values = np.asarray(values)
    if values.shape != (clips,):
        raise ValueError(
            f"Expected the served model to answer one `{output}` value per clip sent: shape "
            f"({clips},) for {clips} clips. Received: shape {values.shape}")
    return values


class FrameWindow:
    """The last `clip_length` frames of one stream.

    Args:
        clip_length: Frames a clip, positive.

    Example:

    >>> window = FrameWindow(clip_length=2)
    >>> window.push(np.zeros((4, 4), np.uint8)) is None
    True
    >>> window.push(np.ones((4, 4), np.uint8)).shape
    (2, 4, 4, 1)
    """

    def __init__(self, clip_length: int = 16) -> None:
        self.clip_length = check_positive_int("clip_length", clip_length)
        self._frames: deque[np.ndarray] = deque(maxlen=self.clip_length)
        self.frame_shape: tuple[int, ...] | None = None

    def push(self, frame: Any) -> np.ndarray | None:
        """Adds a frame; returns the clip `(clip_length, H, W, 1)` it completes, else None.

        Args:
            frame: uint8 `(H, W)` or `(H, W, 1)`, the shape of the stream's first frame.

        Raises:
            ValueError: For another dtype or shape.
        """
        frame = np.asarray(frame)
        if frame.ndim == 3 and frame.shape[-1] == 1:
            frame = frame[..., 0]
        if frame.dtype != np.uint8 or frame.ndim != 2:
            raise ValueError(f"Expected a uint8 grey frame (H, W) or (H, W, 1). Received: "
                             f"{frame.dtype} {frame.shape}")
        if self.frame_shape is None:
            self.frame_shape = frame.shape
        elif frame.shape != self.frame_shape:
            raise ValueError(f"Expected frames of the stream's shape {self.frame_shape}. "
                             f"Received: {frame.shape}")
        self._frames.append(frame)
        if len(self._frames) < self.clip_length:
            return None
        return np.stack(self._frames)[..., None]


class StreamScorer:
    """Scores the frames of live video streams with a served video model, one score per frame.

    Args:
        client: A `MemAEClient` for a model whose input is `(clip_length, H, W,
            1)`; the uint8 clips go to the export's uint8 signatures
            (`frame_score_uint8`, `serving_default_uint8`) where it has
            them, else the client scales them into the model's input
            range. With `frame_score="clip"` any object with its `score(x)`
            method will do; otherwise one with its `run_signature` and
            `metadata`. `threshold` asks its `model_info`.
        clip_length: Frames a clip of the served model (16 for MemAE's video network).
        frame_score: How a clip's error scores its last frame:
            `"last_plus_temporal"` (the default: the last frame's mean error
            plus that of its change from the frame before, chosen on the
            development data of both video benchmarks), `"last"`, `"patch"`,
            `"relative"` (`memae_tf.evaluation.frame_score`; served by the `frame_score`
            signature of a video model exported by this version) or `"clip"`
            (its mean over the clip, the served `score`, served by every export).

    Example:

    ```python
    with MemAEClient("localhost:8500", "walkway") as client:
        scorer = StreamScorer(client)  # frame_score="last_plus_temporal"
        for frame_a, frame_b in zip(camera_a, camera_b):
            frames = scorer.push_flagged({"a": frame_a, "b": frame_b})  # one request
            alarms = [camera for camera, frame in frames.items() if frame.is_anomaly]
    ```

    `push` returns the scores alone; `push_flagged` flags a frame whose score is
    above `scorer.threshold`.
    """

    def __init__(self, client: Any, clip_length: int = 16,
                 frame_score: str = DEFAULT_FRAME_SCORE) -> None:
        self.client = client
        self.clip_length = check_positive_int("clip_length", clip_length)
        self.frame_score = check_choice("frame_score", frame_score, FRAME_SCORES)
        self._windows: dict[Hashable, FrameWindow] = {}
        self._lock = threading.Lock()

    def push(self, frames: Mapping[Hashable, Any]) -> dict[Hashable, float]:
        """Adds one new frame to each of the given streams and scores them in one request.

        Args:
            frames: Stream id → its new uint8 frame `(H, W)`; a stream is opened
                on its first frame.

        Returns:
            Stream id → the new frame's score; NaN while the stream has fewer
            than `clip_length` frames.

        Raises:
            ValueError: If the served model has no `frame_score` output of
                this scorer's `frame_score` (an export of an earlier version,
                or not a video model), or answers other than one score per
                clip sent.
        """
        return {stream: frame.score for stream, frame in self._push(frames, False).items()}

    def push_flagged(self, frames: Mapping[Hashable, Any]) -> dict[Hashable, ScoredFrame]:
        """As `push`, with the served model's flag of each new frame.

        The flag is the served model's own: `is_anomaly` of `serving_default`
        for `frame_score="clip"`, else the `frame_score` signature's
        `is_anomaly_<frame_score>`, which a video detector exports once
        `infer_threshold` has set its frame thresholds.

        Args:
            frames: Stream id → its new uint8 frame `(H, W)`.

        Returns:
            Stream id → `ScoredFrame(score, is_anomaly)`.

        Raises:
            ValueError: If the served model has no flag for this scorer's
                `frame_score` (exported without frame thresholds), or answers
                other than one score and one flag per clip sent.
        """
        return self._push(frames, True)

    def _push(self, frames: Mapping[Hashable, Any], flags: bool) -> dict[Hashable, ScoredFrame]:
        with self._lock:
            clips = {}
            for stream, frame in frames.items():
                window = self._windows.get(stream)
                if window is None:
                    window = self._windows[stream] = FrameWindow(self.clip_length)
                clip = window.push(frame)
                if clip is not None:
                    clips[stream] = clip
        results = dict.fromkeys(frames, ScoredFrame(float("nan"), None))
        # One request: streams of one frame size stack into one batch.
        for shape in {clip.shape for clip in clips.values()}:
            same = [stream for stream, clip in clips.items() if clip.shape == shape]
            scores, flagged = self._score(np.stack([clips[stream] for stream in same]), flags)
            scores = np.asarray(scores, np.float64).tolist()
            flagged = [None] * len(same) if flagged is None else np.asarray(flagged).tolist()
            results.update((stream, ScoredFrame(score, flag))
                           for stream, score, flag in zip(same, scores, flagged, strict=True))
        return results

    def _score(self, clips: np.ndarray, flags: bool) -> tuple[np.ndarray, np.ndarray | None]:
        if self.frame_score == "clip" and not flags:
            return _one_per_clip(self.client.score(clips), SCORE_OUTPUT, len(clips)), None
        signature, score, flag = (
            (SERVING_SIGNATURE, SCORE_OUTPUT, IS_ANOMALY_OUTPUT) if self.frame_score == "clip"
            else (FRAME_SCORE_SIGNATURE, self.frame_score, frame_flag_output(self.frame_score)))
        names = [score, flag] if flags else [score]
        try:
            outputs = self.client.run_signature(clips, signature=signature, output_filter=names)
        except MemAEClientError as error:
            signatures = self.client.metadata().signatures
            served = signatures.get(signature)
            missing = [name for name in names if served is None or name not in served.outputs]
            if not missing:
                raise
            fix = (": export it again, or pass frame_score='clip' (the served `score`)"
                   if score in missing else
                   ": set its frame thresholds with infer_threshold(normal_clips, fpr=...) "
                   "and export it again, or call push() for scores only")
            raise ValueError(
                f"Expected a served video model with the `{signature}` output "
                f"{missing[0]!r} (exported by this version). Received a model with "
                + (f"the outputs {sorted(served.outputs)}" if served is not None
                   else f"the signatures {sorted(n for n in signatures if n[:2] != '__')}")
                + fix
            ) from error
        return (_one_per_clip(outputs[score], score, len(clips)),
                _one_per_clip(outputs[flag], flag, len(clips)) if flags else None)

    def score_frames(self, frames: Iterable[Any], stream: Hashable = 0) -> np.ndarray:
        """Pushes the frames of one stream one by one; returns their scores `(t,)` (float64).

        Example:

        ```python
        scores = StreamScorer(client).score_frames(read_frames("vtest.avi", (48, 64)))
        ```
        """
        return np.array([self.push({stream: frame})[stream] for frame in frames], np.float64)

    def close(self, stream: Hashable) -> None:
        """Forgets a stream's window (its next frame starts a new stream)."""
        with self._lock:
            self._windows.pop(stream, None)

    @property
    def threshold(self) -> float | None:
        """The served model's threshold on this scorer's frame score, or None if it has none.

        `push_flagged` flags a frame whose score is above it. For
        `frame_score="clip"` it is `model_info`'s `threshold`, else that frame
        score's entry of its `frame_thresholds` (None for a model exported
        without frame thresholds, or without `model_info`). It is read from
        the client's cache of the served version's `model_info` (fetched once,
        and again when another version answers), so it follows a new version.

        Example:

        ```python
        scorer = StreamScorer(client)
        scorer.threshold  # the served threshold on "last_plus_temporal"
        ```
        """
        info = self.client.model_info()
        if info is None:
            return None
        if self.frame_score == "clip":
            return info.threshold
        return (info.frame_thresholds or {}).get(self.frame_score)

    @property
    def streams(self) -> list[Hashable]:
        """The open streams."""
        with self._lock:
            return list(self._windows)
