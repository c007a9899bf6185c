"""The bytes of REST answers, against TF Serving's util/json_tensor.cc and rapidjson 1.1.0.

Each expected text is derived by hand from the sources:

- rapidjson's include/rapidjson/prettywriter.h `PrettyPrefix`, `EndObject` and
  `EndArray`: an object puts `\\n` and 4 spaces per open level before each key,
  `: ` between key and value, `,\\n` between members, and `\\n` + the indent of
  its own level before a `}` that closes members; an array does the same with
  `,` and a newline unless `kFormatSingleLineArray` is on, which gives `, ` and
  no newline. The option is read at each call, so an array opened under it and
  closed after it is switched off ends on a new line.
- json_tensor.cc `MakeRowFormatJsonFromTensors` switches it on for each row,
  `MakeColumnarFormatJsonFromTensors` never, `MakeJsonFromClassificationResult`
  for each example and `MakeJsonFromRegressionResult` for the whole list.
- json_tensor.cc `WriteDecimal`: `absl::StrCat(value)` (printf's `%g`: six
  significant digits) when `absl::SimpleAtof`/`SimpleAtod` reads it back as the
  same value, else `%.9g` (float) or `%.17g` (double); `.0` appended when the text
  has neither `.` nor `e`; `NaN`, `Infinity`, `-Infinity`.
"""

import grpc
import numpy as np
import pytest
from tensorflow_serving.apis import classification_pb2, regression_pb2

from memae_tf.serving.errors import ServingError
from memae_tf.serving.json_writer import (
    _float32_of,
    classification_json,
    decimal_token,
    error_json,
    predict_json,
    regression_json,
)

F32 = np.float32


def _refusal(call, *args) -> ServingError:
    with pytest.raises(ServingError) as info:
        call(*args)
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
    return info.value


# ------------------------------------------------------------ WriteDecimal


@pytest.mark.parametrize("value, expected", [
    # float 0.1 is 0.100000001490116...; "0.1" reads back as that same float.
    (0.1, "0.1"),
    # float 1/3 is 0.3333333432674407958984375; "0.333333" reads back as another
    # float, so %.9g: 0.333333343.
    (1 / 3, "0.333333343"),
    # "2" has neither '.' nor 'e': ".0" is appended.
    (2.0, "2.0"),
    (123456.0, "123456.0"),
    (-0.0, "-0.0"),
    # 16777217 is float 16777216; "1.67772e+07" reads back as 16777200, so %.9g gives
    # "16777216", then ".0".
    (16777217.0, "16777216.0"),
    # Exponent forms read back exactly and take no ".0".
    (1e-5, "1e-05"),
    (1e6, "1e+06"),
    (float("nan"), "NaN"),
    (float("inf"), "Infinity"),
    (float("-inf"), "-Infinity"),
])
def test_a_float_is_written_with_six_digits_unless_they_do_not_read_back(value, expected):
    assert decimal_token(float(F32(value)), single=True) == expected.encode()


@pytest.mark.parametrize("value, expected", [
    (0.1, "0.1"),
    # The double 1/3 needs %.17g: 0.33333333333333331.
    (1 / 3, "0.33333333333333331"),
    (3.0, "3.0"),
])
def test_a_double_is_written_with_seventeen_digits_when_six_do_not_read_back(value, expected):
    assert decimal_token(value, single=False) == expected.encode()


@pytest.mark.parametrize("text, expected", [
    # 1 + 2**-24 is halfway between the floats 1 and 1 + 2**-23, and a double holds it
    # exactly: the texts just above and below it round to the double midpoint, which
    # a second rounding would take to 1 (ties to even); strtof rounds once.
    ("1.000000059604644775390625000001", 1 + 2**-23),
    ("1.000000059604644775390624999999", 1.0),
    ("1.000000059604644775390625", 1.0),  # the midpoint itself: ties to even
    ("0.1", 0.100000001490116119384765625),
    # 1 + 3 * 2**-24 is halfway between 1 + 2**-23 and the even 1 + 2**-22, and a double
    # holds it: the text just below it rounds once to 1 + 2**-23 (twice, to 1 + 2**-22).
    ("1.000000178813934326171874999999", 1 + 2**-23),
    ("1.000000178813934326171875000001", 1 + 2**-22),
    ("1.000000178813934326171875", 1 + 2**-22),
])
def test_the_read_back_rounds_the_decimal_text_once_to_a_float(text, expected):
    assert _float32_of(text) == F32(expected)


# ------------------------------------------------------------ MakeJsonFromTensors


