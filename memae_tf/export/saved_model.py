"""SavedModel export of a MemAE autoencoder for TF Serving."""

from __future__ import annotations

import math
import os
import pathlib
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence

import keras
import numpy as np
import tensorflow as tf

from memae_tf.common.checks import check_positive_int
from memae_tf.common.contract import (
    ATTENTION_OUTPUT,
    ATTENTION_SIGNATURE,
    EXPECTED_RATE_OUTPUT,
    FLAGGED_FRAME_SCORES,
    FRAME_SCORE_SIGNATURE,
    INPUT_NAME,
    INPUT_RANGE_OUTPUT,
    IS_ANOMALY_OUTPUT,
    MODEL_INFO_SIGNATURE,
    RECONSTRUCTION_OUTPUT,
    REFERENCE_QUANTILE_COUNT,
    REFERENCE_QUANTILES_OUTPUT,
    SCORE_MAP_OUTPUT,
    SCORE_MAP_SIGNATURE,
    SCORE_OUTPUT,
    SERVING_SIGNATURE,
    TAKES_UINT8_OUTPUT,
    THRESHOLD_OUTPUT,
    UINT8_SIGNATURES,
    frame_flag_output,
    frame_threshold_output,
    uint8_signature,
    version_directories,
)
from memae_tf.export.serving_config import (
    DEFAULT_SERVING_ROOT,
    BatchingParameters,
    write_batching_parameters,
    write_models_config,
)
from memae_tf.export.warmup import write_warmup_requests
from memae_tf.models.autoencoder import check_autoencoder
from memae_tf.scoring_graph import ScoringGraph, scale_uint8_tensor


def _check_threshold(threshold: float) -> float:
    if (
        isinstance(threshold, bool)
        or not isinstance(threshold, (int, float))
        or not math.isfinite(threshold)
    ):
        raise ValueError(
            "Received an invalid value for `threshold`, expected a finite float (set the "
            "detector's threshold first: infer_threshold(x_normal, fpr=...)). "
            f"Received: threshold={threshold!r}"
        )
    return float(threshold)


def _check_frame_thresholds(
    frame_thresholds: Mapping[str, float] | None, graph: ScoringGraph
) -> dict[str, float]:
    """Checks the thresholds of frame scores against the graph's; returns them as floats."""
    if frame_thresholds is None:
        return {}
    if graph.frame_scores is None or not isinstance(frame_thresholds, Mapping) or (
            set(frame_thresholds) - set(FLAGGED_FRAME_SCORES)):
        raise ValueError(
            f"Expected `frame_thresholds` to map frame scores of {FLAGGED_FRAME_SCORES} to "
            "thresholds, for a video model (inputs (clip_length, H, W, C)). Received: "
            f"frame_thresholds={frame_thresholds!r} for a model with inputs {graph.input_shape}"
        )
    return {name: _check_threshold(value) for name, value in frame_thresholds.items()}


def _model_info_constants(
    input_range: Sequence[float] | None,
    expected_rate: float | None,
    reference_quantiles: Sequence[float] | None,
) -> dict[str, np.ndarray]:
    """Checks the `model_info` values and returns those given as arrays (one row each)."""
    constants = {}
    if input_range is not None:
        low, high = (float(v) for v in input_range)
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise ValueError(
                "Received an invalid value for `input_range`, expected finite (low, high) "
                f"with low < high. Received: input_range={tuple(input_range)!r}"
            )
        constants[INPUT_RANGE_OUTPUT] = np.array([low, high], np.float64)
    if (expected_rate is None) != (reference_quantiles is None):
        raise ValueError(
            "Give `expected_rate` and `reference_quantiles` together (both are set by "
            f"infer_threshold) or neither. Received: expected_rate={expected_rate!r}, "
            f"reference_quantiles={'None' if reference_quantiles is None else '[...]'}"
        )
    if expected_rate is None:
        return constants
    if isinstance(expected_rate, bool) or not (
        isinstance(expected_rate, (int, float)) and 0.0 < expected_rate < 1.0
    ):
        raise ValueError(
            "Received an invalid value for `expected_rate`, expected a share in (0, 1). "
            f"Received: expected_rate={expected_rate!r}"
        )
    quantiles = np.asarray(reference_quantiles, dtype=np.float64)
    if (quantiles.shape != (REFERENCE_QUANTILE_COUNT,) or not np.all(np.isfinite(quantiles))
            or np.any(np.diff(quantiles) < 0)):
        raise ValueError(
            f"Expected `reference_quantiles` to be {REFERENCE_QUANTILE_COUNT} finite, "
            "non-decreasing scores (memae_tf.thresholds.reference_quantiles). Received: "
            f"shape={quantiles.shape}, finite={bool(np.all(np.isfinite(quantiles)))}"
        )
    constants[EXPECTED_RATE_OUTPUT] = np.float64(expected_rate)
    constants[REFERENCE_QUANTILES_OUTPUT] = quantiles
    return constants


