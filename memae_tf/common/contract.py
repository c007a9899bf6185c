"""The serving contract: what the exporter writes, the server serves and the client asks.

One SavedModel version per integer directory of a model base path, each with
these signatures, all taking the float32 input `x` (`[None, *input_shape]`):

- `serving_default` → `score` (float32 `[None]`), `is_anomaly` (bool `[None]`,
  `score > threshold`, compared in float64 as `MemAE.predict` compares) and
  `reconstruction` (shape of `x`);
- `score_map` → `score_map` (error per element, shape of `x`);
- `memory_attention` → `memory_attention` (only for models with a memory);
- `frame_score` → `clip`, `last`, `patch`, `relative` and
  `last_plus_temporal` (float32 `[None]`
  each; only for video models, inputs `(clip_length, H, W, C)`): the score
  of the frame each clip scores, its last, by each rule of
  `memae_tf.evaluation.frame_score` (the names of `FRAME_SCORES`);
  a clip with any NaN or Inf value scores +inf. When the detector's threshold
  was set by `infer_threshold`, also `is_anomaly_last`, `is_anomaly_patch`,
  `is_anomaly_relative` and `is_anomaly_last_plus_temporal` (one for each of
  `FLAGGED_FRAME_SCORES`; bool `[None]`,
  that frame score above its own threshold, `MemAE.frame_thresholds_`;
  `frame_flag_output`); the `clip` score's flag is `serving_default`'s
  `is_anomaly`;
- `model_info` → constants that let a client prepare inputs and watch the
  served scores, one row per input row (TF Serving's batching splits every
  output along its first axis): `threshold` (float32 `[None]`, the largest
  float32 not above the threshold `is_anomaly` uses, so that a served float32
  score is above it exactly when `is_anomaly` is true), for a video model
  exported with frame thresholds `threshold_last`, `threshold_patch`,
  `threshold_relative` and `threshold_last_plus_temporal` (float32 `[None]`,
  the same for each `is_anomaly_<name>`; `frame_threshold_output`),
  `input_range` (float64 `[None, 2]`, the model's
  `(low, high)`; every `MemAE.export` has it) and, for detectors whose
  threshold came from `infer_threshold`, `expected_rate` (float64 `[None]`,
  the `fpr` or `contamination` it used) and `reference_quantiles` (float64
  `[None, 101]`, the quantiles at levels 0, 0.01, ..., 1 of the scores it was
  set from), and `takes_uint8` (bool `[None]`, true; only in exports with
  the uint8 signatures below). The input values of `model_info` are ignored; a
  client sends one row of zeros;
- `serving_default_uint8` and, for a video model, `frame_score_uint8`
  (`uint8_signature`; only for image and clip models exported with their
  `input_range`): the outputs of `serving_default` and `frame_score` for
  the uint8 input `x` (`[None, *input_shape]`, raw pixels), scaled into the
  input range inside the graph as `memae_tf.common.scaling.scale_uint8`
  scales it, bit for bit. A request carries a quarter of the float32 bytes.

`memae_tf.export` writes this, `memae_tf.serving` reads it, `memae_tf.client`
builds its requests from it. The module imports only the standard library, so
the TensorFlow-free client distribution ships it.
"""

from __future__ import annotations

import os
import pathlib

INPUT_NAME = "x"
SERVING_SIGNATURE = "serving_default"
SCORE_MAP_SIGNATURE = "score_map"
ATTENTION_SIGNATURE = "memory_attention"
FRAME_SCORE_SIGNATURE = "frame_score"
# How a clip's per-pixel error becomes the score of the frame it scores
# (`memae_tf.evaluation.frame_score`): the whole clip's mean, its last frame's mean, the
# last frame's worst patch, the last frame's error per unit of moving content, the last
# frame's mean plus the error of its change from the frame before. They name the
# outputs of the `frame_score` signature, and are what `--frame-score` accepts.
FRAME_SCORES = ("clip", "last", "patch", "relative", "last_plus_temporal")
# The frame scores with a threshold and a flag of their own (`MemAE.frame_thresholds_`,
# `frame_threshold_output`, `frame_flag_output`): all but "clip", whose threshold is
# the detector's `threshold_` and whose flag is the served `is_anomaly`.
FLAGGED_FRAME_SCORES = tuple(name for name in FRAME_SCORES if name != "clip")
# The frame score `memae score-video`, `score_video` and `StreamScorer` give when none
# is named: the one chosen on real footage (the walkway's development split,
# benchmarks/VIDEO_PROTOCOL.md); "clip" is the served `score`.
DEFAULT_FRAME_SCORE = "last_plus_temporal"
SCORE_OUTPUT = "score"
IS_ANOMALY_OUTPUT = "is_anomaly"
RECONSTRUCTION_OUTPUT = "reconstruction"
SCORE_MAP_OUTPUT = "score_map"
ATTENTION_OUTPUT = "memory_attention"
MODEL_INFO_SIGNATURE = "model_info"
INPUT_RANGE_OUTPUT = "input_range"
THRESHOLD_OUTPUT = "threshold"
EXPECTED_RATE_OUTPUT = "expected_rate"
REFERENCE_QUANTILES_OUTPUT = "reference_quantiles"
TAKES_UINT8_OUTPUT = "takes_uint8"
# The signatures with a twin taking uint8 pixels (`uint8_signature`), where they exist.
UINT8_SIGNATURES = (SERVING_SIGNATURE, FRAME_SCORE_SIGNATURE)
# Reference quantiles at levels i / (REFERENCE_QUANTILE_COUNT - 1): 0%, 1%, ..., 100%.
REFERENCE_QUANTILE_COUNT = 101
# The `max_batch_size` of the batching_parameters.txt that `memae export` writes and
# serving/k8s/configmap.yaml ships: with batching, TF Serving refuses larger requests,
# so it is also the client's default row limit per request.
DEFAULT_MAX_BATCH_SIZE = 64
# The `GetModelMetadataRequest.metadata_field` TF Serving answers.
SIGNATURE_DEF_FIELD = "signature_def"
# The MetaGraph tag TF Serving loads.
SERVE_TAG = "serve"
# TF Serving's default gRPC port (tensorflow_serving/model_servers/server.h, `grpc_port`).
GRPC_PORT = 8500
# `memae serve`'s defaults, shared by `serve()` and its command line (which must not
# import gRPC to print its help): seconds between two listings of the model base path,
# and seconds in-flight requests get to finish after SIGTERM/SIGINT.
SERVE_POLL_INTERVAL_SECONDS = 1.0
SERVE_GRACE_SECONDS = 30.0
# TF Serving's load retries (tensorflow_serving/model_servers/server.h): a failed load is
# tried 5 more times, a minute apart.
SERVE_MAX_NUM_LOAD_RETRIES = 5
SERVE_LOAD_RETRY_INTERVAL_SECONDS = 60.0
WARMUP_DIRNAME = "assets.extra"
WARMUP_FILENAME = "tf_serving_warmup_requests"


