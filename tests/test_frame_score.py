"""Frame scores of video clips (`memae_tf.evaluation.frame_score`) against loop references.

Each reference below is written from the definition with explicit Python
loops over clips, windows and pixels, independently of the vectorised code,
and a few cases have answers worked out by hand.
"""

import numpy as np
import pytest

from memae_tf.data import Videos
from memae_tf.evaluation import MemAEScorer, clip_frame_scores, evaluate_video, max_patch_mean
from memae_tf.evaluation.experiment import ExperimentConfig
from memae_tf.evaluation.frame_score import temporal_error


def reference_patch_max(image: np.ndarray, size: int, stride: int) -> float:
    height, width = image.shape
    rows, columns = min(size, height), min(size, width)
    best = -np.inf
    for top in range(0, height - rows + 1, stride):
        for left in range(0, width - columns + 1, stride):
            total = 0.0
            for i in range(top, top + rows):
                for j in range(left, left + columns):
                    total += image[i, j]
            best = max(best, total / (rows * columns))
    return best


def reference_scores(clips: np.ndarray, errors: np.ndarray, name: str,
                     rebuilt: np.ndarray | None = None) -> np.ndarray:
    """Loop reference of the frame scores for clips `(n, L, H, W)` (and reconstructions)."""
    out = []
    for n, (clip, error) in enumerate(zip(clips, errors, strict=True)):
        length, height, width = error.shape
        last = error[length - 1]
        if name == "last_plus_temporal":
            # The last frame's mean error plus the mean squared difference of the
            # input's and the reconstruction's change from frame L-2 to frame L-1.
            total = 0.0
            for i in range(height):
                for j in range(width):
                    moved = clip[length - 1, i, j] - clip[length - 2, i, j]
                    rebuilt_moved = rebuilt[n, length - 1, i, j] - rebuilt[n, length - 2, i, j]
                    total += (moved - rebuilt_moved) ** 2
            out.append(sum(float(v) for v in last.ravel()) / last.size
                       + total / (height * width))
        elif name == "clip":
            out.append(sum(float(v) for v in error.ravel()) / error.size)
        elif name == "last":
            out.append(sum(float(v) for v in last.ravel()) / last.size)
        elif name == "patch":
            out.append(reference_patch_max(last, 8, 4))
        else:
            content = 0.0
            for i in range(height):
                for j in range(width):
                    mean = sum(clip[t, i, j] for t in range(length)) / length
                    content += (clip[length - 1, i, j] - mean) ** 2
            content /= height * width
            out.append((sum(float(v) for v in last.ravel()) / last.size) / (content + 1e-3))
    return np.array(out)


@pytest.mark.parametrize("name", ["clip", "last", "patch", "relative", "last_plus_temporal"])
@pytest.mark.parametrize("shape", [(3, 4, 13, 18), (2, 3, 8, 8), (2, 2, 5, 11)])
def test_frame_scores_match_a_loop_reference(name, shape):
    rng = np.random.default_rng(sum(shape))
    clips = rng.uniform(-1, 1, shape)
    errors = rng.random(shape) ** 3
    rebuilt = rng.uniform(-1, 1, shape)
    expected = reference_scores(clips, errors, name, rebuilt)
    np.testing.assert_allclose(clip_frame_scores(clips, errors, name, reconstructions=rebuilt),
                               expected, rtol=1e-12)
    # The model's layout, with a channel axis of 1, gives the same scores.
    np.testing.assert_allclose(clip_frame_scores(clips[..., None], errors[..., None], name,
                                                 reconstructions=rebuilt[..., None]),
                               expected, rtol=1e-12)


@pytest.mark.parametrize("shape", [(3, 4, 13, 18), (2, 3, 8, 8), (2, 2, 5, 11)])
def test_the_scoring_graph_computes_the_same_frame_scores(shape):
    # The TensorFlow version that `score_video` and the exported `frame_score`
    # signature (a stream's scores) use.
    import tensorflow as tf

    from memae_tf.scoring_graph import clip_frame_scores as graph_frame_scores

    rng = np.random.default_rng(sum(shape))
    clips = rng.uniform(-1, 1, shape)
    errors = rng.random(shape) ** 3
    rebuilt = rng.uniform(-1, 1, shape)
    scores = graph_frame_scores(tf.constant(clips[..., None], tf.float32),
                                tf.constant(errors[..., None], tf.float32),
                                tf.constant(rebuilt[..., None], tf.float32))
    assert list(scores) == ["clip", "last", "patch", "relative", "last_plus_temporal"]
    for name, values in scores.items():
        np.testing.assert_allclose(values.numpy(),
                                   reference_scores(clips, errors, name, rebuilt), rtol=1e-5)


