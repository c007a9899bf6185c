"""The REST API's JSON bodies and status codes, checked against TF Serving's sources.

tensorflow_serving/util/json_tensor.cc reads a predict body (`FillPredictRequestFromJson`:
exactly one of `instances` or `inputs`; `FillTensorMapFromInstancesList`: a plain list
for one input, objects naming the inputs for several; the answers are
tests/test_serving_json_writer.py's); tensorflow_serving/model_servers/http_server.cc
`ToHTTPStatusCode` maps gRPC codes to HTTP statuses. No server runs here;
tests/test_serving.py sends the same bodies over HTTP.
"""

import json

import grpc
import numpy as np
import pytest
from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import meta_graph_pb2

from memae_tf.serving import rest, rest_predict
from memae_tf.serving.errors import ServingError


def _infos(**dtypes) -> dict[str, meta_graph_pb2.TensorInfo]:
    return {name: meta_graph_pb2.TensorInfo(dtype=dtype) for name, dtype in dtypes.items()}


ONE_INPUT = _infos(x=types_pb2.DT_FLOAT)
TWO_INPUTS = _infos(x=types_pb2.DT_FLOAT, n=types_pb2.DT_INT64)


def _assert_inputs(received, expected):
    assert sorted(received) == sorted(expected)
    for name, array in expected.items():
        assert received[name].dtype == array.dtype, name
        np.testing.assert_array_equal(received[name], array)


# --------------------------------------------------------- http_server.cc ToHTTPStatusCode

# net_http's HTTPStatusCode: OK 200, CLIENT_CLOSED_REQUEST 499, ERROR 500, BAD_REQUEST 400,
# GATEWAY_TO 504, NOT_FOUND 404, CONFLICT 409, FORBIDDEN 403, TOO_MANY_REQUESTS 429,
# NOT_IMP 501, SERVICE_UNAV 503, UNAUTHORIZED 401.
TF_SERVING_HTTP_STATUS = {
    "OK": 200, "CANCELLED": 499, "UNKNOWN": 500, "INVALID_ARGUMENT": 400,
    "DEADLINE_EXCEEDED": 504, "NOT_FOUND": 404, "ALREADY_EXISTS": 409,
    "PERMISSION_DENIED": 403, "RESOURCE_EXHAUSTED": 429, "FAILED_PRECONDITION": 400,
    "ABORTED": 409, "OUT_OF_RANGE": 400, "UNIMPLEMENTED": 501, "INTERNAL": 500,
    "UNAVAILABLE": 503, "DATA_LOSS": 500, "UNAUTHENTICATED": 401,
}


def test_every_grpc_code_maps_to_tf_servings_http_status():
    assert {code.name: status for code, status in rest.HTTP_STATUS.items()} == (
        TF_SERVING_HTTP_STATUS)


# ------------------------------------------------ json_tensor.cc FillPredictRequestFromJson


def _parse(body, infos=ONE_INPUT):
    """parse_predict_body of a JSON text (str) or of a value written as JSON."""
    text = body if isinstance(body, str) else json.dumps(body)
    return rest_predict.parse_predict_body(text.encode(), lambda signature_name: infos)


def _refused(body, infos=ONE_INPUT) -> str:
    with pytest.raises(ServingError) as info:
        _parse(body, infos)
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
    return info.value.message


@pytest.mark.parametrize(("body", "message"), [
    # FillPredictRequestFromJson: both keys, then neither; FormatError quotes the document
    # as JsonValueToDebugString writes it (one member a line, arrays on one line) and
    # ends its own text with a space.
    ({"instances": [[1.0]], "inputs": [[1.0]]},
     'JSON Value: {\n    "instances": [[1.0]],\n    "inputs": [[1.0]]\n} Not formatted '
     "correctly expecting only one of 'inputs' or 'instances' keys to exist "),
    ({"signature_name": "serving_default"}, "Missing 'inputs' or 'instances' key"),
    # ParseJson: a document that is no object.
    ([[1.0, 2.0]], "JSON Value: [[1.0, 2.0]] Is not object"),
    ("null", "JSON Value: null Is not object"),
    # FillSignature.
    ({"signature_name": 1, "instances": [1.0]},
     'JSON Value: {\n    "signature_name": 1,\n    "instances": [1.0]\n} not formatted '
     "correctly. 'signature_name' key must be a string value."),
])
def test_a_body_not_one_object_with_one_of_instances_or_inputs_is_refused(body, message):
    assert _refused(body) == message


