"""`StreamScorer` against a NumPy stand-in of a served video model.

The stand-in answers `MemAEClient`'s public calls (`score`, `run_signature`,
`metadata`, `model_info`) with the signatures an export of this version serves
(`memae_tf.common.contract`) and refuses what TF Serving refuses
(predict_util.cc: an unknown signature is FAILED_PRECONDITION `Serving signature
key "<name>" not found.`, an unknown output INVALID_ARGUMENT `output tensor alias
not found in signature`). Each output is a NumPy function of the clip that
weights its frames by their place, so a clip in the wrong order or shifted by one
frame changes it; every expected score is computed here from the frames
themselves: frame t scores the clip of frames t - L + 1 .. t (the offline
protocol's `alignment="end"`, `memae_tf.evaluation.video`).
"""

import grpc
import numpy as np
import pytest

from memae_tf.client import FailedPreconditionError, InvalidArgumentError
from memae_tf.client._protocol import ModelInfo, ModelMetadata, SignatureInfo, TensorInfo
from memae_tf.client.stream import FrameWindow, ScoredFrame, StreamScorer

FRAME_SCORES = ("last", "patch", "relative", "last_plus_temporal")
# Each output's value is its offset plus the frames' weighted means (see `_value`).
OFFSETS = {"score": 0.0, **{name: 1000.0 * (i + 1) for i, name in enumerate(FRAME_SCORES)}}


def _value(output: str, clip: np.ndarray) -> float:
    """The stand-in's `output` of one clip `(L, H, W, 1)`: frame i weighs i + 1."""
    means = clip.reshape(len(clip), -1).mean(axis=1, dtype=np.float64)
    return OFFSETS[output] + float(np.dot(np.arange(1, len(clip) + 1), means))


def expected_scores(frames: np.ndarray, clip_length: int, output: str) -> np.ndarray:
    """Frame t: `output` of frames t - L + 1 .. t; NaN before the first full clip."""
    return np.array([np.nan if t < clip_length - 1 else
                     _value(output, frames[t - clip_length + 1:t + 1]) for t in range(len(frames))])


class ServedVideoModel:
    """A served video model, as `MemAEClient` sees it.

    Args:
        clip_shape: The model's input `(L, H, W, 1)`.
        threshold: `model_info`'s threshold (`is_anomaly` is the score above it).
        frame_thresholds: Frame score → threshold; with them the `frame_score`
            signature has an `is_anomaly_<name>` output for each.
        frame_score_signature: Whether the `frame_score` signature is served
            (an export of an earlier version has none).
        model_info: Whether the `model_info` signature is served.
    """

    def __init__(self, clip_shape, threshold=0.0, frame_thresholds=None,
                 frame_score_signature=True, model_info=True):
        self.clip_shape = tuple(clip_shape)
        self.threshold, self.frame_thresholds = threshold, frame_thresholds
        self.requests = []  # (signature, output names, batch size)
        self.signatures = {"serving_default": ("score", "is_anomaly", "reconstruction"),
                           "score_map": ("score_map",), "__saved_model_init_op": ()}
        if model_info:
            self.signatures["model_info"] = ("threshold",)
        if frame_score_signature:
            self.signatures["frame_score"] = (*FRAME_SCORES, *(
                f"is_anomaly_{name}" for name in frame_thresholds or ()))
        self.has_model_info = model_info

    def _output(self, name: str, clips: np.ndarray) -> np.ndarray:
        if name.startswith("is_anomaly"):
            score = name.removeprefix("is_anomaly").removeprefix("_") or "score"
            threshold = (self.threshold if score == "score"
                         else self.frame_thresholds[score])
            return self._output(score, clips) > threshold
        return np.array([_value(name, clip) for clip in clips], np.float32)

    def run_signature(self, x, *, signature=None, output_filter=None):
        signature = signature or "serving_default"
        if signature not in self.signatures:
            raise FailedPreconditionError(grpc.StatusCode.FAILED_PRECONDITION,
                                          f'Serving signature key "{signature}" not found.')
        outputs = self.signatures[signature]
        for alias in output_filter or outputs:
            if alias not in outputs:
                raise InvalidArgumentError(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"output tensor alias not found in signature: {alias} Outputs expected "
                    f"to be in the set {{{','.join(outputs)}}}.")
        x = np.asarray(x)
        if x.dtype != np.uint8 or x.shape[1:] != self.clip_shape:
            raise InvalidArgumentError(grpc.StatusCode.INVALID_ARGUMENT,
                                       f"input x: expected {self.clip_shape}, got {x.shape}")
        self.requests.append((signature, tuple(output_filter or outputs), len(x)))
        return {name: self._output(name, x) for name in output_filter or outputs}

    def score(self, x):
        return self.run_signature(x, output_filter=["score"])["score"]

    def metadata(self):
        signatures = {name: SignatureInfo({"x": TensorInfo(np.dtype("float32"), None)},
                                          dict.fromkeys(outputs, TensorInfo(None, None)),
                                          "tensorflow/serving/predict")
                      for name, outputs in self.signatures.items()}
        return ModelMetadata("walkway", 1, signatures)

    def model_info(self):
        if not self.has_model_info:
            return None
        return ModelInfo(1, (-1.0, 1.0), self.threshold, None, None, self.frame_thresholds)


