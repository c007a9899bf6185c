"""TF Serving's metrics, rendered in Prometheus' text format (version 0.0.4).

The metric names, kinds, labels and histogram buckets are TF Serving's and
TensorFlow's, so dashboards and alerts written for TF Serving read this server
unchanged:

- `/tensorflow/serving/request_count` {model_name, status}: counter, every
  Predict, Classify and Regress (gRPC; not MultiInference) and every `/v1/`
  REST request;
- `/tensorflow/serving/request_latency` {model_name, API, entrypoint}:
  histogram in µs, successful requests only;
- `/tensorflow/serving/runtime_latency` {model_name, API, runtime}: histogram
  in µs of the signature call of a Predict, Classify or Regress;
- `/tensorflow/serving/request_example_counts` {model}: histogram of the
  `tf.Example`s of each MultiInference, and
  `/tensorflow/serving/request_example_count_total` {model}: their total;
- `/tensorflow/cc/saved_model/load_attempt_count` {model_path, status}:
  counter of SavedModel loads, status `success` or `fail`;
- `/tensorflow/cc/saved_model/load_latency` {model_path}: counter, total µs;
- `/tensorflow/serving/model_warmup_latency` {model_path, status}: histogram
  in µs of a version's warmup, and `/tensorflow/serving/model_warmup_records_read`
  {model_path, status}: counter of its records, both recorded when the warmup
  file was read to its end (status `OK`) or could not be read (e.g. `DATA_LOSS:
  ...`), not when a record's request failed;
- `/tensorflow/serving/batching_session/...`: with `--enable_batching` (see
  `ServingMetrics`).

Sources: tensorflow_serving/servables/tensorflow/util.cc (request and runtime
metrics), saved_model_warmup_util.cc (warmup metrics),
model_servers/prediction_service_impl.cc and http_server.cc (when they are
recorded), batching/batching_session.cc and batching_util.h (batching
metrics), TensorFlow's tensorflow/cc/saved_model/loader.cc (load metrics), and
util/prometheus_exporter.cc for the rendering: a name's characters outside
`[a-zA-Z0-9_]` become `:` (`:tensorflow:serving:request_count`), histograms
are written as cumulative `_bucket{le=...}` lines (the last one `+Inf`) with
`_sum` and `_count`, and every registered metric gets its `# TYPE` line even
before it has a value. Like TensorFlow's histograms, a value falls in the
first bucket whose limit is *greater* than it (a value equal to a limit is
counted in the next bucket).
"""

from __future__ import annotations

import bisect
import itertools
import math
import re
import sys
import threading
from collections.abc import Sequence

import grpc

PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# TF Serving's PrometheusExporter::kPrometheusPath, used when prometheus_config.path is empty.
DEFAULT_PROMETHEUS_PATH = "/monitoring/prometheus/metrics"


def exponential_buckets(scale: float, growth_factor: float, count: int) -> tuple[float, ...]:
    """Returns TensorFlow's `monitoring::Buckets::Exponential` limits.

    `count` limits `scale * growth_factor**i`; the histogram adds a last bucket
    up to the largest double (rendered `+Inf`).

    Example:

    >>> exponential_buckets(1, 2, 4)
    (1.0, 2.0, 4.0, 8.0)
    """
    limits, bound = [], float(scale)
    for _ in range(count):
        limits.append(bound)
        bound *= growth_factor
    return tuple(limits)


# Scale 10, power 1.8, 33 buckets (~20 minutes): TF Serving's latency histograms.
LATENCY_BUCKETS = exponential_buckets(10, 1.8, 33)
# Scale 100, power 1.2, 52 buckets (~1 s): the batching queue's latency.
QUEUING_LATENCY_BUCKETS = exponential_buckets(100, 1.2, 52)
# Powers of two up to 2**13: batch sizes.
BATCH_SIZE_BUCKETS = exponential_buckets(1, 2, 14)
# Powers of two up to 2**14: the tf.Examples of a request (util.cc).
EXAMPLE_COUNT_BUCKETS = exponential_buckets(1, 2, 15)


