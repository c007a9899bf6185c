"""Video scored frame by frame: `memae score-video` on a file, and live streams over gRPC.

Both must give the offline protocol's scores (`memae_tf.evaluation.video`, a clip
scores its last frame): frame t gets the score of the clip of frames t-15..t,
computed here independently through `make_clips` (float scaling in numpy) and the
detector's in-process `score`.
"""

import csv

import numpy as np
import pytest

from memae_tf.client import MemAEClient
from memae_tf.client.stream import FrameWindow, StreamScorer
from memae_tf.data import DatasetNotFoundError, Videos, make_clips
from memae_tf.plot import error_overlay, score_over_time

CLIP, HEIGHT, WIDTH = 16, 32, 48


def offline_scores(detector, frames: np.ndarray) -> np.ndarray:
    """Per-frame scores of the offline protocol: NaN for the first 15 frames."""
    video = Videos((frames,), (np.zeros(len(frames), np.int64),), ("v",))
    clips, index = make_clips(video, CLIP, stride=1)
    scores = np.full(len(frames), np.nan)
    scores[index[:, 1] + CLIP - 1] = detector.score(clips)
    return scores


def moving_blobs(n_frames: int, seed: int) -> np.ndarray:
    """Grey noise with a bright square walking across: a small synthetic stream."""
    rng = np.random.default_rng(seed)
    frames = rng.integers(40, 80, size=(n_frames, HEIGHT, WIDTH), dtype=np.uint8)
    for t in range(n_frames):
        column = (2 * t + 7 * seed) % (WIDTH - 6)
        frames[t, 10:16, column : column + 6] = 220
    return frames


def clips_of(frames: np.ndarray, stride: int = 1) -> np.ndarray:
    """The uint8 clips `(n, CLIP, H, W, 1)` of one video, by `make_clips`."""
    video = Videos((frames,), (np.zeros(len(frames), np.int64),), ("v",))
    return make_clips(video, CLIP, stride=stride)[0]


# The fixture's training clips, on which its thresholds are set at fpr=0.1.
TRAINING_FRAMES_SEED, FPR = 9, 0.1


def numpy_frame_scores(detector, clips: np.ndarray, frame_score: str) -> np.ndarray:
    """`frame_score` of each clip by the NumPy definition, from in-process error maps."""
    from memae_tf.evaluation import clip_frame_scores

    return clip_frame_scores(detector.preprocess(clips), detector.score_map(clips), frame_score,
                             reconstructions=detector.reconstruct(clips))


@pytest.fixture(scope="module")
def detector():
    from memae_tf.detector import MemAE

    detector = MemAE.from_preset("video", input_shape=(CLIP, HEIGHT, WIDTH, 1),
                                 filters=(2, 4, 4, 4), num_items=10)
    clips = clips_of(moving_blobs(40, seed=TRAINING_FRAMES_SEED), stride=2)
    detector.fit(clips, epochs=1, batch_size=8)
    detector.infer_threshold(clips, fpr=FPR)
    return detector


def test_score_video_writes_the_offline_scores_plot_and_overlay(detector, tmp_path):
    from memae_tf.cli import main
    from memae_tf.data import read_frames
    from memae_tf.data.vtest import load_opencv_sample

    pytest.importorskip("cv2")
    try:
        video = load_opencv_sample("vtest.avi", download=False)
    except DatasetNotFoundError:
        pytest.skip("vtest.avi not available offline (make data fetches opencv-doc)")
    model = detector.save(tmp_path / "video.keras")
    out = tmp_path / "scored"
    assert main(["score-video", str(video), "--model", str(model), "--out", str(out),
                 "--max-frames", "40", "--overlay", "--frame-score", "clip"]) == 0

    with open(out / "scores.csv") as file:
        rows = list(csv.DictReader(file))
    assert [int(row["frame"]) for row in rows] == list(range(40))
    written = np.array([float(row["score"]) if row["score"] else np.nan for row in rows])
    expected = offline_scores(detector, read_frames(video, (HEIGHT, WIDTH))[:40])
    np.testing.assert_array_equal(np.isnan(written), np.arange(40) < CLIP - 1)
    np.testing.assert_allclose(written[CLIP - 1 :], expected[CLIP - 1 :], rtol=1e-5)
    flags = [row["is_anomaly"] for row in rows]
    assert flags[: CLIP - 1] == [""] * (CLIP - 1)
    assert flags[CLIP - 1 :] == [str(int(s > detector.threshold_)) for s in written[CLIP - 1 :]]
    assert (out / "scores.png").stat().st_size > 0
    overlays = sorted((out / "overlay").glob("frame_*.png"))
    assert [p.name for p in overlays[:2]] == ["frame_00015.png", "frame_00016.png"]
    assert len(overlays) == 40 - (CLIP - 1)
    assert read_frames(out / "overlay.avi", None).shape == (25, HEIGHT, WIDTH)


