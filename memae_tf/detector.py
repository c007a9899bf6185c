"""The user-facing anomaly detector: fit / score / threshold / predict / save."""

from __future__ import annotations

import json
import math
import os
import tempfile
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from memae_tf import distribute
from memae_tf.choices import check_choice
from memae_tf.data.tfds import dataset_array, from_tfds
from memae_tf.fault_tolerance import fault_tolerance_callbacks
from memae_tf.inspection import MemoryReport, memory_report
from memae_tf.models.memory_block import MEMORY_INITS, adapt_memory, find_memory_layer
from memae_tf.models.presets import build_autoencoder, get_preset
from memae_tf.scoring import ScoringGraph, check_error

_METADATA_ENTRY = "memae_tf.json"
_KERAS_CONFIG_ENTRY = "config.json"
_FORMAT_VERSION = 1
# The shuffling seed of multi-worker training when none is given: every worker
# must draw the same order, since each keeps its shard of every global batch.
_SHARED_SHUFFLE_SEED = 0
# Samples whose encodings form the pool the memory items are drawn from: enough
# for about 16 candidate vectors per item, within [batch_size, _MAX_INIT_SAMPLES].
_INIT_CANDIDATES_PER_ITEM = 16
_MAX_INIT_SAMPLES = 1024
# Train steps per call into TensorFlow by default: fewer Python round trips for
# these small networks (+20% training throughput with XLA on 2 CPU cores).
_STEPS_PER_EXECUTION = 32
_CONV3D = (keras.layers.Conv3D, keras.layers.Conv3DTranspose)


def _check_positive_int(**values: Any) -> None:
    """Raises a ValueError naming the first argument that is not a positive integer."""
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"`{name}` must be a positive integer. Received: {name}={value!r}")


def _as_json(value: Any) -> Any:
    """Tuples → lists recursively, so that configs survive a JSON round trip."""
    if isinstance(value, (tuple, list)):
        return [_as_json(v) for v in value]
    if isinstance(value, dict):
        return {k: _as_json(v) for k, v in value.items()}
    return value


def _read_archive_metadata(path: Path) -> dict[str, Any]:
    """Checks that `path` is a complete Keras archive and returns the detector metadata.

    Raises:
        ValueError: Naming the file and what is wrong with it.
    """
    where = repr(str(path))
    try:
        with zipfile.ZipFile(path) as archive:
            damaged = archive.testzip()
            names = archive.namelist()
            raw = archive.read(_METADATA_ENTRY) if _METADATA_ENTRY in names else None
    except (zipfile.BadZipFile, EOFError, OSError) as error:
        raise ValueError(
            f"{where} is not a complete .keras archive (truncated or not a zip file): {error}"
        ) from error
    if damaged is not None:
        raise ValueError(
            f"{where} is corrupt or was tampered with: the checksum of its entry "
            f"{damaged!r} does not match."
        )
    if _KERAS_CONFIG_ENTRY not in names:
        raise ValueError(
            f"{where} is a zip file but not a Keras model archive: expected an entry "
            f"{_KERAS_CONFIG_ENTRY!r}. Received entries: {sorted(names)[:10]}"
        )
    if raw is None:
        return {}  # a plain Keras autoencoder, saved without detector metadata
    try:
        metadata = json.loads(raw)
    except ValueError as error:
        raise ValueError(f"{where}: its {_METADATA_ENTRY} is not valid JSON: {error}") from error
    if not isinstance(metadata, dict):
        raise ValueError(
            f"{where}: expected {_METADATA_ENTRY} to hold a JSON object. "
            f"Received: {type(metadata).__name__}"
        )
    return metadata


