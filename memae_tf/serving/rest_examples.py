"""The JSON of REST classify and regress requests: `tf.Example`s in, results out.

As TF Serving's util/json_tensor.cc (`FillClassifyRegressRequestFromJson`,
`MakeJsonFromClassificationResult`, `MakeJsonFromRegressionResult`), with its
checks, their order and its messages, which quote the offending JSON as
`JsonValueToDebugString` writes it (rapidjson's pretty writer, cut after 256
bytes).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import decimal
import json
from typing import Any

from tensorflow.core.example import example_pb2, feature_pb2
from tensorflow_serving.apis import classification_pb2, input_pb2, regression_pb2

from memae_tf.serving.errors import invalid_argument
from memae_tf.serving.json_reader import read_json

# json_tensor.cc kMaxJsonDebugStringBytes: no value is written once the text is this long.
DEBUG_STRING_BYTES = 256
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n",
            "\r": "\\r", "\t": "\\t"}


def _double(value: float) -> str:
    """rapidjson's `Writer::Double` (Grisu2, then `Prettify`) of a finite double."""
    sign, digits, exponent = decimal.Decimal(repr(value)).as_tuple()
    text = "".join(map(str, digits)).rstrip("0") or "0"
    exponent += len(digits) - len(text)
    point = len(text) + exponent  # where the decimal point falls among the digits
    minus = "-" if sign else ""
    if exponent >= 0 and point <= 21:
        return f"{minus}{text}{'0' * exponent}.0"
    if 0 < point <= 21:
        return f"{minus}{text[:point]}.{text[point:]}"
    if -6 < point <= 0:
        return f"{minus}0.{'0' * -point}{text}"
    mantissa = text if len(text) == 1 else f"{text[0]}.{text[1:]}"
    return f"{minus}{mantissa}e{point - 1}"


def _string(value: str) -> str:
    escaped = "".join(_ESCAPES.get(char) or (f"\\u{ord(char):04X}" if char < " " else char)
                      for char in value)
    return f'"{escaped}"'


class _LimitReachedError(Exception):
    """The debug string reached its limit: the writer refuses every further event."""


def json_debug_string(value: Any) -> str:
    """Returns a JSON value as json_tensor.cc `JsonValueToDebugString` writes it.

    rapidjson's `PrettyWriter` with `kFormatSingleLineArray`: objects one
    member a line, indented by 4 spaces a level, arrays on one line; each
    value, key or bracket is written only while the text is under
    `DEBUG_STRING_BYTES` bytes, so a long value is cut there. A NaN or
    infinite number ends the text too (rapidjson's writer refuses them).

    Example:

    >>> print(json_debug_string({"examples": [1, 2.5, "a"], "b": {}}))
    {
        "examples": [1, 2.5, "a"],
        "b": {}
    }
    """
    parts: list[str] = []
    size = 0
    levels: list[list] = []  # [in an array, values written] of each open bracket

    def emit(text: str) -> None:
        nonlocal size
        if size >= DEBUG_STRING_BYTES:
            raise _LimitReachedError
        parts.append(text)
        size += len(text.encode("utf-8", "surrogateescape"))

    def prefix() -> str:  # PrettyWriter::PrettyPrefix
        if not levels:
            return ""
        level = levels[-1]
        if level[0]:
            text = ", " if level[1] else ""
        else:
            text = (",\n" if level[1] % 2 == 0 else ": ") if level[1] else "\n"
            text += "    " * len(levels) if level[1] % 2 == 0 else ""
        level[1] += 1
        return text

    def write(item: Any) -> None:
        if isinstance(item, dict | list):
            emit(prefix() + ("{" if isinstance(item, dict) else "["))
            levels.append([isinstance(item, list), 0])
            for key in item:
                if isinstance(item, dict):
                    emit(prefix() + _string(key))
                    write(item[key])
                else:
                    write(key)
            written = levels.pop()[1]
            if isinstance(item, list):
                emit("]")
            else:
                emit(("\n" + "    " * len(levels) if written else "") + "}")
            return
        if isinstance(item, float) and (item != item or item in (float("inf"), float("-inf"))):
            emit(prefix())
            raise _LimitReachedError
        if item is None or isinstance(item, bool):
            token = json.dumps(item)
        elif isinstance(item, str):
            token = _string(item)
        elif isinstance(item, int) and -(2**63) <= item < 2**64:  # int64 or uint64
            token = str(item)
        else:  # a double, or an integer rapidjson could only read as one
            token = _double(float(item))
        emit(prefix() + token)

    with contextlib.suppress(_LimitReachedError):
        write(value)
    return "".join(parts)


