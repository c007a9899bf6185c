"""The `memae experiment` subcommand: run a paper protocol on a dataset, resumably.

Examples:

```
memae experiment mnist --variants memae,memae-nonspar,ae --baselines ocsvm,iforest \\
    --epochs 10 --seed 0 --out runs/mnist
memae experiment kdd --data-path data/kddcup.data_10_percent.gz --runs 5 --out runs/kdd
memae experiment tabular --mlbench Shuttle --normal-classes Rad.Flow --out runs/shuttle
memae experiment moving-mnist --variants memae,ae --epochs 10 --out runs/moving-mnist
memae experiment mnist --tiny --out runs/tiny-mnist          # seconds; for CI
memae experiment tabular-suite --variants memae,ae --baselines iforest,ocsvm,lof,ecod \\
    --seeds 0,1,2 --out runs/tabular-suite
```

Datasets and protocols:

- mnist, fashion-mnist, animal-mnist, cifar10: one-class protocol (each class in
  turn normal; AUROC per class and the mean); presets mnist / mnist / mnist /
  cifar10. animal-mnist (white silhouettes on black, from the `animal-mnist`
  wheel) is the second image development set, beside fashion-mnist.
- kdd (KDDCUP99 10%), tabular (a CSV/Parquet/.rda file, or `--mlbench NAME`):
  random 50% splits, top-q threshold; preset kdd with the table's width.
- tabular-suite: the tabular development suite (Shuttle, Ionosphere,
  PimaIndiansDiabetes, BreastCancer, Vehicle, Glass, Vowel, Sonar from mlbench;
  `--tables Satellite` for the test table), ODDS-style: training on half of
  the normal rows, 5 splits (`--splits`) × `--seeds`; preset tabular with raw
  features, trained with the preset's settings unless `--epochs`,
  `--batch-size`, `--learning-rate` or `--lr-decay` replace them; one table of
  AUROC, mean rank and spread over seeds (benchmarks/TABULAR_PROTOCOL.md).
- ucsd-ped2, avenue, shanghaitech (256×256 frames), moving-mnist (64×64,
  generated from MNIST; `--data-path` locates MNIST), moving-fashion-mnist (the
  same from Fashion-MNIST: the development set for clips): frame-level AUROC of
  16-frame clips; preset video (moving benchmarks: filters 16-32-64-64, the
  preset's 2,000 items).
- vtest-dev, vtest (48×64): OpenCV's vtest.avi walkway footage with injected
  anomalies (an object crossing fast, 4× speed, a frozen box), its development
  and test splits (memae_tf.data.vtest; benchmarks/VIDEO_PROTOCOL.md); the
  moving benchmarks' network. The video metrics: `auroc` pools the raw frame
  scores of all test videos (the headline), `auroc_normalised` after per-video
  min-max, `auroc_macro` per video, `auroc_kind_*` per anomaly kind.

Every task is stored in OUT/results.json as soon as it ends; an interrupted run
continues with `--resume`. OUT also gets results.csv, results.md and plots/.
"""


from __future__ import annotations

import argparse
import contextlib
import json
import logging
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from memae_tf.choices import (
    ALIGNMENTS,
    BASELINES,
    ERRORS,
    FILLS,
    LR_DECAYS,
    MEMORY_INITS,
    PREPROCESSING,
    VARIANTS,
)
from memae_tf.common.contract import DEFAULT_FRAME_SCORE, FRAME_SCORES
from memae_tf.common.deprecation import add_deprecated_alias
from memae_tf.evaluation.datasets import DATASETS, ONE_CLASS
from memae_tf.training.config import BATCH_SIZE, EPOCHS, LEARNING_RATE

if TYPE_CHECKING:
    from memae_tf.evaluation.experiment import ExperimentConfig

SUITE = "tabular-suite"
# The training options of `memae experiment`: unset unless given, so that the suite
# trains with the preset's settings and the other datasets with ExperimentConfig's.
TRAINING_OPTIONS = ("epochs", "batch_size", "learning_rate", "lr_decay")
# --tiny suite runs: two epochs of the preset's 100 steps, one split.
SUITE_TINY_TRAINING = {"epochs": 2}


def parse_list(choices: tuple[str, ...]):
    """argparse type: a comma-separated subset of `choices` (empty string = none)."""

    def parse(text: str) -> list[str]:
        items = [item for item in text.split(",") if item]
        unknown = [item for item in items if item not in choices]
        if unknown:
            raise argparse.ArgumentTypeError(
                f"expected a comma-separated subset of {','.join(choices)}. Received: {text!r}"
            )
        return items

    return parse


