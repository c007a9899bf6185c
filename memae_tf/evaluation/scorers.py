"""Deprecated alias of `memae_tf.evaluation.experiment_models`; removed in 0.2."""

from memae_tf._deprecation import warn_moved
from memae_tf.evaluation.experiment_models import (  # noqa: F401
    MODELS,
    MemAEScorer,
    Scorer,
    TrainingConfig,
    make_scorer,
)

warn_moved(__name__, "memae_tf.evaluation.experiment_models")
