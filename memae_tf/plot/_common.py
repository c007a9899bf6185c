"""Argument checks and image conversions shared by the figure functions."""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

import numpy as np
from matplotlib.figure import Figure

# Error maps share one colour scale up to this quantile, so one hot pixel does not
# wash out every other map.
ERROR_QUANTILE = 0.999
ERROR_CMAP = "inferno"
ANOMALY_COLOUR = "tab:red"


class NotebookFigure(Figure):
    """A matplotlib Figure that IPython shows as a PNG when it is a cell's value.

    Figures made outside pyplot get IPython's PNG display only once pyplot's
    inline backend has been set up; `_repr_png_` makes them show in any kernel.
    """

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        self.savefig(buffer, format="png", bbox_inches="tight")
        return buffer.getvalue()


def new_figure(width: float, height: float) -> Figure:
    """A figure outside pyplot, laid out with constrained layout."""
    return NotebookFigure(figsize=(width, height), layout="constrained")


def named_arrays(values: Any, what: str, default_name: str = "scores") -> dict[str, np.ndarray]:
    """`{name: 1-D float array}` from a mapping of arrays or a single array."""
    if not isinstance(values, Mapping):
        values = {default_name: values}
    if not values:
        raise ValueError(f"`{what}` is empty: expected at least one named array.")
    arrays = {}
    for name, value in values.items():
        array = np.asarray(value, dtype=np.float64)
        if array.ndim != 1 or not np.all(np.isfinite(array)):
            raise ValueError(
                f"`{what}[{name!r}]` must be a 1-D array of finite numbers. Received: "
                f"shape={array.shape}"
            )
        arrays[str(name)] = array
    return arrays


def binary_labels(labels: Any, size: int | None = None, need_both: bool = True) -> np.ndarray:
    """Labels as an int array of 0 (normal) / 1 (anomaly), checked against `size`."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.isin(labels, (0, 1)).all():
        raise ValueError(
            f"`labels` must be a 1-D array of 0 (normal) and 1 (anomaly). Received: "
            f"shape={labels.shape}, values={np.unique(labels)[:5].tolist()}"
        )
    if size is not None and len(labels) != size:
        raise ValueError(f"Expected {size} labels, one per score. Received: {len(labels)}")
    if need_both and len(np.unique(labels)) != 2:
        raise ValueError("`labels` must contain both normal (0) and anomalous (1) samples.")
    return labels.astype(np.int64)


def display_image(image: np.ndarray, input_range: tuple[float, float] = (0.0, 1.0)) -> np.ndarray:
    """One sample as something `imshow` draws: `(H, W)` or `(H, W, 3)` in [0, 1].

    Clips `(T, H, W, C)` show their centre frame; values are mapped from
    `input_range` to [0, 1].
    """
    image = np.asarray(image, dtype=np.float32)
    if image.ndim == 4:
        image = image[len(image) // 2]
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[-1] != 3):
        raise ValueError(
            "Expected images (H, W), (H, W, 1), (H, W, 3) or clips (T, H, W, C). "
            f"Received a sample of shape {image.shape}"
        )
    low, high = input_range
    return np.clip((image - low) / (high - low), 0.0, 1.0)


def error_image(error_map: np.ndarray) -> np.ndarray:
    """A squared-error map as `(H, W)`: centre frame of clips, mean over channels."""
    error_map = np.asarray(error_map, dtype=np.float32)
    if error_map.ndim == 4:
        error_map = error_map[len(error_map) // 2]
    return error_map.mean(axis=-1) if error_map.ndim == 3 else error_map


def error_vmax(maps: list[np.ndarray]) -> float:
    """The top of a colour scale shared by error maps."""
    values = np.concatenate([np.ravel(m) for m in maps])
    top = float(np.quantile(values, ERROR_QUANTILE)) if values.size else 0.0
    return top if top > 0 else float(values.max(initial=0.0)) or 1.0


def bare(ax) -> None:
    """Hides the ticks of an image axes (keeps its labels)."""
    ax.set_xticks([])
    ax.set_yticks([])