def test_a_clip_with_a_non_finite_pixel_scores_inf_by_every_frame_score():
    from memae_tf.detector import MemAE

    detector = MemAE.from_preset("video", input_shape=(4, 16, 16, 1), filters=(2, 2, 2, 2),
                                 num_items=5)
    clips = np.zeros((2, 4, 16, 16, 1), np.float32)
    clips[1, 0, 3, 3, 0] = np.nan  # an early frame: outside the last frame's error
    for name in ("clip", "last", "patch", "relative", "last_plus_temporal"):
        scores = detector.scoring_graph.run(clips, output=name)
        assert np.isfinite(scores[0]) and scores[1] == np.inf


def test_last_and_patch_ignore_errors_of_earlier_frames():
    errors = np.zeros((1, 4, 8, 8))
    errors[0, 0] = 1.0  # an anomaly three frames back: it spills into `clip` only
    clips = np.zeros_like(errors)
    assert clip_frame_scores(clips, errors, "clip")[0] == pytest.approx(0.25)
    assert clip_frame_scores(clips, errors, "last")[0] == 0.0
    assert clip_frame_scores(clips, errors, "patch")[0] == 0.0


def test_patch_finds_a_local_error_that_the_frame_mean_dilutes():
    errors = np.zeros((1, 1, 16, 16))
    errors[0, 0, 4:12, 8:16] = 2.0  # exactly the window starting at row 4, column 8
    clips = np.zeros_like(errors)
    assert clip_frame_scores(clips, errors, "last")[0] == pytest.approx(2.0 * 64 / 256)
    assert clip_frame_scores(clips, errors, "patch")[0] == pytest.approx(2.0)
    # Shifted by two pixels the block straddles windows at a stride of 4: the best
    # window (rows 4-11, columns 8-15 against a block at rows 6-13) holds 6 of its 8 rows.
    errors = np.roll(errors, 2, axis=2)
    assert clip_frame_scores(clips, errors, "patch")[0] == pytest.approx(2.0 * 48 / 64)


def test_a_frame_smaller_than_the_patch_is_one_window():
    image = np.arange(12.0).reshape(1, 3, 4)
    np.testing.assert_allclose(max_patch_mean(image), [5.5])


def test_relative_divides_by_what_moves_in_the_clip():
    # One pixel goes from -1 to 1 in the last of 4 frames: the clip mean there is
    # -0.5, the deviation 1.5, its square 2.25 over 4 pixels = 0.5625 of content.
    clips = -np.ones((1, 4, 2, 2))
    clips[0, 3, 0, 0] = 1.0
    errors = np.zeros_like(clips)
    errors[0, 3] = 0.5
    assert clip_frame_scores(clips, errors, "relative")[0] == pytest.approx(0.5 / 0.5635)
    # A still clip has no moving content: the floor alone divides.
    still = -np.ones((1, 4, 2, 2))
    assert clip_frame_scores(still, errors, "relative")[0] == pytest.approx(0.5 / 1e-3)


def test_bad_names_and_shapes_are_refused():
    clips = np.zeros((1, 2, 4, 4))
    with pytest.raises(ValueError, match="frame_score"):
        clip_frame_scores(clips, clips, "median")
    with pytest.raises(ValueError, match="shape"):
        clip_frame_scores(clips, np.zeros((2, 4, 4)), "last")
    with pytest.raises(ValueError, match="one error per clip pixel"):
        clip_frame_scores(np.zeros((1, 3, 4, 4)), clips, "relative")
    with pytest.raises(ValueError, match=r"Expected `reconstructions`.*Received: None"):
        clip_frame_scores(clips, clips, "last_plus_temporal")
    with pytest.raises(ValueError, match="frame_score"):
        ExperimentConfig("moving-mnist", frame_score="median")