def test_a_row_answer_of_one_output_writes_each_row_on_one_line():
    """MakeRowFormatJsonFromTensors: the rows are values (no object) for one output;
    single-line arrays from the first row on, and the list closes on its own line
    once the option is off."""
    outputs = {"score": np.array([0.1, 1 / 3, 2.0], F32)}
    assert predict_json(outputs, row_format=True) == (
        b'{\n    "predictions": [0.1, 0.333333343, 2.0\n    ]\n}')
    reconstruction = {"reconstruction": np.array([[1, 2], [3, 4]], F32)}
    assert predict_json(reconstruction, row_format=True) == (
        b'{\n    "predictions": [[1.0, 2.0], [3.0, 4.0]\n    ]\n}')


def test_a_row_answer_of_several_outputs_writes_one_object_per_row():
    """MakeRowFormatJsonFromTensors: each row is an object opened before the option
    is on (a new line), with one member a line (objects always indent) and the
    outputs' arrays on one line."""
    outputs = {"score": np.array([0.5, 1.5], F32),
               "reconstruction": np.array([[1, 2], [3, 4]], F32),
               "is_anomaly": np.array([True, False])}
    assert predict_json(outputs, row_format=True) == (
        b'{\n'
        b'    "predictions": [\n'
        b'        {\n'
        b'            "score": 0.5,\n'
        b'            "reconstruction": [1.0, 2.0],\n'
        b'            "is_anomaly": true\n'
        b'        },\n'
        b'        {\n'
        b'            "score": 1.5,\n'
        b'            "reconstruction": [3.0, 4.0],\n'
        b'            "is_anomaly": false\n'
        b'        }\n'
        b'    ]\n'
        b'}')


def test_a_columnar_answer_writes_every_value_on_its_own_line():
    """MakeColumnarFormatJsonFromTensors: the default format throughout; one output
    is the value of "outputs" itself, several an object of them."""
    one = {"reconstruction": np.array([[1, 2], [3, 4]], F32)}
    assert predict_json(one, row_format=False) == (
        b'{\n    "outputs": [\n        [\n            1.0,\n            2.0\n        ],\n'
        b'        [\n            3.0,\n            4.0\n        ]\n    ]\n}')
    several = {"score": np.array([0.5], F32), "threshold": np.array(0.25, F32)}
    assert predict_json(several, row_format=False) == (
        b'{\n    "outputs": {\n        "score": [\n            0.5\n        ],\n'
        b'        "threshold": 0.25\n    }\n}')


def test_a_columnar_answer_of_a_scalar_or_an_empty_output_writes_it_as_it_is():
    """AddTensorValues: a scalar is the value alone; an empty array closes at once."""
    assert predict_json({"t": np.array(0.5, F32)}, row_format=False) == (
        b'{\n    "outputs": 0.5\n}')
    assert predict_json({"t": np.zeros(0, F32)}, row_format=False) == (
        b'{\n    "outputs": []\n}')


def test_integers_booleans_and_doubles_are_written_by_their_dtype():
    """AddSingleValueAndAdvance: Int/Int64/Uint64 as decimal integers, Bool as
    true/false, DT_DOUBLE through WriteDecimal<double>."""
    outputs = {"a": np.array([-7, 2**40], np.int64), "b": np.array([1, 2], np.int32),
               "c": np.array([2**64 - 1, 0], np.uint64), "d": np.array([0.1, 1 / 3])}
    assert predict_json(outputs, row_format=True) == (
        b'{\n    "predictions": [\n'
        b'        {\n            "a": -7,\n            "b": 1,\n'
        b'            "c": 18446744073709551615,\n            "d": 0.1\n        },\n'
        b'        {\n            "a": 1099511627776,\n            "b": 2,\n'
        b'            "c": 0,\n            "d": 0.33333333333333331\n        }\n'
        b'    ]\n}')


def test_strings_are_escaped_as_rapidjson_writes_them_and_bytes_outputs_as_base64():
    """Writer::WriteString escapes '"', '\\' and control characters (short forms for
    \\b \\f \\n \\r \\t, else \\u00XX in upper case) and writes UTF-8 as it is;
    IsNamedTensorBytes: a DT_STRING output whose name ends in "_bytes" is written
    as {"b64": ...} objects, which indent as objects do inside a one-line array."""
    text = {"label": np.array(['a"\\\n\x01/é'.encode()], object)}
    assert predict_json(text, row_format=True) == (
        b'{\n    "predictions": ["a\\"\\\\\\n\\u0001/\xc3\xa9"\n    ]\n}')
    raw = {"image_bytes": np.array([b"ab", b"\xff"], object)}
    assert predict_json(raw, row_format=True) == (
        b'{\n    "predictions": [{\n            "b64": "YWI="\n        }, {\n'
        b'            "b64": "/w=="\n        }\n    ]\n}')


