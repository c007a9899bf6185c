"""The `memae` command line: train, score and evaluate detectors, score videos, write
reports, list the presets, export to TF Serving, serve, monitor served scores, run
experiments and the demo.

Each command imports only what it runs (building the parser imports no TensorFlow),
so `memae --help` and `memae COMMAND --help` answer at once.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from memae_tf.choices import (
    ERRORS,
    MEMORY_INITS,
    PRECISIONS,
    STRATEGIES,
    VARIANTS,
)
from memae_tf.client.cli import add_monitor_command
from memae_tf.common.contract import DEFAULT_FRAME_SCORE, FRAME_SCORES
from memae_tf.common.deprecation import add_deprecated_alias
from memae_tf.evaluation.cli import (
    add_experiment_command,
    add_training_options,
    parse_ints,
    parse_override,
)
from memae_tf.serving.cli import add_model_server_command, add_serve_command
from memae_tf.training.config import BATCH_SIZE, TrainingConfig

Arrays = tuple[np.ndarray, np.ndarray | None]


def _image_loaders() -> dict[str, Callable[..., Any]]:
    from memae_tf.data import load_cifar10, load_fashion_mnist, load_mnist

    return {"mnist": load_mnist, "fashion-mnist": load_fashion_mnist, "cifar10": load_cifar10}


def load_split(
    data: str, split: str, data_path: str | None = None, tfds_data_dir: str | None = None
) -> Arrays:
    """Loads `(x, y)` of one split from a dataset name or an array file.

    Args:
        data: `"mnist"`, `"fashion-mnist"`, `"cifar10"`, a TensorFlow Datasets
            name `"tfds:NAME"` or `"tfds:NAME:SPLIT"` (e.g. `tfds:cifar10`,
            `tfds:mnist:test[:50%]`; images under `"image"`, labels under
            `"label"`), or a path to a `.npz` (arrays
            `x_train`/`y_train`/`x_test`/`y_test`, or `x`/`y`) or `.npy`
            (inputs only) file.
        split: `"train"` or `"test"` (ignored for files with `x`/`y` or `.npy`,
            and for a TFDS name with its own split).
        data_path: Explicit location of a named dataset's files.
        tfds_data_dir: TFDS data folder of `tfds:` datasets (default: TFDS's).
            TFDS datasets must be prepared there: nothing is downloaded.

    Returns:
        `(x, y)`; `y` is None when the source has no labels.
    """
    if split not in ("train", "test"):
        raise ValueError(f"`split` must be 'train' or 'test'. Received: split={split!r}")
    if data.startswith("tfds:"):
        from memae_tf.data.tfds import load_tfds, parse_tfds_spec

        name, own_split = parse_tfds_spec(data)
        return load_tfds(name, own_split or split, data_dir=tfds_data_dir)
    loaders = _image_loaders()
    if data in loaders:
        train, test = loaders[data](data_path)
        return train if split == "train" else test
    path = Path(data)
    if not path.is_file():
        raise ValueError(
            f"--data must be one of {sorted(loaders)}, tfds:NAME[:SPLIT] or an existing "
            ".npz/.npy file. "
            f"Received: {data!r}"
        )
    if path.suffix not in (".npz", ".npy"):
        raise ValueError(f"Array files must be .npz or .npy. Received: {str(path)!r}")
    try:
        if path.suffix == ".npy":
            found = {"x": np.load(path, allow_pickle=False)}
        else:
            with np.load(path, allow_pickle=False) as arrays:  # read only the split's arrays
                wanted = {f"x_{split}", f"y_{split}", "x", "y"}
                found = {key: arrays[key] if key in wanted else None for key in arrays.files}
    except (OSError, EOFError, ValueError, zipfile.BadZipFile) as error:
        raise ValueError(
            f"{str(path)!r} could not be read as a numpy {path.suffix} file (truncated or "
            f"corrupt?): {type(error).__name__}: {error}"
        ) from error
    for x_key, y_key in ((f"x_{split}", f"y_{split}"), ("x", "y")):
        if x_key in found:
            return _checked_arrays(path, x_key, found[x_key], y_key, found.get(y_key))
    raise ValueError(f"{str(path)!r} has no array 'x_{split}' or 'x'. Found: {sorted(found)}")


def _checked_arrays(path: Path, x_key: str, x: np.ndarray, y_key: str | None,
                    y: np.ndarray | None) -> Arrays:
    """Returns `(x, y)` if `x` is a numeric batch and `y` one label per sample."""
    if x.dtype.kind not in "biuf" or x.ndim < 2:
        raise ValueError(
            f"{str(path)!r}: expected array {x_key!r} to hold numbers with a batch axis, "
            f"shape (samples, ...). Received: dtype={x.dtype}, shape={x.shape}"
        )
    if y is not None and (y.ndim != 1 or len(y) != len(x)):
        raise ValueError(
            f"{str(path)!r}: expected array {y_key!r} to hold one label per sample of "
            f"{x_key!r}, shape ({len(x)},). Received: shape={y.shape}"
        )
    return x, y


def _select_normal(x: np.ndarray, y: np.ndarray | None, normal: list[int] | None) -> np.ndarray:
    if normal is None:
        return x
    if y is None:
        raise ValueError("--normal-classes needs labelled data, but the data has no labels.")
    return x[np.isin(y, normal)]


def _log(message: str) -> None:
    print(f"[memae] {message}", file=sys.stderr, flush=True)


def training_config(args: argparse.Namespace, **settings: Any) -> TrainingConfig:
    """The `TrainingConfig` of `memae train`: the preset's training settings, then the options.

    `--epochs` and `--batch-size` replace the preset's values only when given,
    so `memae train --preset tabular` trains as `MemAE.fit` does (60 epochs of
    100 steps of 32 rows).

    Args:
        args: The parsed `memae train` options.
        **settings: Further `TrainingConfig` fields (backup folder, strategy).

    Returns:
        The config.

    Example:

    >>> args = build_parser().parse_args(["train", "--data", "x.npz", "--preset", "tabular",
    ...                                   "--out", "runs/table"])
    >>> training_config(args).steps_per_epoch
    100
    """
    from memae_tf.models.presets import get_preset

    given = {name: getattr(args, name) for name in ("epochs", "batch_size")
             if getattr(args, name) is not None}
    return TrainingConfig(**{**get_preset(args.preset).training, **given,
                             "learning_rate": args.learning_rate, "lr_decay": args.lr_decay,
                             "seed": args.seed, "verbose": args.verbose,
                             "memory_init": args.memory_init, **settings})


def cmd_train(args: argparse.Namespace) -> int:
    import keras

    from memae_tf import distribute
    from memae_tf.detector import MemAE

    options = distribute.distribution_options(args)  # before TF runs any op (multi-worker)
    normal = args.normal_classes
    x, y = load_split(args.data, "train", args.data_path, args.tfds_data_dir)
    x = _select_normal(x, y, normal)
    rng = np.random.default_rng(args.seed)
    order = rng.permutation(len(x))
    n_val = max(1, int(len(x) * args.validation_split))
    x_val, x_fit = x[order[:n_val]], x[order[n_val:]]
    keras.utils.set_random_seed(args.seed)  # the same command trains the same weights
    detector = MemAE.from_preset(args.preset, variant=args.variant, error=args.error,
                                 **dict(args.override))
    start = time.perf_counter()
    backup = None
    if distribute.is_chief(options["strategy"]):
        backup = Path(args.backup_dir) if args.backup_dir else Path(args.out) / ".backup"
    config = training_config(args, backup_dir=backup, **options)
    _log(f"training {args.preset}/{args.variant} on {len(x_fit)} samples "
         f"({n_val} held out for the threshold), {config.epochs} "
         f"epoch{'' if config.epochs == 1 else 's'}")
    detector.fit(x_fit, validation_data=x_val, config=config)
    seconds = time.perf_counter() - start
    threshold = detector.infer_threshold(x_val, fpr=args.fpr)
    if not distribute.is_chief(options["strategy"]):
        _log(f"trained in {seconds:.1f} s; not the chief worker, so nothing is saved")
        return 0
    out = Path(args.out)
    path = detector.save(out / "detector.keras")
    summary = {"preset": args.preset, "variant": args.variant, "data": args.data,
               "normal_classes": normal, "epochs": config.epochs, "train_seconds": seconds,
               "threshold": threshold, "fpr": args.fpr, "samples": len(x_fit),
               "data_path": args.data_path, "tfds_data_dir": args.tfds_data_dir,
               "command": shlex.join(["memae", *args.argv])}
    if detector.frame_thresholds_ is not None:  # a video detector's threshold per frame score
        summary["frame_thresholds"] = detector.frame_thresholds_
    (out / "train_summary.json").write_text(json.dumps(summary, indent=2))
    _log(f"trained in {seconds:.1f} s; threshold {threshold:.6g} (fpr {args.fpr}); saved {path}")
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    from memae_tf.detector import MemAE
    from memae_tf.thresholds import above_threshold

    x, _ = load_split(args.data, args.split, args.data_path, args.tfds_data_dir)
    detector = MemAE.load(args.model)
    _log(f"scoring {len(x)} samples")
    scores = detector.score(x, batch_size=args.batch_size)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.suffix == ".npy":
            np.save(out, scores)
        else:
            np.savetxt(out, scores, fmt="%.8g", header="score", comments="")
        _log(f"wrote {out}")
    quantiles = np.quantile(scores, [0.0, 0.5, 0.95, 1.0])
    _log("scores min/median/p95/max: " + " / ".join(f"{q:.6g}" for q in quantiles))
    if detector.threshold_ is not None:
        flagged = int(above_threshold(scores, detector.threshold_).sum())
        _log(f"{flagged} of {len(scores)} above the threshold")
    return 0


def cmd_score_video(args: argparse.Namespace) -> int:
    from memae_tf.detector import MemAE
    from memae_tf.thresholds import above_threshold
    from memae_tf.video_scoring import score_video, video_fps, write_video_scores

    detector = MemAE.load(args.model)
    result = score_video(detector, args.video, max_frames=args.max_frames,
                         error_maps=args.overlay, batch_size=args.batch_size,
                         frame_score=args.frame_score)
    written = write_video_scores(result, args.out, fps=args.fps or video_fps(args.video))
    scored = result.scores[~np.isnan(result.scores)]
    _log(f"scored {len(scored)} of {len(result.scores)} frames (the first "
         f"{len(result.scores) - len(scored)} complete no clip); wrote "
         + ", ".join(str(path) for path in written.values()))
    if result.threshold is not None:
        _log(f"{int(above_threshold(scored, result.threshold).sum())} frames above the threshold "
             f"{result.threshold:.6g} on {args.frame_score} scores")
    elif detector.threshold_ is not None:
        _log(f"no frame flagged: the detector has no threshold on {args.frame_score} scores "
             "(saved before infer_threshold set one per frame score): set it again with "
             "infer_threshold on normal clips and save, or use --frame-score clip")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from memae_tf.detector import MemAE
    from memae_tf.evaluation.metrics import metrics_at_threshold, ranking_metrics

    normal = args.normal_classes
    x, y = load_split(args.data, args.split, args.data_path, args.tfds_data_dir)
    detector = MemAE.load(args.model)
    if y is None:
        raise ValueError("evaluate needs labelled data, but the data has no labels.")
    labels = (~np.isin(y, normal)).astype(int) if normal is not None else np.asarray(y)
    if len(np.unique(labels)) != 2:
        raise ValueError("evaluate needs both normal and anomalous samples in the split.")
    _log(f"scoring {len(x)} samples ({int(labels.sum())} anomalous)")
    scores = detector.score(x, batch_size=args.batch_size)
    report: dict[str, Any] = ranking_metrics(labels, scores)
    if detector.threshold_ is not None:
        report.update(metrics_at_threshold(labels, scores, detector.threshold_))
    print(json.dumps(report, indent=2))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from memae_tf.evaluation import html_report

    run_dir = Path(args.run_dir)
    out = Path(args.out) if args.out else run_dir / "report.html"
    if (run_dir / html_report.RESULTS_FILE).is_file():
        page = html_report.experiment_page(run_dir)
    elif (run_dir / html_report.DETECTOR_FILE).is_file():
        summary_path = run_dir / html_report.TRAIN_SUMMARY
        summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
        data = args.data or summary.get("data")
        if data is None:
            raise ValueError(f"{run_dir} has no {html_report.TRAIN_SUMMARY}: pass --data.")
        x, y = load_split(data, args.split, args.data_path or summary.get("data_path"),
                          args.tfds_data_dir or summary.get("tfds_data_dir"))
        normal = args.normal_classes or summary.get("normal_classes",
                                                     summary.get("normal_class"))
        if y is None:
            raise ValueError("A detector report needs labelled test data; the data has none.")
        labels = (~np.isin(y, normal)).astype(int) if normal is not None else np.asarray(y)
        if args.max_samples and len(x) > args.max_samples:
            rows = np.sort(np.random.default_rng(0).permutation(len(x))[:args.max_samples])
            x, labels = x[rows], labels[rows]
        page = html_report.detector_page(run_dir, x, labels, f"{data} ({args.split})")
    else:
        raise ValueError(
            f"Expected a run folder with {html_report.RESULTS_FILE} (memae experiment) or "
            f"{html_report.DETECTOR_FILE} (memae train). Received: {str(run_dir)!r}"
        )
    _log(f"wrote {html_report.write_report(page, out)}")
    return 0


def cmd_presets(args: argparse.Namespace) -> int:
    from memae_tf.models import PRESETS

    for name, preset in PRESETS.items():
        print(f"{name:8s} {preset.family:7s} {preset.description}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from memae_tf.demo import run_demo

    run_demo(normal_classes=args.normal_classes, epochs=args.epochs, out=Path(args.out))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Exports a saved detector as the next (or given) SavedModel version (`MemAE.export`)."""
    from memae_tf.detector import MemAE

    path = MemAE.load(args.model).export(
        args.model_base_path, args.version, model_name=args.model_name,
        serving_root=args.serving_root,
    )
    print(f"memae export: wrote {path}", file=sys.stderr)
    return 0


def add_serving_commands(subparsers: argparse._SubParsersAction) -> None:
    """Registers `export` (a saved detector → SavedModel version), `serve` and `model-server`.

    Args:
        subparsers: The object returned by `parser.add_subparsers(...)`.

    Example:

    >>> parser = argparse.ArgumentParser(prog="memae")
    >>> add_serving_commands(parser.add_subparsers(dest="command"))
    >>> parser.parse_args(["export", "--model", "d.keras", "--model-base-path", "m"]).version
    """
    export = subparsers.add_parser(
        "export", help="export a saved detector as a TF Serving SavedModel version"
    )
    export.add_argument("--model", required=True, help="path to detector.keras")
    export.add_argument("--model-base-path", required=True,
                        help="directory of the model's versions, e.g. models/memae")
    export.add_argument("--version", type=int,
                        help="version number (default: one more than the latest)")
    export.add_argument("--model-name",
                        help="name in models.config (default: the base path's name)")
    export.add_argument("--serving-root", default="/models",
                        help="mount path of the models directory in the TF Serving container")
    export.set_defaults(func=cmd_export)
    add_serve_command(subparsers)
    add_model_server_command(subparsers)


def add_distribution_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds `--strategy`, `--precision`, `--jit-compile`, `--steps-per-execution`
    and `--checkpoint-dir` to a training command's parser (read back by
    `distribute.distribution_options`)."""
    parser.add_argument("--strategy", default="auto", choices=STRATEGIES,
                        help="tf.distribute strategy; multiworker reads TF_CONFIG")
    parser.add_argument("--precision", default="float32", choices=PRECISIONS,
                        help="training dtype policy (mixed_float16 on GPUs)")
    parser.add_argument("--jit-compile", action=argparse.BooleanOptionalAction, default=None,
                        help="compile the train step with XLA (default: MemAE.fit's choice)")
    parser.add_argument("--steps-per-execution", type=int, default=None,
                        help="train steps per call into TensorFlow (default: MemAE.fit's)")
    parser.add_argument("--checkpoint-dir",
                        help="write the weights after every epoch here (chief only)")


def add_normal_classes_option(parser: argparse.ArgumentParser, help_text: str,
                              default: list[int] | None = None) -> None:
    """Adds `--normal-classes` (comma-separated labels), with `--normal-class` as a
    deprecated alias: the one name of the normal class(es) in every command."""
    action = parser.add_argument("--normal-classes", type=parse_ints, default=default,
                                 metavar="LABELS", help=help_text)
    add_deprecated_alias(parser, action, "--normal-class")


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Help that shows every option's default, descriptions kept as written.

    Like `argparse.ArgumentDefaultsHelpFormatter`, but an option whose help
    already names its default is left alone, and unset defaults read as such.
    """

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (not action.option_strings or action.required or "default" in text
                or action.default is argparse.SUPPRESS
                or isinstance(action, (argparse._HelpAction, argparse._VersionAction))):
            return text
        if action.default is None or action.default in ([], ()):
            shown = "not set"
        elif action.default is True or action.default is False:
            shown = "on" if action.default else "off"
        elif isinstance(action.default, (list, tuple)):  # as typed: `--splits 0,1,2,3,4`
            shown = ",".join(str(value) for value in action.default)
        else:
            shown = "%(default)s"
        return f"{text} (default: {shown})".strip()