def test_clips_take_one_channel_at_most_and_frames_of_any_width():
    clips = np.zeros((1, 2, 3, 1))  # (n, L, H, W) with frames one pixel wide
    errors = np.ones((1, 2, 3, 1))
    np.testing.assert_array_equal(clip_frame_scores(clips, errors, "last"), [1.0])
    with pytest.raises(ValueError, match=r"Received: \(1, 2, 3, 4, 3\)"):
        clip_frame_scores(clips, np.ones((1, 2, 3, 4, 3)), "last")  # three channels


def test_temporal_error_of_two_frame_clips_and_its_refusals():
    clips = np.zeros((1, 2, 1, 2))
    clips[0, 1, 0, 0] = 1.0  # one of two pixels changes by 1, the network rebuilds none
    np.testing.assert_array_equal(temporal_error(clips, np.zeros_like(clips)), [0.5])
    with pytest.raises(ValueError, match="at least 2 frames"):
        temporal_error(np.zeros((1, 1, 2, 2)), np.zeros((1, 1, 2, 2)))
    with pytest.raises(ValueError, match="one reconstruction per clip pixel"):
        temporal_error(np.zeros((1, 3, 2, 2)), np.zeros((1, 3, 2, 3)))


@pytest.mark.parametrize("floor", [0.0, -1e-3])
def test_relative_refuses_a_floor_that_is_not_positive(floor):
    clips = np.zeros((1, 2, 2, 2))
    with pytest.raises(ValueError, match=rf"positive `content_floor`. Received: {floor!r}"):
        clip_frame_scores(clips, clips, "relative", content_floor=floor)


class PixelBrightness:
    """A stand-in network whose per-pixel error is the pixel's brightness in [0, 1]."""

    def fit(self, x):
        return self

    def score(self, x):
        return self.score_map(x).mean(axis=(1, 2, 3, 4))

    def score_map(self, x):
        return (np.asarray(x) + 1.0) / 2.0


class ClipBrightness:
    def fit(self, x):
        return self

    def score(self, x):
        return (np.asarray(x).mean(axis=(1, 2, 3, 4)) + 1.0) / 2.0


def bright_video():
    frames = np.zeros((12, 4, 4), np.uint8)
    frames[6:9] = 255  # bright, anomalous frames 6-8
    labels = np.zeros(12, np.int64)
    labels[6:9] = 1
    train = Videos((np.zeros((5, 4, 4), np.uint8),), (np.zeros(5, np.int64),), ("t",))
    return train, Videos((frames,), (labels,), ("v",))


def test_scoring_the_last_frame_ends_the_spill_of_an_anomaly():
    train, test = bright_video()
    # With the clip's mean, frames 9 and 10 still see the bright frames (2/3, 1/3)
    # while frame 6 sees one (1/3): 25 of the 27 pairs are ordered. The last
    # frame's own error ranks the three bright frames above the nine others.
    result = evaluate_video(PixelBrightness(), train, test, clip_length=3,
                            frame_score="last",
                            frame_score_candidates=("clip", "last", "patch", "relative"))
    assert result.metrics["auroc"] == 1.0
    assert result.info["frame_score"] == "last"
    by_name = result.info["frame_score_auroc"]
    assert by_name["clip"] == pytest.approx(25 / 27)
    assert by_name["last"] == 1.0 and by_name["patch"] == 1.0
    assert set(result.info["frame_score_metrics"]) == {"clip", "last", "patch", "relative"}
    # The "clip" candidate is the scorer's own clip score.
    plain = evaluate_video(PixelBrightness(), train, test, clip_length=3)
    assert plain.metrics["auroc"] == pytest.approx(by_name["clip"])


class StillReconstruction(PixelBrightness):
    """The stand-in with a reconstruction that never moves: all change is unexplained."""

    def reconstruct(self, x):
        return np.zeros_like(x)


def test_evaluate_video_scores_last_plus_temporal_from_the_reconstructions():
    train, test = bright_video()
    result = evaluate_video(StillReconstruction(), train, test, clip_length=3,
                            frame_score="last_plus_temporal",
                            frame_score_candidates=("last", "last_plus_temporal"))
    assert result.info["frame_score"] == "last_plus_temporal"
    assert set(result.info["frame_score_auroc"]) == {"last", "last_plus_temporal"}
    # Frames 6 (brightens) and 9 (darkens) change: each adds 2² = 4 to its frame's
    # last-frame brightness, so the darkening frame 9 (0 + 4) outranks the bright
    # frames 7 and 8 (1 + 0): 2 of the 27 pairs are misordered.
    assert result.metrics["auroc"] == pytest.approx(25 / 27)