def prometheus_name(name: str) -> str:
    """Returns the Prometheus name TF Serving's exporter gives a TensorFlow metric name.

    Example:

    >>> prometheus_name("/tensorflow/serving/request_count")
    ':tensorflow:serving:request_count'
    """
    name = re.sub(r"[^a-zA-Z0-9_]", ":", name)
    return "_" + name if name[:1].isdigit() else name


def _label_name(name: str) -> str:
    name = re.sub(r"[^a-zA-Z0-9]", "_", name)
    return "_" + name if name[:1].isdigit() else name


def _label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _number(value: float) -> str:
    # absl::StrCat of a double: six significant digits.
    return f"{value:.6g}"


class _Metric:
    kind = ""

    def __init__(self, name: str, description: str, label_names: Sequence[str]) -> None:
        self.name = name
        self.description = description
        self.label_names = tuple(label_names)
        self._lock = threading.Lock()
        self._cells: dict[tuple[str, ...], object] = {}

    def _key(self, labels: Sequence[str]) -> tuple[str, ...]:
        if len(labels) != len(self.label_names):
            raise ValueError(
                f"Metric {self.name} has labels {list(self.label_names)}; expected "
                f"{len(self.label_names)} values. Received: labels={list(labels)}"
            )
        return tuple(str(label) for label in labels)

    def _labels(self, key: tuple[str, ...]) -> list[str]:
        return [f'{_label_name(name)}="{_label_value(value)}"'
                for name, value in zip(self.label_names, key, strict=True)]


class Counter(_Metric):
    """A monotonically increasing integer per label combination (TensorFlow's `Counter<N>`).

    Args:
        name: TensorFlow's metric name, e.g. `"/tensorflow/serving/request_count"`.
        description: What it counts.
        label_names: The label names, in order.

    Example:

    >>> counter = Counter("/demo/count", "Demo.", ["status"])
    >>> counter.increment("OK"); counter.increment("OK", by=2); counter.value("OK")
    3
    """

    kind = "counter"

    def increment(self, *labels: str, by: int = 1) -> None:
        """Adds `by` (a non-negative integer) to the cell of `labels`."""
        if by < 0:
            raise ValueError(f"A counter only increases. Received: by={by}")
        key = self._key(labels)
        with self._lock:
            self._cells[key] = self._cells.get(key, 0) + int(by)

    def value(self, *labels: str) -> int:
        """Returns the count of `labels` (0 if never incremented)."""
        with self._lock:
            return self._cells.get(self._key(labels), 0)

    def render(self) -> list[str]:
        """Returns the exposition lines: the `# TYPE` line, then one line per cell."""
        lines = [f"# TYPE {prometheus_name(self.name)} counter"]
        with self._lock:
            cells = sorted(self._cells.items())
        for key, count in cells:
            lines.append(f"{prometheus_name(self.name)}{{{','.join(self._labels(key))}}} {count}")
        return lines


class _Distribution:
    def __init__(self, buckets: int) -> None:
        self.counts = [0] * buckets
        self.sum = 0.0


