"""Min-max scaling fitted on training rows only (tabular loaders), and global contrast
normalisation of images (the one-class image protocol's `gcn` option)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class MinMaxScaler:
    """Scales chosen columns to `[0, 1]` with the minimum and maximum of the data it was fit on.

    `transform` computes `(x - data_min_) / (data_max_ - data_min_)` on the chosen
    columns and leaves the others unchanged. A column constant in the fitting
    data is only shifted (`x - data_min_`), so it maps to 0 there. Values outside
    the fitted range (in test data) map outside `[0, 1]`: nothing is clipped, so
    unusually large values stay visible to an anomaly detector.

    Args:
        columns: Indices of the columns to scale, e.g. `TabularData.numeric_columns`.
            `None` scales every column.

    Attributes:
        n_features_in_: Number of columns of the fitting data, set by `fit`.
        columns_: The scaled column indices (int64), set by `fit`.
        data_min_: Per scaled column minimum of the fitting data.
        data_max_: Per scaled column maximum of the fitting data.

    Example:

    ```python
    data = load_kddcup99(download=False)
    scaler = MinMaxScaler(columns=data.numeric_columns).fit(data.x[train_rows])
    x_train, x_test = scaler.transform(data.x[train_rows]), scaler.transform(data.x[test_rows])
    ```
    """

    def __init__(self, columns: Sequence[int] | np.ndarray | None = None):
        self.columns = None if columns is None else np.asarray(columns, np.int64).reshape(-1)

    def fit(self, x: np.ndarray) -> MinMaxScaler:
        """Records the per-column minimum and maximum of `x`.

        Args:
            x: Training data of shape `(n, d)` with `n >= 1`, without NaN.

        Returns:
            The scaler itself.
        """
        x = self._checked(x)
        if len(x) == 0:
            raise ValueError("MinMaxScaler.fit: expected at least one row. Received: 0 rows")
        self.n_features_in_ = x.shape[1]
        self.columns_ = np.arange(x.shape[1]) if self.columns is None else self.columns
        if self.columns_.size and (self.columns_.min() < 0 or self.columns_.max() >= x.shape[1]):
            raise ValueError(
                f"MinMaxScaler: expected column indices in [0, {x.shape[1]}). "
                f"Received: columns={self.columns_.tolist()}"
            )
        selected = x[:, self.columns_]
        self.data_min_ = selected.min(axis=0)
        self.data_max_ = selected.max(axis=0)
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Scales the fitted columns of `x`; returns a float32 copy.

        Args:
            x: Data of shape `(n, d)`, with the `d` of the fitting data.

        Returns:
            float32 array of shape `(n, d)`.
        """
        if not hasattr(self, "data_min_"):
            raise RuntimeError("MinMaxScaler.transform called before fit.")
        x = self._checked(x)
        if x.shape[1] != self.n_features_in_:
            raise ValueError(
                f"MinMaxScaler.transform: expected {self.n_features_in_} columns, as in fit. "
                f"Received: {x.shape[1]}"
            )
        span = self.data_max_ - self.data_min_
        span = np.where(span > 0, span, 1.0)
        out = x.astype(np.float32)
        out[:, self.columns_] = (x[:, self.columns_] - self.data_min_) / span
        return out

    def fit_transform(self, x: np.ndarray) -> np.ndarray:
        """Fits on `x` and returns `transform(x)`."""
        return self.fit(x).transform(x)

    @staticmethod
    def _checked(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float64)
        if x.ndim != 2:
            raise ValueError(f"MinMaxScaler: expected a 2D array (n, d). Received shape: {x.shape}")
        return x


def global_contrast_normalize(images: np.ndarray) -> np.ndarray:
    """Per-image global contrast normalisation with the L1 norm.

    Each image has its mean pixel subtracted and is divided by its mean absolute
    deviation: `(x - mean(x)) / mean(|x - mean(x)|)`, as in the one-class
    protocol of Deep SVDD (Ruff et al., ICML 2018). It removes how bright an
    image is and how much ink it holds from what a model sees. A constant image
    (no deviation) maps to zeros.

    Args:
        images: Array `(n, ...)`: one image (any shape, any numeric dtype) per row.

    Returns:
        float32 array of the same shape.

    Example:

    >>> global_contrast_normalize(np.array([[0, 0, 2, 2]], np.uint8))
    array([[-1., -1.,  1.,  1.]], dtype=float32)
    """
    images = np.asarray(images)
    if images.ndim < 2 or not np.issubdtype(images.dtype, np.number):
        raise ValueError(
            "Expected a numeric array of images shaped (n, ...). "
            f"Received: dtype={images.dtype}, shape={images.shape}"
        )
    flat = images.reshape(len(images), -1).astype(np.float64)
    centred = flat - flat.mean(axis=1, keepdims=True)
    spread = np.abs(centred).mean(axis=1, keepdims=True)
    return (centred / np.where(spread > 0, spread, 1.0)).reshape(images.shape).astype(np.float32)
