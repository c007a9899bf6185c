"""Evaluation protocols on small cases whose answers are worked out by hand."""

import numpy as np
import pytest

from memae_tf.data import TabularData, Videos
from memae_tf.evaluation import (
    Evaluation,
    aupr,
    auroc,
    centre_frames,
    choose_smoothing,
    evaluate_one_class,
    evaluate_tabular,
    evaluate_video,
    frame_level_evaluation,
    frame_scores,
    gcn_minmax,
    make_baseline,
    metrics_at_threshold,
    normalise_per_video,
    one_class_split,
    random_split,
    regularity_scores,
    scored_frames,
    smooth_scores,
    threshold_metrics,
    video_metrics,
)
from memae_tf.evaluation.one_class import OneClassSplit

# --- metrics -----------------------------------------------------------------------------------


def test_perfect_scorer_has_auroc_and_aupr_one():
    labels = np.array([0, 1, 0, 1, 1, 0])
    assert auroc(labels, labels * 10.0 + 1) == 1.0
    assert aupr(labels, labels * 10.0 + 1) == 1.0


def test_reversed_scorer_has_auroc_zero():
    labels = np.array([0, 1, 0, 1, 1, 0])
    assert auroc(labels, -labels.astype(float)) == 0.0


def test_auroc_counts_correctly_ordered_pairs():
    # Pairs (anomaly, normal): 0.8>0.1, 0.8>0.5, 0.3>0.1, 0.3<0.5 → 3 of 4 ordered.
    assert auroc([0, 0, 1, 1], [0.1, 0.5, 0.8, 0.3]) == 0.75


def test_threshold_metrics_flag_the_top_share():
    labels = np.array([0, 0, 0, 0, 0, 0, 1, 1, 0, 1])
    scores = np.arange(10.0)  # the top 20% are the samples scored 8 and 9
    m = threshold_metrics(labels, scores, share=0.2)
    # Flagged: indices 8 (normal) and 9 (anomaly). TP=1, FP=1, FN=2.
    assert m["precision"] == pytest.approx(1 / 2)
    assert m["recall"] == pytest.approx(1 / 3)
    assert m["f1"] == pytest.approx(2 * (1 / 2) * (1 / 3) / (1 / 2 + 1 / 3))
    # The 80th percentile: position 0.8 × 9 = 7.2, between the sorted values 7 and 8.
    assert m["threshold"] == pytest.approx(7.2)


@pytest.mark.parametrize("share", [0, 0.0, 1, 1.0, -0.2])
def test_threshold_metrics_refuse_a_share_outside_the_open_unit_interval(share):
    with pytest.raises(ValueError, match="share"):
        threshold_metrics([0, 1, 0, 1], [0.1, 0.9, 0.2, 0.8], share=share)


def test_threshold_metrics_flag_scores_strictly_above_the_threshold():
    # 0.6 sits on the threshold and is not flagged: only 0.9 is, one of two anomalies.
    m = metrics_at_threshold([0, 1, 1], [0.1, 0.6, 0.9], threshold=0.6)
    assert (m["precision"], m["recall"]) == (1.0, 0.5)


def test_threshold_metrics_with_nothing_flagged_have_precision_and_f1_zero():
    m = metrics_at_threshold([0, 1, 1], [0.1, 0.6, 0.9], threshold=1.0)
    assert (m["precision"], m["recall"], m["f1"]) == (0.0, 0.0, 0.0)


@pytest.mark.parametrize(("record", "field"), [
    (Evaluation(np.zeros(2), np.array([0, 1]), {"auroc": 0.5}), "metrics"),
    (OneClassSplit(np.zeros((1, 2)), np.zeros((2, 2)), np.array([0, 1])), "labels"),
])
def test_evaluation_records_are_frozen(record, field):
    with pytest.raises(AttributeError):
        setattr(record, field, None)


def test_metrics_reject_a_single_class_and_mismatched_shapes():
    with pytest.raises(ValueError, match="both normal"):
        auroc([0, 0, 0], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="one score per label"):
        auroc([0, 1], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="share"):
        threshold_metrics([0, 1], [0.0, 1.0], share=1.5)


# --- one-class images ---------------------------------------------------------------------------


class ClassOracle:
    """Scores an image by whether its first pixel differs from the training images'."""

    def fit(self, x):
        self.normal_value = x[0, 0]
        return self

    def score(self, x):
        return (x[:, 0] != self.normal_value).astype(float)


