"""TensorFlow compute behind scoring: one graph for in-process scoring and serving.

The detector (`MemAE.score`) and the exported SavedModel signatures call the same
functions defined here, so that a served score equals an in-process score.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from memae_tf.inference import inference_model
from memae_tf.models.memory_block import find_memory_layer, make_encoder


def reconstruction_outputs(model: keras.Model, x: tf.Tensor) -> dict[str, tf.Tensor]:
    """Reconstructs `x` and measures the error, in inference mode.

    Args:
        model: Autoencoder mapping `(batch, *input_shape)` to the same shape.
        x: Float32 batch in the model's input range.

    Returns:
        Dict with `reconstruction` (shape of `x`), `score_map` (squared error per
        element, shape of `x`) and `score` (mean squared error per sample,
        shape `(batch,)`, higher = more anomalous).
    """
    reconstruction = tf.cast(model(x, training=False), tf.float32)
    score_map = tf.math.squared_difference(x, reconstruction)
    axes = list(range(1, len(x.shape)))
    return {
        "reconstruction": reconstruction,
        "score_map": score_map,
        "score": tf.reduce_mean(score_map, axis=axes),
    }


class ScoringGraph:
    """Traced TensorFlow functions that score batches of a fixed input shape.

    `outputs(x)` returns the dict of `reconstruction_outputs`; `attention(x)`
    returns the memory addressing weights (None when the model has no memory).
    Both are `tf.function`s with an explicit `[None, *input_shape]` float32
    signature, so they trace once and can be exported as serving signatures.
    `outputs` evaluates `inference_model(model)`: the same layers and live
    variables, with batch norm folded into the convolutions.

    Args:
        model: The autoencoder.
        jit_compile: Compile the functions with XLA.

    Example:

    >>> graph = ScoringGraph(model)                       # doctest: +SKIP
    >>> graph.outputs(tf.zeros((2, 28, 28, 1)))["score"]  # doctest: +SKIP
    """

    def __init__(self, model: keras.Model, jit_compile: bool = False) -> None:
        self.model = model
        self.input_shape = tuple(model.input_shape[1:])
        signature = [tf.TensorSpec((None, *self.input_shape), tf.float32, name="x")]
        compute = inference_model(model)
        self.outputs = tf.function(
            lambda x: reconstruction_outputs(compute, x),
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
