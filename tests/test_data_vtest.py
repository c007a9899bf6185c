"""The walkway benchmark: splits, each injected kind's exact labels, seeding, the real footage.

Most tests run the generator on synthetic footage whose frames name their source:
frame k is uniformly grey level `36 + k % 220` (unique inside each split) but for one
moving dark "pedestrian" block of 0, so the median of any generated frame gives back the
source frame it shows, and the injected pixels can be told apart from the footage.
"""

import numpy as np
import pytest

from memae_tf.data import DatasetNotFoundError, make_clips, make_vtest_benchmark
from memae_tf.data.sources import DATA_DIR_ENV
from memae_tf.data.vtest import SPLITS, load_opencv_sample, load_vtest, vtest_object

HEIGHT, WIDTH = 24, 32
OBJECT_VALUE = 1  # not a grey level of the footage


def footage() -> np.ndarray:
    frames = np.empty((795, HEIGHT, WIDTH), np.uint8)
    for k in range(795):
        frames[k] = 36 + k % 220
        column = k % (WIDTH - 3)
        frames[k, 12:17, column : column + 3] = 0
    return frames


FOOTAGE = footage()
OBJECT = np.full((8, 6), OBJECT_VALUE, np.uint8)
MASK = np.ones((8, 6), bool)
MASK[0, 0] = MASK[-1, -1] = False


def generate(kind: str, split: str = "test", seed: int = 0, **kwargs):
    return make_vtest_benchmark(FOOTAGE, OBJECT, MASK, split=split, kinds=[kind], n_videos=6,
                                seed=seed, **kwargs)


def sources(frames: np.ndarray, split: str) -> np.ndarray:
    """The source frame each generated frame shows, from its median grey level."""
    first = SPLITS[split][0]
    return np.array([first + (int(np.median(f)) - 36 - first) % 220 for f in frames])


def test_training_is_the_first_400_frames_and_videos_stay_in_their_split():
    for split in ("dev", "test"):
        train, test = generate("fast", split=split)
        np.testing.assert_array_equal(train.frames[0], FOOTAGE[:400])
        assert not train.labels[0].any()
        low, high = SPLITS[split]
        for frames in test.frames:
            assert frames.shape == (96, HEIGHT, WIDTH) and frames.dtype == np.uint8
            used = sources(frames, split)
            assert low <= used.min() and used.max() < high
    assert SPLITS["dev"][0] >= 400 and SPLITS["dev"][1] <= SPLITS["test"][0]


def test_kinds_cycle_over_the_videos_and_name_the_labelled_frames():
    _, test = make_vtest_benchmark(FOOTAGE, OBJECT, MASK, n_videos=5)
    assert test.names == ("test_000_object", "test_001_fast", "test_002_freeze",
                          "test_003_object", "test_004_fast")
    for name, labels, kinds in zip(test.names, test.labels, test.kinds, strict=True):
        assert labels.any()
        np.testing.assert_array_equal(kinds, np.where(labels == 1, name.split("_")[-1], ""))


def test_fast_segment_skips_three_source_frames_into_each_labelled_frame():
    _, test = generate("fast", segment_length=(5, 9))
    for frames, labels in zip(test.frames, test.labels, strict=True):
        steps = np.diff(sources(frames, "test"))
        np.testing.assert_array_equal(steps, np.where(labels[1:] == 1, 4, 1))
        segment = np.flatnonzero(labels)
        assert 5 <= len(segment) <= 9 and segment[0] >= 1
        np.testing.assert_array_equal(segment, np.arange(segment[0], segment[-1] + 1))


def test_object_is_labelled_exactly_where_it_is_pasted_and_crosses_fast():
    _, test = generate("object")
    directions = set()
    for frames, labels in zip(test.frames, test.labels, strict=True):
        shown = FOOTAGE[sources(frames, "test")]
        pasted = frames == OBJECT_VALUE
        np.testing.assert_array_equal(labels, pasted.any(axis=(1, 2)))
        # Off the object nothing changes: unlabelled frames are the footage itself.
        np.testing.assert_array_equal(frames[~pasted], shown[~pasted])
        assert labels.sum() == 9  # 10 steps across the frame: 9 frames with it inside
        columns = [np.flatnonzero(p.any(axis=0)).mean() for p in pasted[labels == 1]]
        moves = np.diff(columns)
        # (32 + 6) / 10 = 3.8 columns a frame, against the pedestrian's 1.
        assert np.all(np.abs(moves[1:-1]) >= 3) and len(set(np.sign(moves))) == 1
        directions.add(np.sign(moves[0]))
        # The object is the scaled image: a fifth of the frame height.
        assert np.ptp(np.flatnonzero(pasted.any(axis=(0, 2)))) + 1 == round(HEIGHT / 5)
    assert directions == {-1.0, 1.0}