def test_score_video_flags_frames_by_the_threshold_on_its_default_frame_score(detector,
                                                                            tmp_path, capsys):
    from PIL import Image

    from memae_tf.cli import main
    from memae_tf.data import read_frames

    folder = tmp_path / "frames"
    folder.mkdir()
    for t, frame in enumerate(moving_blobs(40, seed=4)):
        Image.fromarray(frame).save(folder / f"{t:03d}.png")
    model = detector.save(tmp_path / "video.keras")
    out = tmp_path / "scored"
    assert main(["score-video", str(folder), "--model", str(model), "--out", str(out)]) == 0

    with open(out / "scores.csv") as file:
        rows = list(csv.DictReader(file))
    written = np.array([float(row["score"]) for row in rows[CLIP - 1 :]])
    clips = clips_of(read_frames(folder, (HEIGHT, WIDTH)))
    # The NumPy definition: the last frame's mean error plus its temporal error.
    expected = numpy_frame_scores(detector, clips, "last_plus_temporal")
    np.testing.assert_allclose(written, expected, rtol=1e-5)
    # Flagged above the threshold set on that score: the NumPy quantile rule over the
    # training clips' frame scores (1 - fpr quantile).
    threshold = np.quantile(numpy_frame_scores(
        detector, clips_of(moving_blobs(40, seed=TRAINING_FRAMES_SEED), stride=2),
        "last_plus_temporal"), 1 - FPR)
    flags = np.array([int(row["is_anomaly"]) for row in rows[CLIP - 1 :]])
    np.testing.assert_array_equal(flags, written > threshold)
    assert 0 < flags.sum() < len(flags)  # a threshold on the wrong score would flag all or none
    assert f"{flags.sum()} frames above the threshold" in capsys.readouterr().err


@pytest.mark.parametrize("frame_score", ["last", "patch", "relative", "last_plus_temporal"])
def test_infer_threshold_sets_each_frame_score_threshold_by_the_quantile_rule(detector,
                                                                              frame_score):
    clips = clips_of(moving_blobs(40, seed=TRAINING_FRAMES_SEED), stride=2)
    expected = np.quantile(numpy_frame_scores(detector, clips, frame_score), 1 - FPR)
    assert detector.frame_threshold(frame_score) == detector.frame_thresholds_[frame_score]
    np.testing.assert_allclose(detector.frame_thresholds_[frame_score], expected, rtol=1e-5)


def test_the_clip_frame_score_is_flagged_at_the_clip_threshold(detector):
    assert sorted(detector.frame_thresholds_) == ["last", "last_plus_temporal", "patch",
                                                  "relative"]
    assert detector.frame_threshold("clip") == detector.threshold_
    with pytest.raises(ValueError, match=r"Received: frame_score='mean'"):
        detector.frame_threshold("mean")


def test_frame_thresholds_survive_save_and_load(detector, tmp_path):
    from memae_tf.detector import MemAE
    from memae_tf.video_scoring import score_video

    restored = MemAE.load(detector.save(tmp_path / "video.keras"))
    assert restored.frame_thresholds_ == detector.frame_thresholds_
    result = score_video(restored, moving_blobs(20, seed=6))
    assert result.threshold == detector.frame_thresholds_["last_plus_temporal"]


def test_a_detector_saved_without_frame_thresholds_loads_and_says_why_nothing_is_flagged(
        detector, tmp_path, capsys):
    from PIL import Image

    from memae_tf import saving
    from memae_tf.cli import main
    from memae_tf.detector import MemAE

    # A file written before frame thresholds existed: its metadata lacks the entry.
    metadata = saving.read_archive_metadata(detector.save(tmp_path / "new.keras"))
    del metadata["frame_thresholds"], metadata["format_version"]
    old = saving.save_archive(detector.model, tmp_path / "old.keras", metadata)
    restored = MemAE.load(old)
    assert restored.frame_thresholds_ is None and restored.threshold_ == detector.threshold_
    assert restored.frame_threshold("last_plus_temporal") is None

    frames = tmp_path / "frames"
    frames.mkdir()
    for t, frame in enumerate(moving_blobs(18, seed=4)):
        Image.fromarray(frame).save(frames / f"{t:03d}.png")
    assert main(["score-video", str(frames), "--model", str(old), "--out",
                 str(tmp_path / "scored")]) == 0
    with open(tmp_path / "scored" / "scores.csv") as file:
        assert {row["is_anomaly"] for row in csv.DictReader(file)} == {""}
    assert "infer_threshold on normal clips and save, or use --frame-score clip" in (
        capsys.readouterr().err)


