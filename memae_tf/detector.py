"""`MemAE`, the user-facing detector: a front end over `training`, `data.inputs`,
`scoring_graph`, `thresholds`, `saving` and `export`, which do the work."""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from scipy import special

from memae_tf import saving
from memae_tf.choices import DEFAULT_ERROR
from memae_tf.common.checks import check_choice
from memae_tf.common.contract import FLAGGED_FRAME_SCORES, FRAME_SCORES
from memae_tf.data.inputs import prepare_inputs
from memae_tf.export import export_saved_model
from memae_tf.inspection import MemoryReport, memory_report
from memae_tf.models.autoencoder import check_autoencoder
from memae_tf.models.presets import build_from_config, get_preset
from memae_tf.models.scaling import input_scaler
from memae_tf.scoring_graph import ScoringGraph, check_error
from memae_tf.thresholds import (
    above_threshold,
    flagged_share,
    quantile_threshold,
    reference_quantiles,
)
from memae_tf.training.config import TrainingConfig
from memae_tf.training.trainer import Trainer

# How `predict_proba` maps scores to probabilities (PyOD's two methods).
PROBA_METHODS = ("linear", "unify")


def _require_tensorflow_backend() -> None:
    """Raises a RuntimeError unless Keras runs on its TensorFlow backend.

    `MemoryLayer` and the builders of `memae_tf.models` run on every Keras
    backend; the detector's training loop, scoring graph and SavedModel export
    are TensorFlow code.
    """
    backend = keras.backend.backend()
    if backend != "tensorflow":
        raise RuntimeError(
            "MemAE (its training, scoring graph and TF Serving export) needs Keras' "
            f"'tensorflow' backend. Received: KERAS_BACKEND={backend!r}. MemoryLayer and the "
            "builders in memae_tf.models work on every backend: train the model there, save it "
            "as .keras, and wrap it under TensorFlow with MemAE(keras.saving.load_model(path))."
        )


class OneDNNOffWarning(UserWarning):
    """TensorFlow's oneDNN kernels are off in this process, and the user did not choose it.

    The first `MemAE` of a process issues it (once) when TensorFlow was
    imported before `memae_tf` on a CPU where TensorFlow leaves oneDNN off by
    default (x86 without AVX-512 VNNI, BF16 or AMX) and `TF_ENABLE_ONEDNN_OPTS`
    is unset: `import memae_tf` turns the kernels on only when it comes first.
    To turn them on, import `memae_tf` before `tensorflow` and `keras`, or set
    `TF_ENABLE_ONEDNN_OPTS=1` before Python starts; `TF_ENABLE_ONEDNN_OPTS=0`
    keeps Eigen's kernels and silences the warning.

    Example:

    ```python
    import warnings
    from memae_tf.detector import OneDNNOffWarning

    warnings.simplefilter("ignore", OneDNNOffWarning)  # keep Eigen's kernels, quietly
    ```
    """


def _onednn_enabled() -> bool | None:
    """Whether TensorFlow runs its oneDNN kernels in this process (None: cannot tell)."""
    try:
        from tensorflow.python.util import _pywrap_util_port
    except ImportError:  # a TensorFlow build without this private module
        return None
    return bool(_pywrap_util_port.IsMklEnabled())


_ONEDNN_HINT_GIVEN: list[bool] = []


def _hint_onednn_off() -> None:
    """Warns once a process when oneDNN is off only because TensorFlow was imported first.

    `import memae_tf` sets `TF_ENABLE_ONEDNN_OPTS=1` when it comes before
    TensorFlow (`memae_tf/__init__.py`); in a notebook that imported
    `tensorflow` or `keras` first it cannot, and an AVX2-only CPU then runs
    Eigen's kernels, with which `MemAE.score` took 1.1-1.8x the time.
    """
    if _ONEDNN_HINT_GIVEN or "TF_ENABLE_ONEDNN_OPTS" in os.environ:
        return
    _ONEDNN_HINT_GIVEN.append(True)
    if _onednn_enabled() is False:
        warnings.warn(
            "TensorFlow's oneDNN kernels are off in this process: TensorFlow was imported "
            "before memae_tf on a CPU where it leaves them off by default, and "
            "TF_ENABLE_ONEDNN_OPTS is unset. MemAE.score ran 1.1-1.8x as fast with them on an "
            "AVX2 CPU. To turn them on, import memae_tf before tensorflow and keras, or set "
            "TF_ENABLE_ONEDNN_OPTS=1 before Python starts (=0 keeps Eigen's kernels and "
            "silences this warning).",
            OneDNNOffWarning,
            stacklevel=3,
        )


