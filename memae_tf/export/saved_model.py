"""SavedModel export of a MemAE autoencoder for TF Serving."""

from __future__ import annotations

import math
import os
import pathlib
import shutil
import tempfile
from collections.abc import Callable

import keras
import tensorflow as tf

from memae_tf.common.checks import check_positive_int
from memae_tf.common.contract import (
    ATTENTION_OUTPUT,
    ATTENTION_SIGNATURE,
    INPUT_NAME,
    IS_ANOMALY_OUTPUT,
    RECONSTRUCTION_OUTPUT,
    SCORE_MAP_OUTPUT,
    SCORE_MAP_SIGNATURE,
    SCORE_OUTPUT,
    SERVING_SIGNATURE,
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
from memae_tf.scoring_graph import ScoringGraph


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


def _signature_functions(
    graph: ScoringGraph, threshold: tf.Variable
) -> dict[str, Callable[[tf.Tensor], dict[str, tf.Tensor]]]:
    """The serving signatures, each a thin view over the `ScoringGraph` functions."""

    def serving_default(x: tf.Tensor) -> dict[str, tf.Tensor]:
        outputs = graph.outputs(x)
        return {
            SCORE_OUTPUT: outputs["score"],
            IS_ANOMALY_OUTPUT: outputs["score"] > threshold,
            RECONSTRUCTION_OUTPUT: outputs["reconstruction"],
        }

    def score_map(x: tf.Tensor) -> dict[str, tf.Tensor]:
        return {SCORE_MAP_OUTPUT: graph.outputs(x)["score_map"]}

    functions = {SERVING_SIGNATURE: serving_default, SCORE_MAP_SIGNATURE: score_map}
    if graph.attention is not None:

        def memory_attention(x: tf.Tensor) -> dict[str, tf.Tensor]:
            return {ATTENTION_OUTPUT: graph.attention(x)}

        functions[ATTENTION_SIGNATURE] = memory_attention
    return functions


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
) -> pathlib.Path:
    """Exports an autoencoder as a TF Serving SavedModel version.

    Writes `model_base_path/<version>/` with these signatures, all taking the input
    `x` (float32, `[None, *input_shape]`) and computed by the functions of
    `memae_tf.scoring_graph.ScoringGraph` (the graph behind in-process scoring):

    - `serving_default` → `score` (float32 `[None]`, the mean reconstruction
      error of the scoring graph's `error`), `is_anomaly` (bool `[None]`, `score > threshold`) and
      `reconstruction` (shape of `x`). A sample with any NaN or Inf value
      scores +inf and so is always an anomaly (TF Serving checks no values;
      `memae serve` and `MemAEClient` refuse such requests before the graph);
    - `score_map` → `score_map` (that error per element, shape of `x`);
    - `memory_attention` → `memory_attention` (the memory addressing weights),
      only when the model has a `MemoryLayer`.

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
    base.mkdir(parents=True, exist_ok=True)
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
    threshold_variable = tf.Variable(threshold, dtype=tf.float32, trainable=False,
                                     name="threshold")
    archive = keras.export.ExportArchive()
    archive.track(model)
    signature = [tf.TensorSpec((None, *input_shape), tf.float32, name=INPUT_NAME)]
    functions = _signature_functions(scoring_graph, threshold_variable)
    for name, function in functions.items():
        archive.add_endpoint(name, function, input_signature=signature)

    temp = pathlib.Path(tempfile.mkdtemp(dir=base, prefix=f".{version}.tmp-"))
    try:
        archive.write_out(str(temp), verbose=False)
        write_warmup_requests(temp, model_name, dict.fromkeys(functions, input_shape),
                              input_name=INPUT_NAME)
        # mkdtemp makes the directory private; the server may run as another user.
        temp.chmod(0o755)
        os.rename(temp, target)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    write_models_config(base.parent, model_name, serving_root)
    write_batching_parameters(base.parent, batching)
    return target