class Sampler(_Metric):
    """A histogram per label combination (TensorFlow's `Sampler<N>`).

    Args:
        name: TensorFlow's metric name.
        description: What it measures, with its unit.
        label_names: The label names, in order.
        bucket_limits: Increasing upper limits; a last bucket up to the largest
            double is added, as TensorFlow's `Histogram` does.

    Example:

    >>> sampler = Sampler("/demo/size", "Demo.", [], exponential_buckets(1, 2, 3))
    >>> for size in (1, 3, 100): sampler.add(value=size)
    >>> sampler.cumulative_counts()
    [0, 1, 2, 3]
    """

    kind = "histogram"

    def __init__(
        self, name: str, description: str, label_names: Sequence[str],
        bucket_limits: Sequence[float],
    ) -> None:
        super().__init__(name, description, label_names)
        limits = [float(limit) for limit in bucket_limits]
        if not limits or any(b <= a for a, b in itertools.pairwise(limits)):
            raise ValueError(
                "Expected a non-empty, strictly increasing list of bucket limits. "
                f"Received: bucket_limits={list(bucket_limits)}"
            )
        self.bucket_limits = (*limits, sys.float_info.max)

    def add(self, *labels: str, value: float) -> None:
        """Records one value in the histogram of `labels`."""
        key = self._key(labels)
        # TensorFlow's Histogram::Add: the first bucket whose limit is greater.
        bucket = min(bisect.bisect_right(self.bucket_limits, value), len(self.bucket_limits) - 1)
        with self._lock:
            cell = self._cells.get(key)
            if cell is None:
                cell = self._cells[key] = _Distribution(len(self.bucket_limits))
            cell.counts[bucket] += 1
            cell.sum += value

    def cumulative_counts(self, *labels: str) -> list[int]:
        """Returns the running totals over the buckets of `labels` (all zeros if none)."""
        with self._lock:
            cell = self._cells.get(self._key(labels))
            counts = list(cell.counts) if cell else [0] * len(self.bucket_limits)
        total, cumulative = 0, []
        for count in counts:
            total += count
            cumulative.append(total)
        return cumulative

    def render(self) -> list[str]:
        """Returns the exposition lines: `# TYPE`, then `_bucket`, `_sum`, `_count` per cell."""
        name = prometheus_name(self.name)
        lines = [f"# TYPE {name} histogram"]
        with self._lock:
            cells = sorted((key, list(cell.counts), cell.sum) for key, cell in self._cells.items())
        for key, counts, total in cells:
            labels = self._labels(key)
            prefix = f"{name}_bucket{{{','.join([*labels, ''])}"
            cumulative = 0
            for index, count in enumerate(counts):
                cumulative += count
                limit = ("+Inf" if index == len(counts) - 1
                         else _number(self.bucket_limits[index]))
                lines.append(f'{prefix}le="{limit}"}} {cumulative}')
            lines.append(f"{name}_sum{{{','.join(labels)}}} {_number(total)}")
            lines.append(f"{name}_count{{{','.join(labels)}}} {cumulative}")
        return lines


def status_name(code: grpc.StatusCode) -> str:
    """Returns TF Serving's `status` label of a code (`error::Code_Name`), e.g. `"OK"`."""
    return code.name


