"""Distributed and mixed-precision training with `tf.distribute`.

`MemAE.fit(..., strategy=..., precision=...)` and `memae train --strategy ...`
go through this module:

- `resolve_strategy` turns `"auto"`, `"default"`, `"mirrored"` or
  `"multiworker"` into a `tf.distribute.Strategy`;
- `training_replica` returns the model to train: the detector's own model, or
  a clone with the same weights whose variables live in the strategy (and whose
  batch normalisation is synchronised across replicas, so that a distributed
  step equals a single-device step on the global batch) under a mixed-precision
  policy;
- `is_chief` says which worker writes checkpoints and outputs.

Keras scales every loss term by `1 / num_replicas_in_sync` under a strategy,
the compiled reconstruction loss and the memory's entropy loss (`add_loss`)
alike, and sums the gradients across replicas; with equal per-replica batches
that is the gradient of the global-batch mean. `fit` keeps the per-replica
batches equal by dropping the last incomplete global batch when there are
several replicas.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

import keras
import tensorflow as tf

from memae_tf.choices import PRECISIONS as PRECISIONS
from memae_tf.choices import STRATEGIES as STRATEGIES
from memae_tf.common.checks import check_choice
from memae_tf.models.bn_folding import output_layer_names

# A process can hold one MultiWorkerMirroredStrategy (it configures the
# collective ops of the eager context), so it is created once and reused.
_MULTI_WORKER: list[tf.distribute.Strategy] = []


def _check_tf_config() -> dict[str, Any]:
    """Parses `TF_CONFIG` and checks the parts MultiWorkerMirroredStrategy reads."""
    text = os.environ.get("TF_CONFIG")
    if not text:
        raise ValueError(
            "strategy='multiworker' reads the cluster from the TF_CONFIG environment "
            "variable, expected JSON like {\"cluster\": {\"worker\": [\"host:port\", ...]}, "
            "\"task\": {\"type\": \"worker\", \"index\": 0}}. Received: TF_CONFIG is not set"
        )
    try:
        config = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"TF_CONFIG is not valid JSON ({error}). Received: {text!r}") from None
    cluster = config.get("cluster") if isinstance(config, dict) else None
    task = config.get("task") if isinstance(config, dict) else None
    if not isinstance(cluster, dict) or not (cluster.get("worker") or cluster.get("chief")):
        raise ValueError(
            "TF_CONFIG must hold a 'cluster' with a 'worker' (and optionally a 'chief') "
            f"list of host:port addresses. Received: {text!r}"
        )
    if not isinstance(task, dict) or task.get("type") not in cluster or not isinstance(
        task.get("index"), int
    ) or not 0 <= task["index"] < len(cluster[task["type"]]):
        raise ValueError(
            "TF_CONFIG must hold a 'task' {\"type\": ..., \"index\": ...} naming one entry "
            f"of its cluster. Received: {text!r}"
        )
    return config


def _multi_worker_strategy() -> tf.distribute.Strategy:
    if not _MULTI_WORKER:
        _check_tf_config()
        try:
            _MULTI_WORKER.append(tf.distribute.MultiWorkerMirroredStrategy())
        except RuntimeError as error:
            raise RuntimeError(
                "MultiWorkerMirroredStrategy must be created before TensorFlow runs any "
                "op: call memae_tf.distribute.resolve_strategy('multiworker') at the start "
                "of the program, before building the detector (`memae train` does). "
                f"TensorFlow said: {error}"
            ) from error
    return _MULTI_WORKER[0]


def resolve_strategy(strategy: str | tf.distribute.Strategy = "auto") -> tf.distribute.Strategy:
    """Returns the `tf.distribute.Strategy` named by `strategy`.

    Args:
        strategy: A `tf.distribute.Strategy` (returned as is), or
            - `"auto"`: the strategy whose scope is active if any, else
              `MirroredStrategy` over all local GPUs when there are several,
              else the default strategy;
            - `"default"`: TensorFlow's default (single-device) strategy;
            - `"mirrored"`: `MirroredStrategy` over all local GPUs, or over all
              logical CPU devices on a host without GPUs;
            - `"multiworker"`: `MultiWorkerMirroredStrategy` configured from the
              `TF_CONFIG` environment variable. It must be created before
              TensorFlow runs any op, so call this first in the program; later
              calls return the same instance.

    Returns:
        The strategy.

    Example:

    >>> resolve_strategy("default").num_replicas_in_sync
    1
    """
    if isinstance(strategy, tf.distribute.Strategy):
        return strategy
    if strategy not in STRATEGIES:
        raise ValueError(
            f"Received an invalid value for `strategy`, expected one of {STRATEGIES} or a "
            f"tf.distribute.Strategy. Received: strategy={strategy!r}"
        )
    if strategy == "auto":
        if tf.distribute.has_strategy():
            return tf.distribute.get_strategy()
        strategy = "mirrored" if len(tf.config.list_logical_devices("GPU")) > 1 else "default"
    if strategy == "default":
        return tf.distribute.get_strategy()
    if strategy == "mirrored":
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([device.name for device in devices])
    return _multi_worker_strategy()


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes checkpoints and outputs under `strategy`.

    True except on the non-chief workers of a multi-worker cluster (the chief
    is the `chief` task, or worker 0 when the cluster has none).
    """
    return bool(strategy.extended.should_checkpoint)


def is_multi_worker(strategy: tf.distribute.Strategy) -> bool:
    """Whether `strategy` spans several worker processes."""
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return False
    cluster = strategy.cluster_resolver.cluster_spec().as_dict()
    return sum(len(tasks) for tasks in cluster.values()) > 1