class MemAE:
    """Memory-augmented autoencoder anomaly detector (Gong et al., ICCV 2019).

    Trains an autoencoder on normal data only; the anomaly score of a sample is
    its mean reconstruction error, squared (`error="mse"`) or absolute
    (`error="l1"`) (higher = more anomalous). With a
    memory (`variant="memae"`), the latent code is rebuilt from a few learned
    prototypes of normality, so anomalies reconstruct badly.

    Fitted state follows scikit-learn / PyOD conventions: `threshold_` (set by
    `infer_threshold` or `fit(..., contamination=...)`), `history_`.

    Args:
        model: A Keras autoencoder (inputs → reconstructions of the same shape),
            or a config dict `{"preset": ..., "variant": ..., "overrides": {...}}`
            as returned by `get_config()`.
        input_range: `(low, high)` range the model expects. uint8 inputs are
            scaled into it. Defaults to the preset's range, or (0, 1).
        threshold: Optional decision threshold on scores.
        error: Reconstruction error that scores a sample, `"mse"` or `"l1"`;
            defaults to the preset's (or `"mse"` for a custom model). It is
            saved with the detector and exported with the SavedModel.

    Input shape:
        `(n, *input_shape)`: `(n, H, W, C)` images (float in the input range, or
        uint8), `(n, T, H, W, C)` clips, `(n, d)` tabular rows.

    Example:

    >>> detector = MemAE.from_preset("kdd", input_shape=(8,), units=(6, 3))
    >>> x = np.random.rand(256, 8).astype("float32")
    >>> _ = detector.fit(x, epochs=1, verbose=0)
    >>> detector.score(x[:4]).shape
    (4,)
    """

    def __init__(
        self,
        model: keras.Model | dict,
        input_range: Sequence[float] | None = None,
        threshold: float | None = None,
        error: str | None = None,
    ) -> None:
        self.config: dict[str, Any] | None = None
        if isinstance(model, dict):
            self.config = {
                "preset": model.get("preset", "mnist"),
                "variant": model.get("variant", "memae"),
                "overrides": dict(model.get("overrides", {})),
            }
            preset = get_preset(self.config["preset"])
            if input_range is None:
                input_range = preset.input_range
            if error is None:
                error = model.get("error", preset.error)
            model = build_autoencoder(
                self.config["preset"], self.config["variant"], **self.config["overrides"]
            )
        if not isinstance(model, keras.Model):
            raise TypeError(
                "`model` must be a keras.Model or a config dict with a 'preset'. "
                f"Received: {type(model).__name__}"
            )
        if tuple(model.input_shape) != tuple(model.output_shape):
            raise ValueError(
                "An autoencoder must map inputs to outputs of the same shape. Received a "
                f"model with input_shape={model.input_shape} and output_shape={model.output_shape}"
            )
        low, high = (0.0, 1.0) if input_range is None else (float(v) for v in input_range)
        if not low < high:
            raise ValueError(f"`input_range` must satisfy low < high. Received: {input_range!r}")
        self.model = model
        self.input_range = (low, high)
        self.error = check_error("mse" if error is None else error)
        if self.config is not None:
            self.config["error"] = self.error
        self.input_shape: tuple[int, ...] = tuple(model.input_shape[1:])
        self.threshold_: float | None = None if threshold is None else float(threshold)
        self.history_: keras.callbacks.History | None = None
        self._memory_trained = False
        self._graph: ScoringGraph | None = None
        self._compiled: tuple | None = None  # the settings `model` was compiled with

    @classmethod
    def from_preset(
        cls, name: str, variant: str = "memae", error: str | None = None, **overrides: Any
    ) -> MemAE:
        """Builds a detector from a named preset.

        Args:
            name: `"mnist"`, `"cifar10"`, `"video"` or `"kdd"`.
            variant: `"memae"`, `"memae-nonspar"` or `"ae"`.
            error: Reconstruction error of the scores (`"mse"`, `"l1"`); None
                takes the preset's.
            **overrides: Builder arguments replacing the preset's, e.g.
                `input_shape=(d,)`, `num_items`, `shrink_threshold`,
                `entropy_weight`, `similarity`, `filters`, `units`, `latent`.

        Returns:
            An unfitted `MemAE`.
        """
        return cls({"preset": name, "variant": variant, "overrides": overrides}, error=error)

    @property
    def variant(self) -> str | None:
        """The ablation variant for preset-built detectors, else None."""
        return None if self.config is None else self.config["variant"]

    def get_config(self) -> dict[str, Any] | None:
        """The preset config this detector was built from (None for a custom model)."""
        return None if self.config is None else _as_json(self.config)

    # ------------------------------------------------------------------ inputs
    def preprocess(self, x: Any) -> np.ndarray:
        """Returns `x` as the float32 batch the network and its SavedModel take.

        uint8 images are scaled into `input_range`; grayscale images or clips
        given without a channel axis get one. Use it to prepare requests for the
        exported model (`MemAEClient.predict(detector.preprocess(images))`).

        Args:
            x: Array `(n, *input_shape)`, or without the channel axis when it is 1.

        Returns:
            Float32 array `(n, *input_shape)`.

        Raises:
            ValueError: For a wrong shape, an empty batch or NaN/Inf values.
            TypeError: For non-numeric arrays.

        Example:

        >>> detector = MemAE.from_preset("mnist")
        >>> detector.preprocess(np.full((2, 28, 28), 255, np.uint8)).max()
        np.float32(1.0)
        """
        return self._prepare(x)

    def _prepare(self, x: Any, what: str = "x") -> np.ndarray:
        """Validates a batch and converts it to float32 in the model's input range."""
        if isinstance(x, tf.Tensor):
            x = x.numpy()
        elif isinstance(x, tf.data.Dataset):  # e.g. tfds.load(...): dict elements, batched or not
            x = dataset_array(x)
        x = np.asarray(x)
        if x.dtype == np.uint8:
            low, high = self.input_range
            x = x.astype(np.float32) * np.float32((high - low) / 255.0) + np.float32(low)
        elif not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
            raise TypeError(
                f"`{what}` must hold numbers (float, or uint8 images). Received dtype={x.dtype}"
            )
        expected = (None, *self.input_shape)
        if self.input_shape[-1] == 1 and x.shape[1:] == self.input_shape[:-1] and x.ndim > 1:
            x = x[..., None]  # grayscale images or clips given without a channel axis
        if x.ndim != len(expected) or tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(
                f"`{what}` must have shape {expected} (rank {len(expected)}). "
                f"Received: shape={x.shape}"
            )
        if x.shape[0] == 0:
            raise ValueError(f"`{what}` is empty: received 0 samples, expected at least 1.")
        x = x.astype(np.float32, copy=False)
        if not np.all(np.isfinite(x)):
            bad = int(np.size(x) - np.count_nonzero(np.isfinite(x)))
            raise ValueError(f"`{what}` contains {bad} NaN or Inf values; clean them first.")
        return x

    def _dataset(
        self, data: Any, batch_size: int, shuffle: bool, seed: int | None,
        drop_remainder: bool = False,
    ) -> tf.data.Dataset:
        """Turns numpy arrays or a `tf.data.Dataset` of inputs into `(x, x)` batches.

        Array inputs are shuffled as indices (a full permutation per epoch) and
        gathered a batch at a time, and are auto-sharded by data under a
        multi-worker strategy; datasets keep their own sharding options.
        """
        if isinstance(data, tf.data.Dataset):
            data = from_tfds(data)  # dict elements (tfds.load) → their "image" feature
            if isinstance(data.element_spec, tuple):
                data = data.map(lambda x, *_: x)
            if data.element_spec.dtype == tf.uint8:
                low, high = self.input_range
                data = data.map(lambda x: tf.cast(x, tf.float32) * ((high - low) / 255.0) + low)
            else:
                data = data.map(lambda x: tf.cast(x, tf.float32))
            if data.element_spec.shape.rank == len(self.input_shape):
                data = data.batch(batch_size, drop_remainder=drop_remainder)
            return data.map(lambda x: (x, x)).prefetch(tf.data.AUTOTUNE)
        x = self._prepare(data)
        if drop_remainder and len(x) < batch_size:
            raise ValueError(
                f"Distributed training needs at least one global batch ({batch_size} samples "
                f"= per-replica batch × replicas). Received: {len(x)} samples"
            )
        samples = tf.constant(x)
        indices = tf.data.Dataset.range(len(x))
        if shuffle:
            indices = indices.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
        options = tf.data.Options()
        shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        options.experimental_distribute.auto_shard_policy = shard_policy
        dataset = indices.batch(batch_size, drop_remainder=drop_remainder).with_options(options)
        return dataset.map(
            lambda i: (tf.gather(samples, i),) * 2, num_parallel_calls=tf.data.AUTOTUNE
        ).prefetch(tf.data.AUTOTUNE)

    # ---------------------------------------------------------------- training
    def fit(
        self,
        x: Any,
        validation_data: Any = None,
        epochs: int = 10,
        batch_size: int = 64,
        learning_rate: float | keras.optimizers.schedules.LearningRateSchedule = 1e-3,
        callbacks: list[keras.callbacks.Callback] | None = None,
        contamination: float | None = None,
        jit_compile: bool | str = "auto",
        shuffle: bool = True,
        seed: int | None = None,
        verbose: int | str = "auto",
        strategy: str | tf.distribute.Strategy = "auto",
        precision: str = "float32",
        steps_per_execution: int | None = None,
        checkpoint_dir: str | os.PathLike | None = None,
        memory_init: str = "data",
        backup_dir: str | os.PathLike | None = None,
    ) -> keras.callbacks.History:
        """Trains the autoencoder on normal data only.

        Loss: mean squared reconstruction error plus the memory's entropy loss;
        optimiser: Adam. Under a distribution strategy the model and optimiser
        are created in the strategy's scope (see `memae_tf.distribute`), each
        replica takes `batch_size` samples of every global batch, and the
        trained weights are copied back into `model`.

        Args:
            x: Normal samples, a numpy array `(n, *input_shape)` or a
                `tf.data.Dataset` yielding inputs (batched or not), `(x, y)` or
                feature dicts as `tfds.load` does (inputs under `"image"`).
            validation_data: Optional normal samples in the same form, for the
                validation loss.
            epochs: Number of passes over `x`.
            batch_size: Batch size per replica; the global batch is
                `batch_size × replicas` (used when `x` is an array or an
                unbatched dataset; a batched dataset's batches are global
                batches). With several replicas the last incomplete global
                batch of each epoch is dropped, so replicas see equal batches.
            learning_rate: Adam learning rate, or a Keras learning-rate schedule.
            callbacks: Keras callbacks (they run on every worker).
            contamination: If given, sets `threshold_` so that this share of the
                training samples scores above it.
            jit_compile: Compile the train step with XLA. `"auto"`: on, except
                under a distribution strategy with several replicas and for 3D
                convolutions on a CPU-only host, where XLA:CPU is an order of
                magnitude slower.
            shuffle: Shuffle array inputs every epoch.
            seed: Seed for the shuffling. Workers of a multi-worker cluster must
                shuffle alike, so there `None` means a fixed seed.
            verbose: Keras verbosity (`"auto"`, 0, 1 or 2).
            strategy: `"auto"`, `"default"`, `"mirrored"`, `"multiworker"` or a
                `tf.distribute.Strategy` (see `memae_tf.distribute.resolve_strategy`).
            precision: Training dtype policy: `"float32"`, `"mixed_float16"`
                (GPUs) or `"mixed_bfloat16"`. The memory addressing and the
                reconstruction stay float32; the saved model is float32.
            steps_per_execution: Train steps per call into TensorFlow (fewer
                Python round trips for small models; batch-level callbacks run
                once per call). None: 32 on one replica, 1 with several (Keras'
                multi-step loop fails under MirroredStrategy in Keras 3.15).
            checkpoint_dir: If given, the chief writes the weights after every
                epoch to `checkpoint_dir/epoch-NNN.weights.h5`
                (`model.load_weights` reads them).
            memory_init: `"data"` (default): before the first training of this
                detector, the memory items are drawn from the encodings of
                training samples (`memae_tf.models.adapt_memory`), which makes
                the addressing selective from the start (see
                `MemoryLayer.adapt`). `"keep"`: train from the items as they
                are (the layer's uniform initialisation, as in the authors'
                code). Later calls (continued training) and detectors from
                `MemAE.load` always keep their items.
            backup_dir: If given, the model and optimiser state are backed up
                there after every epoch, and a run started again with the same
                `backup_dir` (e.g. after a crash or SIGKILL) resumes after the
                last finished epoch; the backup is deleted when `fit` ends.
                See `memae_tf.fault_tolerance`.

        Repeated calls continue the training: the model stays compiled (and
        Adam keeps its moments) as long as the learning rate, XLA, steps per
        execution, strategy and precision stay the same.

        Returns:
            The Keras `History` (also kept as `history_`).

        Raises:
            NonFiniteLossError: If an epoch ends with a NaN or Inf loss; the
                weights of the last finished epoch are kept.
        """
        _check_positive_int(epochs=epochs, batch_size=batch_size)
        if steps_per_execution is not None:
            _check_positive_int(steps_per_execution=steps_per_execution)
        check_choice("memory_init", memory_init, MEMORY_INITS)
        schedule = isinstance(learning_rate, keras.optimizers.schedules.LearningRateSchedule)
        if not schedule and not (isinstance(learning_rate, (int, float)) and learning_rate > 0):
            raise ValueError(
                "`learning_rate` must be a positive float or a Keras LearningRateSchedule. "
                f"Received: learning_rate={learning_rate!r}"
            )
        strategy = distribute.resolve_strategy(strategy)
        replicas = strategy.num_replicas_in_sync
        if seed is None and distribute.is_multi_worker(strategy):
            seed = _SHARED_SHUFFLE_SEED
        train = self._dataset(x, batch_size * replicas, shuffle, seed, replicas > 1)
        val = None if validation_data is None else self._dataset(
            validation_data, batch_size * replicas, False, None, replicas > 1
        )
        if memory_init == "data" and not self._memory_trained:
            self._adapt_memory(x, batch_size * replicas, seed)
        self._memory_trained = True
        model = distribute.training_replica(self.model, strategy, precision)
        if jit_compile == "auto":
            jit_compile = self._auto_jit(replicas)
        if steps_per_execution is None:
            steps_per_execution = _STEPS_PER_EXECUTION if replicas == 1 else 1
        settings = (learning_rate, jit_compile, steps_per_execution)
        if model is not self.model or self._compiled != settings:
            with strategy.scope():
                model.compile(
                    optimizer=keras.optimizers.Adam(learning_rate), loss="mse",
                    jit_compile=jit_compile, steps_per_execution=steps_per_execution,
                )
                model.optimizer.build(model.trainable_variables)  # its slots live in the strategy
            # A replica (distributed or mixed precision) is new every call.
            self._compiled = settings if model is self.model else None
        callbacks = [*fault_tolerance_callbacks(backup_dir), *(callbacks or [])]
        if checkpoint_dir is not None and distribute.is_chief(strategy):
            Path(checkpoint_dir).mkdir(parents=True, exist_ok=True)
            callbacks.append(keras.callbacks.ModelCheckpoint(
                str(Path(checkpoint_dir) / "epoch-{epoch:03d}.weights.h5"), save_weights_only=True
            ))
        try:
            self.history_ = model.fit(
                train, validation_data=val, epochs=epochs, callbacks=callbacks,
                verbose=verbose, shuffle=False,  # array inputs are shuffled by the tf.data pipeline
            )
        finally:
            if model is not self.model:
                self.model.set_weights(model.get_weights())
            self._graph = None
        if contamination is not None:
            if isinstance(x, tf.data.Dataset):
                raise ValueError(
                    "`contamination` needs array inputs; call infer_threshold() on an array."
                )
            self.infer_threshold(x, contamination=contamination)
        return self.history_

    def _auto_jit(self, replicas: int) -> bool:
        """XLA for the train step, unless it is known to be slower or unsupported."""
        if replicas > 1:
            return False
        if tf.config.list_physical_devices("GPU"):
            return True
        return not any(isinstance(layer, _CONV3D) for layer in self.model.layers)

    def _adapt_memory(self, x: Any, batch_size: int, seed: int | None) -> None:
        """Draws the memory items from encodings of training samples (a seeded
        random subset of an array, or the first batches of a dataset)."""
        layer = find_memory_layer(self.model)
        if layer is None:
            return
        per_sample = math.prod(layer.input.shape[1:-1])  # queries per sample (1 if dense)
        wanted = -(-_INIT_CANDIDATES_PER_ITEM * layer.num_items // per_sample)
        wanted = min(max(wanted, batch_size), _MAX_INIT_SAMPLES)
        if isinstance(x, tf.data.Dataset):
            batches, total = [], 0
            for batch, _ in self._dataset(x, batch_size, False, None):
                batches.append(batch.numpy())
                total += len(batches[-1])
                if total >= wanted:
                    break
            samples = np.concatenate(batches)[:wanted]
        else:  # `x` was validated by `_dataset`: convert only the drawn rows
            x = x.numpy() if isinstance(x, tf.Tensor) else np.asarray(x)
            rows = np.sort(np.random.default_rng(seed).permutation(len(x))[:wanted])
            samples = self._prepare(x[rows])
        adapt_memory(self.model, samples, seed, batch_size)

    # ----------------------------------------------------------------- scoring
    @property
    def scoring_graph(self) -> ScoringGraph:
        """The traced scoring functions (shared with the exported SavedModel)."""
        if self._graph is None:
            self._graph = ScoringGraph(self.model, self.error)
        return self._graph

    def _batches(self, x: Any, batch_size: int) -> Iterator[np.ndarray]:
        _check_positive_int(batch_size=batch_size)
        x = self._prepare(x)
        for start in range(0, len(x), batch_size):
            yield x[start:start + batch_size]

    def _collect(self, x: Any, batch_size: int, compute) -> np.ndarray:
        """Runs `compute` (a traced function of a float32 batch) over `x` in batches."""
        parts = [compute(tf.constant(batch)) for batch in self._batches(x, batch_size)]
        return np.concatenate([np.asarray(part) for part in parts], axis=0)

    def _output(self, x: Any, batch_size: int, key: str) -> np.ndarray:
        outputs = self.scoring_graph.outputs
        return self._collect(x, batch_size, lambda batch: outputs(batch)[key])

    def score(self, x: Any, batch_size: int = 256) -> np.ndarray:
        """Anomaly scores: the mean reconstruction error per sample (`error`).

        Args:
            x: Array `(n, *input_shape)` (uint8 images are scaled), or a
                finite `tf.data.Dataset` as `fit` takes it.
            batch_size: Samples per forward pass.

        Returns:
            Float32 array `(n,)`; higher = more anomalous.
        """
        return self._output(x, batch_size, "score")

    decision_function = score

    def score_map(self, x: Any, batch_size: int = 256) -> np.ndarray:
        """Per-element reconstruction error, squared or absolute (anomaly localisation).

        Returns:
            Float32 array shaped like the (prepared) input `(n, *input_shape)`.
        """
        return self._output(x, batch_size, "score_map")

    def reconstruct(self, x: Any, batch_size: int = 256) -> np.ndarray:
        """Reconstructions of `x`, shape `(n, *input_shape)`, in the input range."""
        return self._output(x, batch_size, "reconstruction")

    def memory_attention(self, x: Any, batch_size: int = 256) -> np.ndarray:
        """Memory addressing weights ŵ of each latent position.

        Returns:
            Float32 array `(n, *latent_positions, num_items)`.

        Raises:
            ValueError: If the model has no memory (a plain AE).
        """
        attention = self.scoring_graph.attention
        if attention is None:
            raise ValueError("This model has no MemoryLayer, so it has no memory attention.")
        return self._collect(x, batch_size, attention)

    def memory_report(self, x: Any, batch_size: int = 256) -> MemoryReport:
        """Item usage and addressing sparsity over the queries of `x`.

        See `memae_tf.inspection.memory_report` (usage per item, non-zero
        weights and entropy per query, unused items).
        """
        return memory_report(self.memory_attention(x, batch_size))

    # -------------------------------------------------------------- threshold
    def infer_threshold(
        self,
        x: Any,
        fpr: float | None = None,
        contamination: float | None = None,
        batch_size: int = 256,
    ) -> float:
        """Sets `threshold_` from the scores of `x`, and returns it.

        Give exactly one of:
            fpr: `x` is normal data; the threshold is the `(1 - fpr)` quantile of
                its scores, so about `fpr` of normal samples are flagged.
            contamination: `x` contains this share of anomalies; the threshold
                is the `(1 - contamination)` quantile of its scores.
        With neither, `fpr=0.05`.
        """
        if fpr is not None and contamination is not None:
            raise ValueError("Give `fpr` or `contamination`, not both.")
        name, share = ("contamination", contamination) if contamination is not None else (
            "fpr", 0.05 if fpr is None else fpr)
        if not (isinstance(share, (int, float)) and 0.0 < share < 1.0):
            raise ValueError(f"`{name}` must be a float in (0, 1). Received: {name}={share!r}")
        scores = self.score(x, batch_size=batch_size)
        self.threshold_ = float(np.quantile(scores, 1.0 - share))
        return self.threshold_

    def predict(self, x: Any, batch_size: int = 256) -> np.ndarray:
        """Labels: 1 for samples scoring above `threshold_` (anomalies), else 0.

        Raises:
            RuntimeError: If no threshold was set (call `infer_threshold`).
        """
        if self.threshold_ is None:
            raise RuntimeError(
                "No threshold set: call infer_threshold(x_normal, fpr=...) or "
                "fit(..., contamination=...) before predict()."
            )
        return (self.score(x, batch_size) > self.threshold_).astype(np.int64)

    # ------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike) -> Path:
        """Saves the detector as a `.keras` archive (model, preset, threshold).

        The archive is a standard Keras file (`keras.saving.load_model` opens it
        once `memae_tf` is imported) with one extra entry holding the detector's
        metadata. It is written to a temporary file next to `path` and renamed
        over it, so `path` always holds a complete archive (the old one or the
        new one), even if the process dies while saving.

        Returns:
            The path written.
        """
        path = Path(path)
        if path.suffix != ".keras":
            raise ValueError(f"The path must end in '.keras'. Received: path={str(path)!r}")
        path.parent.mkdir(parents=True, exist_ok=True)
        metadata = {
            "format_version": _FORMAT_VERSION,
            "config": self.get_config(),
            "input_range": list(self.input_range),
            "threshold": self.threshold_,
            "error": self.error,
        }
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.",
                                             suffix=".partial.keras")
        os.close(handle)
        try:
            self.model.save(temporary)
            with zipfile.ZipFile(temporary, "a") as archive:
                archive.writestr(_METADATA_ENTRY, json.dumps(metadata, indent=2))
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> MemAE:
        """Loads a detector saved with `save`.

        Keras' safe mode is on, so a file cannot run code (no Lambda layers,
        no pickles); the archive's checksums are verified first.

        Raises:
            FileNotFoundError: If there is no file at `path`.
            ValueError: If the file is truncated, corrupt or tampered with, or
                is not a Keras archive of a model (the message says which).
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"No saved detector at {str(path)!r}.")
        metadata = _read_archive_metadata(path)
        try:
            model = keras.saving.load_model(path, safe_mode=True, compile=False)
        except Exception as error:  # Keras raises many types; the caller needs one
            raise ValueError(
                f"Could not load a detector from {str(path)!r}: {type(error).__name__}: "
                f"{error}"
            ) from error
        detector = cls(model, input_range=metadata.get("input_range"),
                       threshold=metadata.get("threshold"), error=metadata.get("error", "mse"))
        detector.config = metadata.get("config")
        detector._memory_trained = True
        return detector

    # ------------------------------------------------------------------ export
    def export(self, model_base_path: str | os.PathLike, version: int | None = None) -> Path:
        """Exports a TF Serving SavedModel version under `model_base_path`.

        See `memae_tf.export.export_saved_model`: signatures `serving_default`
        (`score`, `is_anomaly` with this detector's threshold, `reconstruction`),
        `score_map` and `memory_attention`, traced from the same graph as `score`.
        Served inputs must already be float32 in the model's input range.

        Args:
            model_base_path: Directory of the model's versions, e.g. `models/memae`.
            version: Version number; None = one more than the latest.

        Returns:
            The version directory written.
        """
        from memae_tf.export import export_saved_model

        if self.threshold_ is None:
            raise RuntimeError(
                "Set a threshold before exporting (infer_threshold(x_normal, fpr=...)): "
                "the served `is_anomaly` output needs it."
            )
        return export_saved_model(
            self.model, model_base_path, threshold=self.threshold_, version=version,
            scoring_graph=self.scoring_graph,
        )