@pytest.mark.parametrize(("value", "written"), [({"x": [1.0]}, '{\n        "x": [1.0]\n    }'),
                                                (3.0, "3.0"), ("rows", '"rows"')])
def test_instances_that_are_not_a_list_are_refused(value, written):
    assert _refused({"instances": value}) == (
        f'JSON Value: {{\n    "instances": {written}\n}} Expecting \'instances\' to be an '
        "list/array")


def test_an_empty_instances_list_is_refused():
    assert _refused({"instances": []}) == (
        "JSON Value: {\n    \"instances\": []\n} No values in 'instances' array")


def test_a_signature_without_inputs_is_refused_before_the_body_is_read_further():
    # FillPredictRequestFromJson: an empty tensorinfo_map, named DEFAULT when the body
    # names no signature (a Predict on __saved_model_init_op over REST gets it).
    assert _refused({"instances": [1.0]}, {}) == "Failed to get input map for signature: DEFAULT"
    assert _refused({"signature_name": "__saved_model_init_op", "instances": [1.0]}, {}) == (
        "Failed to get input map for signature: __saved_model_init_op")


def test_a_plain_instances_list_feeds_the_only_input_in_its_dtype():
    signature_name, inputs, row_format = _parse({"instances": [[1, 2], [3, 4]]})
    _assert_inputs(inputs, {"x": np.array([[1, 2], [3, 4]], np.float32)})
    assert (signature_name, row_format) == ("", True)


def test_instances_objects_feed_the_inputs_they_name_row_by_row():
    body = {"signature_name": "s", "instances": [{"x": [1.5, 2.0], "n": 7},
                                                 {"x": [3.0, 4.0], "n": 8}]}
    signature_name, inputs, row_format = _parse(body, TWO_INPUTS)
    _assert_inputs(inputs, {"x": np.array([[1.5, 2.0], [3.0, 4.0]], np.float32),
                            "n": np.array([7, 8], np.int64)})
    assert (signature_name, row_format) == ("s", True)


def test_instances_objects_naming_different_inputs_are_refused():
    body = {"instances": [{"x": [1.0], "n": 1}, {"x": [2.0]}]}
    assert _refused(body, TWO_INPUTS) == (
        "Failed to process element: 1 of 'instances' list. JSON object: {\n    \"x\": [2.0]\n}"
        " keys must be equal to: n,x")
    assert _refused({"instances": [{"x": [1.0], "m": 1}]}, TWO_INPUTS) == (
        "Failed to process element: 0 key: m of 'instances' list. Error: INVALID_ARGUMENT: "
        "JSON object: does not have named input: m")


def test_instances_mixing_objects_and_lists_are_refused_at_the_first_odd_item():
    assert _refused({"instances": [{"x": 1.0, "n": 1}, [2.0]]}, TWO_INPUTS) == (
        "Expecting object but got list at item 1 of input list")
    assert _refused({"instances": [[1.0], {"x": [2.0]}]}) == (
        "Expecting value/list but got object at item 1 of input list")


@pytest.mark.parametrize(("key", "message"), [
    ("instances", "instances is a plain list, but expecting list of objects as multiple input "
                  "tensors required as per tensorinfo_map"),
    ("inputs", "inputs is a plain value/list, but expecting an object as multiple input "
               "tensors required as per tensorinfo_map")])
def test_a_plain_list_for_a_signature_of_several_inputs_is_refused(key, message):
    assert _refused({key: [[1.0], [2.0]]}, TWO_INPUTS) == message


def test_columnar_inputs_object_feeds_each_named_input_whole_and_ignores_other_names():
    body = {"inputs": {"x": [[1.0, 2.0], [3.0, 4.0]], "n": [5, 6], "other": "ignored"}}
    _, inputs, row_format = _parse(body, TWO_INPUTS)
    _assert_inputs(inputs, {"x": np.array([[1.0, 2.0], [3.0, 4.0]], np.float32),
                            "n": np.array([5, 6], np.int64)})
    assert row_format is False
    assert _refused({"inputs": {"x": [1.0]}}, TWO_INPUTS) == (
        "Missing named input: n in 'inputs' object.")


def test_columnar_bare_inputs_feed_the_only_input():
    _, inputs, row_format = _parse({"inputs": [[0.5], [1.5]]})
    _assert_inputs(inputs, {"x": np.array([[0.5], [1.5]], np.float32)})
    assert row_format is False