def class_coded(n_per_class: int | list[int], classes: int = 3):
    y = np.repeat(np.arange(classes), n_per_class)
    return np.stack([y, np.arange(len(y))], axis=1), y


def test_one_class_split_trains_on_the_normal_class_only():
    (x, y) = class_coded(4)
    split = one_class_split((x, y), (x, y), normal_class=2)
    assert (split.x_train[:, 0] == 2).all() and len(split.x_train) == 4
    assert len(split.x_test) == 12
    np.testing.assert_array_equal(split.labels, (y != 2).astype(int))


def test_one_class_split_subsamples_to_the_anomaly_share():
    (x, y) = class_coded(10, classes=5)
    split = one_class_split((x, y), (x, y), normal_class=0, anomaly_share=0.5, seed=3)
    assert split.labels.sum() == 10 and (split.labels == 0).sum() == 10
    again = one_class_split((x, y), (x, y), normal_class=0, anomaly_share=0.5, seed=3)
    np.testing.assert_array_equal(split.x_test, again.x_test)


def test_one_class_split_keeps_every_normal_image_when_the_anomalies_just_suffice():
    # 10 normal images at a share of 0.1 want round(10 / 9) = 1 anomaly; there is exactly 1.
    x, y = class_coded([10, 1], classes=2)
    split = one_class_split((x, y), (x, y), normal_class=0, anomaly_share=0.1)
    np.testing.assert_array_equal(split.x_test, x)
    np.testing.assert_array_equal(split.labels, [0] * 10 + [1])


def test_one_class_split_draws_normal_images_when_anomalies_are_too_few():
    # 10 normal images and 12 anomalies at a share of 0.75: all 12 anomalies stay and
    # 12 / 3 = 4 distinct normal images are drawn.
    x, y = class_coded([10, 12], classes=2)
    split = one_class_split((x, y), (x, y), normal_class=0, anomaly_share=0.75)
    normal = split.x_test[split.labels == 0]
    assert (normal[:, 0] == 0).all() and len(np.unique(normal[:, 1])) == 4
    np.testing.assert_array_equal(split.x_test[split.labels == 1], x[y == 1])


def test_one_class_split_caps_draw_distinct_images_of_the_right_rows():
    x, y = class_coded(10, classes=3)
    split = one_class_split((x, y), (x, y), normal_class=1, max_train=9, max_test=29)
    assert (split.x_train[:, 0] == 1).all() and len(np.unique(split.x_train[:, 1])) == 9
    assert len(np.unique(split.x_test[:, 1])) == 29
    np.testing.assert_array_equal(split.labels, split.x_test[:, 0] != 1)


def test_one_class_split_draws_are_seeded_by_seed_0_by_default():
    x, y = class_coded(10, classes=3)
    default = one_class_split((x, y), (x, y), normal_class=1, max_train=5, max_test=12)
    seeded = one_class_split((x, y), (x, y), normal_class=1, max_train=5, max_test=12, seed=0)
    np.testing.assert_array_equal(default.x_train, seeded.x_train)
    np.testing.assert_array_equal(default.x_test, seeded.x_test)


def test_one_class_split_with_a_cap_as_large_as_the_set_draws_nothing():
    # Capping the 10 training images at 10 keeps them all and leaves the test draw as it
    # is without that cap.
    x, y = class_coded(10, classes=3)
    capped = one_class_split((x, y), (x, y), normal_class=1, max_train=10, max_test=12)
    uncapped = one_class_split((x, y), (x, y), normal_class=1, max_test=12)
    np.testing.assert_array_equal(capped.x_train, x[y == 1])
    np.testing.assert_array_equal(capped.x_test, uncapped.x_test)


@pytest.mark.parametrize("share", [0.0, 1.0, -0.5, 1.5, "0.5"])
def test_one_class_split_refuses_an_anomaly_share_outside_the_open_unit_interval(share):
    x, y = class_coded(4)
    with pytest.raises(ValueError, match="anomaly_share"):
        one_class_split((x, y), (x, y), normal_class=0, anomaly_share=share)


@pytest.mark.parametrize("where", ["train", "test"])
def test_one_class_split_refuses_a_class_missing_from_a_split(where):
    x, y = class_coded(4)
    keep = y != 2
    train = (x[keep], y[keep]) if where == "train" else (x, y)
    test = (x[keep], y[keep]) if where == "test" else (x, y)
    with pytest.raises(ValueError, match="Class 2 needs training and test images"):
        one_class_split(train, test, normal_class=2)