def frames_of(n: int, shape=(4, 5), seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, *shape), dtype=np.uint8)


@pytest.mark.parametrize("frame_score", ["clip", *FRAME_SCORES])
def test_each_frame_scores_the_clip_that_ends_there(frame_score):
    frames = frames_of(7)
    model = ServedVideoModel((3, 4, 5, 1))
    scores = StreamScorer(model, clip_length=3, frame_score=frame_score).score_frames(frames)
    output = "score" if frame_score == "clip" else frame_score
    np.testing.assert_allclose(scores, expected_scores(frames, 3, output), rtol=1e-6)
    # Only the score is asked for: a model exported without frame thresholds serves it.
    signature = "serving_default" if frame_score == "clip" else "frame_score"
    assert {request[:2] for request in model.requests} == {(signature, (output,))}


def test_the_default_window_is_memaes_sixteen_frame_clip():
    # Gong et al. (2019), MemAE's video network: clips of 16 frames (the "video" preset's
    # input_shape[0]); the 16th frame is the first one scored.
    frames = frames_of(17, shape=(2, 2))
    model = ServedVideoModel((16, 2, 2, 1))
    scores = StreamScorer(model, frame_score="clip").score_frames(frames)
    np.testing.assert_allclose(scores, expected_scores(frames, 16, "score"), rtol=1e-6)
    assert FrameWindow().clip_length == 16


def test_score_frames_without_a_stream_id_feeds_stream_0():
    frames = frames_of(3)
    scorer = StreamScorer(ServedVideoModel((3, 4, 5, 1)), clip_length=3, frame_score="clip")
    scorer.score_frames(frames[:2])
    assert scorer.streams == [0]
    assert scorer.push({0: frames[2]})[0] == pytest.approx(_value("score", frames), rel=1e-6)


@pytest.mark.parametrize("frame_score", ["clip", "last", "last_plus_temporal"])
def test_flags_are_the_served_models_score_above_its_threshold(frame_score):
    frames = frames_of(9)
    output = "score" if frame_score == "clip" else frame_score
    expected = expected_scores(frames, 3, output)
    # A threshold between the scores (a quarter above their median; they lie a pixel
    # mean's weight apart or more), so that some frames are flagged and some not.
    threshold = float(np.nanmedian(expected)) + 0.25
    model = ServedVideoModel((3, 4, 5, 1), threshold=threshold, frame_thresholds={
        name: threshold for name in FRAME_SCORES})
    scorer = StreamScorer(model, clip_length=3, frame_score=frame_score)
    got = [scorer.push_flagged({"cam": frame})["cam"] for frame in frames]
    assert all(isinstance(frame, ScoredFrame) for frame in got)
    assert [frame.is_anomaly for frame in got] == [
        None if np.isnan(score) else bool(np.float32(score) > threshold) for score in expected]
    assert {None, True, False} == {frame.is_anomaly for frame in got}
    np.testing.assert_allclose([frame.score for frame in got], expected, rtol=1e-6)
    flag = "is_anomaly" if frame_score == "clip" else f"is_anomaly_{frame_score}"
    assert {request[1] for request in model.requests} == {(output, flag)}


def test_streams_of_one_frame_size_share_a_request_and_other_sizes_get_their_own():
    small = {name: frames_of(3, (4, 5), seed) for seed, name in enumerate(("a", "b"))}
    big = frames_of(3, (6, 4), seed=7)

    class TwoSizes:
        """Two served models behind one client: the input's frame size picks one."""

        def __init__(self):
            self.models = {(4, 5): ServedVideoModel((3, 4, 5, 1)),
                           (6, 4): ServedVideoModel((3, 6, 4, 1))}

        def score(self, x):
            return self.models[x.shape[2:4]].score(x)

    client = TwoSizes()
    scorer = StreamScorer(client, clip_length=3, frame_score="clip")
    for t in range(3):
        scores = scorer.push({"a": small["a"][t], "big": big[t], "b": small["b"][t]})
    assert scores == pytest.approx({"a": _value("score", small["a"]),
                                    "big": _value("score", big),
                                    "b": _value("score", small["b"])}, rel=1e-6)
    assert [r[2] for r in client.models[(4, 5)].requests] == [2]
    assert [r[2] for r in client.models[(6, 4)].requests] == [1]


def test_a_window_takes_grey_frames_with_a_channel_and_refuses_colour_frames():
    window = FrameWindow(clip_length=2)
    window.push(np.zeros((4, 1), np.uint8))  # a (H, W) frame one pixel wide
    clip = window.push(np.ones((4, 1, 1), np.uint8))
    np.testing.assert_array_equal(clip[..., 0, 0], [[0, 0, 0, 0], [1, 1, 1, 1]])
    with pytest.raises(ValueError, match=r"uint8 grey frame .* \(4, 1, 3\)"):
        window.push(np.zeros((4, 1, 3), np.uint8))


