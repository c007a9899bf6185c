"""ScoreMonitor: the anomaly rate and the PSI drift of served scores against the reference
quantiles that a trained detector's infer_threshold stores (and its export carries).

Independent references: the PSI from `np.histogram` over the reference deciles and,
separately, as the symmetrised Kullback-Leibler divergence (`scipy.special.rel_entr`); the
anomaly rate from `MemAE.predict`.
"""

import numpy as np
import pytest
import scipy.special
from client_helpers import anomalous_rows, normal_rows, trained_detector

from memae_tf import MemAE
from memae_tf.client import ModelInfo
from memae_tf.client.monitor import EMPTY_BIN_SHARE, ScoreMonitor, decile_bins


@pytest.fixture(scope="module")
def detector():
    return trained_detector(seed=1, input_range=(-1.0, 1.0))


def _monitor(detector, **options) -> ScoreMonitor:
    return ScoreMonitor(detector.threshold_, detector.expected_rate_,
                        detector.reference_quantiles_, **options)


def _psi_by_histogram(scores: np.ndarray, quantiles: np.ndarray) -> float:
    deciles = quantiles[10:100:10]
    counts, _ = np.histogram(scores, bins=np.concatenate([[-np.inf], deciles, [np.inf]]))
    observed = np.maximum(counts / len(scores), EMPTY_BIN_SHARE)
    expected = np.full(10, 0.1)
    return float(np.sum((observed - expected) * np.log(observed / expected)))


def _psi_as_symmetric_kl(scores: np.ndarray, quantiles: np.ndarray) -> float:
    below = np.searchsorted(np.sort(scores), quantiles[10:100:10], side="right")
    observed = np.maximum(np.diff(np.concatenate([[0], below, [len(scores)]])) / len(scores),
                          EMPTY_BIN_SHARE)
    expected = np.full(10, 0.1)
    # KL(p||q) + KL(q||p), each term p log(p/q) without renormalising the shares.
    return float(np.sum(scipy.special.rel_entr(observed, expected)
                        + scipy.special.rel_entr(expected, observed)))


def test_the_reference_is_the_quantiles_of_the_threshold_data(detector):
    scores = detector.score(normal_rows(1000, seed=2))
    np.testing.assert_allclose(detector.reference_quantiles_,
                               np.quantile(scores.astype(np.float64), np.arange(101) / 100))
    assert detector.expected_rate_ == 0.05
    # The threshold is the reference's 95% quantile.
    assert detector.threshold_ == pytest.approx(detector.reference_quantiles_[95])


def test_the_reference_survives_save_and_load(detector, tmp_path):
    loaded = MemAE.load(detector.save(tmp_path / "detector.keras"))
    assert loaded.expected_rate_ == detector.expected_rate_
    np.testing.assert_array_equal(loaded.reference_quantiles_, detector.reference_quantiles_)


def test_normal_traffic_shows_no_drift_and_the_expected_rate(detector):
    x = normal_rows(4000, seed=11)
    monitor = _monitor(detector)
    monitor.update(detector.score(x))
    report = monitor.report()
    assert report.count == 4000
    assert report.anomaly_rate == pytest.approx(detector.predict(x).mean())
    # The threshold is a quantile of 1,000 held-out scores and the rate a share of
    # 4,000 more: binomial spreads of both, sd 0.0077 together.
    assert abs(report.anomaly_rate - 0.05) < 4 * np.sqrt(0.05 * 0.95 * (1 / 1000 + 1 / 4000))
    assert report.drift < 0.1
    assert (report.rate_level, report.drift_level) == ("ok", "ok")


@pytest.mark.parametrize("anomalous_share", [1.0, 0.2])
def test_anomalous_traffic_raises_both_alerts(detector, anomalous_share):
    anomalous = int(2000 * anomalous_share)
    x = np.concatenate([normal_rows(2000 - anomalous, seed=11), anomalous_rows(anomalous, 12)])
    monitor = _monitor(detector)
    monitor.update(detector.score(x))
    report = monitor.report()
    assert report.anomaly_rate == pytest.approx(detector.predict(x).mean())
    assert report.rate_ratio == pytest.approx(report.anomaly_rate / 0.05)
    assert report.rate_ratio >= 3 and report.drift >= 0.2
    assert (report.rate_level, report.drift_level) == ("alert", "alert")