def test_perfect_one_class_scorer_gives_auroc_one():
    (x, y) = class_coded(5)
    result = evaluate_one_class(ClassOracle(), one_class_split((x, y), (x, y), normal_class=1))
    assert result.metrics["auroc"] == 1.0
    assert result.info["anomaly_share"] == pytest.approx(2 / 3)


def gcn(images):
    """Reference: per image, centre, divide by the mean absolute deviation (flat: zeros)."""
    flat = images.reshape(len(images), -1).astype(float)
    flat -= flat.mean(axis=1, keepdims=True)
    spread = np.abs(flat).mean(axis=1, keepdims=True)
    return (flat / np.where(spread > 0, spread, 1.0)).reshape(images.shape)


def test_gcn_minmax_fits_the_scale_on_the_normal_training_images():
    rng = np.random.default_rng(0)
    x_train = rng.integers(0, 256, size=(6, 5, 5), dtype=np.uint8)
    x_test = rng.integers(0, 256, size=(4, 5, 5), dtype=np.uint8)
    low, high = gcn(x_train).min(), gcn(x_train).max()
    split = gcn_minmax(OneClassSplit(x_train, x_test, np.array([0, 1, 1, 0])))
    np.testing.assert_allclose(split.x_train, (gcn(x_train) - low) / (high - low), atol=1e-6)
    np.testing.assert_allclose(split.x_test, (gcn(x_test) - low) / (high - low), atol=1e-6)
    assert split.x_train.min() == 0.0 and split.x_train.max() == pytest.approx(1.0)
    np.testing.assert_array_equal(split.labels, [0, 1, 1, 0])


def test_gcn_minmax_ignores_brightness_and_contrast():
    digit = np.zeros((1, 4, 4))
    digit[0, 1:3, 1:3] = 100.0
    brighter = 2.0 * digit + 20.0  # more ink and a grey background: the same shape
    split = gcn_minmax(OneClassSplit(digit, np.concatenate([digit, brighter]), np.array([0, 1])))
    np.testing.assert_allclose(split.x_test[0], split.x_test[1], atol=1e-6)


def test_gcn_minmax_of_flat_training_images_only_shifts():
    # Flat images normalise to zeros: no span to divide by, so the scale stays 1.
    x_train = np.full((2, 3, 3), 7, np.uint8)
    x_test = np.random.default_rng(0).integers(0, 256, size=(3, 3, 3), dtype=np.uint8)
    split = gcn_minmax(OneClassSplit(x_train, x_test, np.array([0, 1, 1])))
    np.testing.assert_array_equal(split.x_train, np.zeros((2, 3, 3)))
    np.testing.assert_allclose(split.x_test, gcn(x_test), atol=1e-6)


# --- video --------------------------------------------------------------------------------------


def test_centre_frame_of_a_16_frame_clip_is_its_ninth_frame():
    np.testing.assert_array_equal(centre_frames(np.array([0, 1, 10]), 16), [8, 9, 18])


def test_a_16_frame_clip_scores_its_last_frame_by_default():
    # Clip 0 holds frames 0..15: its score belongs to frame 15, so a stream can score a
    # frame as soon as it arrives.
    np.testing.assert_array_equal(scored_frames(np.array([0, 1, 10]), 16), [15, 16, 25])
    np.testing.assert_array_equal(scored_frames(np.array([0, 1, 10]), 16, "centre"),
                                  [8, 9, 18])


def test_the_first_15_frames_take_the_first_clips_score_or_are_dropped():
    index = np.array([[0, s] for s in range(5)])  # 20 frames, clips of 16: starts 0..4
    scores = np.array([3.0, 1.0, 4.0, 1.0, 5.0])
    filled = frame_scores(scores, index, [20], clip_length=16)[0]
    np.testing.assert_array_equal(filled, [3.0] * 16 + [1.0, 4.0, 1.0, 5.0])
    dropped = frame_scores(scores, index, [20], clip_length=16, fill="drop")[0]
    assert np.isnan(dropped[:15]).all()
    np.testing.assert_array_equal(dropped[15:], scores)


