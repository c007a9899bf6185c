"""Deprecated alias of `memae_tf.models.bn_folding` (batch-norm folding); removed in 0.2."""

from memae_tf._deprecation import warn_moved
from memae_tf.models.bn_folding import inference_model, output_layer_names  # noqa: F401

warn_moved(__name__, "memae_tf.models.bn_folding")