def count_network_calls(graph) -> list[tuple[str, int]]:
    """Wraps the scoring graph's network functions; returns the list of (function, clips) calls."""
    calls = []

    def counted(name, function):
        def call(x):
            calls.append((name, int(x.shape[0])))
            return function(x)
        return call

    for name in ("outputs", "frame_scores", "frame_scores_and_maps"):
        setattr(graph, name, counted(name, getattr(graph, name)))
    return calls


class CountedMemAEScorer(MemAEScorer):
    """A `MemAEScorer` whose network calls record the clips they score, after `fit`."""

    def fit(self, x):
        super().fit(x)
        self.clips_scored = count_network_calls(self.detector.scoring_graph)
        return self


def tiny_video_scorer():
    from memae_tf.training import TrainingConfig

    return CountedMemAEScorer(
        "video", "memae", {"input_shape": (4, 16, 16, 1), "filters": (2, 2, 2, 2),
                           "num_items": 5},
        TrainingConfig(seed=0, epochs=1, batch_size=4, verbose=0))


def noise_videos():
    rng = np.random.default_rng(5)
    train = Videos((rng.integers(0, 256, (10, 16, 16), np.uint8),), (np.zeros(10, np.int64),),
                   ("t",))
    frames = rng.integers(0, 256, (11, 16, 16), np.uint8)
    labels = np.zeros(11, np.int64)
    labels[[5, 8, 9]] = 1
    return train, Videos((frames,), (labels,), ("v",))


def test_evaluate_video_runs_the_network_once_per_clip_for_every_frame_score():
    from memae_tf.data import make_clips
    from memae_tf.evaluation import frame_level_evaluation

    train, test = noise_videos()
    scorer = tiny_video_scorer()
    result = evaluate_video(scorer, train, test, clip_length=4,
                            frame_score="last_plus_temporal",
                            frame_score_candidates=("clip", "last", "patch", "relative"))
    # 8 test clips, each through the network once, by the scoring graph's frame scores.
    assert [name for name, _ in scorer.clips_scored] == ["frame_scores"]
    assert sum(n for _, n in scorer.clips_scored) == result.info["n_test_clips"] == 8

    # The scores are the NumPy loop reference's, from the network's error maps and
    # reconstructions of the same clips.
    clips, index = make_clips(test, 4)
    errors = scorer.detector.score_map(clips)[..., 0]
    rebuilt = scorer.detector.reconstruct(clips)[..., 0]
    plain = clips[..., 0].astype(np.float64)
    expected = reference_scores(plain, errors, "last_plus_temporal", rebuilt)
    np.testing.assert_allclose(result.scores[3:], expected, rtol=1e-5)
    np.testing.assert_allclose(result.scores[:3], expected[0], rtol=1e-5)  # the first clip's
    for name in ("clip", "last", "patch", "relative"):
        reference = frame_level_evaluation(reference_scores(plain, errors, name, rebuilt),
                                           index, test, 4).metrics
        assert result.info["frame_score_auroc"][name] == pytest.approx(reference["auroc"])


def test_frame_scores_other_than_clip_need_per_pixel_errors():
    train, test = bright_video()
    assert evaluate_video(ClipBrightness(), train, test, clip_length=3).metrics["auroc"] > 0
    with pytest.raises(ValueError, match="score_map"):
        evaluate_video(ClipBrightness(), train, test, clip_length=3, frame_score="patch")
    with pytest.raises(ValueError, match="reconstruct"):
        evaluate_video(PixelBrightness(), train, test, clip_length=3,
                       frame_score="last_plus_temporal")


