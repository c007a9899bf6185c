"""TensorFlow compute behind scoring: one graph for in-process scoring and serving.

The detector (`MemAE.score`) and the exported SavedModel signatures call the same
functions defined here, so that a served score equals an in-process score.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from memae_tf.choices import (
    DEFAULT_ERROR,
    FRAME_SCORE_CONTENT_FLOOR,
    FRAME_SCORE_PATCH_SIZE,
    FRAME_SCORE_PATCH_STRIDE,
    score_batch_size,
)
from memae_tf.choices import ERRORS as ERRORS
from memae_tf.common.checks import check_choice, check_positive_int
from memae_tf.common.contract import FRAME_SCORES, INPUT_NAME
from memae_tf.common.scaling import uint8_scale
from memae_tf.models.bn_folding import inference_model
from memae_tf.models.memory_block import find_memory_layer, make_encoder
from memae_tf.models.scaling import input_scaler

# SSIM's Gaussian window (Wang et al. 2004): 11 × 11, σ = 1.5; its constants
# C1 = (0.01 L)², C2 = (0.03 L)² for a dynamic range L.
SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
# The key of `frame_scores_and_maps`'s error map of each clip's last frame.
LAST_SCORE_MAP = "last_score_map"


def check_error(error: str, input_shape: tuple | None = None) -> str:
    """Returns `error` if it names a known reconstruction error, else raises.

    With `input_shape` (one sample's shape), also checks that `"ssim"` gets
    images `(H, W, C)` or clips `(T, H, W, C)` of more than `SSIM_WINDOW // 2`
    pixels a side.
    """
    check_choice("error", error, ERRORS)
    if error == "ssim" and input_shape is not None:
        shape = tuple(input_shape)
        if len(shape) not in (3, 4) or min(shape[-3:-1]) <= SSIM_WINDOW // 2:
            raise ValueError(
                "`error='ssim'` compares images: it expects inputs shaped (H, W, C) or clips "
                f"(T, H, W, C) with H and W above {SSIM_WINDOW // 2}. "
                f"Received: input_shape={shape}"
            )
    return error


def ssim_map(x: tf.Tensor, y: tf.Tensor, input_range: Sequence[float]) -> tf.Tensor:
    """Local structural similarity of two image (or clip) batches, per pixel and channel.

    The means, variances and covariance are Gaussian-weighted over an 11×11
    window (σ = 1.5) around every pixel, each channel (and each frame of a
    clip) on its own; the images are extended by mirroring at the border (the
    edge pixel repeated), so the map has the inputs' shape:

    ```
    SSIM = (2 μx μy + C1)(2 σxy + C2) / ((μx² + μy² + C1)(σx² + σy² + C2))
    ```

    with C1 = (0.01 L)², C2 = (0.03 L)² and L = high − low, the dynamic range of the pixels.

    Args:
        x: Float32 images `(batch, H, W, C)` or clips `(batch, T, H, W, C)`.
        y: Float32 tensor of the same shape.
        input_range: `(low, high)` range of the pixel values, e.g. `(0, 1)` or `(-1, 1)`.

    Returns:
        Float32 of the shape of `x`, 1 where the two agree locally.

    Example:

    >>> x = tf.random.uniform((2, 16, 16, 1))
    >>> float(tf.reduce_min(ssim_map(x, x, (0.0, 1.0)))) > 0.9999
    True
    """
    if len(x.shape) == 5:
        frames = (-1, *x.shape[2:])
        similarity = ssim_map(tf.reshape(x, frames), tf.reshape(y, frames), input_range)
        return tf.reshape(similarity, tf.shape(x))
    height, width, channels = x.shape[1], x.shape[2], x.shape[3]
    rows, columns = tf.constant(ssim_blur_matrix(height)), tf.constant(ssim_blur_matrix(width))
    # The five local moments in one pass, as (5 × batch, C, H, W) images (a plain
    # reshape for one channel). The blur is `rows @ image @ columnsᵀ`: one 2-D
    # matrix product over W for all images, then one batched product over H.
    stacked = tf.concat([x, y, x * x, y * y, x * y], axis=0)
    planes = (tf.reshape(stacked, (-1, 1, height, width)) if channels == 1
              else tf.transpose(stacked, [0, 3, 1, 2]))
    blurred = tf.reshape(
        tf.matmul(tf.reshape(planes, (-1, width)), columns, transpose_b=True), tf.shape(planes))
    blurred = tf.matmul(rows, blurred)
    blurred = (tf.reshape(blurred, tf.shape(stacked)) if channels == 1
               else tf.transpose(blurred, [0, 2, 3, 1]))
    mu_x, mu_y, xx, yy, xy = tf.split(blurred, 5, axis=0)
    dynamic_range = float(input_range[1]) - float(input_range[0])
    c1, c2 = (0.01 * dynamic_range) ** 2, (0.03 * dynamic_range) ** 2
    var_x, var_y = xx - mu_x * mu_x, yy - mu_y * mu_y
    covariance = xy - mu_x * mu_y
    return ((2.0 * mu_x * mu_y + c1) * (2.0 * covariance + c2)) / (
        (mu_x * mu_x + mu_y * mu_y + c1) * (var_x + var_y + c2))


def ssim_blur_matrix(size: int) -> np.ndarray:
    """`(size, size)` float32 matrix of the 1-D Gaussian blur with the edges mirrored.

    Row i holds the weights of output i: tap k of the window lands on pixel
    i + k, reflected into the image with the edge pixel repeated (index -1 is
    0, index size is size - 1), so `matrix @ column` blurs a column exactly as
    padding it symmetrically and convolving would. `ssim_map` blurs images as
    `rows @ image @ columnsᵀ`.

    Args:
        size: Pixels along the blurred axis; more than `SSIM_WINDOW // 2`.

    Returns:
        Float32 `(size, size)`; every row sums to 1.

    Example:

    >>> ssim_blur_matrix(8).sum(axis=1).round(6).tolist() == [1.0] * 8
    True
    """
    radius = SSIM_WINDOW // 2
    offsets = np.arange(-radius, radius + 1)
    taps = np.exp(-0.5 * (offsets / SSIM_SIGMA) ** 2)
    taps /= taps.sum()
    matrix = np.zeros((size, size))
    for i in range(size):
        source = i + offsets
        source = np.where(source < 0, -source - 1, source)
        source = np.where(source >= size, 2 * size - source - 1, source)
        np.add.at(matrix[i], source, taps)
    return matrix.astype(np.float32)


def reconstruction_outputs(
    model: keras.Model, x: tf.Tensor, error: str = DEFAULT_ERROR,
    input_range: Sequence[float] = (0.0, 1.0),
) -> dict[str, tf.Tensor]:
    """Reconstructs `x` and measures the error, in inference mode.

    Args:
        model: Autoencoder mapping `(batch, *input_shape)` to the same shape.
        x: Float32 batch in the model's input range.
        error: `"mse"` (squared error, the paper's score), `"l1"` (absolute
            error, the score of the authors' released code) or `"ssim"`
            (one minus the local structural similarity, `ssim_map`; images
            and clips, frame by frame).
        input_range: `(low, high)` range of the model's inputs; sets SSIM's constants.

    Returns:
        Dict with `reconstruction` (shape of `x`), `score_map` (the error per
        element, shape of `x`; for a model with a `FeatureScaler`, between the
        scaled input and the scaled reconstruction) and `score` (its mean per sample, shape
        `(batch,)`, higher = more anomalous).
    """
    check_error(error, tuple(x.shape[1:]))
    reconstruction = tf.cast(model(x, training=False), tf.float32)
    # A model that takes raw features is compared after its own input scaler, so
    # every feature weighs alike whatever its units (as in training).
    scaler = input_scaler(model)
    target, rebuilt = (x, reconstruction) if scaler is None else (scaler(x), scaler(reconstruction))
    if error == "mse":
        score_map = tf.math.squared_difference(target, rebuilt)
    elif error == "l1":
        score_map = tf.abs(target - rebuilt)
    else:
        score_map = 1.0 - ssim_map(x, reconstruction, input_range)
    axes = list(range(1, len(x.shape)))
    return {
        "reconstruction": reconstruction,
        "score_map": score_map,
        "score": tf.reduce_mean(score_map, axis=axes),
    }


def clip_frame_scores(
    x: tf.Tensor, score_map: tf.Tensor, reconstruction: tf.Tensor
) -> dict[str, tf.Tensor]:
    """The score of the frame each clip scores (its last), by every rule of `FRAME_SCORES`.

    For a clip `x` of `L` frames and its per-element error `e` (`score_map`):
    `"clip"` is the mean of `e` over the clip; `"last"` its mean over the last
    frame; `"patch"` the largest mean of the last frame's `e` (averaged over
    channels) over the `FRAME_SCORE_PATCH_SIZE`-pixel square windows every
    `FRAME_SCORE_PATCH_STRIDE` pixels, wholly inside the frame (a side shorter
    than the window takes one window of its length); `"relative"` the last
    frame's mean error over its moving content, `mean((x[L-1] - x̄)²) +
    FRAME_SCORE_CONTENT_FLOOR` with `x̄` the clip's per-pixel mean over its
    frames; `"last_plus_temporal"` is `"last"` plus the mean over the last
    frame of `(Δx - Δx̂)²`, with `Δ` the change from frame `L-2` to frame
    `L-1` and `x̂` the reconstruction. `memae_tf.evaluation.frame_score` says
    why each exists and computes the same in NumPy from stored arrays.

    Args:
        x: Float32 clips `(batch, L, H, W, C)` in the model's input range.
        score_map: Their error per element, the shape of `x`.
        reconstruction: Their reconstruction, the shape of `x`.

    Returns:
        Dict frame-score name → float32 `(batch,)`.
    """
    height, width = score_map.shape[2], score_map.shape[3]
    last = score_map[:, -1]
    window = (min(FRAME_SCORE_PATCH_SIZE, height), min(FRAME_SCORE_PATCH_SIZE, width))
    patches = tf.nn.avg_pool2d(tf.reduce_mean(last, axis=-1, keepdims=True), window,
                               FRAME_SCORE_PATCH_STRIDE, "VALID")
    content = tf.reduce_mean(tf.math.squared_difference(x[:, -1], tf.reduce_mean(x, axis=1)),
                             axis=[1, 2, 3])
    last_mean = tf.reduce_mean(last, axis=[1, 2, 3])
    scores = {
        "clip": tf.reduce_mean(score_map, axis=[1, 2, 3, 4]),
        "last": last_mean,
        "patch": tf.reduce_max(patches, axis=[1, 2, 3]),
        "relative": last_mean / (content + FRAME_SCORE_CONTENT_FLOOR),
        "last_plus_temporal": last_mean + tf.reduce_mean(tf.math.squared_difference(
            x[:, -1] - x[:, -2], reconstruction[:, -1] - reconstruction[:, -2]),
            axis=[1, 2, 3]),
    }
    return {name: scores[name] for name in FRAME_SCORES}


def _finite_samples(x: tf.Tensor) -> tf.Tensor:
    """True for each sample of `x` without a NaN or Inf value, `(batch,)`."""
    return tf.reduce_all(tf.math.is_finite(x), axis=list(range(1, len(x.shape))))


def _infinite_unless(finite: tf.Tensor, scores: tf.Tensor) -> tf.Tensor:
    """`scores`, with +inf where the sample is not `finite` or its score is not finite."""
    finite = finite & tf.math.is_finite(scores)
    return tf.where(finite, scores, tf.fill(tf.shape(scores), tf.constant(float("inf"))))


def flag_non_finite(x: tf.Tensor, outputs: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
    """Gives a sample with any NaN or Inf value (or a non-finite score) the score +inf.

    A broken sensor feed must never pass as normal: a NaN score compares False
    against every threshold, so it would read as "not an anomaly". With +inf,
    `score > threshold` holds for any finite threshold. Other outputs are left
    as they are (their non-finite elements show where the input was bad).

    Args:
        x: The float32 batch that was scored.
        outputs: The dict of `reconstruction_outputs(model, x, error)`.

    Returns:
        `outputs` with `score` replaced by +inf where the sample is not finite.
    """
    return {**outputs, "score": _infinite_unless(_finite_samples(x), outputs["score"])}


def scale_uint8_tensor(x: tf.Tensor, input_range: Sequence[float]) -> tf.Tensor:
    """Maps a uint8 tensor onto `input_range` in float32, as `memae_tf.common.scaling.scale_uint8`.

    The same two float32 operations on the same constants (`uint8_scale`):
    a cast (exact for uint8), a multiplication and an addition, each rounded
    to float32, so the exported uint8 signatures take the very bits that
    `MemAE.preprocess` and the client compute with NumPy.

    Args:
        x: uint8 tensor of any shape.
        input_range: `(low, high)` range of the model's inputs.

    Returns:
        Float32 tensor of the shape of `x`; 0 maps to `low`, 255 to `high`.

    Example:

    >>> scale_uint8_tensor(tf.constant([0, 255], tf.uint8), (-1.0, 1.0)).numpy()
    array([-1.,  1.], dtype=float32)
    """
    scale, offset = uint8_scale(input_range)
    return (tf.cast(x, tf.float32) * tf.constant(scale, tf.float32)
            + tf.constant(offset, tf.float32))


class ScoringGraph:
    """Traced TensorFlow functions that score batches of a fixed input shape.

    `outputs(x)` returns the dict of `reconstruction_outputs`, where a sample
    with any NaN or Inf value scores +inf (`flag_non_finite`); `attention(x)`
    returns the memory addressing weights (None when the model has no memory);
    for a video model (inputs `(L, H, W, C)`), `frame_scores(x)` returns the
    dict of `clip_frame_scores`, and `frame_scores_and_maps(x)` the same dict
    with the error map of each clip's last frame under `LAST_SCORE_MAP`
    (both None for other models). All are `tf.function`s
    with an explicit `[None, *input_shape]` float32 signature, so they trace
    once and can be exported as serving signatures.
    `outputs` evaluates `inference_model(model)`: the same layers and live
    variables, with batch norm folded into the convolutions.

    Args:
        model: The autoencoder.
        error: The reconstruction error of `score` and `score_map` (`ERRORS`).
        jit_compile: Compile the functions with XLA.
        input_range: `(low, high)` range of the model's inputs (SSIM's
            dynamic range), as `MemAE.input_range`.

    Example:

    >>> graph = ScoringGraph(model)                       # doctest: +SKIP
    >>> graph.outputs(tf.zeros((2, 28, 28, 1)))["score"]  # doctest: +SKIP
    """

    def __init__(self, model: keras.Model, error: str = DEFAULT_ERROR, jit_compile: bool = False,
                 input_range: Sequence[float] = (0.0, 1.0)) -> None:
        self.model = model
        self.input_shape = tuple(model.input_shape[1:])
        self.error = check_error(error, self.input_shape)
        self.input_range = (float(input_range[0]), float(input_range[1]))
        signature = [tf.TensorSpec((None, *self.input_shape), tf.float32, name=INPUT_NAME)]
        compute = inference_model(model)
        # No AutoGraph: the scoring code branches on Python values only, and
        # converting its functions cost a new detector's first score about 0.5 s
        # of CPU (2 cores).
        self.outputs = tf.function(
            lambda x: flag_non_finite(
                x, reconstruction_outputs(compute, x, self.error, self.input_range)),
            input_signature=signature,
            jit_compile=jit_compile,
            autograph=False,
        )
        self.frame_scores = self.frame_scores_and_maps = None
        if len(self.input_shape) == 4:

            def scored_frames(x: tf.Tensor, last_maps: bool = False) -> dict[str, tf.Tensor]:
                outputs = reconstruction_outputs(compute, x, self.error, self.input_range)
                scores = clip_frame_scores(x, outputs["score_map"], outputs["reconstruction"])
                finite = _finite_samples(x)  # once for every frame score
                scored = {name: _infinite_unless(finite, value) for name, value in scores.items()}
                if last_maps:
                    scored[LAST_SCORE_MAP] = outputs["score_map"][:, -1]
                return scored

            self.frame_scores = tf.function(scored_frames, input_signature=signature,
                                            jit_compile=jit_compile, autograph=False)
            # Traced on first use only: the scores and the maps an overlay shows, one pass.
            self.frame_scores_and_maps = tf.function(
                lambda x: scored_frames(x, last_maps=True), input_signature=signature,
                jit_compile=jit_compile, autograph=False)
        encoder = make_encoder(model)
        self.memory_layer = find_memory_layer(model)
        self.attention = None
        if encoder is not None:
            layer = self.memory_layer
            self.attention = tf.function(
                lambda x: layer.addressing(encoder(x, training=False)),
                input_signature=signature,
                jit_compile=jit_compile,
                autograph=False,
            )

    def run(
        self, x: np.ndarray, batch_size: int | None = None, output: str = "score"
    ) -> np.ndarray:
        """Computes one output over a prepared float32 array, `batch_size` samples at a time.

        Args:
            x: Float32 array `(n, *input_shape)` (see `memae_tf.data.prepare_inputs`).
            batch_size: Samples per call of the traced function; None for
                `memae_tf.choices.score_batch_size` of the sample shape
                (1,024 28×28 images, 256 32×32×3 images, 16 clips of 16×64×64).
            output: A key of `outputs` (`"score"`, `"score_map"`,
                `"reconstruction"`), `"memory_attention"` or, for a video
                model, a frame score of `FRAME_SCORES` (`frame_scores`).

        Returns:
            The output of every sample, concatenated along the batch axis.

        Raises:
            ValueError: For a bad `batch_size`, `"memory_attention"` of a
                model without memory, or a frame score of a model without clips.
        """
        if output in FRAME_SCORES:
            return self.run_frame_scores(x, batch_size)[output]
        if output == "memory_attention":
            if self.attention is None:
                raise ValueError("This model has no MemoryLayer, so it has no memory attention.")
            return _concatenated(_batched(self.attention, x, batch_size))
        return _concatenated(result[output] for result in _batched(self.outputs, x, batch_size))

    def run_frame_scores(
        self, x: np.ndarray, batch_size: int | None = None
    ) -> dict[str, np.ndarray]:
        """Computes every frame score of a video model over prepared clips, in one pass.

        Args:
            x: Float32 clips `(n, clip_length, H, W, C)` (see
                `memae_tf.data.prepare_inputs`).
            batch_size: Clips per call of `frame_scores`; None for
                `memae_tf.choices.score_batch_size` of the clip shape.

        Returns:
            Dict frame-score name (`FRAME_SCORES`) → float32 `(n,)`.

        Raises:
            ValueError: For a bad `batch_size` or a model without clip inputs.
        """
        return self._run_clips(self.frame_scores, x, batch_size, FRAME_SCORES)

    def run_frame_scores_and_maps(
        self, x: np.ndarray, batch_size: int | None = None
    ) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """`run_frame_scores` and the error map of each clip's last frame, in one pass.

        Args:
            x: Float32 clips `(n, clip_length, H, W, C)`.
            batch_size: Clips per call of `frame_scores_and_maps`; None for
                `memae_tf.choices.score_batch_size` of the clip shape.

        Returns:
            `(scores, maps)`: the dict of `run_frame_scores` and float32
            `(n, H, W, C)`, the last frame of each clip's `score_map`.

        Raises:
            ValueError: For a bad `batch_size` or a model without clip inputs.
        """
        scores = self._run_clips(self.frame_scores_and_maps, x, batch_size,
                                 (*FRAME_SCORES, LAST_SCORE_MAP))
        maps = scores.pop(LAST_SCORE_MAP)
        return scores, maps

    def _run_clips(
        self, function: Callable[[tf.Tensor], Any] | None, x: np.ndarray,
        batch_size: int | None, keys: Sequence[str],
    ) -> dict[str, np.ndarray]:
        """The outputs `keys` of a clip function over `x`, joined across its batches."""
        if function is None:
            raise ValueError(f"Frame scores need a video model with inputs (clip_length, H, W, "
                             f"C). Received a model with inputs {self.input_shape}")
        results = list(_batched(function, x, batch_size))
        return {key: _concatenated(result[key] for result in results) for key in keys}


def _batched(
    function: Callable[[tf.Tensor], Any], x: np.ndarray, batch_size: int | None
) -> Iterator[Any]:
    """Yields `function` of each batch of `batch_size` samples of `x` (None: the default)."""
    if batch_size is None:
        batch_size = score_batch_size(x.shape[1:])
    check_positive_int("batch_size", batch_size)
    for start in range(0, len(x), batch_size):
        yield function(tf.constant(x[start:start + batch_size]))


def _concatenated(parts: Iterable[Any]) -> np.ndarray:
    return np.concatenate([np.asarray(part) for part in parts], axis=0)
