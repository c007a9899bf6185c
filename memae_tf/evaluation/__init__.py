"""Evaluation protocols of the MemAE paper, the baselines, and the experiment runner.

- `one_class`: each image class in turn normal; AUROC per class and the mean.
- `video`: clip scores → frames → frame-level AUROC (raw pooled; per-video normalised; per kind).
- `frame_score`: which number of a clip's per-pixel error scores its frame.
- `tabular`: random 50% splits, top-q% threshold; precision / recall / F1, AUROC, AUPR.
- `baselines`: One-Class SVM, Isolation Forest, LOF and ECOD on the same inputs.
- `experiment`, `cli`: `memae experiment`, resumable, with JSON/CSV/markdown/PNG reports.

The names below are imported on first use, so that `memae experiment --help`
(which imports `memae_tf.evaluation.cli`) does not import TensorFlow.
"""

from memae_tf._lazy import lazy_exports

__getattr__, __all__ = lazy_exports(__name__, {
    ".baselines": ["make_baseline"],
    ".experiment": ["Experiment", "ExperimentConfig", "default_units"],
    ".metrics": ["Evaluation", "aupr", "auroc", "metrics_at_threshold",
                 "ranking_metrics", "threshold_metrics",
                 "top_share_threshold"],
    ".one_class": ["evaluate_one_class", "gcn_minmax", "one_class_split"],
    ".experiment_models": ["MemAEScorer", "TrainingConfig", "make_scorer"],
    ".frame_score": ["clip_frame_scores", "frame_score_table", "max_patch_mean",
                     "temporal_error"],
    ".tabular": ["evaluate_tabular", "random_split"],
    ".video": ["centre_frames", "choose_smoothing", "evaluate_video", "frame_level_evaluation",
               "frame_scores", "normalise_per_video", "regularity_scores", "scored_frames",
               "smooth_scores", "video_metrics"],
})
