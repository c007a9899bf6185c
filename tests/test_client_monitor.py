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


def test_monitors_of_several_models_share_one_registry_a_label_each(detector):
    # Prometheus' client refuses a metric name registered twice in one registry
    # ("Duplicated timeseries"); one exporter serves every model as label values of
    # the same gauges, as the alert rules (serving/k8s/monitoring) read them.
    prometheus_client = pytest.importorskip("prometheus_client")
    registry = prometheus_client.CollectorRegistry()
    digits, garments = (_monitor(detector, model_name=name) for name in ("digits", "garments"))
    digits.export_metrics(registry)
    garments.export_metrics(registry)
    digits.update(detector.score(anomalous_rows(500, seed=21)))
    garments.update(detector.score(anomalous_rows(300, seed=22)))
    for monitor, count in ((digits, 500), (garments, 300)):
        label = {"model_name": monitor.model_name}
        assert registry.get_sample_value("memae_monitored_scores", label) == count
        assert registry.get_sample_value("memae_score_drift", label) == monitor.report().drift
    with pytest.raises(ValueError, match=r"one ScoreMonitor per model_name .* "
                                         r"model_name='digits'"):
        _monitor(detector, model_name="digits").export_metrics(registry)
    other = prometheus_client.CollectorRegistry()
    digits.export_metrics(other)  # another registry takes the same model again
    assert other.get_sample_value("memae_monitored_scores", {"model_name": "digits"}) == 500


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


# -------------------------------------------- the documented rules on small known answers

UNIFORM = np.arange(101.0)  # reference quantiles: deciles 10, 20, ..., 90


def _small(threshold=50.0, expected_rate=0.25, **options) -> ScoreMonitor:
    return ScoreMonitor(threshold, expected_rate, UNIFORM, **options)


@pytest.mark.parametrize(("above", "level"), [
    (1, "ok"), (2, "warning"), (3, "alert"), (4, "alert")])
def test_the_rate_level_starts_at_2_and_3_times_the_expected_rate(above, level):
    # Module docs: "an anomaly rate from 2 times the expected rate is a warning, from 3
    # times an alert". 4 scores, expected rate 0.25: `above` of them make ratio `above`.
    monitor = _small(min_scores=4)
    monitor.update([60.0] * above + [40.0] * (4 - above))
    report = monitor.report()
    assert (report.anomaly_rate, report.rate_ratio) == (above / 4, float(above))
    assert report.rate_level == level


def test_a_score_equal_to_the_threshold_is_not_an_anomaly():
    # The is_anomaly rule: score > threshold.
    monitor = _small(min_scores=1)
    monitor.update([50.0, 50.0, 50.5, 49.0])
    assert monitor.report().anomaly_rate == 0.25


@pytest.mark.parametrize(("psi_levels", "level"), [
    ((8.5, 9.0), "ok"), ((8.0, 9.0), "warning"), ((4.0, 8.0), "alert")])
def test_the_drift_level_compares_the_psi_with_its_levels(psi_levels, level):
    # All 10 scores in the first decile bin: p = (1, 0.0001 x 9) against q = 0.1 each,
    # PSI = 0.9 ln 10 + 9 (0.0001 - 0.1) ln(0.001) = 8.28.
    monitor = _small(min_scores=10, drift_levels=psi_levels)
    monitor.update(np.full(10, 5.0))
    expected = 0.9 * np.log(10.0) + 9 * (1e-4 - 0.1) * np.log(1e-4 / 0.1)
    report = monitor.report()
    assert report.drift == pytest.approx(expected, rel=1e-12)
    assert report.drift_level == level


def test_an_empty_bin_counts_as_a_share_of_0_0001():
    # Module docs: "an empty bin counts as 0.0001". Half the scores in the first bin,
    # half in the last: 8 empty bins.
    monitor = _small(min_scores=1)
    monitor.update([5.0] * 5 + [95.0] * 5)
    expected = 2 * (0.5 - 0.1) * np.log(5.0) + 8 * (0.0001 - 0.1) * np.log(0.001)
    assert monitor.report().drift == pytest.approx(expected, rel=1e-12)


def test_a_score_on_a_decile_falls_in_the_bin_below_it():
    # decile_bins: bin i holds (edge[i-1], edge[i]]; one score on each decile 10..90 and
    # one above 90 put one score in each bin: PSI 0.
    monitor = _small(min_scores=1)
    monitor.update(np.arange(10.0, 101.0, 10.0))
    assert monitor.report().drift == pytest.approx(0.0, abs=1e-12)


def test_levels_leave_ok_at_exactly_min_scores():
    monitor = _small(min_scores=4)
    monitor.update([60.0, 60.0, 60.0])
    assert monitor.report().rate_level == "ok" and not monitor.report().enough_scores
    monitor.update([60.0])
    report = monitor.report()
    assert report.enough_scores and report.count == 4
    assert (report.rate_level, report.drift_level) == ("alert", "alert")


def test_the_window_keeps_the_latest_scores_of_a_2d_update():
    monitor = _small(window=3, min_scores=1)
    monitor.update(np.array([[60.0, 60.0], [40.0, 40.0]]))  # flattened, row by row
    report = monitor.report()
    assert report.count == 3 and report.anomaly_rate == pytest.approx(1 / 3)


