"""The JSON of REST predict requests: a body in, the signature name and input tensors out.

As TF Serving's util/json_tensor.cc `FillPredictRequestFromJson`, with its
checks, their order and its messages: the body is read by rapidjson
(`memae_tf.serving.json_reader`), `signature_name` must be a string, the
signature's inputs are looked up (a signature without inputs is refused),
then exactly one of `instances` (row format: a non-empty list, of plain values
for a one-input signature or of objects naming every input) or `inputs`
(columnar format: the value of the one input, or an object naming each
input). Each value is checked against the input's dtype as rapidjson types
it (`AddValueToTensor`), and every row against the first's size and shape.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import grpc
import numpy as np
from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import meta_graph_pb2

from memae_tf.serving.errors import ServingError, invalid_argument
from memae_tf.serving.json_reader import decode_base64, is_base64_object, json_type, read_json
from memae_tf.serving.rest_examples import json_debug_string

InputInfos = Mapping[str, meta_graph_pb2.TensorInfo]

# TensorFlow's DataTypeString, and how AddValueToTensor takes a JSON value of each
# dtype: which values it accepts (rapidjson's IsNumber, IsInt, ...) and the numpy type.
_INT32 = (-(2**31), 2**31 - 1)
_DTYPES: dict[int, tuple[str, Callable[[Any], bool], type]] = {
    types_pb2.DT_FLOAT: ("float", lambda v: _is_number(v), np.float32),
    types_pb2.DT_DOUBLE: ("double", lambda v: _is_number(v), np.float64),
    types_pb2.DT_INT32: ("int32", lambda v: _is_int(v, *_INT32), np.int32),
    types_pb2.DT_INT16: ("int16", lambda v: _is_int(v, *_INT32), np.int16),
    types_pb2.DT_INT8: ("int8", lambda v: _is_int(v, *_INT32), np.int8),
    types_pb2.DT_UINT8: ("uint8", lambda v: _is_int(v, *_INT32), np.uint8),
    types_pb2.DT_STRING: ("string", lambda v: isinstance(v, str), np.object_),
    types_pb2.DT_INT64: ("int64", lambda v: _is_int(v, -(2**63), 2**63 - 1), np.int64),
    types_pb2.DT_BOOL: ("bool", lambda v: isinstance(v, bool), np.bool_),
    types_pb2.DT_UINT32: ("uint32", lambda v: _is_int(v, 0, 2**32 - 1), np.uint32),
    types_pb2.DT_UINT64: ("uint64", lambda v: _is_int(v, 0, 2**64 - 1), np.uint64),
}
# DataTypeString of the dtypes AddValueToTensor does not convert (UNIMPLEMENTED).
_OTHER_DTYPE_NAMES = {types_pb2.DT_HALF: "half", types_pb2.DT_BFLOAT16: "bfloat16",
                      types_pb2.DT_UINT16: "uint16", types_pb2.DT_COMPLEX64: "complex64",
                      types_pb2.DT_COMPLEX128: "complex128"}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_int(value: Any, low: int, high: int) -> bool:
    # rapidjson keeps a literal with a fraction or exponent a double: 1.0 is no integer.
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _is_element_object(value: Any) -> bool:
    return isinstance(value, dict) and not is_base64_object(value)


class _Tensor:
    """One input's values as `FillTensorProto` adds them, with the shape of its last value."""

    def __init__(self, dtype: int) -> None:
        self.dtype = dtype
        self.values: list = []
        self.shape: list[int] = []

    def fill(self, value: Any) -> int:
        """`GetDenseTensorShape`, then `FillTensorProto`: adds `value`'s leaves; their count."""
        self.shape = []
        item = value
        while isinstance(item, list):
            self.shape.append(len(item))
            if not item:
                break
            item = item[0]
        return self._fill(value, 0)

    def _fill(self, value: Any, level: int) -> int:
        rank = len(self.shape)
        if not isinstance(value, list):
            if level != rank:
                raise invalid_argument(
                    f"JSON Value: {json_debug_string(value)} found at incorrect level: "
                    f"{level + 1} in the JSON DOM. Expected at level: {rank}")
            self.values.append(self._leaf(value))
            return 1
        if level >= rank:
            raise invalid_argument(
                f"Encountered list at unexpected level: {level} expected < {rank}")
        if len(value) != self.shape[level]:
            raise invalid_argument(
                f"Encountered list at unexpected size: {len(value)} at level: {level} "
                f"expected size: {self.shape[level]}")
        return sum(self._fill(item, level + 1) for item in value)

    def _leaf(self, value: Any) -> Any:
        known = _DTYPES.get(self.dtype)
        if known is None:
            name = _OTHER_DTYPE_NAMES.get(self.dtype, types_pb2.DataType.Name(self.dtype))
            raise ServingError(grpc.StatusCode.UNIMPLEMENTED,
                               f"Conversion of JSON Value: {json_debug_string(value)} to "
                               f"type: {name}")
        name, accepts, _ = known
        if isinstance(value, dict):
            if self.dtype == types_pb2.DT_STRING:
                return _decode_base64(value)
        elif accepts(value):
            return value.encode("utf-8", "surrogateescape") if isinstance(value, str) else value
        raise invalid_argument(
            f"JSON Value: {json_debug_string(value)} Type: {json_type(value)} is not of "
            f"expected type: {name}")

    def array(self, shape: list[int]) -> np.ndarray:
        numpy_type = _DTYPES[self.dtype][2]
        if numpy_type is np.object_:
            array = np.empty(len(self.values), dtype=object)
            array[:] = self.values
        elif numpy_type in (np.int8, np.int16, np.uint8):
            # Tensor::FromProto casts each int_val to the narrower type, wrapping.
            array = np.array(self.values, dtype=np.int64).astype(numpy_type)
        else:
            array = np.array(self.values, dtype=numpy_type)
        return array.reshape(shape)