def check_precision(precision: str) -> str:
    """Returns `precision` if it names a supported dtype policy, else raises."""
    return check_choice("precision", precision, PRECISIONS)


class _ReplicaModel(keras.Model):
    """A functional model whose in-process replicas count only their own `add_loss` terms.

    Under `MirroredStrategy` the replicas run in threads over the same layer
    objects, so after a cross-replica sync point inside the forward pass
    (synchronised batch norm) `model.losses` holds the entropy losses of every
    replica. Each replica's gradient tape sees only its own, so training is
    right, but Keras would report a loss inflated by the other replicas'
    entropy terms; `compute_loss` takes them out again.
    """

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        total = super().compute_loss(x, y, y_pred, sample_weight, training=training)
        device = tf.nest.flatten(y_pred)[0].device
        own = [loss for loss in self.losses if loss.device == device]
        foreign = [loss for loss in self.losses if loss.device != device]
        if foreign and not own:
            raise RuntimeError(
                "A replica lost its own `add_loss` terms: another replica cleared them "
                "before they were read. Put no cross-replica sync point (synchronised "
                "batch norm) between the model's input and its loss-adding layers, or "
                "train on one replica."
            )
        if not foreign:
            return total
        # Keras adds every extra loss scaled by 1 / replicas (verified in the tests).
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        return total - tf.add_n([tf.cast(loss, total.dtype) for loss in foreign]) / replicas


class _MultiWorkerModel(_ReplicaModel):
    """A replica that Keras 3 can `fit` under a multi-worker strategy.

    Keras 3.15's TensorFlow trainer fails on multi-worker clusters in two
    places (keras-team/keras#20585, tensorflow/tensorflow#72388): it all-reduces
    a nested first batch to build the model symbolically, which
    `CollectiveAllReduceStrategy.reduce` rejects, and it averages the scalar
    step logs with `reduce(..., axis=0)`. This subclass skips the symbolic build
    (the model is built, and `fit` builds the optimizer in the strategy scope
    beforehand) and returns the step logs with a leading axis of one, which the
    reduction averages across replicas back into scalars.
    """

    def _maybe_symbolic_build(self, iterator=None, data_batch=None) -> None:
        return

    def train_step(self, data: Any) -> dict[str, tf.Tensor]:
        return {name: tf.reshape(value, [1]) for name, value in super().train_step(data).items()}

    def test_step(self, data: Any) -> dict[str, tf.Tensor]:
        return {name: tf.reshape(value, [1]) for name, value in super().test_step(data).items()}


def training_replica(
    model: keras.Model, strategy: tf.distribute.Strategy, precision: str = "float32"
) -> keras.Model:
    """The model to train under `strategy` and `precision`, holding `model`'s weights.

    `model` itself when it already lives in `strategy` with the `precision`
    dtype policy and there is one replica. Otherwise a clone built in
    `strategy.scope()` with the same weights, in which every layer but the
    output layers takes the `precision` policy (outputs stay float32, and
    `MemoryLayer` addresses in float32 under any policy), and in which batch
    normalisation is synchronised across replicas when there are several, so
    that the statistics are those of the global batch. Copy the trained weights
    back with `model.set_weights(replica.get_weights())`. Build the optimizer in
    `strategy.scope()` before `fit` (multi-worker replicas skip Keras' symbolic
    build, see `_MultiWorkerModel`). Replicas of several devices or workers
    are `keras.Model` subclasses that work around Keras 3 limitations of
    `fit` under `tf.distribute` (see `_ReplicaModel`, `_MultiWorkerModel`).

    Args:
        model: A functional or sequential Keras model.
        strategy: The distribution strategy.
        precision: `"float32"`, `"mixed_float16"` (GPUs) or `"mixed_bfloat16"`
            (TPUs, recent GPUs and CPUs with bfloat16 instructions).

    Returns:
        `model` or its replica.
    """
    precision = check_precision(precision)
    synchronized = strategy.num_replicas_in_sync > 1
    if (
        model.distribute_strategy is strategy
        and model.dtype_policy.name == precision
        and not synchronized
    ):
        return model
    keep_dtype = output_layer_names(model)

    def clone_layer(layer: keras.layers.Layer) -> keras.layers.Layer:
        config = layer.get_config()
        if layer.name not in keep_dtype:
            config["dtype"] = precision
        if synchronized and isinstance(layer, keras.layers.BatchNormalization):
            config["synchronized"] = True
        return layer.__class__.from_config(config)

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(precision)  # the replica's own policy drives loss scaling
    try:
        with strategy.scope():
            replica = keras.models.clone_model(model, clone_function=clone_layer)
            if is_multi_worker(strategy):
                replica = _MultiWorkerModel(replica.inputs, replica.outputs, name=replica.name)
            elif synchronized and len(strategy.extended.worker_devices) > 1:
                replica = _ReplicaModel(replica.inputs, replica.outputs, name=replica.name)
    finally:
        keras.config.set_dtype_policy(previous)
    replica.set_weights(model.get_weights())
    return replica


def distribution_options(args: argparse.Namespace) -> dict[str, Any]:
    """`TrainingConfig` fields from the options of `cli.add_distribution_arguments`.

    Resolves the strategy at once: call it before building the detector, since a
    multi-worker strategy must exist before TensorFlow runs any op.
    """
    options = {
        "strategy": resolve_strategy(args.strategy),
        "precision": args.precision,
        "jit_compile": "auto" if args.jit_compile is None else args.jit_compile,
        "checkpoint_dir": args.checkpoint_dir,
    }
    if args.steps_per_execution is not None:
        options["steps_per_execution"] = args.steps_per_execution
    return options