def test_a_row_answer_needs_one_batch_size_named_as_json_tensor_cc_names_it():
    """MakeRowFormatJsonFromTensors, in the outputs' order: a scalar has no shape
    information (the message ends in a space), and a batch size that differs from
    the ones before names the output and both sizes."""
    assert _refusal(predict_json, {"score": np.zeros(3, F32), "threshold": np.zeros(2, F32)},
                    True).message == (
        "Tensor name: threshold has inconsistent batch size: 2 expecting: 3")
    assert _refusal(predict_json, {"threshold": np.array(0.5, F32)}, True).message == (
        "Tensor name: threshold has no shape information ")
    # The columnar format takes both.
    assert predict_json({"score": np.zeros(3, F32), "threshold": np.array(0.5, F32)},
                        row_format=False).startswith(b'{\n    "outputs": {')


def test_an_answer_json_cannot_hold_is_refused_with_json_tensor_cc_s_message():
    """MakeJsonFromTensors: an empty map; AddSingleValueAndAdvance: a dtype outside its
    switch, named by TensorFlow's DataTypeString."""
    assert _refusal(predict_json, {}, True).message == "Cannot convert empty tensor map to JSON"
    assert _refusal(predict_json, {"h": np.ones(2, np.float16)}, False).message == (
        "Failed to write JSON value for tensor type: half")


# ------------------------------------------- MakeJsonFrom{Classification,Regression}Result


def test_a_classify_answer_writes_each_example_s_classes_on_one_line():
    result = classification_pb2.ClassificationResult()
    first = result.classifications.add()
    first.classes.add(label="a", score=0.1)
    first.classes.add(label="b", score=0.9)
    result.classifications.add()
    assert classification_json(result) == (
        b'{\n    "results": [[["a", 0.1], ["b", 0.9]], []\n    ]\n}')
    with pytest.raises(ServingError, match="Cannot convert empty ClassificationResults to JSON"):
        classification_json(classification_pb2.ClassificationResult())


def test_a_regress_answer_writes_its_values_on_one_line():
    result = regression_pb2.RegressionResult()
    for value in (0.5, 2.0, 1 / 3):
        result.regressions.add(value=value)
    assert regression_json(result) == b'{\n    "results": [0.5, 2.0, 0.333333343]\n}'
    with pytest.raises(ServingError, match="Cannot convert empty RegressionResults to JSON"):
        regression_json(regression_pb2.RegressionResult())


# ------------------------------------------------------------ MakeJsonFromStatus


def test_an_error_answer_is_one_member_on_its_own_line():
    assert error_json('Missing "x"\tin\x1f') == (
        b'{\n    "error": "Missing \\"x\\"\\tin\\u001F"\n}')


def test_backspace_form_feed_and_carriage_return_take_short_escapes():
    """Writer::WriteString's escape table: 0x08 \\b, 0x0C \\f, 0x0D \\r; 0x0B and 0x1F
    have none and are written \\u000B and \\u001F."""
    text = {"label": np.array([b"\b\f\r\t\x0b\x1f"], object)}
    assert predict_json(text, row_format=False) == (
        b'{\n    "outputs": [\n        "\\b\\f\\r\\t\\u000B\\u001F"\n    ]\n}')


def test_only_a_string_output_named_bytes_is_written_as_base64():
    # IsNamedTensorBytes: the "_bytes" suffix and dtype DT_STRING.
    assert predict_json({"x_bytes": np.array([1.5], F32)}, row_format=False) == (
        b'{\n    "outputs": [\n        1.5\n    ]\n}')


def test_an_empty_output_of_a_dtype_json_cannot_hold_is_an_empty_list():
    # AddSingleValueAndAdvance refuses a dtype only when it writes a value of it.
    assert predict_json({"h": np.ones(0, np.float16)}, row_format=False) == (
        b'{\n    "outputs": []\n}')


def test_a_row_answer_whose_first_output_is_empty_refuses_a_non_empty_one():
    # MakeRowFormatJsonFromTensors: batch_size starts at -1, so 0 rows is a batch size.
    assert _refusal(predict_json, {"a": np.zeros(0, F32), "b": np.zeros(3, F32)},
                    True).message == "Tensor name: b has inconsistent batch size: 3 expecting: 0"
