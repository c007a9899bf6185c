"""REST request bodies read as TF Serving reads them: rapidjson's values, errors and offsets.

TF Serving parses every REST body with rapidjson 1.1.0 (util/json_tensor.cc
`ParseJson`: `kParseIterativeFlag | kParseNanAndInfFlag | kParseStopWhenDoneFlag`)
and reports a syntax error as `JSON Parse error: <GetParseError_En> at offset:
<GetErrorOffset>`, the offset counted in bytes. `read_json` gives the same
value, or the same message: the first JSON value of the body is read and
whatever follows it is ignored; `NaN`, `Inf` and `Infinity` (signed) are
numbers; a UTF-8 byte-order mark is skipped (and counted in offsets); a
NUL byte ends the body; strings are not checked for UTF-8.
"""

from __future__ import annotations

import base64
import binascii
import math
from typing import Any

from memae_tf.serving.errors import invalid_argument

# rapidjson/error/en.h GetParseError_En, for the errors a body can raise.
DOCUMENT_EMPTY = "The document is empty."
VALUE_INVALID = "Invalid value."
OBJECT_MISS_NAME = "Missing a name for object member."
OBJECT_MISS_COLON = "Missing a colon after a name of object member."
OBJECT_MISS_COMMA_OR_CURLY_BRACKET = "Missing a comma or '}' after an object member."
ARRAY_MISS_COMMA_OR_SQUARE_BRACKET = "Missing a comma or ']' after an array element."
UNICODE_ESCAPE_INVALID_HEX = "Incorrect hex digit after \\u escape in string."
UNICODE_SURROGATE_INVALID = "The surrogate pair in string is invalid."
ESCAPE_INVALID = "Invalid escape character in string."
MISS_QUOTATION_MARK = "Missing a closing quotation mark in string."
NUMBER_TOO_BIG = "Number too big to be stored in double."
NUMBER_MISS_FRACTION = "Miss fraction part in number."
NUMBER_MISS_EXPONENT = "Miss exponent in number."

_WHITESPACE = b" \n\r\t"
_STRUCTURAL = b"[]{},:"
_ESCAPES = {ord('"'): '"', ord("\\"): "\\", ord("/"): "/", ord("b"): "\b", ord("f"): "\f",
            ord("n"): "\n", ord("r"): "\r", ord("t"): "\t"}
_DIGITS = b"0123456789"
_HEX_DIGITS = b"0123456789abcdefABCDEF"
_UINT64_MAX = 2**64 - 1
_INT64_MIN = -(2**63)
_DOUBLE_MAX_OVER_10 = 1.7976931348623157e307


class _ParseError(Exception):
    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.message, self.offset = message, offset


def read_json(body: bytes) -> Any:
    """Returns the first JSON value of a request body, as TF Serving's `ParseJson` reads it.

    Objects are dicts (of a name given twice, the first value, as
    rapidjson's `FindMember` finds), arrays lists, integer literals ints
    (within int64 or uint64; larger ones are floats, as in rapidjson),
    other numbers floats.

    Args:
        body: The request body.

    Returns:
        The value.

    Raises:
        ServingError: INVALID_ARGUMENT `JSON Parse error: The document is
            empty` for an empty body, else `JSON Parse error: <rapidjson's
            message> at offset: <bytes>` for a body that is no JSON value.

    Example:

    >>> read_json(b'{"instances": [1, 2.5]} trailing bytes are ignored')
    {'instances': [1, 2.5]}
    >>> try:
    ...     read_json(b'{"instances": [1, 2,]}')
    ... except Exception as error:
    ...     print(error.message)
    JSON Parse error: Invalid value. at offset: 20
    """
    if not body:
        # json_tensor.cc ParseJson, before rapidjson: no period, no offset.
        raise invalid_argument("JSON Parse error: The document is empty")
    reader = _Reader(bytes(body))
    try:
        return reader.document()
    except _ParseError as error:
        raise invalid_argument(
            f"JSON Parse error: {error.message} at offset: {error.offset}") from None


