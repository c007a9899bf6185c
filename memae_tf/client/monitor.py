"""Watching served scores: the anomaly rate and the drift from the exported reference.

TF Serving counts requests and errors but never looks at what the model
answers. `ScoreMonitor` does: it keeps the last `window` scores a client
received and compares them with what the export says normal traffic looks
like (the `model_info` signature: the threshold, the share of reference
samples above it, and 101 quantiles of the reference scores).

- **Anomaly rate**: the share of recent scores above the threshold (the
  `is_anomaly` rule, `score > threshold`), against `expected_rate`, the `fpr`
  or `contamination` the threshold was set with. On traffic like the
  reference data the two agree; `rate_ratio` is their quotient.
- **Drift**: the population stability index (PSI) of the recent scores over
  the ten bins cut at the reference deciles, each holding a tenth of the
  reference scores:

  ```
  PSI = Σ_i (p_i − q_i) · ln(p_i / q_i)
  ```

  with q_i the reference share of bin i (0.1) and p_i the recent share (an
  empty bin counts as 0.0001, so that the logarithm stays finite). PSI is the
  symmetrised Kullback-Leibler divergence of the two histograms: 0 for equal
  shares, larger for a larger shift, whichever way the scores move (a model
  that suddenly scores everything lower drifts as much as one that scores
  everything higher). It needs no sample-size correction beyond enough scores
  per bin: reports with fewer than `min_scores` (100) scores say so.

Levels (defaults, the ones `serving/k8s/monitoring/prometheusrule.yaml`
alerts on): PSI below 0.1 is `"ok"`, from 0.1 `"warning"`, from 0.2
`"alert"` (the usual reading of PSI: under 0.1 no shift worth acting on,
above 0.2 a significant one); an anomaly rate from 2 times the expected
rate is a `"warning"`, from 3 times an `"alert"`.

With `prometheus_client` installed (`pip install "memae-tf[monitor]"`),
`ScoreMonitor.export_metrics()` publishes the gauges `memae_anomaly_rate`,
`memae_expected_anomaly_rate`, `memae_score_drift` (the PSI) and
`memae_monitored_scores`, labelled `model_name`.
"""

from __future__ import annotations

import collections
import math
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from memae_tf.client._protocol import ModelInfo
from memae_tf.common.contract import REFERENCE_QUANTILE_COUNT

# PSI's stand-in for an empty bin's share (the logarithm of 0 is not finite).
EMPTY_BIN_SHARE = 1e-4
# The reference deciles: levels 0.1, ..., 0.9 of the 101 levels 0, 0.01, ..., 1.
_DECILES = slice(10, REFERENCE_QUANTILE_COUNT - 1, 10)
_LEVELS = ("ok", "warning", "alert")
# The gauges `ScoreMonitor.export_metrics` publishes: name → (documentation, report field).
_GAUGES = {
    "memae_anomaly_rate": ("Share of the recent served scores above the threshold.",
                           "anomaly_rate"),
    "memae_expected_anomaly_rate": (
        "Share of reference scores above the threshold (the fpr or contamination it was "
        "set with).", "expected_rate"),
    "memae_score_drift": ("Population stability index of the recent scores over the "
                          "reference deciles.", "drift"),
    "memae_monitored_scores": ("How many recent scores the figures come from.", "count"),
}
# Registry → (its gauges, the model names exporting into them): a registry takes each
# gauge name once, so the monitors of several models share the gauges, a label each.
_EXPORTED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_EXPORTED_LOCK = threading.Lock()


def _check_levels(name: str, levels: Sequence[float]) -> tuple[float, float]:
    values = tuple(levels)
    if len(values) != 2 or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0
        for v in values
    ) or not values[0] < values[1]:
        raise ValueError(
            f"Received an invalid value for `{name}`, expected (warning, alert) with "
            f"0 < warning < alert. Received: {name}={levels!r}"
        )
    return float(values[0]), float(values[1])


def _level(value: float, levels: tuple[float, float]) -> str:
    return _LEVELS[sum(value >= level for level in levels)]


