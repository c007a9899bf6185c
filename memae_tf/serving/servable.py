"""One loaded SavedModel version, answering Predict with TF Serving's checks."""

from __future__ import annotations

import os
import pathlib
import time
from collections.abc import Collection, Mapping, Sequence

import grpc
import numpy as np
import tensorflow as tf
from google.protobuf.message import DecodeError
from tensorflow.core.framework import tensor_pb2
from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2
from tensorflow_serving.apis import prediction_log_pb2

from memae_tf.common.contract import SERVE_TAG, SERVING_SIGNATURE, warmup_file
from memae_tf.serving import inference
from memae_tf.serving.errors import ServingError, invalid_argument
from memae_tf.serving.metrics import ServingMetrics
from memae_tf.serving.tensors import decode_tensor
from memae_tf.serving.validation import (
    RequestLimits,
    check_dtype,
    check_finite,
    check_shape,
    check_tensor_proto,
)

_CODES_BY_NUMBER = {code.value[0]: code for code in grpc.StatusCode}

# tensorflow/cc/saved_model/signature_constants.h: the method names a Predict may call
# under --enable_signature_method_name_check (predict_util.cc VerifySignature).
PREDICTION_METHOD_NAMES = ("tensorflow/serving/predict", inference.CLASSIFY_METHOD_NAME,
                           inference.REGRESS_METHOD_NAME)

# The most warmup records TF Serving replays (saved_model_warmup_util.h,
# WarmupConsts::kMaxNumRecords); a file with more fails the load.
MAX_WARMUP_RECORDS = 1000


def read_signature_defs(
    saved_model_dir: str | os.PathLike,
) -> dict[str, meta_graph_pb2.SignatureDef]:
    """Returns the `SignatureDef`s of the `serve` MetaGraph of a SavedModel directory."""
    path = pathlib.Path(saved_model_dir) / "saved_model.pb"
    saved_model = saved_model_pb2.SavedModel.FromString(path.read_bytes())
    for meta_graph in saved_model.meta_graphs:
        if SERVE_TAG in meta_graph.meta_info_def.tags:
            return dict(meta_graph.signature_def)
    raise ValueError(f"{path} has no MetaGraph tagged {SERVE_TAG!r}.")