class _Reader:
    """rapidjson's iterative parser over bytes: `pos` is its stream's `Tell()`."""

    def __init__(self, data: bytes) -> None:
        # MemoryStream::Peek() is '\0' at the end; a NUL byte reads the same.
        end = data.find(b"\0")
        self.data = data if end < 0 else data[:end]
        self.pos = 0
        # EncodedInputStream<UTF8<>, MemoryStream> skips a byte-order mark: 0xEF, 0xBB
        # and 0xBF, each if it comes next; offsets still count them.
        for byte in b"\xef\xbb\xbf":
            self.pos += self._peek() == byte

    def _peek(self) -> int:
        return self.data[self.pos] if self.pos < len(self.data) else 0

    def _consume(self, char: bytes) -> bool:
        if self._peek() == char[0]:
            self.pos += 1
            return True
        return False

    def _skip_whitespace(self) -> None:
        while self.pos < len(self.data) and self.data[self.pos] in _WHITESPACE:
            self.pos += 1

    def _error(self, message: str, offset: int | None = None) -> _ParseError:
        return _ParseError(message, self.pos if offset is None else offset)

    def document(self) -> Any:
        self._skip_whitespace()
        # Predict() from the start state: a closing bracket, comma or colon is an error
        # in that state, which HandleError reports as an empty document.
        if not self._peek() or self._peek() in b"]},:":
            raise self._error(DOCUMENT_EMPTY)
        return self._value()  # kParseStopWhenDoneFlag: what follows is not read

    def _value(self) -> Any:
        char = self._peek()
        if char == ord("["):
            return self._array()
        if char == ord("{"):
            return self._object()
        if char == ord('"'):
            return self._string()
        for literal, value in ((b"null", None), (b"true", True), (b"false", False)):
            if char == literal[0]:
                self.pos += 1
                if not all(self._consume(literal[i:i + 1]) for i in range(1, len(literal))):
                    raise self._error(VALUE_INVALID)
                return value
        if not char or char in _STRUCTURAL:
            # A value was expected (after '[', ',' or ':'): HandleError's "Invalid value".
            raise self._error(VALUE_INVALID)
        return self._number()

    def _array(self) -> list:
        self.pos += 1
        items: list = []
        self._skip_whitespace()
        if self._consume(b"]"):
            return items
        while True:
            items.append(self._value())
            self._skip_whitespace()
            if self._consume(b"]"):
                return items
            if not self._consume(b","):
                raise self._error(ARRAY_MISS_COMMA_OR_SQUARE_BRACKET)
            self._skip_whitespace()

    def _object(self) -> dict:
        self.pos += 1
        members: dict = {}
        self._skip_whitespace()
        if self._consume(b"}"):
            return members
        while True:
            if self._peek() != ord('"'):
                raise self._error(OBJECT_MISS_NAME)
            name = self._string()
            self._skip_whitespace()
            if not self._consume(b":"):
                raise self._error(OBJECT_MISS_COLON)
            self._skip_whitespace()
            members.setdefault(name, self._value())
            self._skip_whitespace()
            if self._consume(b"}"):
                return members
            if not self._consume(b","):
                raise self._error(OBJECT_MISS_COMMA_OR_CURLY_BRACKET)
            self._skip_whitespace()

    def _hex4(self, escape_offset: int) -> int:
        code = 0
        for _ in range(4):
            char = self._peek()
            if not char or char not in _HEX_DIGITS:
                raise self._error(UNICODE_ESCAPE_INVALID_HEX, escape_offset)
            code = code * 16 + int(chr(char), 16)
            self.pos += 1
        return code

    def _string(self) -> str:
        # reader.h ParseStringToStream: bytes are copied as they are (no UTF-8 check);
        # escapes are decoded; an error inside an escape is reported at its backslash.
        self.pos += 1
        out = bytearray()
        while True:
            char = self._peek()
            if char == ord("\\"):
                escape_offset = self.pos
                self.pos += 1
                kind = self._peek()
                if kind in _ESCAPES:
                    self.pos += 1
                    out += _ESCAPES[kind].encode()
                elif kind == ord("u"):
                    self.pos += 1
                    code = self._hex4(escape_offset)
                    if 0xD800 <= code <= 0xDBFF:
                        if not (self._consume(b"\\") and self._consume(b"u")):
                            raise self._error(UNICODE_SURROGATE_INVALID, escape_offset)
                        low = self._hex4(escape_offset)
                        if not 0xDC00 <= low <= 0xDFFF:
                            raise self._error(UNICODE_SURROGATE_INVALID, escape_offset)
                        code = ((code - 0xD800) << 10 | (low - 0xDC00)) + 0x10000
                    out += chr(code).encode("utf-8", "surrogatepass")
                else:
                    raise self._error(ESCAPE_INVALID, escape_offset)
            elif char == ord('"'):
                self.pos += 1
                return out.decode("utf-8", "surrogateescape")
            elif char == 0:
                raise self._error(MISS_QUOTATION_MARK)
            elif char < 0x20:
                # rapidjson 1.1.0 reports an unescaped control character this way.
                raise self._error(ESCAPE_INVALID)
            else:
                out.append(char)
                self.pos += 1

    def _digits(self) -> bytes:
        start = self.pos
        while self._peek() and self._peek() in _DIGITS:
            self.pos += 1
        return self.data[start:self.pos]

    def _number(self) -> int | float:
        """reader.h ParseNumber, its errors and offsets; the value correctly rounded."""
        start = self.pos
        minus = self._consume(b"-")
        char = self._peek()
        if char == ord("0"):
            self.pos += 1
            integer = b"0"
        elif char and chr(char) in "123456789":
            integer = self._digits()
            self._check_integer_size(integer, minus, start)
        elif char in (ord("N"), ord("I")):
            return self._nan_or_infinity(minus)
        else:
            raise self._error(VALUE_INVALID)
        fraction = b""
        if self._consume(b"."):
            if not (self._peek() and self._peek() in _DIGITS):
                raise self._error(NUMBER_MISS_FRACTION)
            fraction = self._digits()
        exponent = None
        if self._consume(b"e") or self._consume(b"E"):
            exponent_minus = self._consume(b"-") if not self._consume(b"+") else False
            if not (self._peek() and self._peek() in _DIGITS):
                raise self._error(NUMBER_MISS_EXPONENT)
            exponent = self._digits()
            if not exponent_minus:
                self._check_exponent(integer, fraction, exponent, start)
        text = self.data[start:self.pos].decode("ascii")
        if fraction or exponent is not None:
            return float(text)
        value = int(text)
        return value if _INT64_MIN <= value <= _UINT64_MAX else float(text)

    def _check_integer_size(self, integer: bytes, minus: bool, start: int) -> None:
        # Digits past the 64-bit integers go into a double, refused once it reaches
        # DBL_MAX / 10 before another digit.
        limit = 2**63 if minus else _UINT64_MAX
        value = 0
        for index, digit in enumerate(integer):
            if value * 10 + digit - 48 > limit:
                double = float(value)
                for rest in integer[index:]:
                    if double >= _DOUBLE_MAX_OVER_10:
                        raise self._error(NUMBER_TOO_BIG, start)
                    double = double * 10 + (rest - 48)
                return
            value = value * 10 + digit - 48

    def _check_exponent(self, integer: bytes, fraction: bytes, exponent: bytes,
                        start: int) -> None:
        # A positive exponent is refused once it passes 308 plus the fraction digits
        # the significand took; its first digit is never checked.
        max_exponent = 308 + _fraction_digits_taken(integer, fraction)
        value = exponent[0] - 48
        for digit in exponent[1:]:
            value = value * 10 + digit - 48
            if value > max_exponent:
                raise self._error(NUMBER_TOO_BIG, start)

    def _nan_or_infinity(self, minus: bool) -> float:
        # kParseNanAndInfFlag: NaN, Inf and Infinity, tried in that order, each taking
        # the characters it matches; anything else after N or I is invalid.
        if self._consume(b"N") and self._consume(b"a") and self._consume(b"N"):
            return math.nan
        if self._consume(b"I") and self._consume(b"n") and self._consume(b"f"):
            if self._peek() == ord("i") and not all(self._consume(c) for c in
                                                    (b"i", b"n", b"i", b"t", b"y")):
                raise self._error(VALUE_INVALID)
            return -math.inf if minus else math.inf
        raise self._error(VALUE_INVALID)


