"""The JSON of REST classify and regress requests, read into `tf.Example`s.

As TF Serving's util/json_tensor.cc `FillClassifyRegressRequestFromJson`,
with its checks, their order and its messages, which quote the offending JSON as
`JsonValueToDebugString` writes it (rapidjson's pretty writer, cut after 256
bytes). Their answers are written by `memae_tf.serving.json_writer`.
"""

from __future__ import annotations

import contextlib
import decimal
import json
import math
from typing import Any

from tensorflow.core.example import example_pb2, feature_pb2
from tensorflow_serving.apis import input_pb2

from memae_tf.serving.errors import invalid_argument
from memae_tf.serving.json_reader import decode_base64, is_base64_object, json_type, read_json
from memae_tf.serving.json_writer import PrettyWriter, WriteLimitError

# json_tensor.cc kMaxJsonDebugStringBytes: no value is written once the text is this long.
DEBUG_STRING_BYTES = 256


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
    writer = PrettyWriter(limit=DEBUG_STRING_BYTES)
    writer.single_line_arrays = True

    def write(item: Any) -> None:
        if isinstance(item, dict):
            writer.start_object()
            for key, member in item.items():
                writer.key(key)
                write(member)
            writer.end_object()
        elif isinstance(item, list):
            writer.start_array()
            for member in item:
                write(member)
            writer.end_array()
        elif isinstance(item, float) and not math.isfinite(item):
            # Writer::Double writes the separator, then refuses NaN and infinities.
            writer.value(b"")
            raise WriteLimitError
        elif item is None or isinstance(item, bool):
            writer.value(json.dumps(item).encode("ascii"))
        elif isinstance(item, str):
            writer.string(item)
        elif isinstance(item, int) and -(2**63) <= item < 2**64:  # int64 or uint64
            writer.value(str(item).encode("ascii"))
        else:  # a double, or an integer rapidjson could only read as one
            writer.value(_double(float(item)).encode("ascii"))

    with contextlib.suppress(WriteLimitError):
        write(value)
    return writer.text().decode("utf-8", "surrogateescape")


def _add_feature_value(name: str, value: Any, feature: feature_pb2.Feature) -> None:
    """json_tensor.cc `AddValueToFeature`: one JSON value into a feature of one kind.

    As there, the feature's kind is checked before the value itself: a
    `{"b64": ...}` text is decoded, and an integer refused as uint64, only once
    the feature takes its kind.
    """
    base64_object = is_base64_object(value)
    if value is None or isinstance(value, list) or (isinstance(value, dict)
                                                    and not base64_object):
        raise invalid_argument(
            f"Feature: {name} has element with unexpected JSON type: {json_type(value)}")
    # Booleans are ints; read_json, as rapidjson, reads an integer beyond 64 bits as a double.
    if isinstance(value, int):
        kind = "int64_list"
    elif isinstance(value, str | dict):
        kind = "bytes_list"
    else:
        kind = "float_list"
    held = feature.WhichOneof("kind")
    if held not in (None, kind):
        raise invalid_argument(f"Unexpected element type in feature: {name} expecting type: "
                               f"{held.removesuffix('_list')}")
    if base64_object:
        value = decode_base64(value["b64"])
    elif isinstance(value, str):
        value = value.encode("utf-8", "surrogateescape")
    elif kind == "int64_list":
        if value >= 2**63:
            raise invalid_argument(
                f"Feature: {name} has uint64_t element. Only int64_t is supported.")
        value = int(value)
    else:
        value = float(value)
    getattr(feature, kind).value.append(value)


def _example(value: Any) -> example_pb2.Example:
    """json_tensor.cc `MakeExampleFromJsonObject`: feature name → a value or a list of values."""
    if not isinstance(value, dict):
        raise invalid_argument(
            f"Example must be JSON object but got JSON {json_type(value)}")
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
