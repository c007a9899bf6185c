"""The server's TensorProto encoding of Predict outputs and decoding of inputs.

TF Serving's Predict serializes each output with TensorFlow's `Tensor::AsProtoField`
unless `--enable_serialization_as_tensor_content` asks for `AsProtoTensorContent`
(servables/tensorflow/predict_util.cc, PostProcessPredictionResult). `AsProtoField`
writes the values into the repeated field of the dtype (tensorflow/core/framework/
tensor.cc, ProtoHelper: float_val, double_val, int_val for the integers of 32 bits and
fewer, int64_val, uint32_val, uint64_val, bool_val, half_val with the 16-bit patterns
of float16), in row-major order, and leaves tensor_content empty; `AsProtoTensorContent`
writes the raw little-endian bytes and no repeated field. The expected values below are
known answers (IEEE half bit patterns, bytes written by NumPy), and the round trips go
through TensorFlow's own reader, `tf.make_ndarray`.
"""

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, types_pb2

from memae_tf.serving.errors import ServingError
from memae_tf.serving.tensors import decode_tensor, encode_tensor

# dtype, values, the repeated field AsProtoField fills, what it holds.
TYPED_FIELDS = [
    (np.float32, [0.5, -2.0], "float_val", [0.5, -2.0]),
    (np.float64, [0.1, 1e300], "double_val", [0.1, 1e300]),
    (np.float16, [1.0, -2.0, 0.5], "half_val", [0x3C00, 0xC000, 0x3800]),
    (np.int8, [-128, 127], "int_val", [-128, 127]),
    (np.int16, [-32768, 7], "int_val", [-32768, 7]),
    (np.int32, [-(2**31), 5], "int_val", [-(2**31), 5]),
    (np.uint8, [0, 255], "int_val", [0, 255]),
    (np.uint16, [65535, 1], "int_val", [65535, 1]),
    (np.int64, [-(2**40), 3], "int64_val", [-(2**40), 3]),
    (np.uint32, [2**32 - 1, 0], "uint32_val", [2**32 - 1, 0]),
    (np.uint64, [2**64 - 1, 9], "uint64_val", [2**64 - 1, 9]),
    (np.bool_, [True, False], "bool_val", [True, False]),
]


@pytest.mark.parametrize(("dtype", "values", "field", "expected"), TYPED_FIELDS,
                         ids=[row[0].__name__ for row in TYPED_FIELDS])
def test_outputs_fill_the_dtypes_repeated_field_by_default(dtype, values, field, expected):
    proto = encode_tensor(np.array(values, dtype))
    assert list(getattr(proto, field)) == expected
    assert proto.tensor_content == b""
    assert proto.dtype == tf.dtypes.as_dtype(dtype).as_datatype_enum
    np.testing.assert_array_equal(tf.make_ndarray(proto), np.array(values, dtype))


@pytest.mark.parametrize(("dtype", "values", "field", "expected"), TYPED_FIELDS,
                         ids=[row[0].__name__ for row in TYPED_FIELDS])
def test_tensor_content_holds_the_raw_bytes_and_no_repeated_field(dtype, values, field,
                                                                  expected):
    array = np.array(values, dtype)
    proto = encode_tensor(array, tensor_content=True)
    assert proto.tensor_content == array.astype(array.dtype.newbyteorder("<")).tobytes()
    assert list(getattr(proto, field)) == []
    np.testing.assert_array_equal(tf.make_ndarray(proto), array)


@pytest.mark.parametrize("tensor_content", [False, True])
def test_a_matrix_is_written_row_major_with_its_shape(tensor_content):
    # A transposed view is not C-contiguous: its values still go out in the logical
    # row-major order of its shape (Tensor's flat order), [[1, 3], [2, 4]] -> 1 3 2 4.
    array = np.array([[1.0, 2.0], [3.0, 4.0]], np.float32).T
    proto = encode_tensor(array, tensor_content=tensor_content)
    assert [dim.size for dim in proto.tensor_shape.dim] == [2, 2]
    if tensor_content:
        assert proto.tensor_content == np.array([1, 3, 2, 4], "<f4").tobytes()
    else:
        assert list(proto.float_val) == [1.0, 3.0, 2.0, 4.0]
    np.testing.assert_array_equal(tf.make_ndarray(proto), array)


def test_an_empty_output_keeps_its_shape_and_no_values():
    proto = encode_tensor(np.zeros((0, 3), np.float32))
    assert [dim.size for dim in proto.tensor_shape.dim] == [0, 3]
    assert list(proto.float_val) == [] and proto.tensor_content == b""


def test_string_outputs_go_into_string_val_with_either_setting():
    # tensor.cc writes DT_STRING into string_val whichever serialization is asked for.
    for tensor_content in (False, True):
        proto = encode_tensor(np.array([b"a", b"bc"]), tensor_content=tensor_content)
        assert proto.dtype == types_pb2.DT_STRING
        assert list(proto.string_val) == [b"a", b"bc"]


def test_an_input_is_read_from_its_typed_field_or_its_bytes():
    typed = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, float_val=[1.5, 2.5])
    typed.tensor_shape.dim.add(size=2)
    np.testing.assert_array_equal(decode_tensor("x", typed), np.array([1.5, 2.5], np.float32))
    raw = tensor_pb2.TensorProto(dtype=types_pb2.DT_INT32,
                                 tensor_content=np.array([[7], [-1]], "<i4").tobytes())
    raw.tensor_shape.dim.add(size=2)
    raw.tensor_shape.dim.add(size=1)
    np.testing.assert_array_equal(decode_tensor("x", raw), np.array([[7], [-1]], np.int32))


def test_a_malformed_input_is_an_invalid_argument_naming_the_input():
    # Three values' bytes for a shape of two.
    proto = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT,
                                   tensor_content=np.zeros(3, "<f4").tobytes())
    proto.tensor_shape.dim.add(size=2)
    with pytest.raises(ServingError) as caught:
        decode_tensor("images", proto)
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.message.startswith("Input 'images' is not a valid TensorProto: ")


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.bool_])
def test_a_large_output_fills_its_repeated_field_with_every_value_bit_for_bit(dtype):
    # A 64 x 28 x 28 x 1 reconstruction: the field's packed length takes a three-byte
    # varint. As tensor.cc ProtoHelper (AsProtoField), every value, in row-major
    # order, with its bits (signed zero, infinities) kept; the reference is NumPy's.
    rng = np.random.default_rng(0)
    array = (rng.normal(size=(64, 28, 28, 1)) > 0 if dtype is np.bool_
             else rng.normal(size=(64, 28, 28, 1)).astype(dtype))
    if dtype is not np.bool_:
        array[0, :3, 0, 0] = [-0.0, np.inf, -np.inf]
    field = {np.float32: "float_val", np.float64: "double_val", np.bool_: "bool_val"}[dtype]
    proto = tensor_pb2.TensorProto.FromString(encode_tensor(array).SerializeToString())
    values = np.asarray(getattr(proto, field), dtype)
    assert values.tobytes() == array.tobytes()
    assert [dim.size for dim in proto.tensor_shape.dim] == [64, 28, 28, 1]
    assert proto.tensor_content == b""
