"""Scores at the float32 edge of a threshold: served flags, in-process flags and `score > t`.

Scores are float32, thresholds are Python floats (float64). A threshold `t` just
below a float32 score `s` rounds to `s` in float32, so a float32 comparison says
`s > t` is false while it is true. The reference here is Python's own float
comparison, `float(s) > t` (exact: every float32 is a Python float), over the
in-process scores; the served answers come from the exported SavedModel, loaded
with TensorFlow alone, and from the development server over gRPC.
"""

import json

import numpy as np
import pytest
import tensorflow as tf

from memae_tf import MemAE
from memae_tf.client import MemAEClient
from memae_tf.common.contract import frame_flag_output, frame_threshold_output

FEATURES = 12
CLIP, HEIGHT, WIDTH = 16, 32, 48
FRAME_FLAGGED = ("last", "patch", "relative", "last_plus_temporal")


def near(score: np.float32, offset: float) -> float:
    """A threshold `offset` float32 spacings (the one below `score`) from `score`, in float64."""
    below = np.nextafter(np.float32(score), np.float32(-np.inf))
    return float(score) + offset * (float(score) - float(below))


def reference_flags(scores: np.ndarray, threshold: float) -> np.ndarray:
    return np.array([float(score) > threshold for score in scores])


def largest_float32_not_above(threshold: float) -> float:
    """The float32 a served score must exceed to be above `threshold`, by search."""
    candidate = np.float32(threshold)
    while float(candidate) > threshold:
        candidate = np.nextafter(candidate, np.float32(-np.inf))
    return float(candidate)


@pytest.fixture(scope="module")
def table():
    """An unfitted dense MemAE (scores need no training) and rows, with their scores."""
    detector = MemAE.from_preset("kdd", input_shape=(FEATURES,), units=(8, 3), num_items=10)
    rows = np.random.default_rng(3).uniform(0.0, 1.0, (40, FEATURES)).astype(np.float32)
    return detector, rows, detector.score(rows)