class CountingClient:
    """A real MemAEClient whose `score` calls are counted (with their batch sizes)."""

    def __init__(self, client):
        self.client = client
        self.batches = []

    def score(self, x):
        self.batches.append(len(x))
        return self.client.score(x)


def test_streams_over_grpc_get_the_offline_scores_in_one_request_per_step(detector, tmp_path):
    from memae_tf.serving import serve

    base = tmp_path / "walkway"
    detector.export(base)
    streams = {name: moving_blobs(22, seed) for seed, name in enumerate(("a", "b", "c"))}
    handle = serve(base, "walkway", port=0, host="127.0.0.1")
    try:
        with MemAEClient(f"127.0.0.1:{handle.port}", "walkway", timeout=60) as client:
            counting = CountingClient(client)
            scorer = StreamScorer(counting, clip_length=CLIP, frame_score="clip")
            pushed = [scorer.push({name: frames[t] for name, frames in streams.items()})
                      for t in range(22)]
    finally:
        handle.stop(grace=0)
    for name, frames in streams.items():
        streamed = np.array([step[name] for step in pushed])
        expected = offline_scores(detector, frames)
        np.testing.assert_array_equal(np.isnan(streamed), np.isnan(expected))
        np.testing.assert_allclose(streamed[CLIP - 1 :], expected[CLIP - 1 :], rtol=1e-5)
    # Nothing is sent before the windows fill; then the three streams share each request.
    assert counting.batches == [3] * (22 - (CLIP - 1))


@pytest.fixture(scope="module")
def served(detector, tmp_path_factory):
    """The detector exported and served over gRPC on loopback: its port."""
    from memae_tf.serving import serve

    base = tmp_path_factory.mktemp("served") / "walkway"
    detector.export(base)
    handle = serve(base, "walkway", port=0, host="127.0.0.1")
    yield handle.port
    handle.stop(grace=0)


def test_the_served_video_model_has_a_float_output_and_a_flag_per_frame_score(served):
    from memae_tf.common.contract import FRAME_SCORE_SIGNATURE, FRAME_SCORES

    with MemAEClient(f"127.0.0.1:{served}", "walkway", timeout=60) as client:
        signature = client.metadata().signatures[FRAME_SCORE_SIGNATURE]
    flags = ["is_anomaly_last", "is_anomaly_last_plus_temporal", "is_anomaly_patch",
             "is_anomaly_relative"]
    assert sorted(signature.outputs) == sorted([*FRAME_SCORES, *flags])
    assert {(signature.outputs[name].dtype, signature.outputs[name].shape)
            for name in FRAME_SCORES} == {(np.dtype(np.float32), (None,))}
    assert {(signature.outputs[name].dtype, signature.outputs[name].shape)
            for name in flags} == {(np.dtype(bool), (None,))}


@pytest.mark.parametrize("frame_score", ["clip", "last_plus_temporal", "patch"])
def test_served_flags_equal_the_in_process_flags(detector, served, frame_score):
    from memae_tf.video_scoring import score_video

    frames = moving_blobs(40, seed=4)
    with MemAEClient(f"127.0.0.1:{served}", "walkway", timeout=60) as client:
        scorer = StreamScorer(client, clip_length=CLIP, frame_score=frame_score)
        pushed = [scorer.push_flagged({"a": frame})["a"] for frame in frames]
    offline = score_video(detector, frames, frame_score=frame_score)
    assert [frame.is_anomaly for frame in pushed[: CLIP - 1]] == [None] * (CLIP - 1)
    assert np.isnan([frame.score for frame in pushed[: CLIP - 1]]).all()
    flags = np.array([frame.is_anomaly for frame in pushed[CLIP - 1 :]])
    np.testing.assert_array_equal(flags, offline.scores[CLIP - 1 :] > offline.threshold)
    assert offline.threshold == detector.frame_threshold(frame_score)
    np.testing.assert_allclose([frame.score for frame in pushed[CLIP - 1 :]],
                               offline.scores[CLIP - 1 :], rtol=1e-5)


def largest_float32_not_above(value: float) -> float:
    """The served form of a threshold: a float32 score is above it iff above `value`."""
    below = np.float32(value)
    return float(np.nextafter(below, np.float32(-np.inf)) if below > value else below)


