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


def test_literals_and_empty_containers_are_read():
    assert read_json(b'[null, true, false, {}, [], "a b!"]') == [None, True, False, {}, [], "a b!"]


def test_an_escape_takes_only_its_own_bytes():
    # ParseStringToStream: a one-letter escape takes the backslash and its letter.
    assert read_json(b'["a\\tb\\"c"]') == ["a\tb\"c"]


@pytest.mark.parametrize(("escape", "code_point"), [
    (b"\\ud800\\udc00", 0x10000), (b"\\udbff\\udfff", 0x10FFFF)])
def test_a_surrogate_pair_at_the_ends_of_its_ranges_is_one_code_point(escape, code_point):
    # ParseStringToStream: a high surrogate is 0xD800-0xDBFF, its low one 0xDC00-0xDFFF.
    assert read_json(b'["' + escape + b'"]') == [chr(code_point)]


def test_a_lone_low_surrogate_is_written_as_its_three_utf8_bytes():
    # Only 0xD800-0xDBFF starts a pair; UTF8::Encode writes 0xDC00 as ED B0 80.
    (value,) = read_json(b'["\\udc00"]')
    assert value.encode("utf-8", "surrogateescape") == b"\xed\xb0\x80"


def test_a_high_surrogate_followed_by_no_low_surrogate_is_invalid():
    assert _error(b'["\\ud800\\ue000"]') == (
        "JSON Parse error: The surrogate pair in string is invalid. at offset: 2")


def test_an_unescaped_control_character_below_space_is_refused():
    # ParseStringToStream: c < 0x20 other than NUL is kParseErrorStringEscapeInvalid at c.
    assert _error(b'["ab\x1f"]') == (
        "JSON Parse error: Invalid escape character in string. at offset: 4")


def test_a_leading_nul_byte_is_an_empty_document():
    assert _error(b"\0[1]") == "JSON Parse error: The document is empty. at offset: 0"


def test_an_integer_past_64_bits_is_refused_once_its_double_reaches_dbl_max_over_10():
    # ParseNumber: past uint64 (int64 with a minus) the digits go into a double, and the
    # number is refused at its first byte if that double is >= 1.7976931348623157e307
    # before a digit: 1 followed by 308 zeros is 1e307 before its last digit, 2... 2e307.
    zeros = b"0" * 308
    assert read_json(b"[1" + zeros + b", -1" + zeros + b"]") == [1e308, -1e308]
    assert _error(b"[1, 2" + zeros + b"]") == (
        "JSON Parse error: Number too big to be stored in double. at offset: 4")
    assert _error(b"[-2" + zeros + b"]") == (
        "JSON Parse error: Number too big to be stored in double. at offset: 1")


@pytest.mark.parametrize(("number", "max_exponent"), [
    # ParseNumber: a positive exponent may reach 308 - expFrac, expFrac counting the
    # fraction digits taken into the significand: 1.5 takes 1; 0.0001 takes 4 and 0.
    # with 20 zeros and a 1 takes 21 (zeros before the first significant digit count
    # as taken, not as significant); 1.0...01 (22 zeros) takes 16 digits into
    # the 64-bit significand (it passes 2^53 - 1 at 10^16) and 1 more into the double (17
    # significant digits counted, the first integer digit not counted); 12345678901234567.55
    # is past 2^53 already (16 digits counted) and takes 1; 0. and 18 nines counts its
    # first nonzero digit and takes 17; an integer past uint64 counts 18 digits and
    # takes none.
    (b"1", 308), (b"1.5", 309), (b"0.0001", 312), (b"1." + b"0" * 22 + b"1", 325),
    (b"0." + b"9" * 17 + b"9", 325), (b"0." + b"0" * 20 + b"1", 329),
    (b"12345678901234567.55", 309), (b"18446744073709551616.5", 308), (b"-1.5", 309)])
def test_a_positive_exponent_is_refused_past_308_plus_the_fraction_digits_taken(
        number, max_exponent):
    body = b"[" + number + b"e" + str(max_exponent).encode() + b"]"
    assert read_json(body) == [float(body[1:-1])]
    assert read_json(body.replace(b"e", b"E+")) == [float(body[1:-1])]
    for sign in (b"e", b"E+"):
        assert _error(b"[" + number + sign + str(max_exponent + 1).encode() + b"]") == (
            "JSON Parse error: Number too big to be stored in double. at offset: 1")


def test_a_negative_or_short_exponent_is_read():
    assert read_json(b"[1e-400, 25e-1, 1e30]") == [0.0, 2.5, 1e30]


def test_a_zero_with_a_large_exponent_is_too_big():
    # ParseNumber checks the exponent alone, whatever the significand.
    assert _error(b"[0e309]") == (
        "JSON Parse error: Number too big to be stored in double. at offset: 1")


def test_a_utf8_byte_order_mark_is_skipped_and_counted_in_offsets():
    # json_tensor.cc ParseJson reads an EncodedInputStream<UTF8<>, MemoryStream>, whose
    # constructor (rapidjson/encodedstream.h) takes 0xEF, then 0xBB, then 0xBF, each if
    # it comes next; Tell() still counts from the body's first byte.
    assert read_json(b'\xef\xbb\xbf{"a": 1}') == {"a": 1}
    assert read_json(b"\xbb[1]") == [1]
    assert _error(b"\xef\xbb\xbf[1,]") == "JSON Parse error: Invalid value. at offset: 6"
    assert _error(b"\xef\xbb\xbf") == "JSON Parse error: The document is empty. at offset: 3"
