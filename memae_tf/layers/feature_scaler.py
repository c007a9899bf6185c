"""`FeatureScaler`: per-feature scaling with statistics adapted on training data."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

from memae_tf.common.checks import check_choice

# How each method centres and scales a feature (statistics of the adapted data).
SCALINGS = ("standard", "robust", "minmax")


@keras.saving.register_keras_serializable(package="memae_tf")
class FeatureScaler(keras.layers.Layer):
    """Scales each feature with statistics of the training data.

    `y = (x - center) / scale` per feature (or, with `invert=True`,
    `y = x * scale + center`), where `adapt(data)` sets

    - `"standard"`: center = mean, scale = standard deviation (as
      scikit-learn's `StandardScaler`);
    - `"robust"`: center = median, scale = interquartile range, the 75th
      minus the 25th percentile (as `RobustScaler`);
    - `"minmax"`: center = minimum, scale = maximum − minimum (as
      `MinMaxScaler`, into [0, 1] on the adapted data).

    A scale of zero (a constant feature, or a robust scale of a feature
    mostly at one value) becomes 1, as in scikit-learn, so that the feature is
    only centred. The statistics are non-trainable weights: they are saved
    with the model and are part of an exported SavedModel, so raw features go
    in wherever the model runs. The layer computes in float32 whatever the
    dtype policy, since raw features may be large.

    Args:
        method: `"standard"`, `"robust"` or `"minmax"`.
        invert: Apply the inverse map (back to raw features).
        **kwargs: Base layer arguments (`name`, ...).

    Input shape:
        `(batch, d)`.

    Output shape:
        `(batch, d)`.

    Example:

    >>> scaler = FeatureScaler("minmax")
    >>> scaler.adapt(np.array([[0.0, 10.0], [2.0, 30.0]], np.float32))
    >>> np.asarray(scaler(np.array([[1.0, 20.0]], np.float32))).tolist()
    [[0.5, 0.5]]
    """

    def __init__(self, method: str = "standard", invert: bool = False, **kwargs: Any) -> None:
        check_choice("method", method, SCALINGS)
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.method = method
        self.invert = bool(invert)

    def build(self, input_shape: tuple) -> None:
        if len(input_shape) != 2 or input_shape[-1] is None:
            raise ValueError(
                f"FeatureScaler expects inputs shaped (batch, d) with d known. "
                f"Received: input_shape={input_shape}"
            )
        width = int(input_shape[-1])
        self.center = self.add_weight(name="center", shape=(width,), initializer="zeros",
                                      trainable=False)
        self.scale = self.add_weight(name="scale", shape=(width,), initializer="ones",
                                     trainable=False)

    def adapt(self, data: np.ndarray) -> None:
        """Sets the centre and scale of every feature from `data`, float `(n, d)`.

        Raises:
            ValueError: If `data` is not `(n, d)` with n ≥ 1 rows of the layer's
                width, or holds NaN or Inf values.
        """
        data = np.asarray(data, np.float64)
        if not self.built:
            self.build((None, data.shape[-1] if data.ndim == 2 else None))
        width = self.center.shape[0]
        if data.ndim != 2 or data.shape[1] != width or len(data) == 0:
            raise ValueError(
                f"`adapt` expects data shaped (n, {width}) with n >= 1. "
                f"Received: shape={data.shape}"
            )
        if not np.all(np.isfinite(data)):
            raise ValueError("`adapt` received NaN or Inf values; clean the data first.")
        if self.method == "standard":
            center, scale = data.mean(axis=0), data.std(axis=0)
        elif self.method == "robust":
            low, center, high = np.percentile(data, [25.0, 50.0, 75.0], axis=0)
            scale = high - low
        else:
            center, scale = data.min(axis=0), data.max(axis=0) - data.min(axis=0)
        scale = np.where(scale > 0.0, scale, 1.0)
        self.center.assign(center.astype(np.float32))
        self.scale.assign(scale.astype(np.float32))

    def call(self, inputs: Any) -> Any:
        inputs = ops.cast(inputs, "float32")
        if self.invert:
            return inputs * self.scale + self.center
        return (inputs - self.center) / self.scale

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return tuple(input_shape)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "method": self.method, "invert": self.invert}