def test_the_threshold_is_the_served_one_of_the_scorers_frame_score():
    model = ServedVideoModel((3, 4, 5, 1), threshold=0.5, frame_thresholds={
        name: 10.0 + i for i, name in enumerate(FRAME_SCORES)})
    assert StreamScorer(model, frame_score="clip").threshold == 0.5
    for i, name in enumerate(FRAME_SCORES):
        assert StreamScorer(model, frame_score=name).threshold == 10.0 + i
    without_frames = ServedVideoModel((3, 4, 5, 1), threshold=0.5)
    assert StreamScorer(without_frames, frame_score="last").threshold is None
    assert StreamScorer(without_frames, frame_score="clip").threshold == 0.5
    without_info = ServedVideoModel((3, 4, 5, 1), model_info=False)
    assert StreamScorer(without_info, frame_score="clip").threshold is None


def _second_push(model, frame_score, flagged):
    scorer = StreamScorer(model, clip_length=2, frame_score=frame_score)
    push = scorer.push_flagged if flagged else scorer.push
    push({"a": frames_of(1)[0]})
    return push({"a": frames_of(1)[0]})


def test_a_model_without_the_frame_score_signature_is_named_with_its_signatures():
    model = ServedVideoModel((2, 4, 5, 1), frame_score_signature=False)
    with pytest.raises(ValueError, match=r"`frame_score` output 'last' \(exported by this "
                                         r"version\)\. Received a model with the signatures "
                                         r"\['model_info', 'score_map', 'serving_default'\]: "
                                         r"export it again, or pass frame_score='clip'"):
        _second_push(model, "last", flagged=False)


def test_a_model_without_frame_thresholds_says_to_set_them_for_flags():
    model = ServedVideoModel((2, 4, 5, 1))
    assert _second_push(model, "patch", flagged=False)["a"] == pytest.approx(
        _value("patch", np.stack([frames_of(1)[0]] * 2)), rel=1e-6)
    with pytest.raises(ValueError, match=r"`frame_score` output 'is_anomaly_patch' .* "
                                         r"Received a model with the outputs \['last', .*\]: "
                                         r"set its frame thresholds with infer_threshold"):
        _second_push(model, "patch", flagged=True)


def test_a_refusal_of_the_input_itself_reaches_the_caller_unchanged():
    # The served model has every output asked for; the server refuses the clip's shape.
    model = ServedVideoModel((2, 8, 8, 1), frame_thresholds={name: 0.0 for name in FRAME_SCORES})
    for frame_score, flagged in (("last", False), ("last", True), ("clip", True)):
        with pytest.raises(InvalidArgumentError, match="input x: expected"):
            _second_push(model, frame_score, flagged)


class MisansweringModel(ServedVideoModel):
    """Answers `output` with `rows(n)` rows for n clips sent; every other output as served."""

    def __init__(self, clip_shape, output, rows, **kwargs):
        super().__init__(clip_shape, **kwargs)
        self.output, self.rows = output, rows

    def _output(self, name, clips):
        values = super()._output(name, clips)
        if name != self.output:
            return values
        return np.resize(values, self.rows(len(clips)))


@pytest.mark.parametrize("frame_score, flagged, output", [
    ("clip", False, "score"),                      # MemAEClient.score
    ("last", False, "last"),                       # run_signature, frame_score signature
    ("clip", True, "is_anomaly"),                  # the flag of serving_default
    ("last_plus_temporal", True, "is_anomaly_last_plus_temporal"),
])
@pytest.mark.parametrize("rows, received", [
    pytest.param(lambda n: n - 1, r"shape \(1,\)", id="a-row-short"),
    pytest.param(lambda n: n + 1, r"shape \(3,\)", id="a-row-too-many"),
    pytest.param(lambda n: (n, 1), r"shape \(2, 1\)", id="a-column-per-clip"),
])
def test_an_answer_without_one_value_per_clip_names_both_counts(
    frame_score, flagged, output, rows, received
):
    # A batched signature answers one row per input row (TF Serving's Predict); an answer
    # with another number cannot be matched to the streams and must not be.
    model = MisansweringModel((1, 4, 5, 1), output, rows,
                              frame_thresholds={name: 0.0 for name in FRAME_SCORES})
    scorer = StreamScorer(model, clip_length=1, frame_score=frame_score)
    push = scorer.push_flagged if flagged else scorer.push
    with pytest.raises(ValueError, match=(
            rf"Expected the served model to answer one `{output}` value per clip sent: "
            rf"shape \(2,\) for 2 clips\. Received: {received}$")):
        push({"a": frames_of(1)[0], "b": frames_of(1, seed=1)[0]})
    assert [request[2] for request in model.requests] == [2]  # both clips were sent
