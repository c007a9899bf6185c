"""Clips of consecutive frames, their origin index, and the streaming tf.data version."""

import numpy as np
import pytest

from memae_tf.data import Videos, array_dataset, clip_dataset, clip_index, make_clips


def videos() -> Videos:
    # Pixel value of frame f of video v is 100 v + f, so each clip frame names its origin.
    lengths = (7, 3, 5)
    frames = tuple(
        np.broadcast_to((100 * v + np.arange(n, dtype=np.uint8))[:, None, None], (n, 2, 3)).copy()
        for v, n in enumerate(lengths)
    )
    labels = tuple(np.arange(n) % 2 for n in lengths)
    return Videos(frames, labels, ("a", "b", "c"))


def test_clip_index_lists_every_full_clip_start():
    np.testing.assert_array_equal(
        clip_index([7, 3, 5], clip_length=3, stride=2),
        [[0, 0], [0, 2], [0, 4], [1, 0], [2, 0], [2, 2]],
    )


def test_video_shorter_than_clip_gives_no_clip():
    assert clip_index([2, 3], clip_length=4).shape == (0, 2)


@pytest.mark.parametrize(("arg", "value"), [("clip_length", 0), ("stride", -1), ("stride", 1.5)])
def test_clip_index_rejects_non_positive_integers(arg, value):
    with pytest.raises(ValueError, match=f"{arg}={value}"):
        clip_index([5], **{arg: value})


def test_make_clips_scales_frames_to_minus_one_one():
    clips, index = make_clips(videos(), clip_length=3, stride=2)
    assert clips.shape == (6, 3, 2, 3, 1) and clips.dtype == np.float32
    for clip, (video, start) in zip(clips, index, strict=True):
        expected = (100 * video + start + np.arange(3)) / 127.5 - 1.0
        np.testing.assert_allclose(clip[:, 0, 0, 0], expected, rtol=1e-6)
    full = Videos((np.array([[[0, 255]]], np.uint8),), (np.zeros(1, np.int64),), ("x",))
    np.testing.assert_array_equal(make_clips(full, clip_length=1)[0].reshape(-1), [-1.0, 1.0])


def test_clip_dataset_streams_the_same_clips_as_make_clips():
    clips, index = make_clips(videos(), clip_length=3, stride=1)
    batches = list(clip_dataset(videos(), clip_length=3, stride=1, batch_size=4, with_index=True))
    streamed = np.concatenate([b[0].numpy() for b in batches])
    streamed_index = np.concatenate([b[1].numpy() for b in batches])
    np.testing.assert_allclose(streamed, clips, rtol=1e-6)
    np.testing.assert_array_equal(streamed_index, index)


def test_clip_dataset_shuffle_keeps_every_clip():
    batches = clip_dataset(videos(), clip_length=3, shuffle=True, seed=3, with_index=True)
    rows = np.concatenate([row.numpy() for _, row in batches])
    expected = clip_index([7, 3, 5], clip_length=3)
    assert sorted(map(tuple, rows.tolist())) == sorted(map(tuple, expected.tolist()))


def test_clip_dataset_gives_clips_alone_unless_asked_for_their_index():
    # Frame f of video v holds 100 v + f, scaled from [0, 255] to [-1, 1].
    # Clips of 5 at stride 2 of videos of 7, 3 and 5 frames start at (0, 0), (0, 2), (2, 0).
    (batch,) = list(clip_dataset(videos(), clip_length=5, stride=2, batch_size=8))
    assert batch.shape == (3, 5, 2, 3, 1)
    expected = [100 * v + s + np.arange(5) for v, s in ((0, 0), (0, 2), (2, 0))]
    np.testing.assert_allclose(batch.numpy()[..., 0, 0, 0],
                               np.array(expected) / 127.5 - 1.0, rtol=1e-6)


def test_shuffled_clips_come_in_a_new_order_each_epoch():
    dataset = clip_dataset(videos(), clip_length=2, shuffle=True, seed=3, with_index=True,
                           batch_size=16)
    first, second = ([tuple(row) for row in next(iter(dataset))[1].numpy().tolist()]
                     for _ in range(2))
    assert sorted(first) == sorted(second) and first != second


def test_clip_dataset_needs_a_long_enough_video():
    with pytest.raises(ValueError, match="at least one video of 9 frames"):
        clip_dataset(videos(), clip_length=9)


def test_videos_reject_label_length_mismatch():
    with pytest.raises(ValueError, match="one label per frame"):
        Videos((np.zeros((3, 2, 2), np.uint8),), (np.zeros(2, np.int64),), ("v",))


def test_array_dataset_batches_pairs_in_order():
    x, y = np.arange(10, dtype=np.float32).reshape(5, 2), np.arange(5)
    batches = list(array_dataset(x, y, batch_size=2))
    assert [len(b[0]) for b in batches] == [2, 2, 1]
    np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]), y)


def test_array_dataset_reshuffles_every_epoch():
    dataset = array_dataset(np.arange(12), batch_size=12, shuffle=True, seed=1)
    first, second = (next(iter(dataset)).numpy().tolist() for _ in range(2))
    assert sorted(first) == sorted(second) == list(range(12)) and first != second


def test_array_dataset_rejects_mismatched_rows_and_bad_batch_size():
    with pytest.raises(ValueError, match="as many rows"):
        array_dataset(np.zeros((3, 2)), np.zeros(2))
    with pytest.raises(ValueError, match="batch_size=0"):
        array_dataset(np.zeros((3, 2)), batch_size=0)


def test_kinds_must_name_exactly_the_anomalous_frames():
    frames, labels = (np.zeros((3, 2, 2), np.uint8),), (np.array([0, 1, 0]),)
    Videos(frames, labels, ("v",), (np.array(["", "fast", ""]),))
    with pytest.raises(ValueError, match="kind on exactly the frames labelled 1"):
        Videos(frames, labels, ("v",), (np.array(["fast", "fast", ""]),))