def test_clip_scores_land_on_centre_frames_by_hand():
    # One video of 8 frames, clips of 4 frames starting at 0, 2, 4: centres 2, 4, 6.
    index = np.array([[0, 0], [0, 2], [0, 4]])
    dropped = frame_scores(np.array([1.0, 5.0, 3.0]), index, [8], clip_length=4, fill="drop",
                           alignment="centre")[0]
    np.testing.assert_array_equal(np.isnan(dropped), [1, 1, 0, 1, 0, 1, 0, 1])
    np.testing.assert_array_equal(dropped[[2, 4, 6]], [1.0, 5.0, 3.0])
    filled = frame_scores(np.array([1.0, 5.0, 3.0]), index, [8], clip_length=4,
                          alignment="centre")[0]
    np.testing.assert_allclose(filled, [1, 1, 1, 3, 5, 4, 3, 3])


def test_clips_of_several_videos_stay_with_their_video():
    index = np.array([[1, 0], [0, 0], [1, 1]])
    videos = frame_scores(np.array([7.0, 2.0, 9.0]), index, [3, 4], clip_length=2, fill="drop")
    np.testing.assert_array_equal(videos[0], [np.nan, 2.0, np.nan])
    np.testing.assert_array_equal(videos[1], [np.nan, 7.0, 9.0, np.nan])


def test_per_video_min_max_normalisation_and_regularity():
    videos = [np.array([2.0, 4.0, 3.0]), np.array([10.0, np.nan, 30.0]), np.array([5.0, 5.0])]
    normalised = normalise_per_video(videos)
    np.testing.assert_allclose(normalised[0], [0.0, 1.0, 0.5])
    np.testing.assert_array_equal(normalised[1], [0.0, np.nan, 1.0])
    np.testing.assert_array_equal(normalised[2], [0.0, 0.0])
    np.testing.assert_allclose(regularity_scores(videos)[0], [1.0, 0.0, 0.5])


def test_per_video_normalisation_of_a_span_below_one_and_of_one_scored_frame():
    videos = [np.array([0.1, 0.6, 0.35]), np.array([np.nan, 7.0]), np.array([np.nan, np.nan])]
    normalised = normalise_per_video(videos)
    np.testing.assert_allclose(normalised[0], [0.0, 1.0, 0.5])
    np.testing.assert_array_equal(normalised[1], [np.nan, 0.0])   # one frame: no spread
    np.testing.assert_array_equal(normalised[2], [np.nan, np.nan])


def test_a_clip_scored_beyond_its_video_is_refused():
    # A 2-frame clip starting at frame 1 of a 2-frame video scores frame 2, which is not there.
    with pytest.raises(ValueError, match="beyond its 2 frames"):
        frame_scores(np.array([1.0]), np.array([[0, 1]]), [2], clip_length=2)


def test_headline_auroc_pools_raw_scores_and_normalised_is_labelled_beside_it():
    # Clip length 3, "end" alignment: clips 0..3 score frames 2..5; frames 0, 1 take clip 0's.
    index = np.array([[v, s] for v in range(2) for s in range(4)])
    clip_scores = np.array([1.0, 9.0, 1.0, 1.0, 0.1, 0.1, 0.1, 0.9])
    labels = (np.array([0, 0, 0, 1, 0, 0]), np.array([0, 0, 0, 0, 0, 1]))
    videos = Videos((np.zeros((6, 2, 2), np.uint8),) * 2, labels, ("a", "b"))
    result = frame_level_evaluation(clip_scores, index, videos, clip_length=3)
    assert result.info["n_scored_frames"] == 12
    # Raw pooled: video 0's anomaly (9.0) beats all 10 normals; video 1's (0.9) beats the
    # five 0.1s and loses to video 0's five 1.0s: 15 of 20 pairs.
    assert result.metrics["auroc"] == pytest.approx(15 / 20)
    # Per video each anomaly is its video's maximum: normalised and macro are perfect.
    assert result.metrics["auroc_normalised"] == 1.0
    assert result.metrics["auroc_macro"] == 1.0
    np.testing.assert_allclose(result.scores, [1, 1, 1, 9, 1, 1, .1, .1, .1, .1, .1, .9])
    dropped = frame_level_evaluation(clip_scores, index, videos, clip_length=3, fill="drop")
    assert dropped.info["n_scored_frames"] == 8  # frames 0 and 1 of each video have no clip