def decile_bins(reference_quantiles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The PSI bins of a reference: their inner edges and the reference share of each.

    The edges are the distinct reference deciles; bin i holds the scores in
    `(edge[i-1], edge[i]]` (the first from −inf, the last to +inf). Each
    share is a tenth for distinct deciles; tied deciles merge their bins.

    Args:
        reference_quantiles: The 101 reference quantiles (levels 0, 0.01, ..., 1).

    Returns:
        `(edges, shares)`, float64, `len(shares) == len(edges) + 1`.
    """
    deciles = np.asarray(reference_quantiles, np.float64)[_DECILES]
    levels = np.linspace(0.1, 0.9, 9)
    edges, last = np.unique(deciles[::-1], return_index=True)
    # The share up to an edge is the highest level at which the decile equals it.
    below = levels[::-1][last]
    return edges, np.diff(np.concatenate([[0.0], below, [1.0]]))


def population_stability_index(
    scores: np.ndarray, reference_quantiles: np.ndarray
) -> float:
    """The PSI of `scores` over the bins cut at the reference deciles.

    `Σ (p_i − q_i) ln(p_i / q_i)`, `q_i` the reference share of bin i (see
    `decile_bins`), `p_i` the share of `scores` in it (at least 0.0001).

    Args:
        scores: 1-D recent scores.
        reference_quantiles: The 101 reference quantiles of `ModelInfo`.

    Returns:
        The index, 0 for identical histograms.

    Example:

    >>> reference = np.quantile(np.arange(1000.0), np.linspace(0, 1, 101))
    >>> round(population_stability_index(np.arange(1000.0), reference), 6)
    0.0
    """
    edges, expected = decile_bins(reference_quantiles)
    bins = np.searchsorted(edges, np.asarray(scores, np.float64), side="left")
    observed = np.bincount(bins, minlength=len(expected)) / max(len(scores), 1)
    observed = np.maximum(observed, EMPTY_BIN_SHARE)
    return float(np.sum((observed - expected) * np.log(observed / expected)))


@dataclass(frozen=True)
class MonitorReport:
    """What `ScoreMonitor.report` says about the recent scores.

    Attributes:
        count: How many recent scores the figures come from.
        anomaly_rate: Share of them above the threshold.
        expected_rate: The share the threshold was set to flag on reference data.
        rate_ratio: `anomaly_rate / expected_rate`.
        drift: The PSI of the recent scores against the reference deciles.
        rate_level: `"ok"`, `"warning"` or `"alert"` for the rate ratio.
        drift_level: `"ok"`, `"warning"` or `"alert"` for the drift.
        enough_scores: Whether `count` reached the monitor's `min_scores`;
            the levels say `"ok"` until it does.
    """

    count: int
    anomaly_rate: float
    expected_rate: float
    rate_ratio: float
    drift: float
    rate_level: str
    drift_level: str
    enough_scores: bool


class ScoreMonitor:
    """Keeps the recent served scores and reports the anomaly rate and score drift.

    See the module documentation for the statistics and their levels.
    Thread-safe: clients on several threads may `update` one monitor.

    Args:
        threshold: The served threshold (`ModelInfo.threshold`).
        expected_rate: Share of reference scores above it (`ModelInfo.expected_rate`).
        reference_quantiles: The 101 reference quantiles
            (`ModelInfo.reference_quantiles`).
        window: How many of the most recent scores to keep.
        min_scores: Fewest scores before the levels leave `"ok"`.
        rate_levels: `(warning, alert)` ratios of anomaly rate to expected rate.
        drift_levels: `(warning, alert)` PSI values.
        model_name: The `model_name` label of the Prometheus gauges.

    Example:

    >>> with MemAEClient("localhost:8500", "memae") as client:  # doctest: +SKIP
    ...     monitor = ScoreMonitor.from_model_info(client.model_info())
    ...     monitor.update(client.score(images))
    ...     monitor.report().drift_level
    'ok'
    """

    def __init__(
        self,
        threshold: float,
        expected_rate: float,
        reference_quantiles: Sequence[float],
        *,
        window: int = 10_000,
        min_scores: int = 100,
        rate_levels: Sequence[float] = (2.0, 3.0),
        drift_levels: Sequence[float] = (0.1, 0.2),
        model_name: str = "memae",
    ) -> None:
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not (
            math.isfinite(threshold)
        ):
            raise ValueError(
                f"Received an invalid value for `threshold`, expected a finite number. "
                f"Received: threshold={threshold!r}"
            )
        if isinstance(expected_rate, bool) or not (
            isinstance(expected_rate, (int, float)) and 0 < expected_rate < 1
        ):
            raise ValueError(
                "Received an invalid value for `expected_rate`, expected a share in (0, 1). "
                f"Received: expected_rate={expected_rate!r}"
            )
        quantiles = np.asarray(reference_quantiles, np.float64)
        if quantiles.shape != (REFERENCE_QUANTILE_COUNT,) or np.any(np.diff(quantiles) < 0):
            raise ValueError(
                f"Expected `reference_quantiles` to be the {REFERENCE_QUANTILE_COUNT} "
                "non-decreasing quantiles of model_info. Received: shape "
                f"{quantiles.shape}"
            )
        for name, value in (("window", window), ("min_scores", min_scores)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(
                    f"Received an invalid value for `{name}`, expected a positive integer. "
                    f"Received: {name}={value!r}"
                )
        self.threshold = float(threshold)
        self.expected_rate = float(expected_rate)
        self.reference_quantiles = quantiles
        self.min_scores = min_scores
        self.rate_levels = _check_levels("rate_levels", rate_levels)
        self.drift_levels = _check_levels("drift_levels", drift_levels)
        self.model_name = model_name
        self._scores: collections.deque[float] = collections.deque(maxlen=window)
        self._lock = threading.Lock()

    @classmethod
    def from_model_info(cls, info: ModelInfo | None, **options: Any) -> ScoreMonitor:
        """A monitor for the served version that `MemAEClient.model_info()` describes.

        Args:
            info: The `ModelInfo` of the served version.
            **options: `window`, `min_scores`, `rate_levels`, `drift_levels`,
                `model_name`.

        Raises:
            ValueError: If the export carries no reference (no `model_info`
                signature, or a threshold not set by `infer_threshold`).
        """
        if info is None or info.reference_quantiles is None or info.expected_rate is None:
            raise ValueError(
                "The served model carries no reference scores: export it from a detector "
                "whose threshold was set by infer_threshold() (or fit(contamination=...)). "
                f"Received: model_info={info!r}"
            )
        return cls(info.threshold, info.expected_rate, info.reference_quantiles, **options)

    def update(self, scores: Any) -> None:
        """Adds served scores (1-D), dropping the oldest beyond `window`."""
        values = np.asarray(scores, np.float64).ravel()
        with self._lock:
            self._scores.extend(values.tolist())

    def report(self) -> MonitorReport:
        """The anomaly rate and the drift of the recent scores, with their levels.

        Raises:
            ValueError: If no score was added yet.
        """
        with self._lock:
            scores = np.fromiter(self._scores, np.float64, len(self._scores))
        if len(scores) == 0:
            raise ValueError("No scores yet: call update(scores) first.")
        rate = float(np.mean(scores > self.threshold))
        ratio = rate / self.expected_rate
        drift = population_stability_index(scores, self.reference_quantiles)
        enough = len(scores) >= self.min_scores
        return MonitorReport(
            count=len(scores), anomaly_rate=rate, expected_rate=self.expected_rate,
            rate_ratio=ratio, drift=drift,
            rate_level=_level(ratio, self.rate_levels) if enough else "ok",
            drift_level=_level(drift, self.drift_levels) if enough else "ok",
            enough_scores=enough,
        )

    def export_metrics(self, registry: Any = None) -> None:
        """Publishes the report as Prometheus gauges, computed at each scrape.

        Gauges (label `model_name`): `memae_anomaly_rate`,
        `memae_expected_anomaly_rate`, `memae_score_drift` and
        `memae_monitored_scores`. Serve them with
        `prometheus_client.start_http_server(port)`. Monitors of several
        models export into one registry, one label value each.

        Args:
            registry: A `prometheus_client.CollectorRegistry`; None for the
                default one.

        Raises:
            ImportError: Without `prometheus_client` (`pip install "memae-tf[monitor]"`).
            ValueError: When a monitor of the same `model_name` already
                exports into `registry`.
        """
        try:
            import prometheus_client
        except ImportError as error:
            raise ImportError(
                "ScoreMonitor.export_metrics needs prometheus_client: "
                'pip install "memae-tf[monitor]" (or "memae-tf-client[monitor]").'
            ) from error
        registry = prometheus_client.REGISTRY if registry is None else registry
        with _EXPORTED_LOCK:
            if registry not in _EXPORTED:
                _EXPORTED[registry] = (
                    {name: prometheus_client.Gauge(name, documentation, ["model_name"],
                                                   registry=registry)
                     for name, (documentation, _) in _GAUGES.items()}, set())
            gauges, models = _EXPORTED[registry]
            if self.model_name in models:
                raise ValueError(
                    "Expected one ScoreMonitor per model_name in a Prometheus registry. "
                    f"Received a second for model_name={self.model_name!r}")
            models.add(self.model_name)
        for name, (_, field) in _GAUGES.items():
            gauges[name].labels(self.model_name).set_function(
                lambda field=field: self._gauge_value(field))

    def _gauge_value(self, field: str) -> float:
        with self._lock:
            empty = not self._scores
        return math.nan if empty else float(getattr(self.report(), field))