def _json_type(value: Any) -> str:
    """rapidjson's type names, as json_tensor.cc `JsonTypeString` writes them."""
    if value is None or isinstance(value, bool):
        return str(value).replace("None", "Null")
    names = {dict: "Object", list: "Array", str: "String"}
    return names.get(type(value), "Number")


def _add_feature_value(name: str, value: Any, feature: feature_pb2.Feature) -> None:
    """json_tensor.cc `AddValueToFeature`: one JSON value into a feature of one kind."""
    if isinstance(value, bool):
        kind, value = "int64_list", int(value)
    elif isinstance(value, dict) and set(value) == {"b64"} and isinstance(value["b64"], str):
        kind = "bytes_list"
        text = value["b64"]
        try:
            value = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
        except binascii.Error as error:
            raise invalid_argument("Unable to base64 decode") from error
    elif value is None or isinstance(value, dict | list):
        raise invalid_argument(
            f"Feature: {name} has element with unexpected JSON type: {_json_type(value)}")
    elif isinstance(value, str):
        kind, value = "bytes_list", value.encode("utf-8", "surrogateescape")
    elif isinstance(value, int) and -(2**63) <= value < 2**64:
        if value >= 2**63:
            raise invalid_argument(
                f"Feature: {name} has uint64_t element. Only int64_t is supported.")
        kind = "int64_list"
    else:  # a float, or an integer too large for 64 bits (rapidjson reads it as a double)
        kind, value = "float_list", float(value)
    held = feature.WhichOneof("kind")
    if held not in (None, kind):
        raise invalid_argument(f"Unexpected element type in feature: {name} expecting type: "
                               f"{held.removesuffix('_list')}")
    getattr(feature, kind).value.append(value)


def _example(value: Any) -> example_pb2.Example:
    """json_tensor.cc `MakeExampleFromJsonObject`: feature name → a value or a list of values."""
    if not isinstance(value, dict):
        raise invalid_argument(
            f"Example must be JSON object but got JSON {_json_type(value)}")
    example = example_pb2.Example()
    for name, content in value.items():
        feature = example.features.feature[name]
        for item in content if isinstance(content, list) else [content]:
            _add_feature_value(name, item, feature)
    return example


def parse_examples_body(body: bytes) -> tuple[str | None, input_pb2.Input]:
    """Reads the body of a REST classify or regress request into its examples.

    The format and the checks, in their order, are TF Serving's
    (util/json_tensor.cc `FillClassifyRegressRequestFromJson`): a JSON object
    with `examples`, a non-empty list of objects, each feature a value or a
    list of values of one kind (strings and `{"b64": ...}` are bytes, integers
    and booleans int64, other numbers float); an optional `context` object,
    whose features every example gets; an optional string `signature_name`.

    Args:
        body: The request body.

    Returns:
        `(signature_name, input)`: the signature name (None when the body
        names none) and the `tensorflow.serving.Input` of the examples.

    Raises:
        ServingError: INVALID_ARGUMENT, with TF Serving's messages.
    """
    document = read_json(body)
    if not isinstance(document, dict):
        raise invalid_argument(f"JSON Value: {json_debug_string(document)} Is not object")
    signature_name = document.get("signature_name")
    if "signature_name" in document and not isinstance(signature_name, str):
        raise invalid_argument(
            f"JSON Value: {json_debug_string(document)} not formatted correctly. 'signature_name' "
            "key must be a string value.")
    request_input = input_pb2.Input()
    if "context" in document:
        listed = request_input.example_list_with_context
        listed.context.CopyFrom(_example(document["context"]))
    else:
        listed = request_input.example_list
    examples = document.get("examples")
    if "examples" not in document:
        raise invalid_argument(
            f"JSON Value: {json_debug_string(document)} When method is classify, key 'examples' "
            "is expected and was not found")
    if not isinstance(examples, list):
        raise invalid_argument(
            f"JSON Value: {json_debug_string(document)} Expecting 'examples' value to be an "
            "list/array")
    if not examples:
        raise invalid_argument(
            f"JSON Value: {json_debug_string(document)} 'examples' value is an empty array")
    for value in examples:
        listed.examples.add().CopyFrom(_example(value))
    return signature_name, request_input


def format_examples_result(
    result: classification_pb2.ClassificationResult | regression_pb2.RegressionResult,
) -> dict:
    """Returns the REST answer of a classify (`[[label, score], ...]` per example) or regress.

    As json_tensor.cc `MakeJsonFromClassificationResult` and
    `MakeJsonFromRegressionResult`.
    """
    if isinstance(result, regression_pb2.RegressionResult):
        return {"results": [regression.value for regression in result.regressions]}
    return {"results": [[[entry.label, entry.score] for entry in classifications.classes]
                        for classifications in result.classifications]}