def parse_ints(text: str) -> list[int]:
    """argparse type: comma-separated non-negative integers, e.g. `0,1,7`."""
    try:
        values = [int(part) for part in text.split(",")]
    except ValueError:
        values = [-1]
    if any(v < 0 for v in values):
        raise argparse.ArgumentTypeError(
            f"expected comma-separated non-negative integers, e.g. 0,1,7. Received: {text!r}"
        )
    return values


def parse_names(text: str) -> list[str]:
    """argparse type: comma-separated names, e.g. `Rad.Flow` or `red soil,grey soil`."""
    names = [name for name in text.split(",") if name]
    if not names:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated names, e.g. 0,1 or Rad.Flow. Received: {text!r}"
        )
    return names


def normal_classes(args: argparse.Namespace) -> list[int] | list[str] | None:
    """`--normal-classes` of `memae experiment`: class numbers of a one-class dataset,
    the class names of a `tabular` one, None when not given.

    Raises:
        ValueError: If given for another dataset (whose normal data is fixed), or
            if a one-class dataset's classes are not numbers.
    """
    if args.normal_classes is None:
        return None
    if args.dataset != "tabular" and (
        args.dataset not in DATASETS or DATASETS[args.dataset].protocol != ONE_CLASS
    ):
        raise ValueError("--normal-classes applies to the one-class datasets and tabular, not "
                         f"{args.dataset}.")
    if args.dataset == "tabular":
        return list(args.normal_classes)
    try:
        return parse_ints(",".join(args.normal_classes))
    except argparse.ArgumentTypeError as error:
        raise ValueError(f"--normal-classes of {args.dataset}: {error}") from None


