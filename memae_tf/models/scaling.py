"""Models that take raw features: find and adapt their `FeatureScaler`s, measure errors."""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np
from keras import ops

from memae_tf.layers.feature_scaler import FeatureScaler


def feature_scalers(model: keras.Model) -> list[FeatureScaler]:
    """The `FeatureScaler` layers of `model` (none for a model that takes scaled inputs)."""
    return [layer for layer in model.layers if isinstance(layer, FeatureScaler)]


def input_scaler(model: keras.Model) -> FeatureScaler | None:
    """The scaler applied to the model's raw input (the errors are measured after it), or None."""
    return next((layer for layer in feature_scalers(model) if not layer.invert), None)


def adapt_feature_scalers(model: keras.Model, x: np.ndarray) -> bool:
    """Adapts every `FeatureScaler` of `model` on the training rows `x`.

    The input scaler and the output's inverse scaler get the same statistics,
    so the reconstruction comes back in raw units.

    Returns:
        Whether the model has scalers (False: nothing to adapt).
    """
    scalers = feature_scalers(model)
    for scaler in scalers:
        scaler.adapt(x)
    return bool(scalers)


def reconstruction_loss(model: keras.Model) -> str | Callable:
    """The training loss: `"mse"`, or for raw-feature models the MSE after the input scaler.

    The squared error of raw features would weigh each feature by its
    variance; after the scaler every feature weighs alike, as in the scores
    (`memae_tf.scoring_graph.reconstruction_outputs`).
    """
    scaler = input_scaler(model)
    if scaler is None:
        return "mse"

    def scaled_mse(y_true, y_pred):
        return ops.mean(ops.square(scaler(y_true) - scaler(y_pred)), axis=-1)

    return scaled_mse
