"""The JSON text of TF Serving's REST answers, byte for byte.

TF Serving writes every REST answer of predict, classify and regress, and
every error, with rapidjson 1.1.0's `PrettyWriter` (util/json_tensor.cc): an
object puts each member on its own line, indented by 4 spaces a level; an
array does too, unless the writer's `kFormatSingleLineArray` option is on
when its values are written (then `, ` separates them, and the `]` follows the
last value unless the option is off again by then). Floating-point values are
written by json_tensor.cc `WriteDecimal` (see `decimal_token`); strings as
rapidjson's `Writer::WriteString` escapes them.

`PrettyWriter` is that writer; `predict_json`, `classification_json`,
`regression_json` and `error_json` are json_tensor.cc's
`MakeJsonFromTensors`, `MakeJsonFromClassificationResult`,
`MakeJsonFromRegressionResult` and `MakeJsonFromStatus`.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from fractions import Fraction

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import classification_pb2, regression_pb2

from memae_tf.serving.errors import invalid_argument

# rapidjson's Writer::WriteString: the control characters with a short escape; the
# others below 0x20 are written \u00XX (upper-case hex), '"' and '\' escaped, and
# every other byte, UTF-8 included, as it is.
_SHORT_ESCAPES = {0x22: b'\\"', 0x5C: b"\\\\", 0x08: b"\\b", 0x0C: b"\\f", 0x0A: b"\\n",
                  0x0D: b"\\r", 0x09: b"\\t"}
_ESCAPES = {byte: _SHORT_ESCAPES.get(byte, b"\\u%04X" % byte) for byte in range(0x20)}
_ESCAPES.update(_SHORT_ESCAPES)
_INDENT = b"    "
# json_tensor.cc kBytesTensorNameSuffix: a DT_STRING output so named is written as base64.
BYTES_SUFFIX = "_bytes"


class WriteLimitError(Exception):
    """The writer's text reached its `limit`: it takes no further value."""


def string_token(text: str | bytes) -> bytes:
    """Returns a JSON string as rapidjson's `Writer::WriteString` writes it."""
    data = text if isinstance(text, bytes) else text.encode("utf-8", "surrogateescape")
    return b'"' + b"".join(_ESCAPES.get(byte) or bytes((byte,)) for byte in data) + b'"'


class PrettyWriter:
    """rapidjson 1.1.0's `PrettyWriter` (4-space indent) writing into bytes.

    Args:
        limit: json_tensor.cc `JsonWriterWithLimit`: each call writes only
            while the text is shorter than this many bytes, and raises
            `WriteLimitError` once it is not; None for no limit.

    Example:

    >>> writer = PrettyWriter()
    >>> writer.start_object(); writer.key("a"); writer.start_array()
    >>> writer.single_line_arrays = True
    >>> writer.value(b"1"); writer.value(b"2")
    >>> writer.single_line_arrays = False
    >>> writer.end_array(); writer.end_object()
    >>> print(writer.text().decode())
    {
        "a": [1, 2
        ]
    }
    """

    def __init__(self, limit: int | None = None) -> None:
        self.single_line_arrays = False  # rapidjson's kFormatSingleLineArray
        self._limit = limit
        self._parts: list[bytes] = []
        self._size = 0
        self._levels: list[list] = []  # [in an array, values written] per open bracket

    def _put(self, data: bytes) -> None:
        self._parts.append(data)
        self._size += len(data)

    def _check_limit(self) -> None:
        if self._limit is not None and self._size >= self._limit:
            raise WriteLimitError

    def _prefix(self) -> None:  # PrettyWriter::PrettyPrefix
        self._check_limit()
        if not self._levels:
            return
        level = self._levels[-1]
        in_array, count = level
        if in_array:
            if count:
                self._put(b", " if self.single_line_arrays else b",")
            if not self.single_line_arrays:
                self._put(b"\n" + _INDENT * len(self._levels))
        else:
            if count:
                self._put(b",\n" if count % 2 == 0 else b": ")
            else:
                self._put(b"\n")
            if count % 2 == 0:
                self._put(_INDENT * len(self._levels))
        level[1] += 1

    def value(self, token: bytes) -> None:
        """Writes a number, `true`, `false` or `null` already spelled out."""
        self._prefix()
        self._put(token)

    def string(self, text: str | bytes) -> None:
        self._prefix()
        self._put(string_token(text))

    key = string

    def start_object(self) -> None:
        self._prefix()
        self._levels.append([False, 0])
        self._put(b"{")

    def end_object(self) -> None:
        self._check_limit()
        if self._levels.pop()[1]:
            self._put(b"\n" + _INDENT * len(self._levels))
        self._put(b"}")

    def start_array(self) -> None:
        self._prefix()
        self._levels.append([True, 0])
        self._put(b"[")

    def end_array(self) -> None:
        self._check_limit()
        if self._levels.pop()[1] and not self.single_line_arrays:
            self._put(b"\n" + _INDENT * len(self._levels))
        self._put(b"]")

    def text(self) -> bytes:
        """Returns what has been written."""
        return b"".join(self._parts)