def _decode_base64(value: dict) -> bytes:
    """`JsonDecodeBase64Object`."""
    if not is_base64_object(value):
        raise invalid_argument(
            f"JSON Value: {json_debug_string(value)} not formatted correctly for base64 data")
    return decode_base64(value["b64"])


def _status(error: ServingError) -> str:
    """An absl status as `Status::ToString` writes it."""
    return f"{error.code.name}: {error.message}"


def _shape_string(shape: list[int]) -> str:
    return "[" + ",".join(map(str, shape)) + "]"


def _from_instances(instances: list, infos: InputInfos) -> dict[str, np.ndarray]:
    """`FillTensorMapFromInstancesList`: one row per element, stacked."""
    if not isinstance(instances[0], dict) and len(infos) > 1:
        raise invalid_argument(
            "instances is a plain list, but expecting list of objects as multiple input "
            "tensors required as per tensorinfo_map")
    objects = _is_element_object(instances[0])
    names = sorted(infos)
    tensors: dict[str, _Tensor] = {}
    sizes: dict[str, tuple[int, list[int]]] = {}

    def add(value: Any, name: str) -> None:  # AddInstanceItem
        if name not in infos:
            raise invalid_argument(f"JSON object: does not have named input: {name}")
        tensor = tensors.setdefault(name, _Tensor(infos[name].dtype))
        size = tensor.fill(value)
        if name not in sizes:
            sizes[name] = (size, tensor.shape)
        elif sizes[name][0] != size:
            raise invalid_argument(f"Expecting tensor size: {sizes[name][0]} but got: {size}")
        elif sizes[name][1] != tensor.shape:
            raise invalid_argument(f"Expecting shape {_shape_string(sizes[name][1])} but got: "
                                   f"{_shape_string(tensor.shape)}")

    for index, element in enumerate(instances):
        if objects:
            if not _is_element_object(element):
                raise invalid_argument(
                    f"Expecting object but got list at item {index} of input list")
            for name, value in element.items():
                try:
                    add(value, name)
                except ServingError as error:
                    raise invalid_argument(
                        f"Failed to process element: {index} key: {name} of 'instances' "
                        f"list. Error: {_status(error)}") from None
            if sorted(element) != names:
                raise invalid_argument(
                    f"Failed to process element: {index} of 'instances' list. JSON object: "
                    f"{json_debug_string(element)} keys must be equal to: {','.join(names)}")
        else:
            if _is_element_object(element):
                raise invalid_argument(
                    f"Expecting value/list but got object at item {index} of input list")
            try:
                add(element, names[0])
            except ServingError as error:
                raise invalid_argument(
                    f"Failed to process element: {index} of 'instances' list. Error: "
                    f"{_status(error)}") from None
    return {name: tensor.array([len(instances), *sizes[name][1]])
            for name, tensor in tensors.items()}