@pytest.mark.parametrize("traffic", ["normal", "anomalous", "mixed"])
def test_drift_is_the_psi_over_the_reference_deciles(detector, traffic):
    x = {"normal": normal_rows(3000, seed=13), "anomalous": anomalous_rows(3000, seed=14),
         "mixed": np.concatenate([normal_rows(2400, seed=15), anomalous_rows(600, seed=16)])
         }[traffic]
    scores = detector.score(x)
    monitor = _monitor(detector)
    monitor.update(scores)
    drift = monitor.report().drift
    quantiles = detector.reference_quantiles_
    assert drift == pytest.approx(_psi_by_histogram(scores, quantiles), rel=1e-9)
    assert drift == pytest.approx(_psi_as_symmetric_kl(scores, quantiles), rel=1e-9)


def test_only_the_most_recent_window_counts(detector):
    normal = detector.score(normal_rows(1000, seed=17))
    monitor = _monitor(detector, window=1000)
    monitor.update(detector.score(anomalous_rows(500, seed=18)))
    monitor.update(normal)
    alone = _monitor(detector)
    alone.update(normal)
    assert monitor.report() == alone.report()


def test_levels_stay_ok_until_there_are_enough_scores(detector):
    monitor = _monitor(detector, min_scores=100)
    monitor.update(detector.score(anomalous_rows(99, seed=19)))
    report = monitor.report()
    assert not report.enough_scores and report.drift >= 0.2
    assert (report.rate_level, report.drift_level) == ("ok", "ok")


def test_tied_reference_deciles_merge_their_bins():
    # 55% of the reference scores are 0: the deciles up to the median are all 0.
    quantiles = np.quantile(np.r_[np.zeros(550), np.arange(1.0, 451.0)], np.arange(101) / 100)
    edges, shares = decile_bins(quantiles)
    assert edges[0] == 0.0 and len(edges) == 5
    np.testing.assert_allclose(shares, [0.5, 0.1, 0.1, 0.1, 0.1, 0.1])


def test_gauges_publish_the_report(detector):
    prometheus_client = pytest.importorskip("prometheus_client")
    registry = prometheus_client.CollectorRegistry()
    monitor = _monitor(detector, model_name="digits")
    monitor.export_metrics(registry)
    label = {"model_name": "digits"}
    assert np.isnan(registry.get_sample_value("memae_score_drift", label))
    monitor.update(detector.score(anomalous_rows(500, seed=20)))
    report = monitor.report()
    assert registry.get_sample_value("memae_anomaly_rate", label) == report.anomaly_rate
    assert registry.get_sample_value("memae_expected_anomaly_rate", label) == 0.05
    assert registry.get_sample_value("memae_score_drift", label) == report.drift
    assert registry.get_sample_value("memae_monitored_scores", label) == 500
    text = prometheus_client.generate_latest(registry).decode()
    assert 'memae_score_drift{model_name="digits"}' in text


def test_a_model_without_a_reference_cannot_be_monitored():
    info = ModelInfo(version=1, input_range=(0.0, 1.0), threshold=0.5, expected_rate=None,
                     reference_quantiles=None)
    with pytest.raises(ValueError, match="infer_threshold"):
        ScoreMonitor.from_model_info(info)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"expected_rate": 0.0}, r"share in \(0, 1\)"),
        ({"reference_quantiles": np.zeros(10)}, "101"),
        ({"reference_quantiles": np.arange(101.0)[::-1]}, "non-decreasing"),
        ({"window": 0}, "positive integer"),
        ({"drift_levels": (0.2, 0.1)}, "0 < warning < alert"),
    ],
)
def test_invalid_monitor_arguments_say_what_was_expected(options, message):
    arguments = {"threshold": 1.0, "expected_rate": 0.05,
                 "reference_quantiles": np.arange(101.0), **options}
    with pytest.raises(ValueError, match=message):
        ScoreMonitor(**arguments)