def test_freeze_holds_a_person_sized_box_and_labels_frames_where_it_differs():
    _, test = generate("freeze", freeze_visible=8.0)
    for frames, labels in zip(test.frames, test.labels, strict=True):
        shown = FOOTAGE[sources(frames, "test")]
        changed = frames != shown
        rows = np.flatnonzero(changed.any(axis=(0, 2)))
        cols = np.flatnonzero(changed.any(axis=(0, 1)))
        assert (np.ptp(rows) + 1, np.ptp(cols) + 1) == (round(HEIGHT / 5), round(WIDTH / 10))
        box = np.s_[:, rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
        frozen_frames = np.flatnonzero(changed.any(axis=(1, 2)))
        start = frozen_frames[0] - 1  # the segment's first frame is shown as it is
        np.testing.assert_array_equal(frames[box][frozen_frames],
                                      np.repeat(frames[box][start][None], len(frozen_frames), 0))
        # It was centred on the pedestrian of the first frame.
        assert (frames[box][start] == 0).any()
        difference = np.abs(frames[box].astype(float) - shown[box]).mean(axis=(1, 2))
        np.testing.assert_array_equal(labels, difference >= 8.0)


def test_same_seed_same_videos_other_seed_other_videos():
    _, a = make_vtest_benchmark(FOOTAGE, OBJECT, MASK, seed=3, n_videos=3)
    _, b = make_vtest_benchmark(FOOTAGE, OBJECT, MASK, seed=3, n_videos=3)
    _, c = make_vtest_benchmark(FOOTAGE, OBJECT, MASK, seed=4, n_videos=3)
    for x, y in zip(a.frames + a.labels, b.frames + b.labels, strict=True):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a.frames[0], c.frames[0])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"split": "train"}, "split"),
        ({"kinds": ["reverse"]}, "kinds"),
        ({"fast_factor": 1}, "fast_factor"),
        ({"segment_length": (0, 4)}, "segment_length"),
        ({"length": 200}, "do not fit"),
    ],
)
def test_invalid_arguments_are_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_vtest_benchmark(FOOTAGE, OBJECT, MASK, **kwargs)


def test_footage_of_the_wrong_length_is_rejected():
    with pytest.raises(ValueError, match=r"\(795, H, W\)"):
        make_vtest_benchmark(FOOTAGE[:700], OBJECT, MASK)


def test_samples_are_found_in_the_data_folders_and_never_downloaded_when_told(
        tmp_path, monkeypatch):
    (tmp_path / "opencv-doc").mkdir()
    (tmp_path / "opencv-doc" / "apple.jpg").write_bytes(b"jpeg")
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path))
    monkeypatch.setattr("memae_tf.data.sources.Path.home", lambda: tmp_path / "home")
    monkeypatch.setattr("memae_tf.data.vtest.OPENCV_DOC_DATA", tmp_path / "no-debian")
    assert load_opencv_sample("apple.jpg") == tmp_path / "opencv-doc" / "apple.jpg"
    with pytest.raises(DatasetNotFoundError, match="skipped: download=False"):
        load_opencv_sample("vtest.avi", download=False)


def _real_footage_or_skip() -> np.ndarray:
    pytest.importorskip("cv2")
    try:
        return load_vtest(download=False)
    except DatasetNotFoundError:
        pytest.skip("vtest.avi not available offline (make data fetches opencv-doc)")


def test_real_footage_benchmark_shapes_and_labels():
    real = _real_footage_or_skip()
    assert real.shape == (795, 48, 64) and real.dtype == np.uint8
    image, mask = vtest_object(download=False)
    assert image.shape == mask.shape and 0.5 < mask.mean() < 0.95  # a roundish apple
    train, test = make_vtest_benchmark(real, image, mask, split="dev", seed=100)
    assert train.frames[0].shape == (400, 48, 64) and len(test.frames) == 9
    clips, index = make_clips(test, clip_length=16, stride=8)
    assert clips.shape == (len(index), 16, 48, 64, 1)
    for labels, name in zip(test.labels, test.names, strict=True):
        # Every video shows its anomaly on some frames and is normal on most.
        assert 0 < labels.sum() < 48, name