@pytest.mark.parametrize("frame_score", ["clip", "last_plus_temporal", "relative"])
def test_a_stream_reads_the_served_threshold_that_its_flags_use(detector, served, frame_score):
    # The frames the thresholds were set on (at fpr=0.1): some frames score above each.
    frames = moving_blobs(40, seed=TRAINING_FRAMES_SEED)
    with MemAEClient(f"127.0.0.1:{served}", "walkway", timeout=60) as client:
        scorer = StreamScorer(client, clip_length=CLIP, frame_score=frame_score)
        threshold = scorer.threshold
        pushed = [scorer.push_flagged({"a": frame})["a"] for frame in frames][CLIP - 1 :]
    assert threshold == largest_float32_not_above(detector.frame_threshold(frame_score))
    scores = np.array([frame.score for frame in pushed])
    flags = np.array([frame.is_anomaly for frame in pushed])
    np.testing.assert_array_equal(flags, scores > threshold)
    assert 0 < flags.sum() < len(flags)  # a threshold of another score would flag all or none


def test_flags_of_an_export_without_frame_thresholds_say_how_to_go_on(detector, tmp_path):
    import copy

    from memae_tf.serving import serve

    # As a detector whose threshold was given, not inferred: no frame thresholds.
    unset = copy.copy(detector)
    unset.frame_thresholds_ = None
    unset.export(tmp_path / "walkway")
    handle = serve(tmp_path / "walkway", "walkway", port=0, host="127.0.0.1")
    try:
        with MemAEClient(f"127.0.0.1:{handle.port}", "walkway", timeout=60) as client:
            scorer = StreamScorer(client, clip_length=CLIP)
            assert scorer.threshold is None
            assert StreamScorer(client, frame_score="clip").threshold == (
                largest_float32_not_above(detector.threshold_))
            frames = moving_blobs(CLIP, seed=3)
            scores = scorer.score_frames(frames[:-1])  # scores alone still work
            assert np.isnan(scores).all()
            with pytest.raises(ValueError, match=r"output 'is_anomaly_last_plus_temporal'.*"
                                                 r"infer_threshold\(normal_clips, fpr=\.\.\.\) "
                                                 r"and export it again"):
                scorer.push_flagged({0: frames[-1]})
    finally:
        handle.stop(grace=0)


def test_only_video_models_export_frame_thresholds(tmp_path):
    from memae_tf.export import export_saved_model
    from memae_tf.models import build_autoencoder

    model = build_autoencoder("kdd", "memae", input_shape=(6,), units=(4, 2))
    with pytest.raises(ValueError, match=r"frame_thresholds.*Received: frame_thresholds="
                                         r"\{'last': 1.0\} for a model with inputs \(6,\)"):
        export_saved_model(model, tmp_path / "table", threshold=1.0,
                           frame_thresholds={"last": 1.0})


def test_a_video_export_refuses_a_frame_threshold_for_the_clip_score(detector, tmp_path):
    # "clip" is flagged by the served `is_anomaly` at `threshold_`: no threshold of its own.
    from memae_tf.common.contract import version_directories
    from memae_tf.export import export_saved_model

    with pytest.raises(ValueError, match=r"frame scores of \('last', 'patch', 'relative', "
                                         r"'last_plus_temporal'\) to thresholds.*Received: "
                                         r"frame_thresholds=\{'clip': 1.0\}"):
        export_saved_model(detector.model, tmp_path / "walkway", threshold=1.0,
                           frame_thresholds={"clip": 1.0})
    assert version_directories(tmp_path / "walkway") == {}  # no version written
    assert not (tmp_path / "walkway").exists()  # nor an empty model base path


@pytest.mark.parametrize("frame_score", ["last", "patch", "relative", "last_plus_temporal"])
def test_streams_get_the_offline_frame_score_of_score_video(detector, served, frame_score):
    from memae_tf.evaluation import clip_frame_scores
    from memae_tf.video_scoring import score_video

    streams = {name: moving_blobs(20, seed) for seed, name in enumerate(("a", "b"))}
    with MemAEClient(f"127.0.0.1:{served}", "walkway", timeout=60) as client:
        scorer = StreamScorer(client, clip_length=CLIP, frame_score=frame_score)
        pushed = [scorer.push({name: frames[t] for name, frames in streams.items()})
                  for t in range(20)]
    for name, frames in streams.items():
        streamed = np.array([step[name] for step in pushed])
        offline = score_video(detector, frames, frame_score=frame_score).scores
        np.testing.assert_array_equal(np.isnan(streamed), np.arange(20) < CLIP - 1)
        np.testing.assert_allclose(streamed[CLIP - 1 :], offline[CLIP - 1 :], rtol=1e-5)
        # And by the NumPy definition, from the detector's in-process error maps.
        video = Videos((frames,), (np.zeros(len(frames), np.int64),), ("v",))
        clips, _ = make_clips(video, CLIP, stride=1)
        expected = clip_frame_scores(detector.preprocess(clips), detector.score_map(clips),
                                     frame_score, reconstructions=detector.reconstruct(clips))
        np.testing.assert_allclose(streamed[CLIP - 1 :], expected, rtol=1e-5)


