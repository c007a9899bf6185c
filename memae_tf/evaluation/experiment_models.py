"""The models an experiment compares, behind one `fit(x)` / `score(x)` interface.

`make_scorer` builds a MemAE variant (`"memae"`, `"memae-nonspar"`, `"ae"`) on
a preset, or a scikit-learn baseline (`"ocsvm"`, `"iforest"`, see
`memae_tf.evaluation.baselines`). Each is seeded, trained on normal samples
only, and returns scores where higher means more anomalous.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import keras
import numpy as np

from memae_tf.detector import MemAE
from memae_tf.evaluation.baselines import BASELINES, make_baseline
from memae_tf.models import VARIANTS


class Scorer(Protocol):
    """What a protocol needs of a model: train on normal data, then score."""

    def fit(self, x: np.ndarray) -> Any: ...

    def score(self, x: np.ndarray) -> np.ndarray: ...


@dataclass
class TrainingConfig:
    """How MemAE variants are trained in an experiment.

    Attributes:
        epochs: Passes over the normal training data.
        batch_size: Training batch size.
        learning_rate: Adam learning rate.
        seed: Seed for weight initialisation and shuffling.
        memory_init: `"data"` (memory items drawn from encodings of the
            training data) or `"keep"` (the layer's uniform initialisation);
            see `MemAE.fit`.
        backup_dir: Per-epoch backup of the training state, from which a
            killed run resumes (see `MemAE.fit`); None for none.
    """

    epochs: int = 10
    batch_size: int = 64
    learning_rate: float = 1e-3
    seed: int = 0
    memory_init: str = "data"
    backup_dir: str | None = None


@dataclass
class MemAEScorer:
    """A MemAE variant built from a preset, trained with a fixed, seeded config.

    Args:
        preset: Preset name (`"mnist"`, `"cifar10"`, `"video"`, `"kdd"`).
        variant: `"memae"`, `"memae-nonspar"` or `"ae"`.
        overrides: Builder arguments replacing the preset's.
        training: Training settings.
        error: Reconstruction error of the scores (`"mse"`, `"l1"`; None =
            the preset's).

    Example:

    >>> scorer = MemAEScorer("kdd", "ae", {"input_shape": (4,), "units": (3, 2)})
    >>> _ = scorer.fit(np.random.rand(32, 4).astype("float32"))
    >>> scorer.score(np.random.rand(5, 4).astype("float32")).shape
    (5,)
    """

    preset: str
    variant: str
    overrides: dict[str, Any] = field(default_factory=dict)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    error: str | None = None

    def __post_init__(self) -> None:
        self.detector: MemAE | None = None

    def fit(self, x: np.ndarray) -> MemAEScorer:
        """Builds the network (seeded) and trains it on the normal samples `x`."""
        keras.utils.set_random_seed(self.training.seed)
        self.detector = MemAE.from_preset(self.preset, self.variant, self.error,
                                          **self.overrides)
        self.detector.fit(
            x,
            epochs=self.training.epochs,
            batch_size=self.training.batch_size,
            learning_rate=self.training.learning_rate,
            seed=self.training.seed,
            verbose=0,
            memory_init=self.training.memory_init,
            backup_dir=self.training.backup_dir,
        )
        return self

    def score(self, x: np.ndarray) -> np.ndarray:
        """Mean reconstruction error per sample (higher = more anomalous)."""
        if self.detector is None:
            raise RuntimeError("Call fit() before score().")
        return self.detector.score(x)


MODELS = (*VARIANTS, *BASELINES)


def make_scorer(
    name: str,
    preset: str,
    overrides: dict[str, Any] | None = None,
    training: TrainingConfig | None = None,
    baseline_options: dict[str, Any] | None = None,
    error: str | None = None,
) -> Scorer:
    """Builds the scorer called `name`.

    Args:
        name: A MemAE variant (`"memae"`, `"memae-nonspar"`, `"ae"`) or a
            baseline (`"ocsvm"`, `"iforest"`).
        preset: Preset of the MemAE variants.
        overrides: Builder overrides of the MemAE variants.
        training: Training settings; its `seed` also seeds the baselines.
        baseline_options: Keyword arguments of `make_baseline` (e.g.
            `max_train_samples`).
        error: Reconstruction error of the MemAE variants (None = the preset's).

    Returns:
        An unfitted scorer.

    Raises:
        ValueError: If `name` is unknown.
    """
    training = training or TrainingConfig()
    if name in VARIANTS:
        return MemAEScorer(preset, name, dict(overrides or {}), training, error)
    if name in BASELINES:
        return make_baseline(name, seed=training.seed, **(baseline_options or {}))
    raise ValueError(f"Unknown model {name!r}. Expected one of {list(MODELS)}.")