def test_macro_auroc_averages_the_videos_holding_both_classes():
    scores = [np.array([0.0, 1.0, 2.0, 3.0]), np.array([1.0, 0.0, 3.0, 2.0]),
              np.array([5.0, 6.0])]
    labels = [np.array([0, 1, 0, 1]), np.array([0, 0, 1, 1]), np.array([0, 0])]
    metrics = video_metrics(scores, labels)
    # Video 0: pairs (1>0, 1<2, 3>0, 3>2) = 3 of 4; video 1: 4 of 4; video 2 has no anomaly.
    assert metrics["auroc_macro"] == pytest.approx((0.75 + 1.0) / 2)


def test_per_kind_auroc_ranks_each_kinds_frames_against_all_normal_frames():
    scores = [np.array([0.0, 5.0, 2.0]), np.array([1.0, 0.5, 3.0])]
    labels = [np.array([0, 1, 0]), np.array([0, 1, 1])]
    kinds = [np.array(["", "fast", ""]), np.array(["", "object", "fast"])]
    metrics = video_metrics(scores, labels, kinds)
    # Normals: 0, 2, 1. "fast": 5 and 3 beat all three (6 of 6); "object": 0.5 beats only 0.
    assert metrics["auroc_kind_fast"] == 1.0
    assert metrics["auroc_kind_object"] == pytest.approx(1 / 3)


def test_causal_smoothing_averages_the_current_and_previous_frames_only():
    video = np.array([4.0, 0.0, np.nan, 8.0, 2.0])
    np.testing.assert_allclose(smooth_scores([video], 3)[0], [4.0, 2.0, np.nan, 4.0, 5.0])
    np.testing.assert_array_equal(smooth_scores([video], 1)[0], video)
    # No future frame leaks in: changing the last frame leaves the earlier ones alone.
    changed = video.copy()
    changed[-1] = 100.0
    np.testing.assert_array_equal(smooth_scores([changed], 3)[0][:4],
                                  smooth_scores([video], 3)[0][:4])


def test_smoothing_width_is_chosen_by_raw_auroc_with_ties_to_the_narrowest():
    # Spiky errors inside a long anomaly: averaging lifts the dip at frame 3.
    scores = [np.array([1.0, 1.0, 6.0, 0.0, 6.0, 1.0, 1.0, 1.0])]
    labels = [np.array([0, 0, 1, 1, 1, 0, 0, 0])]
    width, by_width = choose_smoothing(scores, labels, (1, 2, 3))
    assert by_width[1] == pytest.approx(10 / 15)  # frame 3's 0.0 is below all 5 normals
    # Width 2: [1, 1, 3.5, 3, 3, 3.5, 1, 1]; the normal frame 5 ties 3.5: 12.5 of 15.
    assert by_width[2] == pytest.approx(12.5 / 15)
    # Width 3: [1, 1, 8/3, 7/3, 4, 7/3, 8/3, 1]; anomalies 8/3, 7/3, 4 against normals
    # 1, 1, 7/3, 8/3, 1: 4.5 + 3.5 + 5 of 15.
    assert by_width[3] == pytest.approx(13 / 15)
    assert width == 3
    assert choose_smoothing([np.array([0.0, 1.0])], [np.array([0, 1])], (4, 1))[0] == 1


class ClipBrightness:
    """Scores a clip by its mean pixel value (no training)."""

    def fit(self, x):
        return self

    def score(self, x):
        return x.reshape(len(x), -1).mean(axis=1)


def test_video_protocol_end_to_end_with_a_known_scorer():
    frames = np.zeros((12, 4, 4), np.uint8)
    frames[6:9] = 255  # bright, anomalous frames 6-8
    labels = np.zeros(12, np.int64)
    labels[6:9] = 1
    train = Videos((np.zeros((5, 4, 4), np.uint8),), (np.zeros(5, np.int64),), ("t",))
    test = Videos((frames,), (labels,), ("v",))
    result = evaluate_video(ClipBrightness(), train, test, clip_length=3, alignment="centre")
    assert result.metrics["auroc"] == 1.0
    assert result.info["n_test_clips"] == 10 and result.info["n_train_clips"] == 3
    # Scoring each clip's last frame, frames 9 and 10 still see the bright frames
    # (2/3 and 1/3) while frame 6 sees one (1/3): of the 27 pairs the anomalous 1/3
    # ties one normal, 2/3 ties one, so 7.5 + 8.5 + 9 = 25 are ordered.
    causal = evaluate_video(ClipBrightness(), train, test, clip_length=3)
    assert causal.metrics["auroc"] == pytest.approx(25 / 27)