def parse_override(text: str) -> tuple[str, Any]:
    """argparse type: `KEY=VALUE` with a JSON value (lists become tuples), else a string."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE. Received: {text!r}")
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        parsed = value
    return key, tuple(parsed) if isinstance(parsed, list) else parsed


def add_training_options(parser: argparse.ArgumentParser, preset_epochs: bool = False) -> None:
    """Adds `--epochs`, `--learning-rate` and `--lr-decay`, with `TrainingConfig`'s defaults.

    The options of a training run that `memae train` and `memae experiment` share.

    Args:
        parser: The subcommand's parser.
        preset_epochs: If True, `--epochs` is unset by default and the preset's
            training settings apply (`memae train`).
    """
    if preset_epochs:
        parser.add_argument("--epochs", type=int,
                            help=f"passes over the training data (default: the preset's "
                                 f"training settings, {EPOCHS} unless the preset sets them)")
    else:
        parser.add_argument("--epochs", type=int, default=EPOCHS,
                            help="passes over the training data")
    parser.add_argument("--learning-rate", type=float, default=LEARNING_RATE,
                        help="Adam's learning rate")
    parser.add_argument("--lr-decay", choices=LR_DECAYS, default="auto",
                        help="learning-rate decay over the epochs: auto (default: cosine, none "
                             "for clips), cosine or none")


def add_experiment_command(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Registers `memae experiment` on the `memae` parser's subparsers.

    Args:
        subparsers: What `parser.add_subparsers()` returned.

    Returns:
        The `experiment` parser; its `func` default runs the command and
        returns the exit status.
    """
    p = subparsers.add_parser(
        "experiment", help="run a paper protocol (one-class, video, tabular) with baselines",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("dataset", choices=[*DATASETS, SUITE])
    p.add_argument("--variants", type=parse_list(VARIANTS), default=list(VARIANTS),
                   help="MemAE variants, comma-separated (default: all three)")
    p.add_argument("--baselines", type=parse_list(BASELINES), default=[],
                   help="baselines, comma-separated: ocsvm,iforest,lof,ecod (default: none)")
    add_training_options(p)
    p.add_argument("--batch-size", type=int, help=f"training batch size (default {BATCH_SIZE})")
    p.set_defaults(**dict.fromkeys(TRAINING_OPTIONS))
    p.add_argument("--seed", type=int, default=0, help="seed of every random draw (default 0)")
    p.add_argument("--preprocess", choices=PREPROCESSING, default="none",
                   help="one-class images: none (pixels as they are, default) or gcn (global "
                        "contrast normalisation + min-max fitted on the normal training images, "
                        "as in Deep SVDD), for every model")
    p.add_argument("--memory-init", choices=MEMORY_INITS, default="data",
                   help="memory items drawn from encodings of training data (data, default) "
                        "or the layer's uniform initialisation (keep)")
    p.add_argument("--error", choices=ERRORS,
                   help="reconstruction error that scores the MemAE variants (default: the "
                        "preset's)")
    option = p.add_argument(
        "--normal-classes", type=parse_names, metavar="CLASSES",
        help="one-class datasets: the classes to take in turn as the normal class, one run "
             "each (default: 0-9; tiny: 0,1); tabular: the classes that together are normal, "
             "comma-separated, e.g. Rad.Flow")
    add_deprecated_alias(p, option, "--classes")
    p.add_argument("--runs", type=int, default=5,
                   help="tabular datasets: number of seeded random splits (default 5; tiny 1)")
    p.add_argument("--tables", help=f"{SUITE}: table protocols, comma-separated (default: "
                   "the development suite)")
    p.add_argument("--splits", type=parse_ints, default=[0, 1, 2, 3, 4],
                   help=f"{SUITE}: split numbers (default 0,1,2,3,4; tiny 0)")
    p.add_argument("--seeds", type=parse_ints, default=[0],
                   help=f"{SUITE}: seeds of every split (default 0)")
    p.add_argument("--out", required=True, help="experiment folder, e.g. runs/mnist")
    p.add_argument("--data-path", help="explicit location of the dataset's files")
    p.add_argument("--override", type=parse_override, action="append", default=[],
                   metavar="KEY=VALUE", help="preset override, e.g. num_items=200 (repeatable)")
    p.add_argument("--anomaly-share", type=float,
                   help="one-class: test anomaly share (default: natural); tabular: flagged "
                        "share q (default: 0.2 for kdd, else the test half's anomaly share)")
    p.add_argument("--max-train", type=int, help="one-class: cap on training images per class")
    p.add_argument("--max-test", type=int, help="one-class: cap on test images")
    p.add_argument("--ocsvm-max-train", type=int, default=2000,
                   help="OCSVM training subsample size (default 2000)")
    p.add_argument("--mlbench", help="tabular: mlbench table name, e.g. Shuttle")
    p.add_argument("--label-column", help="tabular: class column")
    p.add_argument("--frame-size", type=parse_ints,
                   help="video: HEIGHT,WIDTH of frames (default: see above; tiny 32,32)")
    p.add_argument("--clip-length", type=int, default=16, help="video: frames a clip (16)")
    p.add_argument("--train-stride", type=int, default=1,
                   help="video: frames between training clips (default 1)")
    p.add_argument("--test-stride", type=int, default=1,
                   help="video: frames between test clips (default 1)")
    p.add_argument("--fill", choices=FILLS, default="interpolate",
                   help="video: frames without a clip are interpolated or dropped")
    p.add_argument("--alignment", choices=ALIGNMENTS, default="end",
                   help="video: a clip's score belongs to its last frame (end, default) or "
                        "its centre frame")
    p.add_argument("--smoothing", type=int, default=1,
                   help="video: causal moving average of frame scores over this many frames "
                        "(default 1: none); choose it on development data")
    p.add_argument("--smoothing-candidates", type=parse_ints, default=(),
                   help="video, development sets: widths to compare (recorded in "
                        "results.json), e.g. 1,4,8,16")
    p.add_argument("--frame-score", choices=FRAME_SCORES, default=DEFAULT_FRAME_SCORE,
                   help="video: how a clip's per-pixel error scores its last frame: the "
                        "last frame's mean plus the error of its change from the frame "
                        "before (last_plus_temporal, default, as memae score-video), mean "
                        "over the clip (clip; the only one for --baselines), over the last "
                        "frame (last), the last frame's worst 8x8 patch (patch), or the "
                        "last frame's error per unit of moving content (relative)")
    p.add_argument("--frame-score-candidates", type=parse_list(FRAME_SCORES), default=[],
                   help="video, development sets: frame scores to compare from the one "
                        "trained network (recorded in results.json info)")
    p.add_argument("--tiny", action="store_true",
                   help="tiny data and networks, 1 epoch: proves the path end to end")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--resume", action="store_true",
                       help="continue an existing experiment folder (same settings)")
    group.add_argument("--overwrite", action="store_true",
                       help="delete an existing experiment folder's results first")
    p.set_defaults(func=run_experiment_command)
    return p


