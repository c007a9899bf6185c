"""A moving-digit video anomaly benchmark built from real MNIST digits, generated in seconds.

It returns the same `Videos` as the real video loaders (`memae_tf.data.video`),
so one clip and evaluation path serves both.

Generation, exactly:

- Frames are `frame_size` (default 64×64) uint8, black, with 28×28 MNIST digits
  drawn at integer positions (the rounded float position); overlapping digits
  combine by pixel-wise maximum.
- Digit images: training videos draw from the MNIST training split, test
  videos from the MNIST test split, so test digits are unseen instances.
- Normal regime: a video shows `n_digits` digits whose classes are in
  `normal_classes` (default 0-4), each chosen uniformly among those images. Each
  digit starts at a uniform position inside the frame and moves at constant
  speed `speed` pixels a frame in a uniform random direction; when a step would
  leave the frame, the position is reflected back inside and that velocity
  component changes sign (a bounce off the wall).
- Training videos all follow the normal regime. Of the `n_test` test videos,
  `round(anomaly_fraction * n_test)` (chosen at random) contain one anomalous
  segment; the others are normal.
- Anomalous segment: a length drawn uniformly from `segment_length` (inclusive)
  and a start frame `s >= 1` drawn uniformly so the segment fits; its frames
  `s .. s + L - 1` are labelled 1, all others 0. One of `anomaly_types`
  (uniform) applies to one digit (uniform), the *target*, during the segment:
  - `"class"`: the target is drawn as a digit of a class outside
    `normal_classes` (same position and motion);
  - `"fast"`: the target's step is `fast_factor` times longer;
  - `"extra"`: one more normal-class digit appears at a uniform position and
    moves in the normal regime, then disappears after the segment.
  The speed-up acts on the step *into* each segment frame, so every
  labelled frame differs from the normal regime. (Reversed motion is not a
  kind: normal digits move in uniformly random directions and bounce, so a
  digit moving backwards is normal motion on every frame but the turn.) After the segment the normal
  regime resumes from where the digits are.
- Randomness: which test videos are anomalous, and with which type, is drawn
  from `numpy.random.default_rng((seed, 1))`; everything inside a video from
  its own `numpy.random.default_rng((seed, split, video))` (split 0 for
  training, 1 for test), so a training video does not change when the number
  of videos does.

Video names are `train_000`, ... and `test_000_<kind>`, where `<kind>` is
`normal` or the anomaly type; `Videos.kinds` names the type on each labelled
frame (for per-kind metrics).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from memae_tf.data.clips import Videos
from memae_tf.data.mnist import load_mnist

DIGIT_SIZE = 28
ANOMALY_TYPES = ("class", "fast", "extra")

Splits = tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def make_moving_mnist(
    n_train: int = 16,
    n_test: int = 16,
    length: int = 64,
    *,
    frame_size: tuple[int, int] = (64, 64),
    n_digits: int = 2,
    normal_classes: Sequence[int] = (0, 1, 2, 3, 4),
    speed: float = 2.0,
    anomaly_fraction: float = 0.5,
    anomaly_types: Sequence[str] = ANOMALY_TYPES,
    segment_length: tuple[int, int] | None = None,
    fast_factor: float = 4.0,
    seed: int = 0,
    mnist: Splits | None = None,
) -> tuple[Videos, Videos]:
    """Generates normal training videos and partly anomalous test videos of moving MNIST digits.

    See the module docstring for the exact generation.

    Args:
        n_train: Number of training videos (all normal).
        n_test: Number of test videos.
        length: Frames per video.
        frame_size: `(height, width)`, each at least 29 so digits can move.
        n_digits: Digits in a normal video.
        normal_classes: MNIST classes of normal digits; the other classes are
            used by the `"class"` anomaly.
        speed: Pixels a frame of normal motion, positive.
        anomaly_fraction: Fraction of test videos with an anomalous segment, in `[0, 1]`.
        anomaly_types: Anomalies to draw from, a subset of `ANOMALY_TYPES`.
        segment_length: `(min, max)` frames of an anomalous segment, with
            `1 <= min <= max < length`; `None` means `(length // 8, 3 * length // 8)`
            (at least 1), i.e. `(8, 24)` for 64 frames.
        fast_factor: Speed-up of the `"fast"` anomaly, greater than 1.
        seed: Random seed.
        mnist: MNIST as `load_mnist` returns it; loaded with `load_mnist()` when `None`.

    Returns:
        `(train, test)` `Videos` with uint8 frames `(length, height, width)`.

    Example:

    ```python
    train, test = make_moving_mnist(n_train=8, n_test=8, length=48, seed=1)
    clips, index = make_clips(test, clip_length=16, stride=4)
    ```
    """
    for arg, value in (("n_train", n_train), ("n_test", n_test)):
        if not isinstance(value, int | np.integer) or value < 0:
            raise ValueError(f"Expected `{arg}` to be an integer >= 0. Received: {arg}={value!r}")
    if not 0.0 <= anomaly_fraction <= 1.0:
        raise ValueError(
            f"Expected `anomaly_fraction` in [0, 1]. Received: anomaly_fraction={anomaly_fraction}"
        )
    config = _Config(
        length=length,
        frame_size=tuple(frame_size),
        n_digits=n_digits,
        normal_classes=tuple(normal_classes),
        speed=speed,
        anomaly_types=tuple(anomaly_types),
        segment_length=tuple(segment_length or (max(1, length // 8), max(1, 3 * length // 8))),
        fast_factor=fast_factor,
    )
    (x_train, y_train), (x_test, y_test) = load_mnist() if mnist is None else mnist
    normal = np.isin(np.arange(10), config.normal_classes)

    def pools(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return x[normal[y]], x[~normal[y]]

    train_pools, test_pools = pools(x_train, y_train), pools(x_test, y_test)
    train = [
        _video(np.random.default_rng((seed, 0, i)), train_pools, None, config)
        for i in range(n_train)
    ]
    kinds_rng = np.random.default_rng((seed, 1))
    n_anomalous = round(anomaly_fraction * n_test)
    anomalous = set(kinds_rng.permutation(n_test)[:n_anomalous].tolist())
    kinds = [
        str(kinds_rng.choice(config.anomaly_types)) if i in anomalous else None
        for i in range(n_test)
    ]
    test = [
        _video(np.random.default_rng((seed, 1, i)), test_pools, kind, config)
        for i, kind in enumerate(kinds)
    ]
    return (
        Videos(
            tuple(f for f, _ in train),
            tuple(labels for _, labels in train),
            tuple(f"train_{i:03d}" for i in range(n_train)),
        ),
        Videos(
            tuple(f for f, _ in test),
            tuple(labels for _, labels in test),
            tuple(f"test_{i:03d}_{kind or 'normal'}" for i, kind in enumerate(kinds)),
            tuple(np.where(labels == 1, kind or "", "") for (_, labels), kind in
                  zip(test, kinds, strict=True)),
        ),
    )


@dataclass(frozen=True)
class _Config:
    """The per-video generation settings, checked once."""

    length: int
    frame_size: tuple[int, int]
    n_digits: int
    normal_classes: tuple[int, ...]
    speed: float
    anomaly_types: tuple[str, ...]
    segment_length: tuple[int, int]
    fast_factor: float

    def __post_init__(self):
        def fail(arg: str, expected: str) -> None:
            raise ValueError(f"Expected `{arg}` {expected}. Received: {arg}={getattr(self, arg)!r}")

        for arg, minimum in (("length", 2), ("n_digits", 1)):
            value = getattr(self, arg)
            if not isinstance(value, int | np.integer) or value < minimum:
                fail(arg, f"to be an integer >= {minimum}")
        if len(self.frame_size) != 2 or not all(
            isinstance(n, int | np.integer) and n > DIGIT_SIZE for n in self.frame_size
        ):
            fail("frame_size", f"to be (height, width) integers > {DIGIT_SIZE}")
        classes = set(self.normal_classes)
        if not classes or not classes <= set(range(10)):
            fail("normal_classes", "to be a non-empty subset of 0..9")
        if "class" in self.anomaly_types and len(classes) == 10:
            fail("normal_classes", "to leave at least one class for the 'class' anomaly")
        if not self.speed > 0:
            fail("speed", "to be positive")
        if not self.anomaly_types or not set(self.anomaly_types) <= set(ANOMALY_TYPES):
            fail("anomaly_types", f"to be a non-empty subset of {ANOMALY_TYPES}")
        if len(self.segment_length) != 2 or not (
            1 <= self.segment_length[0] <= self.segment_length[1] < self.length
        ):
            fail("segment_length", f"to be (min, max) with 1 <= min <= max < length={self.length}")
        if not self.fast_factor > 1:
            fail("fast_factor", "to be greater than 1")


class _Digit:
    """One moving digit: its image, float position (row, col) and velocity."""

    def __init__(
        self, image: np.ndarray, rng: np.random.Generator, limit: np.ndarray, speed: float
    ):
        self.image = image
        self.position = rng.uniform(0.0, limit)
        angle = rng.uniform(0.0, 2.0 * np.pi)
        self.velocity = speed * np.array([np.sin(angle), np.cos(angle)])
        self.limit = limit

    def step(self, multiplier: float = 1.0) -> None:
        position = self.position + multiplier * self.velocity
        for axis in range(2):
            # Reflect off the walls until inside (one reflection unless a step spans the frame).
            while not 0.0 <= position[axis] <= self.limit[axis]:
                wall = 0.0 if position[axis] < 0.0 else self.limit[axis]
                position[axis] = 2.0 * wall - position[axis]
                self.velocity[axis] = -self.velocity[axis]
        self.position = position

    def draw(self, canvas: np.ndarray, image: np.ndarray | None = None) -> None:
        row, col = np.rint(self.position).astype(int)
        window = canvas[row : row + DIGIT_SIZE, col : col + DIGIT_SIZE]
        np.maximum(window, self.image if image is None else image, out=window)


def _video(
    rng: np.random.Generator,
    pools: tuple[np.ndarray, np.ndarray],
    kind: str | None,
    config: _Config,
) -> tuple[np.ndarray, np.ndarray]:
    normal_pool, other_pool = pools
    length, (height, width) = config.length, config.frame_size
    limit = np.array([height - DIGIT_SIZE, width - DIGIT_SIZE], np.float64)

    def new_digit() -> _Digit:
        return _Digit(normal_pool[rng.integers(len(normal_pool))], rng, limit, config.speed)

    digits = [new_digit() for _ in range(config.n_digits)]
    labels = np.zeros(length, np.int64)
    start = stop = target = 0
    swap = extra = None
    if kind is not None:
        low, high = config.segment_length
        segment = int(rng.integers(low, high + 1))
        start = int(rng.integers(1, length - segment + 1))
        stop = start + segment
        labels[start:stop] = 1
        target = int(rng.integers(len(digits)))
        if kind == "class":
            swap = other_pool[rng.integers(len(other_pool))]
        elif kind == "extra":
            extra = new_digit()
    multiplier = config.fast_factor if kind == "fast" else 1.0

    frames = np.zeros((length, height, width), np.uint8)
    for t in range(length):
        in_segment = start <= t < stop
        if t > 0:
            for i, digit in enumerate(digits):
                digit.step(multiplier if in_segment and i == target else 1.0)
            if extra is not None and start < t < stop:
                extra.step()
        for i, digit in enumerate(digits):
            digit.draw(frames[t], swap if in_segment and i == target else None)
        if extra is not None and in_segment:
            extra.draw(frames[t])
    return frames, labels