class ServingMetrics:
    """TF Serving's metrics of one server, and their Prometheus page.

    Each `record_*` method records what TF Serving records at the same point
    (see the module docstring for the sources). `render()` returns the page
    TF Serving serves at `prometheus_config.path`.

    Attributes:
        request_count: `/tensorflow/serving/request_count` {model_name, status}.
        request_latency: `/tensorflow/serving/request_latency` {model_name, API,
            entrypoint}, µs.
        runtime_latency: `/tensorflow/serving/runtime_latency` {model_name, API,
            runtime}, µs.
        load_attempt_count: `/tensorflow/cc/saved_model/load_attempt_count`
            {model_path, status}.
        load_latency: `/tensorflow/cc/saved_model/load_latency` {model_path}, µs.
        model_warmup_latency: `/tensorflow/serving/model_warmup_latency`
            {model_path, status}, µs.
        model_warmup_records_read: `/tensorflow/serving/model_warmup_records_read`
            {model_path, status}.
        request_example_counts: `/tensorflow/serving/request_example_counts`
            {model}, `tf.Example`s per MultiInference.
        request_example_count_total:
            `/tensorflow/serving/request_example_count_total` {model}.
        queuing_latency: `/tensorflow/serving/batching_session/queuing_latency`
            {thread_pool_name}, µs a request waited for its batch.
        input_batch_size: `/tensorflow/serving/batching_session/input_batch_size`,
            rows of each request input.
        processed_batch_size:
            `/tensorflow/serving/batching_session/processed_batch_size`, rows of
            each merged batch after padding.
        padding_size: `/tensorflow/serving/batching_session/padding_size`
            {execution_batch_size}, padding rows of each batch.
        wrapped_run_count: `/tensorflow/serving/batching_session/wrapped_run_count`,
            signature calls made for merged batches.

    Example:

    >>> metrics = ServingMetrics()
    >>> metrics.record_request("memae", "Predict", "GRPC", grpc.StatusCode.OK, 1500)
    >>> [line for line in metrics.render().splitlines() if "request_count{" in line]
    [':tensorflow:serving:request_count{model_name="memae",status="OK"} 1']
    """

    def __init__(self) -> None:
        self.request_count = Counter(
            "/tensorflow/serving/request_count", "The total number of requests.",
            ["model_name", "status"])
        self.request_latency = Sampler(
            "/tensorflow/serving/request_latency",
            "Distribution of wall time (in microseconds) for Tensorflow Serving request.",
            ["model_name", "API", "entrypoint"], LATENCY_BUCKETS)
        self.runtime_latency = Sampler(
            "/tensorflow/serving/runtime_latency",
            "Distribution of wall time (in microseconds) for Tensorflow runtime.",
            ["model_name", "API", "runtime"], LATENCY_BUCKETS)
        self.load_attempt_count = Counter(
            "/tensorflow/cc/saved_model/load_attempt_count",
            "The number of times a SavedModel was successfully loaded.",
            ["model_path", "status"])
        self.load_latency = Counter(
            "/tensorflow/cc/saved_model/load_latency",
            "Latency in microseconds for SavedModels that were successfully loaded.",
            ["model_path"])
        self.model_warmup_latency = Sampler(
            "/tensorflow/serving/model_warmup_latency",
            "Distribution of wall time (in microseconds) for warming up the model.",
            ["model_path", "status"], LATENCY_BUCKETS)
        self.model_warmup_records_read = Counter(
            "/tensorflow/serving/model_warmup_records_read",
            "Total number of warmup records read during model warmup.",
            ["model_path", "status"])
        self.request_example_counts = Sampler(
            "/tensorflow/serving/request_example_counts",
            "The number of tensorflow.Examples per request.", ["model"],
            EXAMPLE_COUNT_BUCKETS)
        self.request_example_count_total = Counter(
            "/tensorflow/serving/request_example_count_total",
            "The total number of tensorflow.Examples.", ["model"])
        self.queuing_latency = Sampler(
            "/tensorflow/serving/batching_session/queuing_latency",
            "Distribution of wall time spent (in microseconds) in queuing",
            ["thread_pool_name"], QUEUING_LATENCY_BUCKETS)
        self.input_batch_size = Sampler(
            "/tensorflow/serving/batching_session/input_batch_size",
            "Tracks the batch size distribution on the inputs.", [], BATCH_SIZE_BUCKETS)
        self.processed_batch_size = Sampler(
            "/tensorflow/serving/batching_session/processed_batch_size",
            "Tracks the batch size distribution on processing.", [], BATCH_SIZE_BUCKETS)
        self.padding_size = Sampler(
            "/tensorflow/serving/batching_session/padding_size",
            "Tracks the padding size distribution on batches.", ["execution_batch_size"],
            BATCH_SIZE_BUCKETS)
        self.wrapped_run_count = Counter(
            "/tensorflow/serving/batching_session/wrapped_run_count",
            "Total count of run calls on the wrapped session", [])

    def metrics(self) -> list[Counter | Sampler]:
        """Returns every metric, in the order of the page (by TensorFlow name, as TF's registry)."""
        found = [value for value in vars(self).values() if isinstance(value, _Metric)]
        return sorted(found, key=lambda metric: metric.name)

    def record_request(
        self, model_name: str, api: str, entrypoint: str, code: grpc.StatusCode,
        latency_micros: float,
    ) -> None:
        """Counts a finished request; its latency only when it succeeded, as TF Serving does.

        Args:
            model_name: The model the request named (empty if it named none).
            api: `"Predict"`, `"Classify"` or `"Regress"` on gRPC; on REST
                the method of the URL (`"predict"`, `"classify"`,
                `"regress"`, or `""` for status and metadata requests).
            entrypoint: `"GRPC"` or `"REST"`.
            code: The request's status code.
            latency_micros: Wall time of the request, in microseconds.
        """
        self.request_count.increment(model_name, status_name(code))
        if code == grpc.StatusCode.OK:
            self.request_latency.add(model_name, api, entrypoint, value=latency_micros)

    def record_runtime(self, model_name: str, api: str, latency_micros: float) -> None:
        """Records the wall time of a signature call (runtime `"TF1"`, as TF Serving's)."""
        self.runtime_latency.add(model_name, api, "TF1", value=latency_micros)

    def record_warmup(
        self, model_path: str, status: str, records: int, latency_micros: float
    ) -> None:
        """Records a version's warmup: its time and the records it read, by final status.

        Args:
            model_path: The version directory.
            status: absl's `Status::ToString`: `"OK"`, or the code and message
                (`"DATA_LOSS: corrupted record at 0"`).
            records: The records replayed.
            latency_micros: Wall time of the warmup, in microseconds.
        """
        self.model_warmup_latency.add(model_path, status, value=latency_micros)
        self.model_warmup_records_read.increment(model_path, status, by=records)

    def record_examples(self, model_name: str, count: int) -> None:
        """Records the `tf.Example`s of a MultiInference (util.cc `RecordRequestExampleCount`)."""
        self.request_example_counts.add(model_name, value=count)
        self.request_example_count_total.increment(model_name, by=count)

    def record_load(self, model_path: str, succeeded: bool, latency_micros: float) -> None:
        """Counts a SavedModel load attempt and adds its time to the path's total."""
        self.load_attempt_count.increment(model_path, "success" if succeeded else "fail")
        self.load_latency.increment(model_path, by=max(int(latency_micros), 0))

    def record_input_batch(self, rows: int) -> None:
        """Records the rows of one request input entering the batching queue."""
        self.input_batch_size.add(value=rows)

    def record_batch(self, rows: int, padded_rows: int) -> None:
        """Records a merged batch of `rows` real rows run as `padded_rows` rows."""
        self.processed_batch_size.add(value=padded_rows)
        self.padding_size.add(str(padded_rows), value=padded_rows - rows)
        self.wrapped_run_count.increment()

    def record_queuing(self, thread_pool_name: str, latency_micros: float) -> None:
        """Records how long a request waited in the batching queue."""
        self.queuing_latency.add(thread_pool_name, value=latency_micros)

    def render(self) -> str:
        """Returns the Prometheus page, one metric after another, ending with a newline."""
        return "\n".join(line for metric in self.metrics() for line in metric.render()) + "\n"


def parse_exposition(text: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """Reads a Prometheus text page into {sample name: {sorted labels: value}}.

    A small reader for the format `render()` writes (and TF Serving's
    exporter), so tests and tools can check the page without a Prometheus
    client library.

    Example:

    >>> parse_exposition('a_b{x="1"} 2\\n')
    {'a_b': {(('x', '1'),): 2.0}}
    """
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    line_pattern = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$")
    label_pattern = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
    for number, line in enumerate(text.splitlines(), 1):
        if not line or line.startswith("#"):
            continue
        match = line_pattern.match(line)
        if match is None:
            raise ValueError(f"Line {number} is not a Prometheus sample: {line!r}")
        name, labels, value = match.groups()
        pairs = tuple(sorted(
            (key, re.sub(r"\\(.)", r"\1", raw)) for key, raw in label_pattern.findall(labels or "")
        ))
        samples.setdefault(name, {})[pairs] = math.inf if value == "+Inf" else float(value)
    return samples