class MemAE:
    """Memory-augmented autoencoder anomaly detector (Gong et al., ICCV 2019).

    Trains an autoencoder on normal data only; the anomaly score of a sample is
    its mean reconstruction error, squared (`error="mse"`), absolute
    (`error="l1"`) or one minus the local structural similarity of image and
    reconstruction (`error="ssim"`, images only) (higher = more anomalous).
    With a memory
    (`variant="memae"`), the latent code is rebuilt from a few learned
    prototypes of normality, so anomalies reconstruct badly.

    The vocabulary is PyOD's: `score`/`decision_function` (higher = more
    abnormal), `infer_threshold`, `predict` (0 inlier / 1 outlier),
    `fit_predict` and `predict_proba`. Fitted state follows scikit-learn, in
    attributes with a trailing underscore: `decision_scores_` (the scores of
    the training samples after `fit`, of the samples given to
    `infer_threshold` after it), `labels_` (those samples' 0/1 labels, once a
    threshold is set), `threshold_` (the decision threshold in effect: the
    one set by `infer_threshold` or `fit(..., contamination=...)`, else the
    constructor's `threshold`) and `history_`, the Keras `History` that `fit`
    returns. (`MemAEClient.run_signature` is TF Serving's Predict call: it
    returns the served signature's outputs, whose `is_anomaly` is this
    `predict` as booleans.)
    `infer_threshold` also keeps the reference that the export carries for
    monitoring: `expected_rate_` (the `fpr` or `contamination` it used) and
    `reference_quantiles_` (101 quantiles of the scores it was given). For a
    video model it also sets `frame_thresholds_`, the threshold of each other
    frame score (`"last"`, `"patch"`, `"relative"`, `"last_plus_temporal"`;
    `memae_tf.evaluation.frame_score`) by the same rule on the same clips:
    `frame_threshold(name)` is the threshold on any frame score (`threshold_`
    for `"clip"`), the one `memae score-video` and a served model's
    `frame_score` signature flag frames at.

    Args:
        model: A Keras autoencoder (one input → reconstructions of the same,
            fully defined shape), or a config dict `{"preset": ..., "variant":
            ..., "overrides": {...}}` as returned by `get_config()`.
        input_range: `(low, high)` range the model expects. uint8 inputs are
            scaled into it. Defaults to the preset's range, or (0, 1).
        threshold: Optional decision threshold on scores.
        error: Reconstruction error that scores a sample, `"mse"`, `"l1"` or
            `"ssim"` (images `(H, W, C)` only); defaults to the preset's (or
            `"mse"` for a custom model). It is saved with the detector and
            exported with the SavedModel.

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
        _require_tensorflow_backend()
        _hint_onednn_off()
        self.config: dict[str, Any] | None = None
        if isinstance(model, dict):
            model, self.config, preset = build_from_config(model)
            input_range = preset.input_range if input_range is None else input_range
            error = self.config.get("error", preset.error) if error is None else error
        low, high = (0.0, 1.0) if input_range is None else (float(v) for v in input_range)
        if not low < high:
            raise ValueError(f"`input_range` must satisfy low < high. Received: {input_range!r}")
        # A preset that takes its width from the data (`tabular`) is built at the first fit.
        self.input_shape: tuple[int, ...] | None = (
            None if model is None and self.config is not None else check_autoencoder(model))
        self.model = model
        self.input_range = (low, high)
        self.error = check_error(DEFAULT_ERROR if error is None else error, self.input_shape)
        if self.config is not None:
            self.config["error"] = self.error
        self.threshold = None if threshold is None else float(threshold)
        self._fitted_threshold: float | None = None
        self.decision_scores_: np.ndarray | None = None
        self.labels_: np.ndarray | None = None
        self.expected_rate_: float | None = None
        self.reference_quantiles_: np.ndarray | None = None
        self.frame_thresholds_: dict[str, float] | None = None
        self.history_: keras.callbacks.History | None = None
        self._trainer = None if model is None else Trainer(model, self.input_range)
        self._graph: ScoringGraph | None = None

    @classmethod
    def from_preset(
        cls, name: str, variant: str = "memae", error: str | None = None, **overrides: Any
    ) -> MemAE:
        """Builds an unfitted detector from a named preset.

        Args:
            name: `"mnist"`, `"cifar10"`, `"video"`, `"kdd"` or `"tabular"`
                (raw table rows; without `input_shape` the network is built
                at the first `fit`, with the width of its data).
            variant: `"memae"`, `"memae-nonspar"` or `"ae"`.
            error: `"mse"`, `"l1"` or `"ssim"`; None takes the preset's.
            **overrides: Builder arguments replacing the preset's, e.g.
                `input_shape=(d,)`, `num_items`, `shrink_threshold`, `units`.
        """
        return cls({"preset": name, "variant": variant, "overrides": overrides}, error=error)

    @property
    def variant(self) -> str | None:
        """The ablation variant for preset-built detectors, else None."""
        return None if self.config is None else self.config["variant"]

    def get_config(self) -> dict[str, Any] | None:
        """The preset config this detector was built from (None for a custom model)."""
        return None if self.config is None else json.loads(json.dumps(self.config))

    def preprocess(self, x: Any) -> np.ndarray:
        """Returns `x` as the float32 batch the network and its SavedModel take.

        uint8 images are scaled into `input_range`; a missing channel axis of
        1 is added; bad shapes, empty batches and NaN/Inf values raise (see
        `memae_tf.data.prepare_inputs`). Use it to prepare requests for the
        exported model (`MemAEClient.run_signature(detector.preprocess(images))`);
        an image or clip export also takes the uint8 images as they are
        (`serving_default_uint8`), scaled in its graph to these very values.

        Example:

        >>> detector = MemAE.from_preset("mnist")
        >>> detector.preprocess(np.full((2, 28, 28), 255, np.uint8)).max()
        np.float32(1.0)
        """
        self._require_model()
        return prepare_inputs(x, self.input_shape, self.input_range)

    def _require_model(self) -> None:
        if self.model is None:
            raise RuntimeError(
                f"The {self.config['preset']!r} preset takes its input width from the data: "
                "call fit() first, or build it with input_shape=(d,)."
            )

    def _build_for(self, x: Any) -> None:
        """Builds the network of a preset that takes its width from the rows `x` (as PyOD)."""
        shape = np.shape(x) if isinstance(x, (np.ndarray, tf.Tensor, list)) else None
        if shape is None or len(shape) != 2:
            raise ValueError(
                f"The {self.config['preset']!r} preset takes its width from table rows "
                "(n, d) at the first fit; for other inputs build it with input_shape=(d,). "
                f"Received: {type(x).__name__}" + ("" if shape is None else f" of shape {shape}")
            )
        overrides = {**self.config["overrides"], "input_shape": (int(shape[1]),)}
        self.model, self.config, _ = build_from_config({**self.config, "overrides": overrides})
        self.input_shape = check_autoencoder(self.model)
        self._trainer = Trainer(self.model, self.input_range)
        self._graph = None

    def fit(
        self,
        x: Any,
        validation_data: Any = None,
        *,
        contamination: float | None = None,
        callbacks: list[keras.callbacks.Callback] | None = None,
        config: TrainingConfig | None = None,
        **settings: Any,
    ) -> keras.callbacks.History:
        """Trains the autoencoder on normal data only (see `memae_tf.training.Trainer`).

        Args:
            x: Normal samples, an array `(n, *input_shape)` or a `tf.data.Dataset`
                of inputs, `(x, y)` pairs or `tfds.load` feature dicts.
            validation_data: Optional normal samples in the same form.
            contamination: If given, sets `threshold_` so that this share of the
                training samples scores above it (array inputs only).
            callbacks: Keras callbacks (they run on every worker).
            config: A `TrainingConfig`; None means its defaults with the
                preset's `training` settings (the `tabular` preset's: 60
                epochs of 100 batches of 32 rows, whatever the table's size).
            **settings: `TrainingConfig` fields replacing the config's (`epochs`,
                `batch_size`, `learning_rate`, `seed`, `memory_init`, `strategy`, ...).

        Repeated calls continue the training (the model stays compiled, the
        memory items are drawn once). Returns the Keras `History` (also kept as
        `history_`); raises `NonFiniteLossError` if an epoch ends with a NaN or
        Inf loss, keeping the weights of the last finished epoch.
        """
        if self.model is None:
            self._build_for(x)
        if config is None:
            preset = None if self.config is None else get_preset(self.config["preset"])
            config = TrainingConfig(**({} if preset is None else preset.training))
        config = config.updated(**settings)
        if contamination is not None and isinstance(x, tf.data.Dataset):
            raise ValueError(
                "`contamination` needs array inputs; call infer_threshold() on an array."
            )
        # The scoring graph reads the model's live variables: traced once, it
        # scores the weights of every later fit.
        self.history_ = self._trainer.fit(x, validation_data, config, callbacks)
        if contamination is not None:
            self.infer_threshold(x, contamination=contamination)
        elif not isinstance(x, tf.data.Dataset):
            self._set_decision_scores(self.score(x))
        return self.history_

    def fit_predict(self, x: Any, contamination: float = 0.1, **fit_options: Any) -> np.ndarray:
        """Trains on `x`, sets the threshold so that `contamination` of it is flagged.

        PyOD's `fit_predict`: `fit(x, contamination=contamination,
        **fit_options)`, then the 0/1 labels of `x` (`labels_`).

        Args:
            x: Training samples, an array `(n, *input_shape)`.
            contamination: Share of `x` flagged as anomalous (PyOD's default 0.1).
            **fit_options: Arguments of `fit` (`epochs`, `batch_size`, ...).

        Returns:
            int64 labels `(n,)`: 1 for anomalies, 0 for normal samples.
        """
        self.fit(x, contamination=contamination, **fit_options)
        return self.labels_

    @property
    def threshold_(self) -> float | None:
        """The decision threshold in effect (None when none was given or inferred)."""
        return self.threshold if self._fitted_threshold is None else self._fitted_threshold

    def _set_decision_scores(self, scores: np.ndarray) -> None:
        self.decision_scores_ = scores
        threshold = self.threshold_
        self.labels_ = (None if threshold is None
                        else above_threshold(scores, threshold).astype(np.int64))

    @property
    def scoring_graph(self) -> ScoringGraph:
        """The traced scoring functions (shared with the exported SavedModel)."""
        self._require_model()
        if self._graph is None:
            self._graph = ScoringGraph(self.model, self.error, input_range=self.input_range)
        return self._graph

    def score(self, x: Any, batch_size: int | None = None) -> np.ndarray:
        """Anomaly scores `(n,)`: the mean reconstruction error per sample (`error`).

        Higher = more anomalous. `x` is an array `(n, *input_shape)` (uint8
        images are scaled) or a finite `tf.data.Dataset` as `fit` takes it.
        `batch_size` samples go through the network at a time; by default as
        many as hold 2²⁰ input values, at most 1,024
        (`memae_tf.choices.score_batch_size`: 1,024 28×28 images, 16 clips of
        16×64×64). The other methods that take `batch_size` do the same.
        """
        return self.scoring_graph.run(self.preprocess(x), batch_size, "score")

    decision_function = score

    def score_map(self, x: Any, batch_size: int | None = None) -> np.ndarray:
        """Per-element error (squared, absolute or 1 − SSIM), shaped like the input."""
        return self.scoring_graph.run(self.preprocess(x), batch_size, "score_map")

    def reconstruct(self, x: Any, batch_size: int | None = None) -> np.ndarray:
        """Reconstructions of `x`, shape `(n, *input_shape)`, in the input range."""
        return self.scoring_graph.run(self.preprocess(x), batch_size, "reconstruction")

    def memory_attention(self, x: Any, batch_size: int | None = None) -> np.ndarray:
        """Memory addressing weights ŵ of each latent position, `(n, *positions, num_items)`.

        Raises:
            ValueError: If the model has no memory (a plain AE).
        """
        return self.scoring_graph.run(self.preprocess(x), batch_size, "memory_attention")

    def memory_report(self, x: Any, batch_size: int | None = None) -> MemoryReport:
        """Item usage and addressing sparsity over the queries of `x` (`memae_tf.inspection`)."""
        return memory_report(self.memory_attention(x, batch_size))

    def infer_threshold(
        self, x: Any, fpr: float | None = None, contamination: float | None = None,
        batch_size: int | None = None,
    ) -> float:
        """Sets `threshold_` from the scores of `x`, and returns it.

        `fpr` (share of normal samples of `x` flagged, 0.05 when neither is
        given) or `contamination` (share of anomalies in `x`): see
        `memae_tf.thresholds.quantile_threshold`. Also sets `expected_rate_`
        (that share) and `reference_quantiles_` (the 101 quantiles of the
        scores of `x`), which `export` writes into the `model_info` signature
        for monitoring (`memae_tf.client.ScoreMonitor`).

        For a video model (clips `(n, clip_length, H, W, C)`), also sets
        `frame_thresholds_`: each frame score but `"clip"` (the score of a
        clip's last frame, `memae_tf.evaluation.frame_score`) gets its own
        threshold, the same quantile of that score over the clips of `x`
        (all computed in one pass of the scoring graph's `frame_scores`).
        A clip scores its last frame, so normal clips give the reference
        distribution of normal frames' scores. Other models get None.
        """
        prepared = self.preprocess(x)
        self.frame_thresholds_ = None
        if self.scoring_graph.frame_scores is None:
            scores = self.scoring_graph.run(prepared, batch_size, "score")
        else:
            # One pass gives every frame score; `"clip"` is the clip's mean error, `score`.
            frame_scores = self.scoring_graph.run_frame_scores(prepared, batch_size)
            scores = frame_scores["clip"]
            self.frame_thresholds_ = {
                name: quantile_threshold(frame_scores[name], fpr, contamination)
                for name in FLAGGED_FRAME_SCORES}
        self._fitted_threshold = quantile_threshold(scores, fpr, contamination)
        self.expected_rate_ = flagged_share(fpr, contamination)
        self.reference_quantiles_ = reference_quantiles(scores)
        self._set_decision_scores(scores)
        return self.threshold_

    def frame_threshold(self, frame_score: str) -> float | None:
        """The threshold on a frame score of a video detector, None when none is set.

        `threshold_` for `"clip"` (the clip's mean error is `score`); for
        `"last"`, `"patch"`, `"relative"` and `"last_plus_temporal"`, the one
        of `frame_thresholds_` that `infer_threshold` set on held-out clips
        (None before, and for a detector saved without them: call
        `infer_threshold` on normal clips again).

        Args:
            frame_score: A name of `memae_tf.common.contract.FRAME_SCORES`.

        Raises:
            ValueError: For another name.
        """
        check_choice("frame_score", frame_score, FRAME_SCORES)
        if frame_score == "clip":
            return self.threshold_
        return None if self.frame_thresholds_ is None else self.frame_thresholds_[frame_score]

    def predict(self, x: Any, batch_size: int | None = None) -> np.ndarray:
        """Labels: 1 for samples scoring above `threshold_` (anomalies), else 0.

        Each float32 score is compared with the float64 threshold exactly
        (`memae_tf.thresholds.above_threshold`), as the exported `is_anomaly`.

        Raises:
            RuntimeError: If no threshold was set (call `infer_threshold`).
        """
        if self.threshold_ is None:
            raise RuntimeError(
                "No threshold set: call infer_threshold(x_normal, fpr=...) or "
                "fit(..., contamination=...) before predict()."
            )
        return above_threshold(self.score(x, batch_size), self.threshold_).astype(np.int64)

    def predict_proba(
        self, x: Any, method: str = "linear", batch_size: int | None = None
    ) -> np.ndarray:
        """Outlier probabilities `(n, 2)`: columns P(normal), P(anomaly), as PyOD's.

        The scores of `x` are put on the scale of `decision_scores_` (the
        training scores, or those given to `infer_threshold`):

        - `"linear"`: min-max scaling, `(s − min) / (max − min)` clipped to
          [0, 1];
        - `"unify"`: Kriegel et al.'s unification (SDM 2011),
          `max(0, erf((s − mean) / (std · √2)))`.

        Args:
            x: Samples, as `score` takes them.
            method: `"linear"` or `"unify"`.
            batch_size: Samples per forward pass (None: as `score` chooses).

        Raises:
            RuntimeError: Before `fit` or `infer_threshold` (no reference scores).
        """
        check_choice("method", method, PROBA_METHODS)
        if self.decision_scores_ is None:
            raise RuntimeError(
                "No reference scores: call fit(x) or infer_threshold(x) before predict_proba()."
            )
        scores = self.score(x, batch_size).astype(np.float64)
        reference = self.decision_scores_.astype(np.float64)
        if method == "linear":
            low, high = reference.min(), reference.max()
            anomaly = np.clip((scores - low) / max(high - low, np.finfo(np.float64).tiny), 0, 1)
        else:
            spread = max(reference.std(), np.finfo(np.float64).tiny)
            anomaly = np.clip(special.erf((scores - reference.mean()) / (spread * np.sqrt(2))),
                              0, 1)
        return np.stack([1.0 - anomaly, anomaly], axis=1)

    def save(self, path: str | os.PathLike) -> Path:
        """Saves the detector atomically as a `.keras` archive; returns the path.

        A standard Keras file with one extra entry (preset, input range,
        threshold, error, and a video model's `frame_thresholds_`): see
        `memae_tf.saving`.
        """
        return saving.save_archive(self.model, path, {
            "config": self.get_config(), "input_range": list(self.input_range),
            "threshold": self.threshold_, "error": self.error,
            "expected_rate": self.expected_rate_,
            "reference_quantiles": None if self.reference_quantiles_ is None
            else self.reference_quantiles_.tolist(),
            "frame_thresholds": self.frame_thresholds_,
        })

    @classmethod
    def load(cls, path: str | os.PathLike) -> MemAE:
        """Loads a detector saved with `save` (Keras safe mode, checksums verified).

        Raises:
            FileNotFoundError: If there is no file at `path`.
            ValueError: If the file is truncated, corrupt, tampered with or not
                a Keras model archive (`memae_tf.saving.load_archive`).
        """
        model, metadata = saving.load_archive(path)
        detector = cls(model, input_range=metadata.get("input_range"),
                       error=metadata.get("error", DEFAULT_ERROR))
        detector._fitted_threshold = metadata.get("threshold")
        detector.config = metadata.get("config")
        detector.expected_rate_ = metadata.get("expected_rate")
        quantiles = metadata.get("reference_quantiles")
        detector.reference_quantiles_ = None if quantiles is None else np.asarray(quantiles)
        # Files saved before frame thresholds existed have none: frame_threshold() is None.
        detector.frame_thresholds_ = metadata.get("frame_thresholds")
        detector._trainer.memory_trained = True
        return detector

    def export(
        self, model_base_path: str | os.PathLike, version: int | None = None, **options: Any
    ) -> Path:
        """Exports a TF Serving SavedModel version; returns its directory.

        The one export path (`memae export` calls it too): the signatures of
        `memae_tf.export.export_saved_model`, traced from the graph of `score`,
        with `is_anomaly` at `threshold_`, a video model's `frame_score`
        signature with a flag per frame score at `frame_thresholds_` (when
        set), and `model_info` with the input range, the threshold,
        `expected_rate_` and `reference_quantiles_`.
        Served inputs are float32 in the input range: `MemAEClient` scales
        uint8 images itself from `model_info`; other clients call `preprocess`.
        A model that scales its own raw features (the `tabular` preset's
        `FeatureScaler`) has no input range to keep: its `model_info` leaves
        the range out, so clients send raw rows as they are.

        `model_base_path` is the directory of the model's versions (e.g.
        `models/memae`); `version` None means one more than the latest;
        `options` are `model_name`, `serving_root` or `batching`. Raises a
        ValueError if no threshold is set (`infer_threshold` first).
        """
        raw_features = input_scaler(self.model) is not None
        return export_saved_model(self.model, model_base_path, threshold=self.threshold_,
                                  version=version, scoring_graph=self.scoring_graph,
                                  input_range=None if raw_features else self.input_range,
                                  expected_rate=self.expected_rate_,
                                  reference_quantiles=self.reference_quantiles_,
                                  frame_thresholds=self.frame_thresholds_, **options)