# -0.25 and -0.5 (a tie, rounded to even) round the threshold up onto the score in float32.
@pytest.mark.parametrize("offset", [-0.25, -0.5, -0.75, 0.25])
def test_predict_and_the_served_is_anomaly_flag_scores_above_the_threshold_exactly(
    table, tmp_path, offset
):
    detector, rows, scores = table
    threshold = near(scores[np.argsort(scores)[len(scores) // 2]], offset)
    flagged = MemAE(detector.model, input_range=detector.input_range, threshold=threshold)
    expected = reference_flags(scores, threshold)
    assert 0 < expected.sum() < len(rows)
    np.testing.assert_array_equal(flagged.predict(rows), expected.astype(np.int64))
    loaded = tf.saved_model.load(str(flagged.export(tmp_path / "table")))
    served = loaded.signatures["serving_default"](x=tf.constant(flagged.preprocess(rows)))
    np.testing.assert_array_equal(served["is_anomaly"].numpy(), expected)
    info = loaded.signatures["model_info"](x=tf.zeros((1, FEATURES)))
    assert info["threshold"].dtype == tf.float32
    assert float(info["threshold"][0]) == largest_float32_not_above(threshold)
    np.testing.assert_array_equal(served["score"].numpy() > info["threshold"].numpy()[0],
                                  expected)


def test_the_served_threshold_and_flags_reach_a_client_as_in_process(table, tmp_path):
    from memae_tf.serving import serve

    detector, rows, scores = table
    threshold = near(scores[np.argsort(scores)[len(scores) // 2]], -0.25)
    flagged = MemAE(detector.model, input_range=detector.input_range, threshold=threshold)
    flagged.export(tmp_path / "table")
    handle = serve(tmp_path / "table", "table", port=0, host="127.0.0.1")
    try:
        with MemAEClient(f"127.0.0.1:{handle.port}", "table", timeout=60) as client:
            outputs = client.run_signature(rows)
            info = client.model_info()
    finally:
        handle.stop(grace=0)
    np.testing.assert_array_equal(outputs["is_anomaly"], flagged.predict(rows).astype(bool))
    np.testing.assert_array_equal(outputs["is_anomaly"], reference_flags(scores, threshold))
    assert info.threshold == largest_float32_not_above(threshold) < threshold
    np.testing.assert_array_equal(outputs["score"] > info.threshold, outputs["is_anomaly"])
    assert info.frame_thresholds is None  # not a video model


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    """An unfitted video MemAE with every threshold just below one clip's score, exported."""
    model = MemAE.from_preset("video", input_shape=(CLIP, HEIGHT, WIDTH, 1),
                              filters=(2, 4, 4, 4), num_items=10).model
    clips = np.random.default_rng(5).integers(0, 256, (12, CLIP, HEIGHT, WIDTH, 1), np.uint8)
    probe = MemAE(model, threshold=0.0)
    frame_scores = probe.scoring_graph.run_frame_scores(probe.preprocess(clips))
    # each score's threshold a quarter spacing below a middle clip's score: rounded onto it
    middle = {name: values[np.argsort(values)[len(values) // 2]]
              for name, values in frame_scores.items()}
    detector = MemAE(model, threshold=near(middle["clip"], -0.25))
    detector.frame_thresholds_ = {name: near(middle[name], -0.25) for name in FRAME_FLAGGED}
    base = tmp_path_factory.mktemp("video") / "walkway"
    path = detector.export(base)
    return detector, clips, frame_scores, base, path


def test_served_clip_and_frame_flags_of_a_video_model_are_the_exact_comparisons(video):
    detector, clips, frame_scores, _, path = video
    loaded = tf.saved_model.load(str(path))
    x = tf.constant(detector.preprocess(clips))
    served = {**loaded.signatures["frame_score"](x=x),
              **loaded.signatures["serving_default"](x=x)}
    expected = reference_flags(frame_scores["clip"], detector.threshold_)
    np.testing.assert_array_equal(served["is_anomaly"].numpy(), expected)
    np.testing.assert_array_equal(detector.predict(clips), expected.astype(np.int64))
    for name in FRAME_FLAGGED:
        expected = reference_flags(frame_scores[name], detector.frame_thresholds_[name])
        assert 0 < expected.sum() < len(clips)
        np.testing.assert_array_equal(served[frame_flag_output(name)].numpy(), expected)


def test_model_info_carries_each_frame_threshold_for_the_client(video):
    from memae_tf.serving import serve

    detector, clips, _, base, _ = video
    handle = serve(base, "walkway", port=0, host="127.0.0.1")
    try:
        with MemAEClient(f"127.0.0.1:{handle.port}", "walkway", timeout=60) as client:
            info = client.model_info()
            served = client.run_signature(detector.preprocess(clips), signature="frame_score")
            signature = client.metadata().signatures["model_info"]
    finally:
        handle.stop(grace=0)
    assert info.frame_thresholds == {
        name: largest_float32_not_above(detector.frame_thresholds_[name])
        for name in FRAME_FLAGGED}
    assert info.threshold == largest_float32_not_above(detector.threshold_)
    for name in FRAME_FLAGGED:
        assert signature.outputs[frame_threshold_output(name)].dtype == np.float32
        np.testing.assert_array_equal(served[name] > info.frame_thresholds[name],
                                      served[frame_flag_output(name)])


def test_an_export_without_frame_thresholds_has_none_in_model_info(video, tmp_path):
    detector, _, _, _, _ = video
    unset = MemAE(detector.model, threshold=detector.threshold_)  # frame_thresholds_ None
    path = unset.export(tmp_path / "walkway")
    info = tf.saved_model.load(str(path)).signatures["model_info"](
        x=tf.zeros((1, CLIP, HEIGHT, WIDTH, 1)))
    assert not any(name.startswith("threshold_") for name in info)


def test_memae_train_records_a_video_detectors_frame_thresholds(tmp_path):
    from memae_tf.cli import main

    clips = np.random.default_rng(2).integers(0, 256, (30, CLIP, HEIGHT, WIDTH, 1), np.uint8)
    np.savez(tmp_path / "clips.npz", x_train=clips, y_train=np.zeros(30, np.int64))
    out = tmp_path / "run"
    assert main(["train", "--preset", "video", "--data", str(tmp_path / "clips.npz"),
                 "--epochs", "1", "--verbose", "0", "--validation-split", "0.4",
                 "--override", f"input_shape=[{CLIP},{HEIGHT},{WIDTH},1]",
                 "--override", "filters=[2,4,4,4]", "--override", "num_items=10",
                 "--out", str(out)]) == 0
    summary = json.loads((out / "train_summary.json").read_text())
    detector = MemAE.load(out / "detector.keras")
    # the held-out clips' frame scores, quantile rule at the summary's fpr
    held_out = clips[np.random.default_rng(0).permutation(30)[:12]]
    frame_scores = detector.scoring_graph.run_frame_scores(detector.preprocess(held_out))
    assert summary["frame_thresholds"] == {
        name: pytest.approx(float(np.quantile(frame_scores[name], 1 - summary["fpr"])),
                            rel=1e-6)
        for name in FRAME_FLAGGED}
    assert summary["threshold"] == detector.threshold_