class Servable:
    """A SavedModel version loaded with `tf.saved_model.load`.

    Args:
        version: The version number.
        path: The version directory.
        metrics: Where to count the load attempt and its time, as TensorFlow's
            `LoadSavedModel` does (`load_attempt_count`, `load_latency`), and
            the warmup's (`model_warmup_latency`, `model_warmup_records_read`,
            and the runtime and example metrics of its requests); None records
            nothing.

    Example:

    >>> servable = Servable(1, "models/memae/1")                         # doctest: +SKIP
    >>> servable.predict("serving_default", {"x": batch}, ["score"])     # doctest: +SKIP
    {'score': array([...], dtype=float32)}
    """

    def __init__(
        self, version: int, path: str | os.PathLike, metrics: ServingMetrics | None = None
    ) -> None:
        self.version = version
        self.path = pathlib.Path(path)
        self.metrics = metrics
        started = time.perf_counter()
        succeeded = False
        try:
            self.signature_defs = read_signature_defs(self.path)
            self._module = tf.saved_model.load(str(self.path))
            succeeded = True
        finally:
            if metrics is not None:
                metrics.record_load(str(self.path), succeeded,
                                    (time.perf_counter() - started) * 1e6)

    def signature_def(self, signature_name: str) -> meta_graph_pb2.SignatureDef:
        """Returns a signature of the MetaGraph, or raises FAILED_PRECONDITION like TF Serving.

        As predict_util.cc `RunPredict`, the MetaGraph's whole signature map
        counts, `__saved_model_init_op` included, though no function of the
        loaded model runs it (`run` refuses it as TensorFlow's session does).
        """
        name = signature_name or SERVING_SIGNATURE
        if name not in self.signature_defs:
            # predict_util.cc RunPredict: the key alone, no list of the signatures there are.
            raise ServingError(grpc.StatusCode.FAILED_PRECONDITION,
                               f'Serving signature key "{name}" not found.')
        return self.signature_defs[name]

    def _input_defaults(
        self, signature: meta_graph_pb2.SignatureDef, received: Collection[str]
    ) -> dict[str, np.ndarray]:
        """Checks a request's input names as TF Serving does; returns the defaults it takes.

        predict_util.cc `VerifyRequestInputsSize` compares counts only: more
        inputs than the signature's, or fewer when the signature has no
        `defaults`, is refused with both name sets. Then TensorFlow's
        cc/saved_model/util.cc `GetInputValues` walks the signature's inputs
        (here in name order; protobuf's map order in TF Serving): one the
        request lacks takes the signature's default or is refused, and a
        request name that no input took is refused last.
        """
        expected = set(signature.inputs)
        names = set(received)
        if len(names) > len(expected) or (len(names) < len(expected)
                                          and not signature.defaults):
            raise invalid_argument(
                f"input size does not match signature: {len(names)}!={len(expected)} "
                f"len({{{','.join(sorted(names))}}}) != "
                f"len({{{','.join(sorted(expected))}}}). "
                f"Sent extra: {{{','.join(sorted(names - expected))}}}. "
                f"Missing but required: {{{','.join(sorted(expected - names))}}}."
            )
        defaults = {}
        for alias in sorted(expected - names):
            if alias not in signature.defaults:
                raise invalid_argument(
                    f"Signature input alias: {alias}(feed name: {signature.inputs[alias].name}"
                    ") not found in request and no default value provided. Inputs expected "
                    f"to be in the request {{{','.join(sorted(names))}}}, or default input "
                    f"alias set: {','.join(sorted(signature.defaults))}")
            defaults[alias] = decode_tensor(alias, signature.defaults[alias])
        if names and not names <= expected:
            raise invalid_argument(
                "Inputs contains invalid name. Used request inputs: "
                f"{','.join(sorted(names & expected))}, request input: {','.join(sorted(names))}")
        return defaults

    def _check_inputs(
        self, name: str, signature: meta_graph_pb2.SignatureDef, inputs: Mapping[str, np.ndarray]
    ) -> None:
        self._input_defaults(signature, inputs)
        for key, array in inputs.items():
            info = signature.inputs[key]
            check_dtype(key, name, info, tf.dtypes.as_dtype(array.dtype).as_datatype_enum)
            check_shape(key, name, info, array.shape)
            check_finite(key, name, array)

    def decode_inputs(
        self,
        signature_name: str,
        protos: Mapping[str, tensor_pb2.TensorProto],
        limits: RequestLimits | None = None,
        method_name_check: bool = False,
    ) -> dict[str, np.ndarray]:
        """Checks request tensors against a signature and the limits, then decodes them.

        The signature's `method_name` first (with `method_name_check`), then
        the number of inputs and their names (see `_input_defaults`), dtypes,
        shapes, the batch size, the byte length of `tensor_content` and the
        decoded size, all on the protos, so that nothing is allocated for a
        request that is refused.

        Args:
            signature_name: The signature; empty means `serving_default`.
            protos: Input name → `TensorProto`, as in a `PredictRequest`.
            limits: The server's request limits; None means `RequestLimits()`.
            method_name_check: TF Serving's `--enable_signature_method_name_check`:
                a signature whose `method_name` is not predict, classify or
                regress is refused.

        Returns:
            Input name → array, the signature's `defaults` for the inputs the
            request leaves out included.

        Raises:
            ServingError: FAILED_PRECONDITION for an unknown signature, INTERNAL
                for a signature of another method (with `method_name_check`),
                INVALID_ARGUMENT for inputs that do not fit it, RESOURCE_EXHAUSTED
                for inputs beyond the limits.
        """
        name = signature_name or SERVING_SIGNATURE
        signature = self.signature_def(name)
        # predict_util.cc PreProcessPrediction: VerifySignature, before the inputs.
        if method_name_check and signature.method_name not in PREDICTION_METHOD_NAMES:
            raise ServingError(
                grpc.StatusCode.INTERNAL,
                "Expected prediction signature method_name to be one of "
                f"{{{', '.join(PREDICTION_METHOD_NAMES)}}}. Was: {signature.method_name}")
        defaults = self._input_defaults(signature, protos)
        limits = RequestLimits() if limits is None else limits
        for key, proto in protos.items():
            check_tensor_proto(key, name, signature.inputs[key], proto, limits)
        return {**defaults, **{key: decode_tensor(key, proto) for key, proto in protos.items()}}

    def check_request(
        self,
        signature_name: str,
        inputs: Mapping[str, np.ndarray],
        output_filter: Sequence[str] = (),
    ) -> list[str]:
        """Checks a Predict's decoded inputs and output filter against a signature.

        Args:
            signature_name: The signature; empty means `serving_default`.
            inputs: Input name → array.
            output_filter: Output names to return; empty means all of them.

        Returns:
            The output names to answer with, in `output_filter` order when it is
            given, else the signature's.

        Raises:
            ServingError: FAILED_PRECONDITION for an unknown signature,
                INVALID_ARGUMENT for wrong inputs (names, dtypes, shapes, an empty
                batch, NaN or Inf values) or output names.
        """
        name = signature_name or SERVING_SIGNATURE
        signature = self.signature_def(name)
        self._check_inputs(name, signature, inputs)
        seen: set[str] = set()
        for alias in output_filter:  # in this order, as predict_util.cc PreProcessPrediction
            if alias not in signature.outputs:
                raise invalid_argument(
                    f"output tensor alias not found in signature: {alias} Outputs expected "
                    f"to be in the set {{{','.join(sorted(signature.outputs))}}}."
                )
            if alias in seen:
                raise invalid_argument(f"duplicate output tensor alias: {alias}")
            seen.add(alias)
        return list(output_filter or signature.outputs)

    def run(self, signature_name: str, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Calls a signature once on inputs `check_request` accepted; returns every output.

        This is the call TF Serving's batching session makes on a merged batch.

        Raises:
            ServingError: The code of the TensorFlow error when the computation
                fails; INVALID_ARGUMENT with TensorFlow's message for a signature
                whose output is an operation, not a tensor (`__saved_model_init_op`).
        """
        name = signature_name or SERVING_SIGNATURE
        function = self._module.signatures.get(name)
        if function is None:
            # TensorFlow's subgraph.cc FetchOutputs, when the session is asked to fetch
            # the init op signature's output: an operation without outputs.
            fetched = next(iter(self.signature_defs[name].outputs.values())).name
            raise invalid_argument(
                f"Tried to fetch data for '{fetched}', which produces no output.  To run to "
                f"a node but not fetch any data, pass '{fetched}' as an argument to the "
                "'target_node_names' argument of the Session::Run API.")
        try:
            outputs = function(**{key: tf.constant(value) for key, value in inputs.items()})
        except tf.errors.OpError as error:
            code = _CODES_BY_NUMBER.get(error.error_code, grpc.StatusCode.INTERNAL)
            raise ServingError(code, error.message) from error
        return {alias: tensor.numpy() for alias, tensor in outputs.items()}

    def predict(
        self,
        signature_name: str,
        inputs: Mapping[str, np.ndarray],
        output_filter: Sequence[str] = (),
    ) -> dict[str, np.ndarray]:
        """Checks a request (`check_request`) and runs it on its own (`run`).

        Args:
            signature_name: The signature; empty means `serving_default`.
            inputs: Input name → array, the signature's inputs with its dtypes
                and shapes; those with a signature default may be left out.
            output_filter: Output names to return; empty means all of them.

        Returns:
            Output name → array, in `output_filter` order when it is given.

        Raises:
            ServingError: As `check_request` and `run`.
        """
        defaults = self._input_defaults(self.signature_def(signature_name), inputs)
        inputs = {**defaults, **inputs}
        aliases = self.check_request(signature_name, inputs, output_filter)
        outputs = self.run(signature_name, inputs)
        return {alias: outputs[alias] for alias in aliases}

    def _replay(self, log: prediction_log_pb2.PredictionLog, method_name_check: bool) -> None:
        """Runs one warmup record's request, as saved_model_warmup.cc `RunWarmupRequest`.

        Predict, classify, regress and multi-inference logs run as their RPCs
        run on this version (without the model lookup), `method_name_check`
        included; a streamed-predict or session-run log is UNIMPLEMENTED, and a
        record without a log does nothing.
        """
        kind = log.WhichOneof("log_type")
        if kind == "predict_log":
            request = log.predict_log.request
            signature_name = request.model_spec.signature_name
            inputs = self.decode_inputs(signature_name, request.inputs,
                                        method_name_check=method_name_check)
            self.check_request(signature_name, inputs, list(request.output_filter))
            started = time.perf_counter()
            self.run(signature_name, inputs)
            if self.metrics is not None:  # predict_util.cc RunPredict, warmup included
                self.metrics.record_runtime(request.model_spec.name, "Predict",
                                            (time.perf_counter() - started) * 1e6)
        elif kind in ("classify_log", "regress_log"):
            method = inference.CLASSIFY if kind == "classify_log" else inference.REGRESS
            inference.run_classify_or_regress(method, self, getattr(log, kind).request,
                                              method_name_check=method_name_check,
                                              metrics=self.metrics)
        elif kind == "multi_inference_log":
            inference.run_multi_inference(self, log.multi_inference_log.request,
                                          method_name_check=method_name_check,
                                          metrics=self.metrics)
        elif kind is not None:
            # StrCat of the LogTypeCase enum: the oneof field's number.
            number = log.DESCRIPTOR.fields_by_name[kind].number
            raise ServingError(grpc.StatusCode.UNIMPLEMENTED,
                               f"Unsupported log_type for warmup: {number}")

    def warm_up(self, iterations: int = 1, method_name_check: bool = False) -> int:
        """Replays `assets.extra/tf_serving_warmup_requests`, as TF Serving does on load.

        As saved_model_warmup_util.cc: a file that is not TFRecords is DATA_LOSS, a
        record that is not a `PredictionLog` INVALID_ARGUMENT, and so is a file of
        more than `MAX_WARMUP_RECORDS` records. Each record's request runs as its
        RPC would on this version (see `_replay`), so a classify, regress or
        multi-inference record against a MemAE export fails with the error that
        RPC answers, and the load with it.

        Args:
            iterations: Times each record's request runs before the next record
                is read (`ModelWarmupOptions.num_request_iterations`, TF Serving's
                `--num_request_iterations_for_warmup`).
            method_name_check: TF Serving's `--enable_signature_method_name_check`,
                which is process-wide (util.cc `SetSignatureMethodNameCheckFeature`):
                a record on a signature of another method fails as its RPC would.

        Returns:
            The number of records replayed (0 without a warmup file).

        Raises:
            ServingError: If the file or a record cannot be read, a record's
                request fails or is of a kind TF Serving does not replay, or the
                file holds too many records.
        """
        path = warmup_file(self.path)
        if not path.is_file():
            return 0
        started = time.perf_counter()
        count = 0
        try:
            for record in tf.data.TFRecordDataset(str(path)):
                try:
                    log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
                except DecodeError as error:
                    raise invalid_argument(
                        f"Failed to parse warmup record: {record.numpy()!r} from {path}"
                    ) from error
                for _ in range(iterations):
                    self._replay(log, method_name_check)
                count += 1
                if count > MAX_WARMUP_RECORDS:
                    raise invalid_argument(
                        "Number of warmup records exceeds the maximum "
                        f"({MAX_WARMUP_RECORDS}) at {path}"
                    )
        except tf.errors.DataLossError as error:
            self._record_warmup(f"DATA_LOSS: {error.message}", count, started)
            raise ServingError(
                grpc.StatusCode.DATA_LOSS,
                f"{error.message}. Please verify your warmup data is in TFRecord format.",
            ) from error
        self._record_warmup("OK", count, started)
        return count

    def _record_warmup(self, status: str, records: int, started: float) -> None:
        # saved_model_warmup_util.cc records these once the reader stops (end of file,
        # or an unreadable record); a failed record's request returns before them.
        if self.metrics is not None:
            self.metrics.record_warmup(str(self.path), status, records,
                                       (time.perf_counter() - started) * 1e6)