def test_video_protocol_defaults_to_16_frame_clips_and_unsmoothed_frame_scores():
    # A 16-frame training video gives exactly one clip of the default length; an 18-frame
    # test video gives three, scoring frames 15, 16 and 17 (the first fills frames 0-14).
    train = Videos((np.zeros((16, 4, 4), np.uint8),), (np.zeros(16, np.int64),), ("t",))
    frames = np.zeros((18, 4, 4), np.uint8)
    frames[17] = 255
    labels = (np.arange(18) == 17).astype(np.int64)
    test = Videos((frames,), (labels,), ("v",))
    result = evaluate_video(ClipBrightness(), train, test)
    assert result.info["n_train_clips"] == 1 and result.info["n_test_clips"] == 3
    assert result.metrics["auroc"] == 1.0
    assert "frame_score_auroc" not in result.info and "smoothing_auroc" not in result.info
    direct = frame_level_evaluation(np.array([1.0, 2.0, 5.0]), np.array([[0, 0], [0, 1], [0, 2]]),
                                    test, clip_length=16)
    np.testing.assert_array_equal(direct.scores, [1.0] * 16 + [2.0, 5.0])
    assert direct.info["smoothing"] == 1


# --- tabular ------------------------------------------------------------------------------------


def test_random_split_is_seeded_and_disjoint():
    train, test = random_split(11, seed=4, run=2)
    again, _ = random_split(11, seed=4, run=2)
    other, _ = random_split(11, seed=4, run=3)
    np.testing.assert_array_equal(train, again)
    assert not np.array_equal(train, other)
    assert len(train) == 6 and sorted([*train, *test]) == list(range(11))


class FirstColumn:
    """Scores a row by its first feature; remembers what it was trained on."""

    def fit(self, x):
        self.trained_on = x
        return self

    def score(self, x):
        return x[:, 0]


def test_tabular_run_trains_on_normal_rows_of_the_training_half():
    rng = np.random.default_rng(0)
    y = (rng.random(200) < 0.2).astype(np.int64)
    x = np.stack([y * 10.0 + rng.random(200), rng.random(200)], axis=1).astype(np.float32)
    data = TabularData(x, y, y.astype(str), ("a", "b"), np.array([0, 1]), np.arange(200))
    scorer = FirstColumn()
    result = evaluate_tabular(scorer, data, seed=1, run=0, anomaly_share=None)
    train_rows, test_rows = random_split(200, seed=1, run=0)
    assert len(scorer.trained_on) == (y[train_rows] == 0).sum()
    # Min-max scaling fit on the normal training rows maps them into [0, 1].
    assert scorer.trained_on.min() >= 0.0 and scorer.trained_on.max() <= 1.0
    assert result.metrics["auroc"] == 1.0
    # q = the test anomaly share, and the scorer is perfect: P = R = F1 = 1.
    assert result.metrics["precision"] == result.metrics["recall"] == result.metrics["f1"] == 1.0
    assert result.info["flagged_share"] == pytest.approx(y[test_rows].mean())


# --- baselines ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["ocsvm", "iforest"])
def test_baselines_score_far_points_as_more_anomalous(name):
    rng = np.random.default_rng(0)
    normal = rng.normal(size=(300, 4))
    test = np.concatenate([rng.normal(size=(50, 4)), rng.normal(size=(50, 4)) + 8.0])
    labels = np.repeat([0, 1], 50)
    baseline = make_baseline(name, seed=0, max_train_samples=100).fit(normal)
    assert auroc(labels, baseline.score(test)) > 0.99


def test_ocsvm_trains_on_a_seeded_subsample():
    x = np.random.default_rng(0).normal(size=(500, 3))
    baseline = make_baseline("ocsvm", seed=0, max_train_samples=120).fit(x)
    assert baseline.n_train_ == 120 and baseline.estimator.fit_status_ == 0


def test_baselines_scale_uint8_images_to_unit_range():
    images = np.full((20, 2, 2), 255, np.uint8)
    baseline = make_baseline("iforest", seed=0).fit(images)
    assert baseline.estimator.n_features_in_ == 4
    with pytest.raises(ValueError, match="Received: baseline="):
        make_baseline("svdd")
