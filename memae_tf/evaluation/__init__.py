"""Evaluation protocols of the MemAE paper, the baselines, and the experiment runner.

- `one_class`: each image class in turn normal; AUROC per class and the mean.
- `video`: clip scores → centre frames → per-video regularity → frame-level AUROC.
- `tabular`: random 50% splits, top-q% threshold; precision / recall / F1, AUROC, AUPR.
- `baselines`: One-Class SVM and Isolation Forest on the same inputs.
- `experiment`, `cli`: `memae experiment`, resumable, with JSON/CSV/markdown/PNG reports.
"""

from memae_tf.evaluation.baselines import make_baseline
from memae_tf.evaluation.experiment import Experiment, ExperimentConfig, default_units
from memae_tf.evaluation.metrics import (
    Evaluation,
    aupr,
    auroc,
    ranking_metrics,
    threshold_metrics,
    top_share_threshold,
)
from memae_tf.evaluation.one_class import evaluate_one_class, gcn_minmax, one_class_split
from memae_tf.evaluation.scorers import MemAEScorer, TrainingConfig, make_scorer
from memae_tf.evaluation.tabular import evaluate_tabular, random_split
from memae_tf.evaluation.video import (
    centre_frames,
    evaluate_video,
    frame_level_evaluation,
    frame_scores,
    normalise_per_video,
    regularity_scores,
)

__all__ = [
    "Evaluation",
    "Experiment",
    "ExperimentConfig",
    "MemAEScorer",
    "TrainingConfig",
    "aupr",
    "auroc",
    "centre_frames",
    "default_units",
    "evaluate_one_class",
    "evaluate_tabular",
    "evaluate_video",
    "frame_level_evaluation",
    "frame_scores",
    "gcn_minmax",
    "make_baseline",
    "make_scorer",
    "normalise_per_video",
    "one_class_split",
    "random_split",
    "ranking_metrics",
    "regularity_scores",
    "threshold_metrics",
    "top_share_threshold",
]