def _float32_of(text: str) -> np.float32:
    """absl::SimpleAtof: the decimal text rounded once to the nearest float32 (ties to even)."""
    double = float(text)
    single = np.float32(double)
    if np.isfinite(single) and float(single) != double:
        # Going through the double rounds twice, which differs from rounding once only
        # when the double falls exactly halfway between two float32s.
        # (float(single): numpy would compare a Python float with a float32 in float32.)
        other = np.nextafter(single, np.float32(np.inf if double > float(single) else -np.inf))
        if double - float(single) == float(other) - double:
            exact = Fraction(text)
            near, far = abs(Fraction(float(single)) - exact), abs(Fraction(float(other)) - exact)
            # At an exact tie the double's rounding already took the even neighbour.
            if far < near:
                return other
    return single


def decimal_token(value: float, single: bool) -> bytes:
    """Returns a float (`single`) or double as json_tensor.cc `WriteDecimal` writes it.

    `absl::StrCat`'s six significant digits (printf's `%g`: `0.1`, `1e-05`,
    `1.67772e+07`) if they read back (absl::SimpleAtof/SimpleAtod) as the same
    value, else printf's `%.9g` (float) or `%.17g` (double); then `.0` after a
    number with neither `.` nor `e`. NaN is `NaN`, infinities `Infinity` and
    `-Infinity` (rapidjson reads them back).

    Example:

    >>> decimal_token(0.1, single=False), decimal_token(2.0, single=True)
    (b'0.1', b'2.0')
    """
    return _decimal_tokens([value], single)[0]


def _decimal_tokens(values: list[float], single: bool) -> list[bytes]:
    """`decimal_token` of each value, the read-back checked for all at once with numpy."""
    texts = [f"{value:.6g}" for value in values]
    with np.errstate(invalid="ignore", over="ignore"):
        read = np.array(texts).astype(np.float64)  # strtod: rounded once, as SimpleAtod
        if single:
            got = read.astype(np.float32)
            back = got.astype(np.float64)
            # Through the double a text is rounded twice, which differs from
            # SimpleAtof's one rounding only where the double falls exactly halfway
            # between two float32s: those few go through _float32_of.
            other = np.nextafter(got, np.where(read > back, np.float32(np.inf),
                                               np.float32(-np.inf)))
            ties = np.isfinite(got) & (read != back) & (
                read - back == other.astype(np.float64) - read)
            for index in np.flatnonzero(ties):
                got[index] = _float32_of(texts[index])
            same = (got == np.array(values, np.float64).astype(np.float32)).tolist()
        else:
            same = (read == np.array(values, np.float64)).tolist()
    tokens = []
    for value, text, reads_back in zip(values, texts, same, strict=True):
        if value != value:
            tokens.append(b"NaN")
            continue
        if value in (float("inf"), float("-inf")):
            tokens.append(b"-Infinity" if value < 0 else b"Infinity")
            continue
        if not reads_back:
            text = f"{value:.9g}" if single else f"{value:.17g}"
        if "." not in text and "e" not in text:
            text += ".0"
        tokens.append(text.encode("ascii"))
    return tokens


# The numpy kinds of the dtypes json_tensor.cc AddSingleValueAndAdvance writes.
_INTEGERS = {np.dtype(name) for name in ("int8", "int16", "int32", "int64", "uint8",
                                         "uint32", "uint64")}
# TensorFlow's DataTypeString, where it differs from the dtype's Python name.
_DATA_TYPE_STRINGS = {"float16": "half"}


def _tokens(name: str, array: np.ndarray) -> list[bytes]:
    """The array's values in order, as AddSingleValueAndAdvance writes them.

    A DT_STRING output whose name ends in `_bytes` (IsNamedTensorBytes) gives
    each value's base64, for `_write_values` to put in a `{"b64": ...}` object.
    """
    flat = array.ravel().tolist()
    if array.dtype in (np.float32, np.float64):
        return _decimal_tokens(flat, single=array.dtype == np.float32)
    if array.dtype in _INTEGERS:
        return [str(value).encode("ascii") for value in flat]
    if array.dtype == np.bool_:
        return [b"true" if value else b"false" for value in flat]
    if array.dtype == object or array.dtype.kind == "S":  # DT_STRING, as bytes
        if _is_bytes(name, array):
            return [base64.b64encode(value) for value in flat]
        return [string_token(value) for value in flat]
    if not flat:
        return []
    type_name = tf.dtypes.as_dtype(array.dtype).name
    raise invalid_argument("Failed to write JSON value for tensor type: "
                           f"{_DATA_TYPE_STRINGS.get(type_name, type_name)}")


def _write_values(writer: PrettyWriter, shape: tuple[int, ...], tokens: list[bytes],
                  offset: int, as_bytes: bool) -> int:
    """json_tensor.cc AddTensorValues: the values of `shape` from `offset` on, nested.

    Returns the offset after them.
    """
    if not shape:
        if as_bytes:
            writer.start_object()
            writer.key("b64")
            writer.string(tokens[offset])
            writer.end_object()
        else:
            writer.value(tokens[offset])
        return offset + 1
    writer.start_array()
    for _ in range(shape[0]):
        offset = _write_values(writer, shape[1:], tokens, offset, as_bytes)
    writer.end_array()
    return offset