class ArgumentParser(argparse.ArgumentParser):
    """The `memae` parser: its subcommands' parsers are of this class too, so every
    help page shows the defaults (`HelpFormatter`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["formatter_class"] = HelpFormatter
        super().__init__(*args, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    """Builds the `memae` argument parser with all subcommands."""
    from memae_tf import __version__

    parser = ArgumentParser(prog="memae", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    def data_options(p: argparse.ArgumentParser, batch_size: int | None = None,
                     batch_help: str = "samples per forward pass (default: as many as hold "
                                       "2^20 input values, at most 1024)") -> None:
        p.add_argument("--data", required=True,
                       help="mnist, fashion-mnist, cifar10, tfds:NAME[:SPLIT] (a prepared "
                            "TensorFlow Datasets set, e.g. tfds:cifar10), or a .npz/.npy file")
        p.add_argument("--data-path", help="explicit location of the named dataset's files")
        p.add_argument("--tfds-data-dir",
                       help="TensorFlow Datasets data folder for tfds: data (default: TFDS's)")
        p.add_argument("--batch-size", type=int, default=batch_size, help=batch_help)

    train = sub.add_parser("train", help="train a detector on normal data")
    # Training batches are TrainingConfig's (64 per replica); scoring batches are larger.
    data_options(train, batch_size=None,
                 batch_help=f"training batch size per replica (default: the preset's training "
                            f"settings, {BATCH_SIZE} unless the preset sets them)")
    train.add_argument("--preset", default="mnist", help="network preset (memae presets)")
    train.add_argument("--variant", default="memae", choices=VARIANTS,
                       help="memory variant: the paper's ablation")
    add_normal_classes_option(train, "label(s) of the normal class(es), e.g. 0 or 1,7 "
                                     "(default: all the training data)")
    add_training_options(train, preset_epochs=True)
    train.add_argument("--validation-split", type=float, default=0.1,
                       help="share of normal data held out to set the threshold")
    train.add_argument("--fpr", type=float, default=0.05,
                       help="false-positive rate on held-out normal data for the threshold")
    train.add_argument("--override", type=parse_override, action="append", default=[],
                       metavar="KEY=VALUE", help="preset override, e.g. num_items=200")
    train.add_argument("--seed", type=int, default=0,
                       help="seed of the held-out split, the weights' and the memory's "
                            "initialisation and the shuffling")
    train.add_argument("--memory-init", choices=MEMORY_INITS, default="data",
                       help="memory items drawn from encodings of the training data (data) "
                            "or the layer's uniform initialisation (keep)")
    train.add_argument("--error", choices=ERRORS,
                       help="reconstruction error that scores samples (default: the preset's)")
    train.add_argument("--verbose", type=int, default=1,
                       help="Keras progress output: 0 silent, 1 progress bar, 2 a line an epoch")
    train.add_argument("--out", required=True, help="run folder for detector.keras")
    train.add_argument("--backup-dir",
                       help="per-epoch backup of the training state; the same command "
                            "resumes from it after a crash (default: OUT/.backup)")
    add_distribution_arguments(train)
    train.set_defaults(func=cmd_train)

    score = sub.add_parser("score", help="score samples with a saved detector")
    data_options(score)
    score.add_argument("--model", required=True, help="path to detector.keras")
    score.add_argument("--split", default="test", choices=["train", "test"],
                       help="which split of the data to score")
    score.add_argument("--out", help="write scores to a .npy or text file")
    score.set_defaults(func=cmd_score)

    score_video = sub.add_parser(
        "score-video", help="score each frame of a video file with a saved video detector")
    score_video.add_argument("video", help="video file (.avi, .mp4, ...) or folder of frames")
    score_video.add_argument("--model", required=True, help="path to a video detector.keras")
    score_video.add_argument("--out", required=True,
                             help="folder for scores.csv, scores.png (and the overlay)")
    score_video.add_argument("--overlay", action="store_true",
                             help="also write each scored frame with its error map in red "
                                  "(overlay/*.png, overlay.avi with OpenCV)")
    score_video.add_argument("--max-frames", type=int, help="score only the first N frames")
    score_video.add_argument("--fps", type=float,
                             help="frames a second for the plot's time axis (default: the "
                                  "file's, read with OpenCV)")
    score_video.add_argument("--batch-size", type=int, default=32, help="clips scored at once")
    score_video.add_argument("--frame-score", choices=FRAME_SCORES, default=DEFAULT_FRAME_SCORE,
                             help="how a clip's per-pixel error scores its last frame: the "
                                  "last frame's mean plus the error of its change from the "
                                  "frame before (last_plus_temporal, default), the mean over "
                                  "the last frame (last), the last frame's worst 8x8 patch "
                                  "(patch), its error per unit of moving content (relative), or "
                                  "the mean over the clip (clip); is_anomaly flags the frames "
                                  "above the detector's threshold on that score, set with the "
                                  "clip threshold on the same held-out normal clips")
    score_video.set_defaults(func=cmd_score_video)

    evaluate = sub.add_parser("evaluate", help="AUROC / AUPR / P-R-F1 on labelled data")
    data_options(evaluate)
    evaluate.add_argument("--model", required=True, help="path to detector.keras")
    evaluate.add_argument("--split", default="test", choices=["train", "test"],
                          help="which split of the labelled data to evaluate on")
    add_normal_classes_option(evaluate,
                              "normal label(s); without it labels must already be 0/1")
    evaluate.set_defaults(func=cmd_evaluate)

    report = sub.add_parser(
        "report", help="one self-contained HTML report of a run folder",
        description="Writes RUN_DIR/report.html (or --out): tables, figures and settings of a "
                    "`memae experiment` folder, or of a `memae train` folder's detector on "
                    "labelled test data (by default the data and normal class it was "
                    "trained with).")
    report.add_argument("run_dir", metavar="RUN_DIR")
    report.add_argument("--out", help="HTML file to write (default RUN_DIR/report.html)")
    report.add_argument("--data", help="train folders: test data (default: the training data's)")
    report.add_argument("--data-path", help="explicit location of the named dataset's files")
    report.add_argument("--tfds-data-dir", help="TensorFlow Datasets data folder")
    report.add_argument("--split", default="test", choices=["train", "test"],
                        help="which split of the labelled data to report on")
    add_normal_classes_option(report, "normal label(s) (default: the training run's)")
    report.add_argument("--max-samples", type=int, default=5000,
                        help="score a random subset of at most this many test samples")
    report.set_defaults(func=cmd_report)

    presets = sub.add_parser("presets", help="list the network presets")
    presets.set_defaults(func=cmd_presets)

    add_serving_commands(sub)
    add_monitor_command(sub)
    add_experiment_command(sub)

    demo = sub.add_parser("demo", help="train MemAE, AE and two baselines on real MNIST, "
                                       "compare them, export, serve and query")
    add_normal_classes_option(demo, "the normal MNIST digit(s), e.g. 8 or 3,5", default=[8])
    demo.add_argument("--epochs", type=int, default=5, help="training epochs of each network")
    demo.add_argument("--out", default="runs/demo", help="folder for the models and the export")
    demo.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `memae` console script."""
    # The commands import TensorFlow after this line: keep its C++ start-up chatter
    # (CPU features, missing CUDA) off the terminal unless the user asks for it.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # recorded in run folders
    try:
        return args.func(args)
    except (ValueError, TypeError, OSError, RuntimeError) as error:
        print(f"memae {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
