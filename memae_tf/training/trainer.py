"""`Trainer`: runs a `TrainingConfig` on one autoencoder and keeps it compiled between runs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from memae_tf import distribute
from memae_tf.data.inputs import prepare_inputs
from memae_tf.data.pipeline import reconstruction_dataset
from memae_tf.fault_tolerance import fault_tolerance_callbacks
from memae_tf.models.memory_block import adapt_memory
from memae_tf.models.scaling import adapt_feature_scalers, feature_scalers, reconstruction_loss
from memae_tf.training.config import TrainingConfig
from memae_tf.training.fused_adam import fused_adam
from memae_tf.training.memory_check import MemoryCollapseCheck
from memae_tf.training.memory_init import memory_samples
from memae_tf.training.schedules import CosineLearningRateDecay

# The shuffling seed of multi-worker training when none is given: every worker
# must draw the same order, since each keeps its shard of every global batch.
SHARED_SHUFFLE_SEED = 0
# Train steps per call into TensorFlow by default: fewer Python round trips for
# these small networks (+20% training throughput with XLA on 2 CPU cores, about
# +10% without).
STEPS_PER_EXECUTION = 32


class Trainer:
    """Trains one autoencoder on normal data, run after run.

    The model stays compiled (and Adam keeps its moments) across calls to
    `fit` as long as the learning rate, XLA and steps per execution stay the
    same and no replica is needed. Under a distribution strategy or a mixed
    precision the model and optimiser are created in the strategy's scope
    (see `memae_tf.distribute`) and the trained weights are copied back into
    `model`.

    Args:
        model: The autoencoder (inputs → reconstructions of the same shape).
        input_range: `(low, high)` range the model expects; uint8 inputs are
            scaled into it.
        memory_trained: Whether the memory items were already learnt (then
            `memory_init="data"` leaves them alone, and a model's
            `FeatureScaler`s keep their statistics; otherwise the first `fit`
            adapts them on its training data).

    Example:

    >>> import numpy as np
    >>> from memae_tf.models import build_autoencoder
    >>> model = build_autoencoder("kdd", "ae", input_shape=(4,), units=(3, 2))
    >>> history = Trainer(model, (0.0, 1.0)).fit(
    ...     np.random.rand(32, 4).astype("float32"), config=TrainingConfig(epochs=1, verbose=0))
    >>> len(history.history["loss"])
    1
    """

    def __init__(
        self, model: keras.Model, input_range: Sequence[float], memory_trained: bool = False
    ) -> None:
        self.model = model
        self.input_range = tuple(input_range)
        self.memory_trained = memory_trained
        self._compiled: tuple | None = None  # the settings `model` was compiled with

    def fit(
        self,
        x: Any,
        validation_data: Any = None,
        config: TrainingConfig | None = None,
        callbacks: list[keras.callbacks.Callback] | None = None,
    ) -> keras.callbacks.History:
        """Trains on `x` (normal samples) with `config`; returns the Keras `History`.

        Args:
            x: Normal samples, an array `(n, *input_shape)` or a
                `tf.data.Dataset` yielding inputs (batched or not), `(x, y)` or
                feature dicts as `tfds.load` does (inputs under `"image"`).
            validation_data: Optional normal samples in the same form.
            config: The settings; None means `TrainingConfig()`.
            callbacks: Keras callbacks (they run on every worker).

        Raises:
            NonFiniteLossError: If an epoch ends with a NaN or Inf loss; the
                weights of the last finished epoch are kept.
        """
        config = TrainingConfig() if config is None else config
        strategy = distribute.resolve_strategy(config.strategy)
        replicas = strategy.num_replicas_in_sync
        seed = config.seed
        if seed is None and distribute.is_multi_worker(strategy):
            seed = SHARED_SHUFFLE_SEED
        batch_size = config.batch_size * replicas
        shape = tuple(self.model.input_shape[1:])
        train = reconstruction_dataset(x, shape, self.input_range, batch_size,
                                       config.shuffle, seed, replicas > 1)
        val = None if validation_data is None else reconstruction_dataset(
            validation_data, shape, self.input_range, batch_size, False, None, replicas > 1)
        if not self.memory_trained and feature_scalers(self.model):
            # A model taking raw features learns its scaling from the first training data.
            adapt_feature_scalers(self.model, prepare_inputs(x, shape, self.input_range))
        # The training samples the memory items are drawn from and checked on.
        samples = memory_samples(self.model, x, self.input_range, batch_size, seed)
        if samples is not None and config.memory_init == "data" and not self.memory_trained:
            adapt_memory(self.model, samples, seed, batch_size)
        self.memory_trained = True
        model = distribute.training_replica(self.model, strategy, config.precision)
        self._compile(model, strategy, config)
        callbacks = [*fault_tolerance_callbacks(config.backup_dir), *(callbacks or [])]
        if samples is not None:
            callbacks.insert(0, MemoryCollapseCheck(samples, config.memory_restart, seed))
        if config.decays(shape):
            callbacks.insert(0, CosineLearningRateDecay(config.learning_rate))
        if config.checkpoint_dir is not None and distribute.is_chief(strategy):
            Path(config.checkpoint_dir).mkdir(parents=True, exist_ok=True)
            callbacks.append(keras.callbacks.ModelCheckpoint(
                str(Path(config.checkpoint_dir) / "epoch-{epoch:03d}.weights.h5"),
                save_weights_only=True,
            ))
        try:
            return model.fit(
                train if config.steps_per_epoch is None else train.repeat(),
                steps_per_epoch=config.steps_per_epoch,
                validation_data=val, epochs=config.epochs, callbacks=callbacks,
                verbose=config.verbose,
                shuffle=False,  # array inputs are shuffled by the tf.data pipeline
            )
        finally:
            if model is not self.model:
                self.model.set_weights(model.get_weights())

    def _compile(
        self, model: keras.Model, strategy: tf.distribute.Strategy, config: TrainingConfig
    ) -> None:
        """Compiles `model` unless it already is, with the same settings."""
        replicas = strategy.num_replicas_in_sync
        jit_compile = config.jit_compile
        if jit_compile == "auto":
            jit_compile = self._auto_jit(replicas)
        steps = config.steps_per_execution
        if steps is None:
            steps = STEPS_PER_EXECUTION if replicas == 1 else 1
        settings = (config.learning_rate, jit_compile, steps)
        if model is self.model and self._compiled == settings:
            if not config.has_schedule:
                # A decay (or a run stopped by an error) may have left another rate.
                model.optimizer.learning_rate = config.learning_rate
            return
        with strategy.scope():
            model.compile(
                optimizer=fused_adam(config.learning_rate),
                loss=reconstruction_loss(model),
                jit_compile=jit_compile, steps_per_execution=steps,
            )
            model.optimizer.build(model.trainable_variables)  # its slots live in the strategy
        # A replica (distributed or mixed precision) is new every call.
        self._compiled = settings if model is self.model else None

    def _auto_jit(self, replicas: int) -> bool:
        """XLA for the train step on one GPU replica; not on CPU-only hosts.

        On 2 CPU cores XLA compiled the MNIST preset's train step in about
        12 s (twice: once for the batches of 64 and once for the last batch
        of 48 of 6,000 images) and then ran an epoch 15% faster: a net loss
        below about 200,000 training samples (35 epochs of 6,000 images), and
        3D convolutions run an order of magnitude slower under XLA:CPU
        (RESULTS.md, "Speed"). XLA's own options do not change that: lower
        LLVM optimisation cut the compilation by a third and made the
        compiled step more than twice as slow (HISTORY.md, "Speed: the
        default path's training step").
        """
        return replicas == 1 and bool(tf.config.list_physical_devices("GPU"))