def frame_flag_output(frame_score: str) -> str:
    """Returns the `frame_score` signature's output that flags frames by `frame_score`.

    The flag of each frame score but `"clip"` (whose flag is the served
    `is_anomaly`): that score above its threshold.

    Example:

    >>> frame_flag_output("last_plus_temporal")
    'is_anomaly_last_plus_temporal'
    """
    return f"{IS_ANOMALY_OUTPUT}_{frame_score}"


def frame_threshold_output(frame_score: str) -> str:
    """Returns the `model_info` output holding the threshold of `frame_flag_output(frame_score)`.

    Example:

    >>> frame_threshold_output("last_plus_temporal")
    'threshold_last_plus_temporal'
    """
    return f"{THRESHOLD_OUTPUT}_{frame_score}"


def uint8_signature(signature: str) -> str:
    """Returns the name of the twin of `signature` that takes uint8 pixels.

    Example:

    >>> uint8_signature("serving_default")
    'serving_default_uint8'
    """
    return f"{signature}_uint8"


# absl::ascii_isspace: what absl::SimpleAtoi skips at either end of a number.
_ASCII_WHITESPACE = " \t\n\v\f\r"


def parse_version_number(name: str) -> int | None:
    """Returns the version a child of a model base path stands for, or None if none.

    As TF Serving's `ParseVersionNumber`
    (tensorflow_serving/sources/storage_path/file_system_storage_path_source.cc),
    `absl::SimpleAtoi` into an int64: ASCII whitespace at either end is
    skipped, then one optional `+` or `-`, then ASCII decimal digits only
    (leading zeros allowed), within the int64 range. A negative number is a
    version like any other.

    Example:

    >>> [parse_version_number(name) for name in ["3", "03", "+3", " 3\\n", "-1", "3a", "²"]]
    [3, 3, 3, 3, -1, None, None]
    """
    text = name.strip(_ASCII_WHITESPACE)
    digits = text[1:] if text[:1] in ("+", "-") else text
    if not digits or not all("0" <= char <= "9" for char in digits):
        return None
    value = -int(digits) if text[0] == "-" else int(digits)
    return value if -(2**63) <= value < 2**63 else None


def version_children(model_base_path: str | os.PathLike) -> list[tuple[int, pathlib.Path]]:
    """Returns (version, path) for each child of a model base path that names a version.

    As TF Serving's listing (`PollFileSystemForServable`): every child, a
    directory or a file, in the byte order of the names (a `std::set`),
    whose name `parse_version_number` reads; two names may stand for one
    version ("3" and "03"). A missing base path has none.
    """
    base = pathlib.Path(model_base_path)
    if not base.is_dir():
        return []
    names = sorted((child.name for child in base.iterdir()), key=os.fsencode)
    return [(version, base / name) for name in names
            if (version := parse_version_number(name)) is not None]


def version_directories(model_base_path: str | os.PathLike) -> dict[int, pathlib.Path]:
    """Returns version → path for the versions under a model base path, as TF Serving sees them.

    The children `version_children` finds; of two names for one version the
    later in byte order counts, as TF Serving's `IndexChildrenByVersion`
    keeps it (so "3" over "03"). In-progress exports in hidden temporary
    directories are not versions. A missing base path has no versions.

    Args:
        model_base_path: Directory of the model's versions.

    Returns:
        Dict sorted by version.

    Example:

    >>> version_directories("models/memae")  # doctest: +SKIP
    {1: PosixPath('models/memae/1'), 2: PosixPath('models/memae/2')}
    """
    return dict(sorted(dict(version_children(model_base_path)).items()))


def warmup_file(version_dir: str | os.PathLike) -> pathlib.Path:
    """Returns the path of the warmup records inside a SavedModel version directory."""
    return pathlib.Path(version_dir) / WARMUP_DIRNAME / WARMUP_FILENAME
