"""TensorFlow compute behind scoring: one graph for in-process scoring and serving.

The detector (`MemAE.score`) and the exported SavedModel signatures call the same
functions defined here, so that a served score equals an in-process score.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from memae_tf.choices import ERRORS as ERRORS
from memae_tf.choices import check_choice
from memae_tf.common.checks import check_positive_int
from memae_tf.common.contract import INPUT_NAME
from memae_tf.models.bn_folding import inference_model
from memae_tf.models.memory_block import find_memory_layer, make_encoder


def check_error(error: str) -> str:
    """Returns `error` if it names a known reconstruction error, else raises."""
    return check_choice("error", error, ERRORS)


def reconstruction_outputs(
    model: keras.Model, x: tf.Tensor, error: str = "mse"
) -> dict[str, tf.Tensor]:
    """Reconstructs `x` and measures the error, in inference mode.

    Args:
        model: Autoencoder mapping `(batch, *input_shape)` to the same shape.
        x: Float32 batch in the model's input range.
        error: `"mse"` (squared error, the paper's score) or `"l1"` (absolute
            error, the score of the authors' released code).

    Returns:
        Dict with `reconstruction` (shape of `x`), `score_map` (the error per
        element, shape of `x`) and `score` (its mean per sample, shape
        `(batch,)`, higher = more anomalous).
    """
    check_error(error)
    reconstruction = tf.cast(model(x, training=False), tf.float32)
    if error == "mse":
        score_map = tf.math.squared_difference(x, reconstruction)
    else:
        score_map = tf.abs(x - reconstruction)
    axes = list(range(1, len(x.shape)))
    return {
        "reconstruction": reconstruction,
        "score_map": score_map,
        "score": tf.reduce_mean(score_map, axis=axes),
    }


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
    axes = list(range(1, len(x.shape)))
    finite = tf.reduce_all(tf.math.is_finite(x), axis=axes) & tf.math.is_finite(outputs["score"])
    infinity = tf.fill(tf.shape(outputs["score"]), tf.constant(float("inf"), tf.float32))
    return {**outputs, "score": tf.where(finite, outputs["score"], infinity)}


class ScoringGraph:
    """Traced TensorFlow functions that score batches of a fixed input shape.

    `outputs(x)` returns the dict of `reconstruction_outputs`, where a sample
    with any NaN or Inf value scores +inf (`flag_non_finite`); `attention(x)`
    returns the memory addressing weights (None when the model has no memory).
    Both are `tf.function`s with an explicit `[None, *input_shape]` float32
    signature, so they trace once and can be exported as serving signatures.
    `outputs` evaluates `inference_model(model)`: the same layers and live
    variables, with batch norm folded into the convolutions.

    Args:
        model: The autoencoder.
        error: The reconstruction error of `score` and `score_map` (`ERRORS`).
        jit_compile: Compile the functions with XLA.

    Example:

    >>> graph = ScoringGraph(model)                       # doctest: +SKIP
    >>> graph.outputs(tf.zeros((2, 28, 28, 1)))["score"]  # doctest: +SKIP
    """

    def __init__(self, model: keras.Model, error: str = "mse", jit_compile: bool = False) -> None:
        self.model = model
        self.error = check_error(error)
        self.input_shape = tuple(model.input_shape[1:])
        signature = [tf.TensorSpec((None, *self.input_shape), tf.float32, name=INPUT_NAME)]
        compute = inference_model(model)
        self.outputs = tf.function(
            lambda x: flag_non_finite(x, reconstruction_outputs(compute, x, self.error)),
            input_signature=signature,
            jit_compile=jit_compile,
        )
        encoder = make_encoder(model)
        self.memory_layer = find_memory_layer(model)
        self.attention = None
        if encoder is not None:
            layer = self.memory_layer
            self.attention = tf.function(
                lambda x: layer.addressing(encoder(x, training=False)),
                input_signature=signature,
                jit_compile=jit_compile,
            )

    def run(self, x: np.ndarray, batch_size: int = 256, output: str = "score") -> np.ndarray:
        """Computes one output over a prepared float32 array, `batch_size` samples at a time.

        Args:
            x: Float32 array `(n, *input_shape)` (see `memae_tf.data.prepare_inputs`).
            batch_size: Samples per call of the traced function.
            output: A key of `outputs` (`"score"`, `"score_map"`,
                `"reconstruction"`) or `"memory_attention"`.

        Returns:
            The output of every sample, concatenated along the batch axis.

        Raises:
            ValueError: For a bad `batch_size`, or `"memory_attention"` of a
                model without memory.
        """
        check_positive_int("batch_size", batch_size)
        if output == "memory_attention" and self.attention is None:
            raise ValueError("This model has no MemoryLayer, so it has no memory attention.")
        parts = []
        for start in range(0, len(x), batch_size):
            batch = tf.constant(x[start:start + batch_size])
            parts.append(self.attention(batch) if output == "memory_attention"
                         else self.outputs(batch)[output])
        return np.concatenate([np.asarray(part) for part in parts], axis=0)
