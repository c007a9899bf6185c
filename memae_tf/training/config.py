"""`TrainingConfig`: every setting of a training run, in one checked object."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Any

from memae_tf.choices import LR_DECAYS, MEMORY_INITS, PRECISIONS, STRATEGIES
from memae_tf.common.checks import check_bool, check_choice, check_positive_int

if TYPE_CHECKING:
    import keras

# The defaults of every way to train (`MemAE.fit`, `memae train`, `memae experiment`): the
# command lines read them from here, a module that imports no TensorFlow.
EPOCHS = 10
BATCH_SIZE = 64
LEARNING_RATE = 1e-3


@dataclass(frozen=True)
class TrainingConfig:
    """How an autoencoder is trained: what `MemAE.fit`, `memae train` and the experiments share.

    Loss: mean squared reconstruction error plus the memory's entropy loss;
    optimiser: Adam.

    Args:
        epochs: Passes over the training data.
        batch_size: Batch size per replica; the global batch is
            `batch_size × replicas` (used for arrays and unbatched datasets; a
            batched dataset's batches are global batches). With several
            replicas the last incomplete global batch of each epoch is dropped.
        learning_rate: Adam learning rate, or a Keras learning-rate schedule.
        lr_decay: `"cosine"`: the rate decays from `learning_rate` to zero
            along a half cosine over the epochs of each `fit` call
            (`memae_tf.training.CosineLearningRateDecay`; needs a float
            `learning_rate`). `"none"`: the rate stays `learning_rate`.
            `"auto"` (default): `"cosine"` for a float `learning_rate` and
            images or table rows, `"none"` for clips `(T, H, W, C)` and for a
            schedule. Chosen on the development sets: on Fashion-MNIST (10
            classes, 2 seeds, 10 epochs) the decay lifted MemAE's mean AUROC
            0.8908 → 0.8976 (the AE's 0.8955 → 0.8938), on Shuttle 0.937 →
            0.963; on moving Fashion-MNIST clips it lowered every variant
            (seed 0: MemAE 0.738 → 0.692, the AE 0.785 → 0.766;
            `benchmarks/HISTORY.md`).
        seed: Seed of the shuffling and of the memory initialisation. Workers
            of a multi-worker cluster must shuffle alike, so there `None`
            means a fixed seed. The initial weights come from Keras' global
            random state when the model is built: `keras.utils.set_random_seed`
            before building fixes them too (the Keras guide, "Reproducible
            runs").
        memory_init: `"data"`: before the first training of a model, the
            memory items are drawn from the encodings of training samples
            (`memae_tf.models.adapt_memory`), which makes the addressing
            selective from the start. `"keep"`: train from the items as they
            are (the layer's uniform initialisation, as in the authors' code).
            Continued training and loaded detectors always keep their items.
        memory_restart: After every epoch the memory items used by training
            queries are counted (`memory_items_used` in the epoch logs, with
            `memory_empty_queries`, the share of queries whose weights were all
            shrunk to zero; a warning if the memory is collapsed onto one item,
            or rebuilds at least half of the queries from the zero vector, when
            training ends, see `memae_tf.training.MemoryCollapseCheck`). With True, a
            collapsed memory is drawn again from the encodings. Off by
            default: on the development set it helped a 64-value code by
            +0.005 mean AUROC but left two classes worse, and the 16-value
            code of the `mnist` preset did not collapse there. Ignored for
            models without memory.
        backup_dir: If given, the model and optimiser state are backed up there
            after every epoch, and a run started again with the same
            `backup_dir` (after a crash or SIGKILL) resumes after the last
            finished epoch; the backup is deleted when training ends (see
            `memae_tf.fault_tolerance`).
        shuffle: Shuffle array inputs every epoch.
        verbose: Keras verbosity (`"auto"`, 0, 1 or 2).
        jit_compile: Compile the train step with XLA. `"auto"`: on for one
            GPU replica; off with several replicas and on CPU-only hosts,
            where the compilation (about 12 s for the MNIST preset on 2
            cores) costs more than it saves below about 35 epochs of 6,000
            images, and XLA:CPU runs 3D convolutions an order of magnitude
            slower. Pass True for long CPU runs of 2D or dense networks.
            XLA compiles the step once per batch shape: a last, smaller
            batch (6,000 images in batches of 64 end with 48) is a second
            compilation, which a `batch_size` dividing the number of
            samples avoids.
            With `TF_XLA_FLAGS=--tf_xla_persistent_cache_directory=DIR` in
            the environment before TensorFlow starts, the compiled step is
            kept in DIR, and a later process that trains the same
            configuration loads it instead of compiling it again (on 2 CPU
            cores the `mnist` preset's first 5-epoch `fit` then took 11.9 CPU
            seconds, against 14.6 without XLA and 20.2 compiling).
        steps_per_epoch: None: an epoch is one pass over the training data.
            An int: an epoch is this many batches of the training data,
            repeated and reshuffled as needed, so that small tables train as
            many steps as large ones without an epoch's fixed cost (about
            0.1 s on 2 CPU cores) for every few batches.
        steps_per_execution: Train steps per call into TensorFlow (fewer Python
            round trips for small models; batch-level callbacks run once per
            call). None: 32 on one replica, 1 with several (Keras' multi-step
            loop fails under MirroredStrategy in Keras 3.15).
        strategy: `"auto"`, `"default"`, `"mirrored"`, `"multiworker"` or a
            `tf.distribute.Strategy` (see `memae_tf.distribute.resolve_strategy`).
        precision: Training dtype policy: `"float32"`, `"mixed_float16"` (GPUs)
            or `"mixed_bfloat16"`. The memory addressing and the reconstruction
            stay float32; the saved model is float32.
        checkpoint_dir: If given, the chief writes the weights after every epoch
            to `checkpoint_dir/epoch-NNN.weights.h5`.

    Raises:
        ValueError: Naming the first setting out of range.

    Example:

    >>> config = TrainingConfig(epochs=5, batch_size=128, seed=0)
    >>> config.steps_per_execution is None
    True
    """

    epochs: int = EPOCHS
    batch_size: int = BATCH_SIZE
    learning_rate: float | keras.optimizers.schedules.LearningRateSchedule = LEARNING_RATE
    lr_decay: str = "auto"
    seed: int | None = None
    memory_init: str = "data"
    memory_restart: bool = False
    backup_dir: str | os.PathLike | None = None
    shuffle: bool = True
    verbose: int | str = "auto"
    jit_compile: bool | str = "auto"
    steps_per_epoch: int | None = None
    steps_per_execution: int | None = None
    strategy: Any = "auto"  # a name of `STRATEGIES` or a tf.distribute.Strategy
    precision: str = "float32"
    checkpoint_dir: str | os.PathLike | None = None

    def __post_init__(self) -> None:
        check_positive_int("epochs", self.epochs)
        check_positive_int("batch_size", self.batch_size)
        check_positive_int("steps_per_execution", self.steps_per_execution, allow_none=True)
        check_positive_int("steps_per_epoch", self.steps_per_epoch, allow_none=True)
        check_choice("memory_init", self.memory_init, MEMORY_INITS)
        check_choice("precision", self.precision, PRECISIONS)
        check_choice("lr_decay", self.lr_decay, LR_DECAYS)
        check_bool("memory_restart", self.memory_restart)
        if isinstance(self.strategy, str):
            check_choice("strategy", self.strategy, STRATEGIES)
        rate = self.learning_rate
        schedule = self.has_schedule
        if not schedule and (isinstance(rate, bool) or not isinstance(rate, (int, float))
                             or not rate > 0):
            raise ValueError(
                "Received an invalid value for `learning_rate`, expected a positive float or "
                f"a Keras LearningRateSchedule. Received: learning_rate={rate!r}"
            )
        if schedule and self.lr_decay == "cosine":
            raise ValueError(
                "`lr_decay` decays a float `learning_rate`; a LearningRateSchedule brings "
                f"its own. Received: lr_decay={self.lr_decay!r} with learning_rate={rate!r}"
            )

    @property
    def has_schedule(self) -> bool:
        """Whether `learning_rate` is a Keras schedule (which sets the rate itself)."""
        if isinstance(self.learning_rate, (int, float)):
            return False
        import keras

        return isinstance(self.learning_rate, keras.optimizers.schedules.LearningRateSchedule)

    def decays(self, sample_shape: tuple) -> bool:
        """Whether `fit` decays the rate of a model whose samples have `sample_shape`.

        `lr_decay` with `"auto"` resolved: no decay for a schedule or for
        clips (a sample of rank 4, `(T, H, W, C)`).

        Example:

        >>> TrainingConfig().decays((28, 28, 1)), TrainingConfig().decays((16, 64, 64, 1))
        (True, False)
        """
        if self.lr_decay != "auto":
            return self.lr_decay == "cosine"
        return not self.has_schedule and len(tuple(sample_shape)) != 4

    def updated(self, **settings: Any) -> TrainingConfig:
        """Returns a copy with `settings` (field name → value) replaced.

        Raises:
            TypeError: Naming the settings that are not fields, and the fields.
        """
        names = [field.name for field in fields(self)]
        unknown = sorted(set(settings) - set(names))
        if unknown:
            raise TypeError(
                f"Received unknown training settings {unknown}; expected fields of "
                f"TrainingConfig: {names}"
            )
        return replace(self, **settings)
