"""REST bodies read as TF Serving's rapidjson reads them: values, and errors with their offsets.

References: tensorflow_serving/util/json_tensor.cc `ParseJson` (rapidjson 1.1.0, per
tensorflow_serving/workspace.bzl, with kParseIterativeFlag | kParseNanAndInfFlag |
kParseStopWhenDoneFlag; "JSON Parse error: <GetParseError_En> at offset: <offset>"), and
rapidjson's include/rapidjson/reader.h (`IterativeParse`, `Transit`, `HandleError`,
`ParseStringToStream`, `ParseNumber`) and error/en.h. Each expected offset below is
counted by hand, in bytes, from the body's first byte (0).
"""

import math

import grpc
import pytest

from memae_tf.serving.errors import ServingError
from memae_tf.serving.json_reader import read_json


def _error(body: bytes) -> str:
    with pytest.raises(ServingError) as info:
        read_json(body)
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
    return info.value.message


@pytest.mark.parametrize(("body", "message", "offset"), [
    # Empty: ParseJson's own check has neither period nor offset (below); whitespace only
    # reaches rapidjson, whose start state ends at the end of the input.
    (b"   ", "The document is empty.", 3),
    # A closing bracket, comma or colon where the document starts: HandleError(Start).
    (b" ]", "The document is empty.", 1),
    # Invalid values: a bare word (ParseNumber at its first byte), a literal cut short
    # (after the letters it matched), a trailing comma in an array (Transit at the ']'),
    # nothing after ':' (HandleError(KeyValueDelimiter) at the '}').
    (b'{"instances": x}', "Invalid value.", 14),
    (b'{"instances": [tru]}', "Invalid value.", 18),
    (b'{"instances": [1, 2,]}', "Invalid value.", 20),
    (b'{"instances": }', "Invalid value.", 14),
    (b"[1, -]", "Invalid value.", 5),
    # Missing comma or bracket: at the byte after the element (after whitespace).
    (b'{"instances": [1 2]}', "Missing a comma or ']' after an array element.", 17),
    (b'{"instances": [1, 2}', "Missing a comma or ']' after an array element.", 19),
    (b'{"instances": [1, 2]', "Missing a comma or '}' after an object member.", 20),
    (b'{"instances": [1] "inputs": 2}', "Missing a comma or '}' after an object member.", 18),
    # Object names and colons.
    (b'{"a": 1,}', "Missing a name for object member.", 8),
    (b"{instances: [1]}", "Missing a name for object member.", 1),
    (b'{"a" 1}', "Missing a colon after a name of object member.", 5),
    # Strings: the end of the input inside one; a bad escape at its backslash.
    (b'{"instances": ["abc', "Missing a closing quotation mark in string.", 19),
    (b'["a\\qb"]', "Invalid escape character in string.", 3),
    (b'["\\u12G4"]', "Incorrect hex digit after \\u escape in string.", 2),
    (b'["\\ud800 "]', "The surrogate pair in string is invalid.", 2),
    # rapidjson 1.1.0 reports an unescaped control character as an invalid escape.
    (b'["a\tb"]', "Invalid escape character in string.", 3),
    # Numbers.
    (b"[1.]", "Miss fraction part in number.", 3),
    (b"[1e+]", "Miss exponent in number.", 4),
    (b"[2, 1e400]", "Number too big to be stored in double.", 4),
    (b"[Infinit]", "Invalid value.", 8),
], ids=lambda value: value if isinstance(value, int) else None)
def test_a_syntax_error_is_rapidjsons_message_at_its_byte_offset(body, message, offset):
    assert _error(body) == f"JSON Parse error: {message} at offset: {offset}"


def test_an_empty_body_is_refused_before_rapidjson_reads_it():
    assert _error(b"") == "JSON Parse error: The document is empty"


def test_what_follows_the_first_value_is_ignored():
    # kParseStopWhenDoneFlag: trailing bytes, even a second document, are not read.
    assert read_json(b'{"instances": [1]} trailing garbage') == {"instances": [1]}
    assert read_json(b"[1] [2]") == [1]


def test_a_nul_byte_ends_the_body():
    # MemoryStream::Peek() reads '\0' at the end: a NUL byte reads the same.
    assert read_json(b'{"a": 1}\0{') == {"a": 1}
    assert _error(b'{"a": 1\0}') == (
        "JSON Parse error: Missing a comma or '}' after an object member. at offset: 7")
    assert _error(b'["a\0"]') == (
        "JSON Parse error: Missing a closing quotation mark in string. at offset: 3")


def test_numbers_are_ints_within_64_bits_and_floats_otherwise():
    value = read_json(b"[0, -0, 7, 2.0, 1e2, 18446744073709551615, 18446744073709551616, "
                      b"-9223372036854775808, -9223372036854775809]")
    assert value == [0, 0, 7, 2.0, 100.0, 2**64 - 1, 2.0**64, -(2**63), -(2.0**63)]
    assert [type(item) for item in value] == [int, int, int, float, float, int, float, int,
                                              float]


def test_nan_and_infinities_are_numbers():
    # kParseNanAndInfFlag: NaN, Inf, Infinity, each with an optional minus.
    nan, inf, infinity, negative, negative_nan = read_json(
        b"[NaN, Inf, Infinity, -Infinity, -NaN]")
    assert math.isnan(nan) and math.isnan(negative_nan)
    assert (inf, infinity, negative) == (math.inf, math.inf, -math.inf)


def test_strings_decode_escapes_and_keep_other_bytes():
    # No UTF-8 check: a byte that is not UTF-8 passes through (as a surrogate escape).
    assert read_json(b'["\\u00e9\\ud83d\\ude00\\n\\/", "\xc3\xa9", "\xff"]') == [
        "\u00e9\U0001F600\n/", "\u00e9", "\udcff"]


def test_of_a_name_given_twice_the_first_value_counts():
    # rapidjson keeps both members and FindMember finds the first.
    assert read_json(b'{"instances": [1], "instances": [2]}') == {"instances": [1]}
