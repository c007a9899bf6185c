"""TF Serving's metrics and their Prometheus page, checked against TF Serving's sources.

The names and labels follow tensorflow_serving/servables/tensorflow/util.cc and
TensorFlow's tensorflow/cc/saved_model/loader.cc; the rendering follows
tensorflow_serving/util/prometheus_exporter.cc; the histogram buckets follow
TensorFlow's monitoring::Buckets::Exponential and Histogram::Add
(tensorflow/core/lib/monitoring/sampler.cc, tsl/lib/histogram/histogram.cc).
"""

import math

import grpc
import pytest

from memae_tf.serving.metrics import (
    LATENCY_BUCKETS,
    Counter,
    Sampler,
    ServingMetrics,
    exponential_buckets,
    parse_exposition,
    prometheus_name,
)


def test_prometheus_names_replace_other_characters_with_colons():
    # prometheus_exporter.cc GetPrometheusMetricName.
    assert prometheus_name("/tensorflow/serving/request_count") == (
        ":tensorflow:serving:request_count")
    assert prometheus_name("/tensorflow/cc/saved_model/load_attempt_count") == (
        ":tensorflow:cc:saved_model:load_attempt_count")
    assert prometheus_name("9lives-x.y") == "_9lives:x:y"


def test_label_values_escape_backslashes_and_quotes():
    # prometheus_exporter.cc SanitizeLabelValue.
    counter = Counter("/t/c", "test", ["model_path"])
    counter.increment('C:\\models\\"x"')
    assert counter.render()[1] == ':t:c{model_path="C:\\\\models\\\\\\"x\\""} 1'


def test_latency_buckets_are_tensorflows_exponential_10_1_8_33():
    # util.cc request_latency: Buckets::Exponential(10, 1.8, 33).
    assert len(LATENCY_BUCKETS) == 33
    assert LATENCY_BUCKETS[:4] == pytest.approx((10.0, 18.0, 32.4, 58.32))
    assert LATENCY_BUCKETS[-1] == pytest.approx(10 * 1.8 ** 32)
    assert exponential_buckets(1, 2, 14)[-1] == 2 ** 13


def test_histogram_buckets_are_cumulative_and_agree_with_sum_and_count():
    # prometheus_exporter.cc SerializeHistogram: cumulative buckets, the last one +Inf,
    # _count equal to the last bucket; Histogram::Add puts a value in the first bucket
    # whose limit is greater than the value.
    sampler = Sampler("/t/latency", "test", ["model_name"], [1.0, 2.0, 4.0])
    values = [0.5, 1.0, 1.5, 3.0, 4.0, 100.0]
    for value in values:
        sampler.add("m", value=value)
    page = parse_exposition("\n".join(sampler.render()))
    buckets = {dict(labels)["le"]: count for labels, count in page[":t:latency_bucket"].items()}
    assert buckets == {"1": 1, "2": 3, "4": 4, "+Inf": 6}
    assert page[":t:latency_count"] == {(("model_name", "m"),): 6}
    assert page[":t:latency_sum"] == {(("model_name", "m"),): pytest.approx(sum(values))}
    lines = sampler.render()
    assert lines[0] == "# TYPE :t:latency histogram"
    assert lines[1] == ':t:latency_bucket{model_name="m",le="1"} 1'
    assert lines[4] == ':t:latency_bucket{model_name="m",le="+Inf"} 6'


def test_an_unlabelled_metric_renders_empty_braces_like_tf_serving():
    # prometheus_exporter.cc writes NAME{} for a metric without labels.
    counter = Counter("/t/runs", "test", [])
    counter.increment(by=3)
    assert counter.render() == ["# TYPE :t:runs counter", ":t:runs{} 3"]
    sampler = Sampler("/t/size", "test", [], [1.0])
    sampler.add(value=1.0)
    assert sampler.render()[1:] == [':t:size_bucket{le="1"} 0', ':t:size_bucket{le="+Inf"} 1',
                                    ":t:size_sum{} 1", ":t:size_count{} 1"]


def test_request_latency_is_recorded_for_successful_requests_only():
    # prediction_service_impl.cc Predict: RecordRequestLatency only when status.ok(),
    # RecordModelRequestCount always, with the status code's name.
    metrics = ServingMetrics()
    metrics.record_request("memae", "Predict", "GRPC", grpc.StatusCode.OK, 2000)
    metrics.record_request("memae", "Predict", "GRPC", grpc.StatusCode.OK, 3000)
    metrics.record_request("memae", "Predict", "GRPC", grpc.StatusCode.INVALID_ARGUMENT, 10)
    page = parse_exposition(metrics.render())
    counts = page[":tensorflow:serving:request_count"]
    assert counts == {(("model_name", "memae"), ("status", "OK")): 2,
                      (("model_name", "memae"), ("status", "INVALID_ARGUMENT")): 1}
    labels = (("API", "Predict"), ("entrypoint", "GRPC"), ("model_name", "memae"))
    assert page[":tensorflow:serving:request_latency_count"] == {labels: 2}
    assert page[":tensorflow:serving:request_latency_sum"] == {labels: 5000}


def test_load_attempts_and_latency_use_tensorflows_loader_labels():
    # loader.cc: load_attempt_count{model_path, status=success|fail}, load_latency{model_path}.
    metrics = ServingMetrics()
    metrics.record_load("/models/memae/1", True, 1500)
    metrics.record_load("/models/memae/2", False, 700)
    page = parse_exposition(metrics.render())
    assert page[":tensorflow:cc:saved_model:load_attempt_count"] == {
        (("model_path", "/models/memae/1"), ("status", "success")): 1,
        (("model_path", "/models/memae/2"), ("status", "fail")): 1}
    assert page[":tensorflow:cc:saved_model:load_latency"] == {
        (("model_path", "/models/memae/1"),): 1500, (("model_path", "/models/memae/2"),): 700}


def test_every_metric_has_its_type_line_even_before_a_value():
    # prometheus_exporter.cc GeneratePage walks every registered descriptor.
    text = ServingMetrics().render()
    types = [line.split()[2:] for line in text.splitlines() if line.startswith("# TYPE")]
    assert [":tensorflow:serving:request_count", "counter"] in types
    assert [":tensorflow:serving:request_latency", "histogram"] in types
    assert [":tensorflow:cc:saved_model:load_attempt_count", "counter"] in types
    assert [":tensorflow:serving:batching_session:queuing_latency", "histogram"] in types
    assert text.endswith("\n")
    assert not [line for line in text.splitlines() if not line.startswith("#")]


def test_the_page_is_ordered_by_tensorflow_metric_name():
    # GeneratePage iterates the registry's std::map of descriptors, sorted by name.
    names = [metric.name for metric in ServingMetrics().metrics()]
    assert names == sorted(names)


def test_a_counter_refuses_wrong_labels_and_decrements():
    counter = Counter("/t/c", "test", ["a", "b"])
    with pytest.raises(ValueError, match=r"expected 2 values. Received: labels=\['x'\]"):
        counter.increment("x")
    with pytest.raises(ValueError, match="only increases"):
        counter.increment("x", "y", by=-1)


def test_parse_exposition_reads_infinity_and_rejects_garbage():
    assert parse_exposition('a_bucket{le="+Inf"} 3\n')["a_bucket"][(("le", "+Inf"),)] == 3
    assert math.isinf(parse_exposition("a +Inf\n")["a"][()])
    with pytest.raises(ValueError, match="Line 1"):
        parse_exposition("not a sample\n")