def test_a_stream_and_score_video_give_the_same_frame_score_by_default(detector, served):
    from memae_tf.video_scoring import score_video

    frames = moving_blobs(20, seed=5)
    with MemAEClient(f"127.0.0.1:{served}", "walkway", timeout=60) as client:
        scorer = StreamScorer(client, clip_length=CLIP)
        streamed = scorer.score_frames(frames)
    offline = score_video(detector, frames)
    assert scorer.frame_score == offline.frame_score == "last_plus_temporal"
    np.testing.assert_allclose(streamed[CLIP - 1 :], offline.scores[CLIP - 1 :], rtol=1e-5)


def test_a_stream_of_a_model_without_the_frame_score_signature_says_how_to_go_on(tmp_path):
    from memae_tf.detector import MemAE
    from memae_tf.serving import serve

    # A served model without the `frame_score` signature (as an export of an earlier
    # version has none): a table model, whose signatures are the other four.
    table = MemAE.from_preset("kdd", "ae", input_shape=(6,))
    rows = np.random.default_rng(0).uniform(size=(32, 6)).astype(np.float32)
    table.fit(rows, epochs=1, verbose=0)
    table.infer_threshold(rows, fpr=0.1)
    table.export(tmp_path / "table")
    handle = serve(tmp_path / "table", "table", port=0, host="127.0.0.1")
    try:
        with MemAEClient(f"127.0.0.1:{handle.port}", "table", timeout=60) as client:
            scorer = StreamScorer(client, clip_length=2)
            scorer.push({"a": np.zeros((1, 6), np.uint8)})
            with pytest.raises(ValueError, match=r"`frame_score` output 'last_plus_temporal'.*"
                                                 r"signatures \['model_info', 'score_map', "
                                                 r"'serving_default'\].*frame_score='clip'"):
                scorer.push({"a": np.zeros((1, 6), np.uint8)})
    finally:
        handle.stop(grace=0)


def test_a_stream_refuses_an_unknown_frame_score():
    with pytest.raises(ValueError, match=r"expected one of \('clip', 'last', 'patch', "
                                         r"'relative', 'last_plus_temporal'\)\. "
                                         r"Received: frame_score='mean'"):
        StreamScorer(CountingClient(None), frame_score="mean")


def test_a_window_refuses_frames_of_another_shape_or_dtype():
    window = FrameWindow(clip_length=2)
    window.push(np.zeros((4, 4, 1), np.uint8))
    with pytest.raises(ValueError, match=r"stream's shape \(4, 4\)"):
        window.push(np.zeros((4, 5), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        window.push(np.zeros((4, 4), np.float32))


def test_a_closed_stream_starts_a_new_window():
    scorer = StreamScorer(CountingClient(None), clip_length=3)
    frame = np.zeros((2, 2), np.uint8)
    scorer.score_frames([frame, frame], stream="s")
    scorer.close("s")
    assert scorer.streams == []
    # Two frames again: still no complete clip, nothing sent.
    assert np.isnan(scorer.score_frames([frame, frame], stream="s")).all()


def test_error_overlay_reddens_in_proportion_to_the_error():
    frames = np.full((1, 1, 3), 100, np.uint8)
    errors = np.array([[[0.0, 1.0, 2.0]]])
    rgb = error_overlay(frames, errors, vmax=2.0, alpha=0.5)
    # Strength 0, 0.25, 0.5: red = 100 (1 - s) + 255 s, green = blue = 100 (1 - s).
    np.testing.assert_array_equal(rgb[0, 0], [[100, 100, 100], [139, 75, 75], [178, 50, 50]])


def test_score_over_time_leaves_unscored_frames_as_a_gap_and_draws_the_threshold():
    scores = np.array([np.nan, np.nan, 1.0, 2.0, 3.0])
    fig = score_over_time(scores, labels=[0, 0, 0, 1, 1], threshold=2.5, fps=10)
    ax = fig.axes[0]
    line = ax.lines[0]
    np.testing.assert_allclose(line.get_xdata(), [0.0, 0.1, 0.2, 0.3, 0.4])
    assert np.isnan(line.get_ydata()[:2]).all()
    assert ax.lines[1].get_ydata()[0] == 2.5 and ax.get_xlabel() == "time (s)"
