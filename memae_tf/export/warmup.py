"""TF Serving warmup records: requests replayed on load so the first real call is fast."""

from __future__ import annotations

import os
import pathlib
from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

from memae_tf.common.contract import INPUT_NAME, warmup_file


def write_warmup_requests(
    saved_model_dir: str | os.PathLike,
    model_name: str,
    input_shapes: Mapping[str, Sequence[int]],
    input_name: str = INPUT_NAME,
    input_dtypes: Mapping[str, npt.DTypeLike] | None = None,
) -> pathlib.Path:
    """Writes `assets.extra/tf_serving_warmup_requests` into a SavedModel directory.

    One `PredictionLog` per signature, each a `PredictRequest` with a batch of one
    all-zero sample, so that loading the model traces and runs every signature.

    Args:
        saved_model_dir: The SavedModel version directory.
        model_name: Model name put in the requests' `model_spec`.
        input_shapes: Signature name → input shape without the batch axis.
        input_name: Name of the single input of every signature.
        input_dtypes: Signature name → its input's dtype; float32 for a
            signature it leaves out (or for all, when None).

    Returns:
        The path of the TFRecord file.
    """
    path = warmup_file(saved_model_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for signature_name, shape in input_shapes.items():
            request = predict_pb2.PredictRequest()
            request.model_spec.name = model_name
            request.model_spec.signature_name = signature_name
            sample = np.zeros((1, *shape), (input_dtypes or {}).get(signature_name, np.float32))
            request.inputs[input_name].CopyFrom(tf.make_tensor_proto(sample))
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request)
            )
            writer.write(log.SerializeToString())
    return path