def given_training_options(args: argparse.Namespace) -> dict[str, Any]:
    """The training options given on the `memae experiment` command line, by name."""
    return {name: getattr(args, name) for name in TRAINING_OPTIONS
            if getattr(args, name) is not None}


def config_from_args(args: argparse.Namespace) -> ExperimentConfig:
    """The `ExperimentConfig` of parsed `memae experiment` arguments."""
    from memae_tf.evaluation.experiment import ExperimentConfig  # TensorFlow: not for --help

    if args.frame_size is not None and len(args.frame_size) != 2:
        raise ValueError(f"--frame-size expects HEIGHT,WIDTH. Received: {args.frame_size}")
    classes = normal_classes(args)
    # Options whose value the config takes as it is.
    same = ("dataset", "seed", "memory_init", "preprocess", "tiny", "data_path", "error",
            "anomaly_share", "max_train", "max_test", "ocsvm_max_train", "label_column",
            "mlbench", "clip_length", "train_stride", "test_stride", "fill", "alignment",
            "smoothing", "frame_score")
    return ExperimentConfig(
        **{name: getattr(args, name) for name in same},
        **{**given_training_options(args), **({"epochs": 1} if args.tiny else {})},
        overrides=dict(args.override),
        normal_classes=tuple(classes) if args.dataset == "tabular" and classes else (),
        frame_size=None if args.frame_size is None else tuple(args.frame_size),
        smoothing_candidates=tuple(args.smoothing_candidates),
        frame_score_candidates=tuple(args.frame_score_candidates),
    )


class _RetracingNotice(logging.Filter):
    """Drops TensorFlow's "triggered tf.function retracing" warning, keeps the rest."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "triggered tf.function retracing" not in record.getMessage()


@contextlib.contextmanager
def _quiet_retracing() -> Iterator[None]:
    """Silences TensorFlow's retracing warning on the `tensorflow` logger meanwhile.

    An experiment builds a new detector (a new train function and scoring graph)
    for every task, which is what the warning calls a mistake; every other
    TensorFlow message passes. Only the `memae experiment` command uses it.
    """
    logger = logging.getLogger("tensorflow")
    notice = _RetracingNotice()
    logger.addFilter(notice)
    try:
        yield
    finally:
        logger.removeFilter(notice)


def run_experiment_command(args: argparse.Namespace) -> int:
    """Runs `memae experiment` for parsed arguments; returns the exit status."""
    if args.dataset == SUITE:
        return run_suite_command(args)
    from memae_tf.evaluation.experiment import COMMAND_FILE, Experiment, default_units

    config = config_from_args(args)
    models = [*args.variants, *args.baselines]
    classes = normal_classes(args)
    if classes is not None and config.protocol == ONE_CLASS:
        units = [f"class={c}" for c in classes]
    else:
        units = default_units(config, args.runs)
    experiment = Experiment(config, log=lambda line: print(f"[memae] {line}", flush=True))
    with _quiet_retracing():
        experiment.run(models, units, Path(args.out), resume=args.resume,
                       overwrite=args.overwrite)
    if getattr(args, "argv", None) is not None:  # for `memae report`
        (Path(args.out) / COMMAND_FILE).write_text(shlex.join(["memae", *args.argv]) + "\n")
    return 0


def run_suite_command(args: argparse.Namespace) -> int:
    """Runs `memae experiment tabular-suite` for parsed arguments; returns the exit status."""
    from memae_tf.evaluation.tabular_suite import SuiteConfig, run_suite

    normal_classes(args)  # the suite's tables have their own normal classes: refused
    config = SuiteConfig(overrides=dict(args.override),
                         training={**given_training_options(args),
                                   **(SUITE_TINY_TRAINING if args.tiny else {})},
                         data_path=args.data_path)
    tables = [t for t in (args.tables or "").split(",") if t]
    with _quiet_retracing():
        run_suite(config, [*args.variants, *args.baselines], args.out,
                  **({"tables": tables} if tables else {}),
                  splits=[0] if args.tiny else args.splits, seeds=args.seeds,
                  resume=args.resume, overwrite=args.overwrite,
                  log=lambda line: print(f"[memae] {line}", flush=True))
    if getattr(args, "argv", None) is not None:
        (Path(args.out) / "command.txt").write_text(shlex.join(["memae", *args.argv]) + "\n")
    return 0
