"""The experiment runner behind `memae experiment`: tasks, resumable results, reports.

An experiment is one dataset, one `ExperimentConfig` (everything that changes a
result: epochs, seed, overrides, ...) and a selection of tasks. A task is one
model (a MemAE variant or a baseline) on one *unit*: a normal class
(`class=3`) for the one-class image protocol, a seeded run (`run=2`) for the
tabular protocol, all test videos (`all`) for the video protocol.

Every finished task is written at once to `OUT/results.json` (with its test
scores in `OUT/scores/`), so an interrupted experiment resumes with
`resume=True` and skips the finished tasks; the task that was training resumes
after its last finished epoch (backups in `OUT/.backup/`). An `OUT` folder that already holds
results is never reused silently: it needs `resume=True` (and the same config)
or `overwrite=True` (which deletes the previous results first).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from memae_tf.choices import LR_DECAYS, VARIANTS
from memae_tf.common.checks import check_choice, check_positive_int
from memae_tf.common.contract import DEFAULT_FRAME_SCORE
from memae_tf.evaluation import datasets
from memae_tf.evaluation.experiment_models import MODELS, make_scorer
from memae_tf.evaluation.metrics import Evaluation
from memae_tf.evaluation.one_class import (
    PREPROCESSING,
    evaluate_one_class,
    gcn_minmax,
    one_class_split,
)
from memae_tf.evaluation.report import SCORES_DIR, score_file, write_reports
from memae_tf.evaluation.tabular import evaluate_tabular
from memae_tf.evaluation.video import ALIGNMENTS, FRAME_SCORES, evaluate_video
from memae_tf.models.memory_block import MEMORY_INITS
from memae_tf.scoring_graph import check_error
from memae_tf.training.config import BATCH_SIZE, EPOCHS, LEARNING_RATE, TrainingConfig

RESULTS_FILE = "results.json"
COMMAND_FILE = "command.txt"  # the `memae experiment` command line, for `memae report`
# Files and folders an experiment writes; --overwrite removes exactly these.
# Per-task training backups: a task killed mid-training resumes from its last epoch.
BACKUP_DIR = ".backup"
OUTPUTS = (RESULTS_FILE, "results.csv", "results.md", SCORES_DIR, "plots", COMMAND_FILE,
           BACKUP_DIR)


@dataclass
class ExperimentConfig:
    """Every setting that changes an experiment's numbers (its identity for resuming).

    Attributes:
        dataset: A name of `datasets.DATASETS`.
        epochs: Training epochs of the MemAE variants.
        batch_size: Training batch size.
        learning_rate: Adam learning rate.
        lr_decay: Learning-rate decay of the MemAE variants, `"auto"`
            (default: cosine, none for clips), `"cosine"` or `"none"` (see
            `TrainingConfig`).
        seed: Seed of every random draw (weights, shuffles, splits, subsamples).
        memory_init: Memory initialisation of the MemAE variants, `"data"` or
            `"keep"` (see `MemAE.fit`).
        tiny: Tiny configuration (few samples, tiny networks) for smoke tests.
        data_path: Explicit dataset location.
        overrides: Preset overrides on top of the dataset's defaults.
        error: Reconstruction error of the MemAE variants' scores, `"mse"`,
            `"l1"` or `"ssim"` (images only) (None = the preset's).
        anomaly_share: One-class: test anomaly share (None = natural). Tabular:
            the flagged share q (None = the dataset's default or the test
            half's anomaly share).
        max_train: One-class cap on training images per class (None = all).
        max_test: One-class cap on test images (None = all).
        preprocess: One-class image preprocessing, `"none"` (pixels as they
            are) or `"gcn"` (`one_class.gcn_minmax`, for every model).
        ocsvm_max_train: OCSVM training subsample size.
        train_fraction: Tabular training share.
        label_column: Tabular label column.
        normal_classes: Tabular normal classes.
        mlbench: Tabular mlbench table name.
        frame_size: Video frame `(height, width)` (None = the dataset's default).
        clip_length: Video clip length.
        train_stride: Video training clip stride.
        test_stride: Video test clip stride.
        fill: Video handling of frames without a clip (`evaluation.video`).
        alignment: Video: the frame a clip's score belongs to, `"end"` or `"centre"`.
        smoothing: Video: width of the causal moving average of frame scores.
        smoothing_candidates: Video, development sets: widths compared in
            `info` (`choose_smoothing`).
        frame_score: Video: how a clip's per-pixel error scores its frame
            (`evaluation.frame_score`: `"clip"`, `"last"`, `"patch"`, `"relative"`,
            `"last_plus_temporal"`, the default, as `memae score-video`'s). The
            baselines give one score per clip: run them with `"clip"`.
        frame_score_candidates: Video, development sets: frame scores compared
            in `info` from the one trained network (`evaluate_video`).
    """

    dataset: str
    epochs: int = EPOCHS
    batch_size: int = BATCH_SIZE
    learning_rate: float = LEARNING_RATE
    lr_decay: str = "auto"
    seed: int = 0
    memory_init: str = "data"
    tiny: bool = False
    data_path: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    anomaly_share: float | None = None
    max_train: int | None = None
    max_test: int | None = None
    preprocess: str = "none"
    ocsvm_max_train: int = 2000
    train_fraction: float = 0.5
    label_column: str | None = None
    normal_classes: tuple[str, ...] = ()
    mlbench: str | None = None
    frame_size: tuple[int, int] | None = None
    clip_length: int = 16
    train_stride: int = 1
    test_stride: int = 1
    fill: str = "interpolate"
    alignment: str = "end"
    smoothing: int = 1
    smoothing_candidates: tuple[int, ...] = ()
    frame_score: str = DEFAULT_FRAME_SCORE
    frame_score_candidates: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        self.spec = datasets.get_dataset(self.dataset)
        for name in ("epochs", "batch_size", "clip_length", "train_stride", "test_stride",
                     "ocsvm_max_train", "smoothing"):
            check_positive_int(name, getattr(self, name))
        if self.preprocess not in PREPROCESSING:
            raise ValueError(f"Expected `preprocess` in {PREPROCESSING}. Received: "
                             f"{self.preprocess!r}")
        if self.preprocess != "none" and self.protocol != datasets.ONE_CLASS:
            raise ValueError(f"`preprocess` applies to the one-class image datasets only. "
                             f"Received: preprocess={self.preprocess!r} for {self.dataset!r}")
        if self.memory_init not in MEMORY_INITS:
            raise ValueError(f"Expected `memory_init` in {MEMORY_INITS}. Received: "
                             f"{self.memory_init!r}")
        if self.error is not None:
            check_error(self.error)
        check_choice("lr_decay", self.lr_decay, LR_DECAYS)
        check_choice("alignment", self.alignment, ALIGNMENTS)
        for width in self.smoothing_candidates:
            check_positive_int("smoothing_candidates", width)
        for name in (self.frame_score, *self.frame_score_candidates):
            check_choice("frame_score", name, FRAME_SCORES)
        if not self.learning_rate > 0:
            raise ValueError(f"Expected a positive `learning_rate`. Received: "
                             f"{self.learning_rate!r}")

    def identity(self) -> dict[str, Any]:
        """The config as plain JSON values, as stored in `results.json`."""
        return json.loads(json.dumps(asdict(self)))

    @property
    def protocol(self) -> str:
        """`"one-class"`, `"tabular"` or `"video"`."""
        return self.spec.protocol

    def model_overrides(self) -> dict[str, Any]:
        """Dataset defaults, then `--tiny` ones, then the user's overrides."""
        tiny = self.spec.tiny_overrides if self.tiny else {}
        return {**self.spec.overrides, **tiny, **self.overrides}

    def video_frame_size(self) -> tuple[int, int]:
        """Frame `(height, width)`: `frame_size`, else the tiny or the dataset's default."""
        if self.frame_size is not None:
            return tuple(self.frame_size)
        return datasets.TINY_FRAME_SIZE if self.tiny else self.spec.frame_size

    def training(self) -> TrainingConfig:
        """The training settings of the MemAE variants."""
        return TrainingConfig(epochs=self.epochs, batch_size=self.batch_size,
                              learning_rate=self.learning_rate, lr_decay=self.lr_decay,
                              seed=self.seed, memory_init=self.memory_init)


def default_units(config: ExperimentConfig, runs: int = 5) -> list[str]:
    """The units of a protocol: 10 classes, `runs` tabular runs, or all videos."""
    if config.protocol == datasets.ONE_CLASS:
        return [f"class={c}" for c in ((0, 1) if config.tiny else range(10))]
    if config.protocol == datasets.TABULAR:
        return [f"run={r}" for r in range(1 if config.tiny else runs)]
    return ["all"]


def _unit_number(unit: str) -> int:
    return int(unit.split("=", 1)[1])


class ResultStore:
    """`results.json` of one experiment folder, rewritten atomically after each task.

    Args:
        out: The experiment folder.
        config: The experiment's config.
        resume: Continue the folder's results (the config must match).
        overwrite: Delete the folder's previous results first.

    Raises:
        FileExistsError: If the folder holds results and neither flag is given.
        ValueError: On resume with a different config, or with both flags.
    """

    def __init__(self, out: Path, config: ExperimentConfig, resume: bool = False,
                 overwrite: bool = False) -> None:
        if resume and overwrite:
            raise ValueError("Give `resume` or `overwrite`, not both.")
        self.out = Path(out)
        self.path = self.out / RESULTS_FILE
        self.config = config.identity()
        self.tasks: dict[str, dict[str, Any]] = {}
        if self.path.exists():
            if overwrite:
                for name in OUTPUTS:
                    target = self.out / name
                    if target.is_dir():
                        shutil.rmtree(target)
                    elif target.exists():
                        target.unlink()
            elif resume:
                stored = json.loads(self.path.read_text())
                differing = sorted(
                    key for key in {*stored["config"], *self.config}
                    if stored["config"].get(key) != self.config.get(key)
                )
                if differing:
                    details = ", ".join(
                        f"{k}: stored {stored['config'].get(k)!r} vs {self.config.get(k)!r}"
                        for k in differing
                    )
                    raise ValueError(
                        f"{self.path} was made with a different config ({details}). Use "
                        "another --out, the stored settings, or --overwrite to start over."
                    )
                self.tasks = stored["tasks"]
            else:
                raise FileExistsError(
                    f"{self.path} already holds {len(json.loads(self.path.read_text())['tasks'])}"
                    " task results. Pass --resume to continue that experiment or --overwrite "
                    "to replace it."
                )
        self.out.mkdir(parents=True, exist_ok=True)
        self._write()

    def _write(self) -> None:
        payload = {"config": self.config, "tasks": self.tasks}
        partial = self.path.with_suffix(".json.tmp")
        partial.write_text(json.dumps(payload, indent=2))
        os.replace(partial, self.path)

    def add(self, record: dict[str, Any], evaluation: Evaluation) -> None:
        """Stores a finished task and its test scores."""
        scores_dir = self.out / SCORES_DIR
        scores_dir.mkdir(exist_ok=True)
        np.savez_compressed(scores_dir / score_file(record["model"], record["unit"]),
                            scores=evaluation.scores, labels=evaluation.labels)
        self.tasks[task_id(record["model"], record["unit"])] = record
        self._write()


def task_id(model: str, unit: str) -> str:
    """`"model/unit"`, the key of a task in `results.json`."""
    return f"{model}/{unit}"


class Experiment:
    """Runs the tasks of one experiment, reusing the loaded data across tasks.

    Args:
        config: The experiment settings.
        log: Progress sink (one line per event), e.g. `print`.

    Example:

    ```python
    experiment = Experiment(ExperimentConfig("mnist", epochs=10))
    experiment.run(["memae", "ae"], ["class=0", "class=1"], Path("runs/mnist"))
    ```
    """

    def __init__(self, config: ExperimentConfig,
                 log: Callable[[str], None] = lambda line: print(line, flush=True)) -> None:
        self.config = config
        self.log = log
        self._data: Any = None

    def data(self) -> Any:
        """The dataset of the protocol, loaded once."""
        if self._data is None:
            c = self.config
            if c.protocol == datasets.ONE_CLASS:
                self._data = datasets.load_images(c.dataset, c.data_path)
            elif c.protocol == datasets.TABULAR:
                self._data = datasets.load_table_data(
                    c.dataset, c.data_path, c.label_column, c.normal_classes, c.mlbench,
                    c.tiny, c.seed)
            else:
                self._data = datasets.load_videos(
                    c.dataset, c.data_path, c.video_frame_size(), c.tiny, c.seed)
        return self._data

    def _overrides(self) -> dict[str, Any]:
        c, overrides = self.config, self.config.model_overrides()
        if c.protocol == datasets.TABULAR:
            overrides.setdefault("input_shape", (self.data().x.shape[1],))
        elif c.protocol == datasets.VIDEO:
            overrides.setdefault("input_shape", (c.clip_length, *c.video_frame_size(), 1))
        return overrides

    def evaluate(self, model: str, unit: str, backup_dir: Path | None = None) -> Evaluation:
        """Runs one task and returns its evaluation.

        Args:
            model: Model name.
            unit: Unit of the protocol.
            backup_dir: Per-epoch backup of the MemAE training, from which the
                task resumes if it was killed (see `MemAE.fit`); None for none.
        """
        c = self.config
        training = dataclasses.replace(c.training(),
                                       backup_dir=None if backup_dir is None else str(backup_dir))
        scorer = make_scorer(model, c.spec.preset, self._overrides(), training,
                             {"max_train_samples": c.ocsvm_max_train} if model == "ocsvm"
                             else None, c.error)
        if c.protocol == datasets.ONE_CLASS:
            train, test = self.data()
            max_train = datasets.TINY_MAX_TRAIN if c.tiny and c.max_train is None else (
                c.max_train)
            max_test = datasets.TINY_MAX_TEST if c.tiny and c.max_test is None else c.max_test
            split = one_class_split(train, test, _unit_number(unit), c.anomaly_share,
                                    max_train, max_test, c.seed)
            if c.preprocess == "gcn":
                split = gcn_minmax(split)
            return evaluate_one_class(scorer, split)
        if c.protocol == datasets.TABULAR:
            share = c.anomaly_share if c.anomaly_share is not None else c.spec.anomaly_share
            return evaluate_tabular(scorer, self.data(), c.seed, _unit_number(unit),
                                    c.train_fraction, share)
        train, test = self.data()
        return evaluate_video(scorer, train, test, c.clip_length, c.train_stride,
                              c.test_stride, c.fill, c.alignment, c.smoothing,
                              c.smoothing_candidates, c.frame_score, c.frame_score_candidates)

    def run(self, models: Sequence[str], units: Sequence[str], out: Path,
            resume: bool = False, overwrite: bool = False) -> ResultStore:
        """Runs every (model, unit) task not yet in `out`, then writes the reports.

        Args:
            models: Model names (`scorers.MODELS`).
            units: Units of the protocol (see `default_units`).
            out: Experiment folder.
            resume: Continue an existing folder with the same config.
            overwrite: Replace an existing folder's results.

        Returns:
            The `ResultStore` holding all finished tasks.
        """
        unknown = [m for m in models if m not in MODELS]
        if unknown or not models:
            raise ValueError(f"Expected models among {list(MODELS)}. Received: {list(models)}")
        self._check_units(units)
        per_clip = [m for m in models if m not in VARIANTS]
        video = self.config.protocol == datasets.VIDEO
        if video and per_clip and self.config.frame_score != "clip":
            raise ValueError(
                f"The baselines {per_clip} give one score per clip, not per-pixel errors: "
                f"expected frame_score='clip' (--frame-score clip) with them. Received: "
                f"frame_score={self.config.frame_score!r}")
        store = ResultStore(out, self.config, resume=resume, overwrite=overwrite)
        todo = [(m, u) for u in units for m in models if task_id(m, u) not in store.tasks]
        done = len(units) * len(models) - len(todo)
        self.log(f"{self.config.dataset}: {len(todo)} tasks to run"
                 + (f", {done} already done (skipped)" if done else "") + f" → {out}")
        started = time.monotonic()
        for position, (model, unit) in enumerate(todo, start=1):
            self.log(f"[{position}/{len(todo)}] {model} {unit} ...")
            begin = time.monotonic()
            backup = out / BACKUP_DIR / Path(score_file(model, unit)).stem
            evaluation = self.evaluate(model, unit, backup)
            seconds = time.monotonic() - begin
            store.add({"model": model, "unit": unit, "metrics": evaluation.metrics,
                       "info": evaluation.info, "seconds": round(seconds, 2)}, evaluation)
            write_reports(out, store.config, store.tasks, plots=False)
            elapsed = time.monotonic() - started
            eta = elapsed / position * (len(todo) - position)
            summary = " ".join(f"{k}={v:.4f}" for k, v in evaluation.metrics.items()
                               if k != "threshold")
            self.log(f"[{position}/{len(todo)}] {model} {unit}: {summary} "
                     f"({seconds:.1f} s; about {eta / 60:.1f} min left)")
        write_reports(out, store.config, store.tasks, plots=True)
        self.log(f"results: {out / RESULTS_FILE}, {out / 'results.md'}, {out / 'plots'}")
        return store

    def _check_units(self, units: Sequence[str]) -> None:
        if not units:
            raise ValueError("Expected at least one unit (class, run or 'all').")
        prefix = {datasets.ONE_CLASS: "class=", datasets.TABULAR: "run="}.get(
            self.config.protocol)
        for unit in units:
            valid = unit == "all" if prefix is None else (
                unit.startswith(prefix) and unit[len(prefix):].isdigit())
            if not valid:
                raise ValueError(
                    f"Invalid unit {unit!r} for the {self.config.protocol} protocol; expected "
                    + ("'all'" if prefix is None else f"'{prefix}N'") + "."
                )
