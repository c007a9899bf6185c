"""The models an experiment compares, behind one `fit(x)` / `score(x)` interface.

`make_scorer` builds a MemAE variant (`"memae"`, `"memae-nonspar"`, `"ae"`) on
a preset, or a scikit-learn baseline (`"ocsvm"`, `"iforest"`, see
`memae_tf.evaluation.baselines`). Each is seeded, trained on normal samples
only, and returns scores where higher means more anomalous.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import keras
import numpy as np

from memae_tf.common.checks import check_choice
from memae_tf.detector import MemAE
from memae_tf.evaluation.baselines import BASELINES, make_baseline
from memae_tf.models import VARIANTS
from memae_tf.training.config import TrainingConfig

# Experiments are seeded: `seed=0` unless the config says otherwise.
DEFAULT_TRAINING = TrainingConfig(seed=0)


class Scorer(Protocol):
    """What a protocol needs of a model: train on normal data, then score."""

    def fit(self, x: np.ndarray) -> Any: ...

    def score(self, x: np.ndarray) -> np.ndarray: ...


@dataclass
class MemAEScorer:
    """A MemAE variant built from a preset, trained with a fixed, seeded config.

    Args:
        preset: Preset name (`"mnist"`, `"cifar10"`, `"video"`, `"kdd"`).
        variant: `"memae"`, `"memae-nonspar"` or `"ae"`.
        overrides: Builder arguments replacing the preset's.
        training: Training settings (`memae_tf.training.TrainingConfig`; the
            experiments' default is seeded, `seed=0`, and training is silent).
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
    training: TrainingConfig = DEFAULT_TRAINING
    error: str | None = None

    def __post_init__(self) -> None:
        self.detector: MemAE | None = None

    def fit(self, x: np.ndarray) -> MemAEScorer:
        """Builds the network (seeded) and trains it on the normal samples `x`."""
        seed = 0 if self.training.seed is None else self.training.seed
        keras.utils.set_random_seed(seed)
        self.detector = MemAE.from_preset(self.preset, self.variant, self.error,
                                          **self.overrides)
        self.detector.fit(x, config=replace(self.training, seed=seed, verbose=0))
        return self

    def score(self, x: np.ndarray) -> np.ndarray:
        """Mean reconstruction error per sample (higher = more anomalous)."""
        if self.detector is None:
            raise RuntimeError("Call fit() before score().")
        return self.detector.score(x)

    def score_map(self, x: np.ndarray) -> np.ndarray:
        """Per-element reconstruction error of `x` by the trained network (`MemAE.score_map`).

        The error is the scorer's `error` (squared, absolute or 1 − SSIM);
        its mean over a sample's elements is `score`. `evaluate_video`
        computes frame scores from it for scorers without `frame_score_table`.

        Args:
            x: Samples `(n, *input_shape)`, as `score` takes them.

        Returns:
            A float32 array shaped like `x` after `MemAE.preprocess`.

        Raises:
            RuntimeError: If called before `fit`.
        """
        if self.detector is None:
            raise RuntimeError("Call fit() before score_map().")
        return self.detector.score_map(x)

    def reconstruct(self, x: np.ndarray) -> np.ndarray:
        """The trained network's reconstructions of `x` (`MemAE.reconstruct`).

        Args:
            x: Samples `(n, *input_shape)`, as `score` takes them.

        Returns:
            A float32 array shaped like `x` after `MemAE.preprocess`, in the
            preset's input range.

        Raises:
            RuntimeError: If called before `fit`.
        """
        if self.detector is None:
            raise RuntimeError("Call fit() before reconstruct().")
        return self.detector.reconstruct(x)

    def frame_score_table(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Every frame score of each clip of `x`, `{name: (n,)}`, in one pass of the network.

        The detector's scoring graph computes them (`memae_tf.scoring_graph.clip_frame_scores`,
        the function `memae score-video` and the exported `frame_score` signature run), so
        an experiment scores frames as a deployed model does.
        """
        if self.detector is None:
            raise RuntimeError("Call fit() before frame_score_table().")
        graph = self.detector.scoring_graph
        return {name: np.asarray(scores, np.float64)
                for name, scores in graph.run_frame_scores(self.detector.preprocess(x)).items()}


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
    check_choice("model", name, tuple(MODELS))
    training = training or DEFAULT_TRAINING
    if name in VARIANTS:
        return MemAEScorer(preset, name, dict(overrides or {}), training, error)
    seed = 0 if training.seed is None else training.seed
    return make_baseline(name, seed=seed, **(baseline_options or {}))