def _from_inputs(value: Any, infos: InputInfos) -> dict[str, np.ndarray]:
    """`FillTensorMapFromInputsMap`: each input's whole tensor; other names are ignored."""
    if not isinstance(value, dict) or is_base64_object(value):
        if len(infos) > 1:
            raise invalid_argument(
                "inputs is a plain value/list, but expecting an object as multiple input "
                "tensors required as per tensorinfo_map")
        items = {name: value for name in infos}
    else:
        items = {}
        for name in sorted(infos):
            if name not in value:
                raise invalid_argument(f"Missing named input: {name} in 'inputs' object.")
            items[name] = value[name]
    arrays = {}
    for name, item in items.items():
        tensor = _Tensor(infos[name].dtype)
        tensor.fill(item)
        arrays[name] = tensor.array(tensor.shape)
    return arrays


def parse_predict_body(
    body: bytes, signature_inputs: Callable[[str], InputInfos]
) -> tuple[str, dict[str, np.ndarray], bool]:
    """Reads a REST predict body into its signature name and input tensors, as TF Serving.

    Args:
        body: The request body.
        signature_inputs: Returns the inputs of the named signature (empty:
            `serving_default`), or raises as TF Serving's REST handler does
            for an unknown model, version or signature.

    Returns:
        `(signature_name, inputs, row_format)`: the name the body gives (empty
        if none), input name → array, and whether the body used `instances`
        (row format) rather than `inputs` (columnar format).

    Raises:
        ServingError: INVALID_ARGUMENT with TF Serving's messages; what
            `signature_inputs` raises.

    Example:

    >>> infos = {"x": meta_graph_pb2.TensorInfo(dtype=types_pb2.DT_FLOAT)}
    >>> parse_predict_body(b'{"instances": [[1, 2], [3, 4]]}', lambda name: infos)
    ('', {'x': array([[1., 2.],
           [3., 4.]], dtype=float32)}, True)
    """
    document = read_json(body)
    if not isinstance(document, dict):
        raise invalid_argument(f"JSON Value: {json_debug_string(document)} Is not object")
    signature_name = document.get("signature_name", "")
    if not isinstance(signature_name, str):
        raise invalid_argument(
            f"JSON Value: {json_debug_string(document)} not formatted correctly. "
            "'signature_name' key must be a string value.")
    infos = signature_inputs(signature_name)
    if not infos:
        raise invalid_argument(
            f"Failed to get input map for signature: {signature_name or 'DEFAULT'}")
    if "instances" in document:
        if "inputs" in document:
            raise invalid_argument(
                f"JSON Value: {json_debug_string(document)} Not formatted correctly expecting "
                "only one of 'inputs' or 'instances' keys to exist ")
        instances = document["instances"]
        if not isinstance(instances, list):
            raise invalid_argument(f"JSON Value: {json_debug_string(document)} Expecting "
                                   "'instances' to be an list/array")
        if not instances:
            raise invalid_argument(
                f"JSON Value: {json_debug_string(document)} No values in 'instances' array")
        return signature_name, _from_instances(instances, infos), True
    if "inputs" in document:
        return signature_name, _from_inputs(document["inputs"], infos), False
    raise invalid_argument("Missing 'inputs' or 'instances' key")
