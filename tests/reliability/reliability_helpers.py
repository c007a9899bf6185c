"""Helpers of the reliability suite: numpy reference scores, REST calls, a gated model
(the small MemAE and polling come from tests/serving_helpers.py)."""

import json
import pathlib
import urllib.error
import urllib.request

import keras
import numpy as np
import tensorflow as tf
from serving_helpers import FEATURES, reference_outputs
from serving_helpers import small_model as small_model  # re-exported for the suite
from serving_helpers import wait_for as wait_for  # re-exported for the suite
from tensorflow.core.framework import tensor_pb2

from memae_tf.client.tensors import to_tensor_proto

MAX_BATCH = 64
MAX_MESSAGE_MIB = 1


def reference_scores(model: keras.Model, x: np.ndarray) -> np.ndarray:
    """Mean squared reconstruction error per row, computed with numpy."""
    return reference_outputs(model, x)["score"]


def rest_call(port: int, method: str, path: str, body: object = None,
              headers: dict | None = None) -> tuple[int, dict]:
    """One REST call on loopback; returns (HTTP status, decoded JSON body)."""
    data = None if body is None else (body if isinstance(body, bytes) else
                                      json.dumps(body).encode())
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data,
                                     method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def export_gated_model(base_path: pathlib.Path, gate: pathlib.Path) -> None:
    """Exports version 1 of a model whose requests wait for a file, to hold them in flight.

    A request whose `x[0, 1] > 0` writes `gate/started-<x[0, 0]>` and then
    waits until `gate/release` exists; any other request runs at once. Scores
    are the row means. Only standard TensorFlow ops, so the server loads it
    like any SavedModel.
    """
    folder = str(gate)

    class Gated(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, FEATURES], tf.float32, name="x")])
        def serve(self, x):
            tag = tf.strings.as_string(tf.cast(x[0, 0], tf.int32))
            held = x[0, 1] > 0
            started = tf.cond(held, lambda: tf.io.write_file(folder + "/started-" + tag, ""),
                              tf.no_op)
            with tf.control_dependencies([started]):
                # The pattern depends on `x`, so the wait cannot be folded away.
                pattern = tf.strings.join([folder + "/release", tf.strings.substr(tag, 0, 0)])
            (waited,) = tf.while_loop(
                lambda i: held & tf.equal(tf.size(tf.io.matching_files(pattern)), 0),
                lambda i: i + 1, [tf.constant(0)])
            score = tf.reduce_mean(x, axis=1) + tf.cast(waited * 0, tf.float32)
            return {"score": score, "is_anomaly": score > 0.5, "reconstruction": x}

    module = Gated()
    tf.saved_model.save(module, str(base_path / "1"),
                        signatures={"serving_default": module.serve})


def tensor_proto(x: np.ndarray) -> tensor_pb2.TensorProto:
    """TensorFlow's TensorProto of `x`, with the bytes the client sends for it.

    The client builds the project's own (wire-compatible) messages; requests
    made with `tensorflow_serving.apis` need TensorFlow's class.
    """
    return tensor_pb2.TensorProto.FromString(to_tensor_proto(x).SerializeToString())