def test_score_video_scores_each_frame_by_the_chosen_frame_score():
    from memae_tf.data import make_clips
    from memae_tf.detector import MemAE
    from memae_tf.video_scoring import score_video

    detector = MemAE.from_preset("video", input_shape=(4, 16, 16, 1), filters=(2, 2, 2, 2),
                                 num_items=5)
    rng = np.random.default_rng(3)
    frames = rng.integers(0, 256, size=(9, 16, 16), dtype=np.uint8)
    clips, index = make_clips(Videos((frames,), (np.zeros(9, np.int64),), ("v",)), 4)
    errors = detector.score_map(clips)[..., 0]
    rebuilt = detector.reconstruct(clips)[..., 0]
    for name in ("last", "patch", "relative", "last_plus_temporal"):
        result = score_video(detector, frames, batch_size=4, frame_score=name)
        expected = reference_scores(clips[..., 0].astype(np.float64), errors, name, rebuilt)
        assert np.isnan(result.scores[:3]).all()
        np.testing.assert_allclose(result.scores[index[:, 1] + 3], expected, rtol=1e-5)
        assert result.frame_score == name and result.threshold is None


def test_score_video_with_error_maps_runs_the_network_once_per_clip():
    from memae_tf.data import make_clips
    from memae_tf.detector import MemAE
    from memae_tf.video_scoring import score_video

    detector = MemAE.from_preset("video", input_shape=(4, 16, 16, 1), filters=(2, 2, 2, 2),
                                 num_items=5)
    frames = np.random.default_rng(4).integers(0, 256, size=(9, 16, 16), dtype=np.uint8)
    clips, _ = make_clips(Videos((frames,), (np.zeros(9, np.int64),), ("v",)), 4)
    # The uint8 clips, scaled by the detector as `score_video` has them scaled.
    uint8_clips = np.stack([frames[start : start + 4] for start in range(6)])[..., None]
    errors = detector.score_map(uint8_clips, batch_size=4)
    rebuilt = detector.reconstruct(uint8_clips)[..., 0]
    clip_scores = detector.score(uint8_clips, batch_size=4)
    without_maps = {name: score_video(detector, frames, batch_size=4, frame_score=name).scores
                    for name in ("clip", "last_plus_temporal")}
    calls = count_network_calls(detector.scoring_graph)
    for name in ("clip", "last_plus_temporal"):
        calls.clear()
        result = score_video(detector, frames, batch_size=4, error_maps=True, frame_score=name)
        # 6 clips in batches of 4: each through the network once, scores and maps together.
        assert calls == [("frame_scores_and_maps", 4), ("frame_scores_and_maps", 2)]
        assert np.isnan(result.error_maps[:3]).all() and np.isnan(result.scores[:3]).all()
        np.testing.assert_array_equal(result.error_maps[3:], errors[:, -1, ..., 0])
        np.testing.assert_array_equal(result.scores, without_maps[name])
    np.testing.assert_allclose(result.scores[3:], reference_scores(
        clips[..., 0].astype(np.float64), errors[..., 0], "last_plus_temporal", rebuilt),
        rtol=1e-5)
    # The "clip" frame score is `MemAE.score`, bit for bit.
    np.testing.assert_array_equal(without_maps["clip"][3:], clip_scores)


def test_the_command_line_takes_the_frame_score_and_its_candidates():
    from memae_tf.cli import build_parser
    from memae_tf.evaluation.cli import config_from_args

    args = build_parser().parse_args([
        "experiment", "moving-mnist", "--out", "r", "--frame-score", "patch",
        "--frame-score-candidates", "clip,relative"])
    config = config_from_args(args)
    assert config.frame_score == "patch"
    assert config.frame_score_candidates == ("clip", "relative")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["experiment", "moving-mnist", "--out", "r",
                                   "--frame-score-candidates", "clip,median"])
    video = build_parser().parse_args(["score-video", "v.avi", "--model", "m.keras",
                                       "--out", "o", "--frame-score", "last_plus_temporal"])
    assert video.frame_score == "last_plus_temporal"


def test_a_model_without_clips_has_no_frame_scores_and_says_so():
    from memae_tf.models import build_autoencoder
    from memae_tf.scoring_graph import ScoringGraph

    graph = ScoringGraph(build_autoencoder("kdd", "ae", input_shape=(6,), units=(4, 2)))
    rows = np.zeros((3, 6), np.float32)
    message = r"need a video model with inputs \(clip_length, H, W, C\)\. Received .* \(6,\)"
    for run in (lambda: graph.run(rows, output="last"), lambda: graph.run_frame_scores(rows),
                lambda: graph.run_frame_scores_and_maps(rows)):
        with pytest.raises(ValueError, match=message):
            run()