def _float32_at_or_below(threshold: float) -> np.float32:
    """Returns the largest float32 not above `threshold`.

    A float32 score is above `threshold` exactly when it is above this value,
    so `model_info` exports each threshold as this float32: a client comparing
    the served float32 scores with it gets the served flags. (The nearest
    float32 may lie above `threshold`, and a score equal to it would then
    compare the other way.)

    Example:

    >>> float(_float32_at_or_below(0.1)) < 0.1 < float(np.float32(0.1))
    True
    """
    with np.errstate(over="ignore"):  # beyond float32's range: ±inf, or the largest float32
        rounded = np.float32(threshold)
        # float(): NumPy would compare a float32 with a Python float in float32.
        if float(rounded) <= threshold:
            return rounded
        return np.nextafter(rounded, np.float32(-np.inf))


def _above(scores: tf.Tensor, threshold: float) -> tf.Tensor:
    """The `is_anomaly` rule, `scores > threshold` in float64.

    As in process (`memae_tf.thresholds.above_threshold`): a float32
    comparison would round the threshold to the nearest float32 first.
    """
    return tf.cast(scores, tf.float64) > tf.constant(threshold, tf.float64)


def _signature_functions(
    graph: ScoringGraph, threshold: float, info: dict[str, np.ndarray],
    frame_thresholds: dict[str, float],
) -> dict[str, Callable[[tf.Tensor], dict[str, tf.Tensor]]]:
    """The serving signatures, each a thin view over the `ScoringGraph` functions."""

    def serving_default(x: tf.Tensor) -> dict[str, tf.Tensor]:
        outputs = graph.outputs(x)
        return {
            SCORE_OUTPUT: outputs["score"],
            IS_ANOMALY_OUTPUT: _above(outputs["score"], threshold),
            RECONSTRUCTION_OUTPUT: outputs["reconstruction"],
        }

    def score_map(x: tf.Tensor) -> dict[str, tf.Tensor]:
        return {SCORE_MAP_OUTPUT: graph.outputs(x)["score_map"]}

    def model_info(x: tf.Tensor) -> dict[str, tf.Tensor]:
        # It takes the usual `x` although it ignores its values: TF Serving's Predict
        # runs a signature only on exactly its inputs (predict_util.cc,
        # VerifyRequestInputsSize). One row per input row: TF Serving's batching
        # session splits every output along axis 0 and refuses outputs without one
        # (batching_session.cc).
        rows = tf.shape(x)[:1]
        values = {name: tf.constant(value) for name, value in info.items()}
        return {name: tf.broadcast_to(value, tf.concat([rows, tf.shape(value)], 0))
                for name, value in values.items()}

    functions = {SERVING_SIGNATURE: serving_default, SCORE_MAP_SIGNATURE: score_map,
                 MODEL_INFO_SIGNATURE: model_info}
    if graph.attention is not None:

        def memory_attention(x: tf.Tensor) -> dict[str, tf.Tensor]:
            return {ATTENTION_OUTPUT: graph.attention(x)}

        functions[ATTENTION_SIGNATURE] = memory_attention
    if graph.frame_scores is not None:

        def frame_score(x: tf.Tensor) -> dict[str, tf.Tensor]:
            scores = graph.frame_scores(x)
            flags = {frame_flag_output(name): _above(scores[name], value)
                     for name, value in frame_thresholds.items()}
            return {**scores, **flags}

        functions[FRAME_SCORE_SIGNATURE] = frame_score
    return functions


def _uint8_functions(
    functions: dict[str, Callable[[tf.Tensor], dict[str, tf.Tensor]]],
    input_range: Sequence[float],
) -> dict[str, Callable[[tf.Tensor], dict[str, tf.Tensor]]]:
    """The uint8 twins of the `UINT8_SIGNATURES` among `functions`: scale, then the function."""

    def twin(function: Callable[[tf.Tensor], dict[str, tf.Tensor]]
             ) -> Callable[[tf.Tensor], dict[str, tf.Tensor]]:
        return lambda x: function(scale_uint8_tensor(x, input_range))

    return {uint8_signature(name): twin(functions[name])
            for name in UINT8_SIGNATURES if name in functions}