def test_a_report_before_any_score_says_to_update_first():
    with pytest.raises(ValueError, match=r"No scores yet: call update\(scores\) first."):
        _small().report()


def test_the_defaults_are_the_documented_ones():
    # Module docs: 10,000 recent scores, 100 before the levels leave ok, PSI levels
    # 0.1 and 0.2, rate levels 2 and 3 (serving/k8s/monitoring/prometheusrule.yaml).
    monitor = _small()
    assert monitor._scores.maxlen == 10_000 and monitor.min_scores == 100
    assert (monitor.rate_levels, monitor.drift_levels) == ((2.0, 3.0), (0.1, 0.2))
    assert monitor.model_name == "memae"


def test_a_monitor_from_model_info_takes_its_reference_and_options():
    info = ModelInfo(version=3, input_range=None, threshold=50.0, expected_rate=0.25,
                     reference_quantiles=UNIFORM)
    monitor = ScoreMonitor.from_model_info(info, min_scores=2, model_name="digits")
    assert (monitor.threshold, monitor.expected_rate, monitor.min_scores,
            monitor.model_name) == (50.0, 0.25, 2, "digits")
    np.testing.assert_array_equal(monitor.reference_quantiles, UNIFORM)


@pytest.mark.parametrize("missing", ["expected_rate", "reference_quantiles", "info"])
def test_model_info_without_a_reference_cannot_be_monitored(missing):
    fields = {"version": 1, "input_range": None, "threshold": 0.5, "expected_rate": 0.05,
              "reference_quantiles": UNIFORM}
    info = None if missing == "info" else ModelInfo(**{**fields, missing: None})
    with pytest.raises(ValueError, match="carries no reference scores"):
        ScoreMonitor.from_model_info(info)


@pytest.mark.parametrize(("options", "message"), [
    ({"threshold": True}, "expected a finite number"),
    ({"threshold": float("inf")}, "expected a finite number"),
    ({"threshold": "1"}, "expected a finite number"),
    ({"expected_rate": 1.0}, r"share in \(0, 1\)"),
    ({"expected_rate": True}, r"share in \(0, 1\)"),
    ({"expected_rate": "0.5"}, r"share in \(0, 1\)"),
    ({"min_scores": 0}, "`min_scores`, expected a positive integer"),
    ({"window": True}, "`window`, expected a positive integer"),
    ({"window": 2.0}, "`window`, expected a positive integer"),
    ({"rate_levels": (2.0,)}, "`rate_levels`, expected"),
    ({"rate_levels": (2.0, 3.0, 4.0)}, "`rate_levels`, expected"),
    ({"rate_levels": (True, 3.0)}, "`rate_levels`, expected"),
    ({"rate_levels": ("2", 3.0)}, "`rate_levels`, expected"),
    ({"rate_levels": (0.0, 3.0)}, "`rate_levels`, expected"),
    ({"rate_levels": (2.0, float("inf"))}, "`rate_levels`, expected"),
    ({"drift_levels": (0.1, 0.1)}, "`drift_levels`, expected"),
])
def test_more_invalid_monitor_arguments_say_what_was_expected(options, message):
    with pytest.raises(ValueError, match=message):
        _small(**options)


@pytest.mark.parametrize(("options", "taken"), [
    ({"threshold": 0}, "threshold"), ({"expected_rate": 0.999}, "expected_rate"),
    ({"window": 1}, "window"), ({"min_scores": 1}, "min_scores"),
    ({"rate_levels": (1, 1.5)}, "rate_levels"), ({"drift_levels": [0.01, 5]}, "drift_levels")])
def test_the_smallest_valid_arguments_are_taken(options, taken):
    value = getattr(_small(**options), taken if taken != "window" else "_scores")
    expected = {"threshold": 0.0, "expected_rate": 0.999, "min_scores": 1,
                "rate_levels": (1.0, 1.5), "drift_levels": (0.01, 5.0)}.get(taken)
    assert (value.maxlen == 1) if taken == "window" else value == expected


def test_a_single_score_is_a_whole_share():
    # p = (1, 0.0001 x 9) as for ten scores in the first bin (see the drift level test).
    monitor = _small(min_scores=1)
    monitor.update([5.0])
    expected = 0.9 * np.log(10.0) + 9 * (1e-4 - 0.1) * np.log(1e-4 / 0.1)
    report = monitor.report()
    assert (report.count, report.anomaly_rate) == (1, 0.0)
    assert report.drift == pytest.approx(expected, rel=1e-12)


def test_tied_reference_quantiles_are_taken():
    # "non-decreasing": equal neighbours are a valid reference (a score often 0).
    quantiles = np.r_[np.zeros(55), np.arange(1.0, 47.0)]
    monitor = ScoreMonitor(0.5, 0.45, quantiles)
    np.testing.assert_array_equal(monitor.reference_quantiles, quantiles)


def test_a_report_is_frozen():
    monitor = _small(min_scores=1)
    monitor.update([1.0])
    with pytest.raises(AttributeError):
        monitor.report().drift = 0.0