def _fraction_digits_taken(integer: bytes, fraction: bytes) -> int:
    """How many fraction digits rapidjson's 64-bit ParseNumber counts into `expFrac`.

    It takes fraction digits while fewer than 17 significant digits were
    counted (its `significandDigit`: every digit from the first nonzero one
    on, but the integer part's first digit) and skips the others. Its digits
    go into a 64-bit significand up to 2^53, into a double after; the count
    is the same. An integer part past the 64-bit integers has 18 significant
    digits or more already, so it takes none.
    """
    started = int(integer) > 0
    significant = len(integer) - 1 if started else 0
    taken = 0
    for digit in fraction:
        if significant >= 17:
            break
        taken += 1
        started = started or digit != ord("0")
        significant += started
    return taken


def json_type(value: Any) -> str:
    """json_tensor.cc `JsonTypeString`: rapidjson's type of a value `read_json` gave."""
    if value is None:
        return "Null"
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, dict):
        return "Object"
    if isinstance(value, list):
        return "Array"
    return "String" if isinstance(value, str) else "Number"


def is_base64_object(value: Any) -> bool:
    """json_tensor.cc `IsValBase64Object`: an object whose only member is a string `b64`."""
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("b64"), str)


def decode_base64(text: str) -> bytes:
    """The bytes of a `b64` text, as json_tensor.cc `JsonDecodeBase64Object` decodes them.

    `absl::Base64Unescape`: the padding may be left out.

    Raises:
        ServingError: INVALID_ARGUMENT "Unable to base64 decode" for text that
            is not base64.
    """
    data = text.encode("utf-8", "surrogateescape")
    try:
        return base64.b64decode(data + b"=" * (-len(data) % 4), validate=True)
    except (binascii.Error, ValueError) as error:
        raise invalid_argument("Unable to base64 decode") from error