def test_ragged_rows_are_refused_with_the_size_or_shape_of_the_first():
    # AddInstanceItem: each row's value count, then its shape, against the first row's;
    # FillTensorProto: within one value, each list's length against the first's at its
    # level, and leaves at the depth of the first leaf.
    assert _refused({"instances": [[1.0, 2.0], [3.0]]}) == (
        "Failed to process element: 1 of 'instances' list. Error: INVALID_ARGUMENT: "
        "Expecting tensor size: 2 but got: 1")
    assert _refused({"instances": [[1.0, 2.0], [[3.0], [4.0]]]}) == (
        "Failed to process element: 1 of 'instances' list. Error: INVALID_ARGUMENT: "
        "Expecting shape [2] but got: [2,1]")
    assert _refused({"inputs": [[1.0, 2.0], [3.0]]}) == (
        "Encountered list at unexpected size: 1 at level: 1 expected size: 2")
    assert _refused({"inputs": [[1.0], 2.0]}) == (
        "JSON Value: 2.0 found at incorrect level: 2 in the JSON DOM. Expected at level: 2")
    assert _refused({"inputs": [1.0, [2.0]]}) == (
        "Encountered list at unexpected level: 1 expected < 1")


@pytest.mark.parametrize(("value", "written", "kind"), [
    ('"a"', '"a"', "String"), ("true", "true", "True"), ("null", "null", "Null"),
    ('{"b": 1}', '{\n    "b": 1\n}', "Object")])
def test_a_value_not_of_the_inputs_dtype_is_refused_with_its_json_type(value, written, kind):
    # AddValueToTensor / TypeError: DataTypeString's name of the dtype ("float").
    assert _refused(f'{{"inputs": [{value}]}}') == (
        f"JSON Value: {written} Type: {kind} is not of expected type: float")


def test_integer_inputs_take_integer_literals_only():
    # rapidjson keeps 2.0 a double: IsInt64 is false for it.
    infos = _infos(n=types_pb2.DT_INT64)
    assert _parse({"inputs": [1, -2]}, infos)[1]["n"].tolist() == [1, -2]
    assert _refused('{"inputs": [1, 2.0]}', infos) == (
        "JSON Value: 2.0 Type: Number is not of expected type: int64")


def test_string_inputs_take_text_and_base64_objects():
    # FillTensorProto: an object is a base64 value for a string input only.
    infos = _infos(s=types_pb2.DT_STRING)
    _, inputs, _ = _parse({"instances": ["a", {"b64": "YmM="}]}, infos)
    assert inputs["s"].tolist() == [b"a", b"bc"]
    # JsonDecodeBase64Object calls absl::Base64Unescape, as for classify's features:
    # the padding may be left out ("YmM" is "bc", "YQ" is "a").
    _, inputs, _ = _parse({"instances": [{"b64": "YmM"}, {"b64": "YQ"}]}, infos)
    assert inputs["s"].tolist() == [b"bc", b"a"]
    assert _refused({"instances": [{"b64": "%%%"}]}, infos) == (
        "Failed to process element: 0 of 'instances' list. Error: INVALID_ARGUMENT: "
        "Unable to base64 decode")


def test_a_body_that_is_no_json_is_refused_with_rapidjsons_message():
    # ParseJson: "JSON Parse error: <GetParseError_En> at offset: <bytes>"; the 'x' comes
    # after the 14 bytes of '{"instances": '.
    assert _refused('{"instances": x}') == "JSON Parse error: Invalid value. at offset: 14"
    assert _refused("") == "JSON Parse error: The document is empty"


@pytest.mark.parametrize(("dtype", "name", "accepted", "refused"), [
    # AddValueToTensor: int32, int16, int8 and uint8 take rapidjson's IsInt (an int32),
    # int64 IsInt64, uint32 IsUint, uint64 IsUint64; each range's ends typed out.
    (types_pb2.DT_INT32, "int32", [-2147483648, 2147483647], [-2147483649, 2147483648]),
    (types_pb2.DT_INT64, "int64", [-9223372036854775808, 9223372036854775807],
     [9223372036854775808]),
    (types_pb2.DT_UINT32, "uint32", [0, 4294967295], [-1, 4294967296]),
    (types_pb2.DT_UINT64, "uint64", [0, 18446744073709551615], [-1]),
])
def test_integer_inputs_take_the_integers_of_rapidjsons_range_for_their_dtype(
        dtype, name, accepted, refused):
    infos = _infos(n=dtype)
    assert _parse(f'{{"inputs": {accepted}}}', infos)[1]["n"].tolist() == accepted
    for value in refused:
        assert _refused(f'{{"inputs": [{value}]}}', infos) == (
            f"JSON Value: {value} Type: Number is not of expected type: {name}")