def _is_bytes(name: str, array: np.ndarray) -> bool:
    """json_tensor.cc IsNamedTensorBytes: a DT_STRING tensor whose name ends in `_bytes`."""
    return (array.dtype == object or array.dtype.kind == "S") and name.endswith(BYTES_SUFFIX)


def predict_json(outputs: Mapping[str, np.ndarray], row_format: bool) -> bytes:
    """Returns the answer of a REST predict, as json_tensor.cc `MakeJsonFromTensors`.

    In the row format (a request of `instances`), `{"predictions": [...]}` with
    one entry per row of the batch: the row's values when there is one output,
    else an object of each output's row; every output needs a first dimension,
    the same for all. In the columnar format (`inputs`), `{"outputs": ...}`
    with the one output's values, or an object of every output's. A DT_STRING
    output whose name ends in `_bytes` is written as `{"b64": ...}` objects.

    Args:
        outputs: Output name → array, in the order to write them.
        row_format: Whether the request was in the row format.

    Returns:
        The UTF-8 JSON text.

    Raises:
        ServingError: INVALID_ARGUMENT with json_tensor.cc's message for no
            outputs, outputs the row format cannot hold, or a dtype it cannot write.
    """
    if not outputs:
        raise invalid_argument("Cannot convert empty tensor map to JSON")
    writer = PrettyWriter()
    writer.start_object()
    objects = len(outputs) > 1
    if not row_format:  # MakeColumnarFormatJsonFromTensors
        writer.key("outputs")
        if objects:
            writer.start_object()
        for name, array in outputs.items():
            if objects:
                writer.key(name)
            _write_values(writer, array.shape, _tokens(name, array), 0, _is_bytes(name, array))
        if objects:
            writer.end_object()
        writer.end_object()
        return writer.text()
    batch_size = -1  # MakeRowFormatJsonFromTensors
    for name, array in outputs.items():
        if array.ndim == 0:
            raise invalid_argument(f"Tensor name: {name} has no shape information ")
        if batch_size >= 0 and batch_size != array.shape[0]:
            raise invalid_argument(f"Tensor name: {name} has inconsistent batch size: "
                                   f"{array.shape[0]} expecting: {batch_size}")
        batch_size = array.shape[0]
    tokens = {name: _tokens(name, array) for name, array in outputs.items()}
    offsets = dict.fromkeys(outputs, 0)
    writer.key("predictions")
    writer.start_array()
    for _ in range(batch_size):
        if objects:
            writer.start_object()
        writer.single_line_arrays = True
        for name, array in outputs.items():
            if objects:
                writer.key(name)
            offsets[name] = _write_values(writer, array.shape[1:], tokens[name],
                                          offsets[name], _is_bytes(name, array))
        writer.single_line_arrays = False
        if objects:
            writer.end_object()
    writer.end_array()
    writer.end_object()
    return writer.text()


def classification_json(result: classification_pb2.ClassificationResult) -> bytes:
    """Returns a REST classify answer, as json_tensor.cc `MakeJsonFromClassificationResult`.

    `{"results": [...]}` with one single-line array per example of its
    `[label, score]` pairs, the score written as a float (`decimal_token`).

    Raises:
        ServingError: INVALID_ARGUMENT for a result without classifications.
    """
    if not result.classifications:
        raise invalid_argument("Cannot convert empty ClassificationResults to JSON")
    writer = PrettyWriter()
    writer.start_object()
    writer.key("results")
    writer.start_array()
    for classifications in result.classifications:
        writer.single_line_arrays = True
        writer.start_array()
        for entry in classifications.classes:
            writer.start_array()
            writer.string(entry.label)
            writer.value(decimal_token(entry.score, single=True))
            writer.end_array()
        writer.end_array()
        writer.single_line_arrays = False
    writer.end_array()
    writer.end_object()
    return writer.text()


def regression_json(result: regression_pb2.RegressionResult) -> bytes:
    """Returns a REST regress answer, as json_tensor.cc `MakeJsonFromRegressionResult`.

    `{"results": [...]}` with every value, as a float, on one line.

    Raises:
        ServingError: INVALID_ARGUMENT for a result without regressions.
    """
    if not result.regressions:
        raise invalid_argument("Cannot convert empty RegressionResults to JSON")
    writer = PrettyWriter()
    writer.start_object()
    writer.key("results")
    writer.single_line_arrays = True
    writer.start_array()
    for regression in result.regressions:
        writer.value(decimal_token(regression.value, single=True))
    writer.end_array()
    writer.end_object()
    return writer.text()


def error_json(message: str) -> bytes:
    """Returns an error answer, as json_tensor.cc `MakeJsonFromStatus`: `{"error": ...}`.

    Example:

    >>> print(error_json('Missing "x"').decode())
    {
        "error": "Missing \\"x\\""
    }
    """
    writer = PrettyWriter()
    writer.start_object()
    writer.key("error")
    writer.string(message)
    writer.end_object()
    return writer.text()
