"""TF Serving's metrics and their Prometheus page, checked against TF Serving's sources.

The names and labels follow tensorflow_serving/servables/tensorflow/util.cc and
TensorFlow's tensorflow/cc/saved_model/loader.cc; the rendering follows
tensorflow_serving/util/prometheus_exporter.cc; the histogram buckets follow
TensorFlow's monitoring::Buckets::Exponential and Histogram::Add
(tensorflow/core/lib/monitoring/sampler.cc, tsl/lib/histogram/histogram.cc) and
TensorFlow's counters (tensorflow/core/lib/monitoring/counter.h).
"""

import math
import sys

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


def _exponential(scale, growth_factor, count):
    # sampler.cc ExponentialBuckets: scale * growth_factor**i for i < count; ExplicitBuckets
    # then appends DBL_MAX as the last limit.
    return [scale * growth_factor ** i for i in range(count)] + [sys.float_info.max]


def test_each_histogram_has_tf_servings_buckets():
    # util.cc request_latency and runtime_latency: Exponential(10, 1.8, 33);
    # batching_session.cc queuing_latency: Exponential(100, 1.2, 52); batching_util.h
    # padding_size, input_batch_size, processed_batch_size: Exponential(1, 2, 14); util.cc
    # request_example_counts: Exponential(1, 2, 15).
    metrics = ServingMetrics()
    expected = {
        "request_latency": _exponential(10, 1.8, 33),
        "runtime_latency": _exponential(10, 1.8, 33),
        "queuing_latency": _exponential(100, 1.2, 52),
        "input_batch_size": _exponential(1, 2, 14),
        "processed_batch_size": _exponential(1, 2, 14),
        "padding_size": _exponential(1, 2, 14),
        "request_example_counts": _exponential(1, 2, 15),
    }
    for attribute, limits in expected.items():
        assert getattr(metrics, attribute).bucket_limits == pytest.approx(limits, rel=1e-12), (
            attribute)


def test_label_names_are_sanitised_like_tf_servings_exporter():
    # prometheus_exporter.cc SanatizeLabelName: characters outside [a-zA-Z0-9] become
    # "_", and a name starting with a digit gets a "_" in front.
    counter = Counter("/t/c", "test", ["2nd-label", "model.name"])
    counter.increment("a", "b")
    assert counter.render()[1] == ':t:c{_2nd_label="a",model_name="b"} 1'


def test_a_counter_takes_an_increment_of_zero_and_reads_zero_before_any():
    # counter.h CounterCell::IncrementBy: DCHECK_LE(0, step), so a step of 0 is valid;
    # a cell starts at 0, and GetCell creates it, so it is rendered.
    counter = Counter("/t/c", "test", ["status"])
    assert counter.value("OK") == 0
    counter.increment("OK", by=0)
    assert counter.value("OK") == 0
    assert counter.render()[1:] == [':t:c{status="OK"} 0']


def test_a_sampler_refuses_bucket_limits_that_do_not_strictly_increase():
    # histogram.cc Histogram(custom_bucket_limits): DCHECK_GT(size, 0) and each limit
    # DCHECK_GT the one before.
    for limits in ([], [1.0, 1.0], [2.0, 1.0], [1.0, 2.0, 2.0]):
        with pytest.raises(ValueError, match="strictly increasing"):
            Sampler("/t/s", "test", [], limits)


def test_a_value_beyond_every_limit_is_counted_in_the_inf_bucket():
    # Prometheus' histogram: the le="+Inf" bucket counts every observation (it equals
    # _count), infinite ones included.
    sampler = Sampler("/t/s", "test", [], [1.0, 2.0])
    for value in (sys.float_info.max, math.inf):
        sampler.add(value=value)
    assert sampler.cumulative_counts() == [0, 0, 2]


def test_cumulative_counts_of_labels_never_recorded_are_zeros_for_every_bucket():
    sampler = Sampler("/t/s", "test", ["model_name"], [1.0, 2.0, 4.0])
    sampler.add("m", value=3.0)
    assert sampler.cumulative_counts("other") == [0, 0, 0, 0]


def test_load_latency_adds_whole_microseconds_and_nothing_for_a_clock_skew():
    # loader.cc GetLatencyMicroseconds: whole microseconds (uint64 NowMicros
    # differences), and 0 when the end is before the start ("Avoid clock skew").
    metrics = ServingMetrics()
    metrics.record_load("/models/memae/1", True, 0.7)
    metrics.record_load("/models/memae/1", True, -5)
    metrics.record_load("/models/memae/1", True, 12.9)
    assert metrics.load_latency.value("/models/memae/1") == 12
    assert metrics.load_attempt_count.value("/models/memae/1", "success") == 3