def export_saved_model(
    model: keras.Model,
    model_base_path: str | os.PathLike,
    *,
    threshold: float,
    version: int | None = None,
    model_name: str | None = None,
    serving_root: str = DEFAULT_SERVING_ROOT,
    batching: BatchingParameters | None = None,
    scoring_graph: ScoringGraph | None = None,
    input_range: Sequence[float] | None = None,
    expected_rate: float | None = None,
    reference_quantiles: Sequence[float] | None = None,
    frame_thresholds: Mapping[str, float] | None = None,
) -> pathlib.Path:
    """Exports an autoencoder as a TF Serving SavedModel version.

    Writes `model_base_path/<version>/` with these signatures, all taking the input
    `x` (float32, `[None, *input_shape]`, but for the uint8 twins) and computed by
    the functions of `memae_tf.scoring_graph.ScoringGraph` (the graph behind
    in-process scoring):

    - `serving_default` → `score` (float32 `[None]`, the mean reconstruction
      error of the scoring graph's `error`), `is_anomaly` (bool `[None]`,
      `score > threshold`, compared in float64 as `MemAE.predict` compares)
      and `reconstruction` (shape of `x`). A sample with any NaN or Inf value
      scores +inf and so is always an anomaly (TF Serving checks no values;
      `memae serve` and `MemAEClient` refuse such requests before the graph);
    - `score_map` → `score_map` (that error per element, shape of `x`);
    - `memory_attention` → `memory_attention` (the memory addressing weights),
      only when the model has a `MemoryLayer`;
    - `frame_score` → `clip`, `last`, `patch`, `relative`,
      `last_plus_temporal` (float32 `[None]`
      each: the score of each clip's last frame by that rule of
      `memae_tf.evaluation.frame_score`), only for a video model (inputs
      `(clip_length, H, W, C)`), so that a stream (`StreamScorer`) gets the
      frame score chosen offline; with `frame_thresholds`, also
      `is_anomaly_<name>` (bool `[None]`, that score above its threshold,
      in float64) for each frame score given one;
    - `model_info` → `threshold`, `threshold_<name>` for each frame score
      given one (each the largest float32 not above that threshold, so that a
      served score is above it exactly when it is flagged), `takes_uint8`
      (bool, true, only when the uint8 twins below exist) and, when given,
      `input_range`, `expected_rate` and `reference_quantiles`, each repeated
      once per input row (see `memae_tf.common.contract`): what a client
      needs to scale `uint8` inputs, check float ones, flag and monitor the
      served scores;
    - `serving_default_uint8` and, for a video model, `frame_score_uint8`:
      the outputs of `serving_default` and `frame_score` for uint8 pixels
      `x` (uint8, `[None, *input_shape]`), scaled into `input_range` inside
      the graph with the float32 operations of
      `memae_tf.common.scaling.scale_uint8` (the same bits as
      `MemAE.preprocess`), only for image and clip models (inputs of rank 3
      or 4) exported with `input_range`. A request carries a quarter of the
      float32 bytes; `MemAEClient` sends uint8 batches there.

    The SavedModel holds only standard TensorFlow ops and loads with
    `tf.saved_model.load` without any code of this package. The version is written
    to a hidden temporary directory, with `assets.extra/tf_serving_warmup_requests`,
    and renamed into place, so a server polling the base path never sees half a
    version. `models.config` (entry of this model) and `batching_parameters.txt`
    are then written or updated in the parent of `model_base_path`.

    Args:
        model: Built single-input autoencoder whose input shape is fully defined.
        model_base_path: Directory of the model's versions, e.g. `models/memae`.
        threshold: Finite score threshold stored in the export for `is_anomaly`.
        version: Positive integer; `None` means one more than the largest
            existing version (1 for the first).
        model_name: Model name used in `models.config` and the warmup requests;
            defaults to the name of `model_base_path`.
        serving_root: Mount path of the parent of `model_base_path` inside the
            TF Serving container, used for the `base_path` in `models.config`.
        batching: Settings written to `batching_parameters.txt`; `None` means
            `BatchingParameters()`.
        scoring_graph: The `ScoringGraph` of `model` that in-process scoring
            uses (`MemAE.scoring_graph`), so that both call the very same traced
            functions; `None` builds one.
        input_range: `(low, high)` range of the model's inputs, exported in
            `model_info` (`MemAE.export` passes the detector's); None leaves it
            and the uint8 signatures out, and clients then neither check float
            inputs nor scale uint8 ones.
        expected_rate: Share of samples the threshold flags on its reference
            data (the `fpr` or `contamination` of `infer_threshold`), or None.
        reference_quantiles: The 101 quantiles of the reference scores
            (`memae_tf.thresholds.reference_quantiles`); given with
            `expected_rate` or not at all.
        frame_thresholds: For a video model, frame-score name (`"last"`,
            `"patch"`, `"relative"`, `"last_plus_temporal"`) → finite
            threshold (`MemAE.frame_thresholds_`), each exported as the flag
            `is_anomaly_<name>` of the `frame_score` signature and as
            `threshold_<name>` of `model_info`; None exports the frame scores
            without flags.

    Returns:
        The version directory written.

    Raises:
        FileExistsError: If `version` already exists under `model_base_path`.

    Example:

    >>> from memae_tf.models import build_autoencoder
    >>> model = build_autoencoder("kdd", "memae", input_shape=(12,), units=(8, 3))
    >>> export_saved_model(model, "models/kdd", threshold=0.05)  # doctest: +SKIP
    PosixPath('models/kdd/1')
    """
    input_shape = check_autoencoder(model)
    threshold = _check_threshold(threshold)
    base = pathlib.Path(model_base_path)
    model_name = base.resolve().name if model_name is None else model_name
    if not isinstance(model_name, str) or not model_name or "/" in model_name:
        raise ValueError(
            "Received an invalid value for `model_name`, expected a non-empty name "
            f"without '/'. Received: model_name={model_name!r}"
        )
    if version is None:
        version = max(version_directories(base), default=0) + 1
    target = base / str(check_positive_int("version", version, allow_none=True))
    if target.exists():
        raise FileExistsError(
            f"Version {version} of {base} already exists; pass another `version` or "
            "None for the next free one."
        )

    if scoring_graph is None:
        scoring_graph = ScoringGraph(model)
    elif scoring_graph.model is not model:
        raise ValueError(
            "Expected `scoring_graph` to be the ScoringGraph of `model`. Received the graph "
            f"of model {scoring_graph.model.name!r} for model {model.name!r}."
        )
    info = _model_info_constants(input_range, expected_rate, reference_quantiles)
    frame_thresholds = _check_frame_thresholds(frame_thresholds, scoring_graph)
    info[THRESHOLD_OUTPUT] = _float32_at_or_below(threshold)
    for name, value in frame_thresholds.items():
        info[frame_threshold_output(name)] = _float32_at_or_below(value)
    # Images and clips come as uint8 pixels; table rows do not.
    takes_uint8 = input_range is not None and len(input_shape) >= 3
    if takes_uint8:
        info[TAKES_UINT8_OUTPUT] = np.bool_(True)
    archive = keras.export.ExportArchive()
    archive.track(model)
    functions = _signature_functions(scoring_graph, threshold, info, frame_thresholds)
    dtypes = dict.fromkeys(functions, tf.float32)
    if takes_uint8:
        uint8_functions = _uint8_functions(functions, info[INPUT_RANGE_OUTPUT])
        functions.update(uint8_functions)
        dtypes.update(dict.fromkeys(uint8_functions, tf.uint8))
    for name, function in functions.items():
        archive.add_endpoint(name, function, input_signature=[
            tf.TensorSpec((None, *input_shape), dtypes[name], name=INPUT_NAME)])

    base.mkdir(parents=True, exist_ok=True)  # only once everything is checked and traced
    temp = pathlib.Path(tempfile.mkdtemp(dir=base, prefix=f".{version}.tmp-"))
    try:
        archive.write_out(str(temp), verbose=False)
        write_warmup_requests(temp, model_name, dict.fromkeys(functions, input_shape),
                              input_name=INPUT_NAME,
                              input_dtypes={name: dtype.as_numpy_dtype
                                            for name, dtype in dtypes.items()})
        # mkdtemp makes the directory private; the server may run as another user.
        temp.chmod(0o755)
        os.rename(temp, target)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    write_models_config(base.parent, model_name, serving_root)
    write_batching_parameters(base.parent, batching)
    return target
