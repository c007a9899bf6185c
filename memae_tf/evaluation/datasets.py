"""What each `memae experiment` dataset means: its protocol, loader, preset and tiny form.

A dataset name maps to a `DatasetSpec`. `load_task_data` turns an
`ExperimentConfig` into the arrays or videos its protocol needs, applying the
`--tiny` reductions (few samples, small frames) so that every experiment path
runs end to end in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from memae_tf import data as datasets
from memae_tf.common.checks import check_choice

ONE_CLASS, TABULAR, VIDEO = "one-class", "tabular", "video"

# Tiny networks for --tiny runs: enough to exercise every layer, trained in a blink.
_TINY_CONV = {"filters": (4, 8), "kernel_sizes": 3, "num_items": 10}
_TINY_VIDEO = {"filters": (2, 4, 4, 4), "num_items": 10}
_TINY_DENSE = {"units": (8, 3), "num_items": 10}

# Moving-MNIST benchmark (`make_moving_mnist` arguments) for full and tiny runs. Every
# test video holds one anomalous segment, as nearly every test video of UCSD Ped2 and
# Avenue does: the paper's per-video min-max normalisation then ranks each video's
# anomalous frames against its own normal frames, instead of stretching the errors of
# entirely normal videos to [0, 1] as well (which capped the AUROC of any model).
MOVING_MNIST = {"n_train": 32, "n_test": 32, "length": 64, "anomaly_fraction": 1.0}
MOVING_MNIST_TINY = {"n_train": 2, "n_test": 2, "length": 24}

# The walkway footage benchmark (`make_vtest_benchmark` arguments) for tiny runs; full
# runs take the generator's defaults (9 videos of 96 frames). See
# benchmarks/VIDEO_PROTOCOL.md.
VTEST_TINY = {"n_videos": 3, "length": 40, "segment_length": (4, 8)}

# The paper's 96-128-256-256 video network takes minutes per epoch on a CPU even at
# 64×64; the moving-digit benchmarks default to a narrower one (same depth, strides
# and memory of 2,000 items). On the development set (moving Fashion-MNIST, seeds 0
# and 1) 2,000 items beat 500: MemAE 0.738 -> 0.752 and 0.698 -> 0.720
# (benchmarks/HISTORY.md, "Development set: moving Fashion-MNIST video").
_MOVING_NETWORK = {"filters": (16, 32, 64, 64)}

TINY_MAX_TRAIN = 64
TINY_MAX_TEST = 200
TINY_MAX_ROWS = 400
TINY_FRAME_SIZE = (32, 32)


@dataclass(frozen=True)
class DatasetSpec:
    """How one dataset is evaluated.

    Attributes:
        protocol: `"one-class"`, `"tabular"` or `"video"`.
        preset: The MemAE preset its networks start from.
        overrides: Default preset overrides for this dataset (documented in
            `memae experiment --help`).
        tiny_overrides: Overrides of `--tiny` runs.
        anomaly_share: Default tabular `q` (None = the test half's share).
        frame_size: Default video frame `(height, width)`.
    """

    protocol: str
    preset: str
    overrides: dict[str, Any] = field(default_factory=dict)
    tiny_overrides: dict[str, Any] = field(default_factory=dict)
    anomaly_share: float | None = None
    frame_size: tuple[int, int] | None = None


# The video network on the generated moving-digit videos (64×64) and on the walkway
# footage (48×64): one spec per frame size, shared by a dataset's splits or variants.
_MOVING_DIGITS = DatasetSpec(VIDEO, "video", overrides=_MOVING_NETWORK,
                             tiny_overrides=_TINY_VIDEO, frame_size=(64, 64))
_WALKWAY = DatasetSpec(VIDEO, "video", overrides=_MOVING_NETWORK,
                       tiny_overrides=_TINY_VIDEO, frame_size=(48, 64))

DATASETS: dict[str, DatasetSpec] = {
    "mnist": DatasetSpec(ONE_CLASS, "mnist", tiny_overrides=_TINY_CONV),
    "fashion-mnist": DatasetSpec(ONE_CLASS, "mnist", tiny_overrides=_TINY_CONV),
    # White animal silhouettes on black: the second image development set, of the kind
    # of image MNIST is (Fashion-MNIST's garments fill the frame).
    "animal-mnist": DatasetSpec(ONE_CLASS, "mnist", tiny_overrides=_TINY_CONV),
    "cifar10": DatasetSpec(ONE_CLASS, "cifar10", tiny_overrides=_TINY_CONV),
    "kdd": DatasetSpec(TABULAR, "kdd", tiny_overrides=_TINY_DENSE, anomaly_share=0.2),
    "tabular": DatasetSpec(TABULAR, "kdd", tiny_overrides=_TINY_DENSE),
    "ucsd-ped2": DatasetSpec(VIDEO, "video", tiny_overrides=_TINY_VIDEO, frame_size=(256, 256)),
    "avenue": DatasetSpec(VIDEO, "video", tiny_overrides=_TINY_VIDEO, frame_size=(256, 256)),
    "shanghaitech": DatasetSpec(
        VIDEO, "video", tiny_overrides=_TINY_VIDEO, frame_size=(256, 256)
    ),
    "moving-mnist": _MOVING_DIGITS,
    # The same generator over Fashion-MNIST garments (normal: classes 0-4, T-shirt to
    # coat): the development set of the video network, as Fashion-MNIST is for images.
    "moving-fashion-mnist": _MOVING_DIGITS,
    # Real footage: OpenCV's vtest.avi walkway with injected anomalies, at 48×64
    # (memae_tf.data.vtest); vtest-dev is its development split, vtest its test split.
    "vtest-dev": _WALKWAY,
    "vtest": _WALKWAY,
}


def get_dataset(name: str) -> DatasetSpec:
    """Returns the spec of dataset `name`, or raises a ValueError listing the known ones."""
    check_choice("dataset", name, tuple(DATASETS))
    return DATASETS[name]


def _seeded_rows(n: int, size: int, seed: int) -> np.ndarray:
    if n <= size:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size, replace=False))


def load_images(name: str, path: str | None) -> tuple:
    """`(x_train, y_train), (x_test, y_test)` of an image dataset, found offline first."""
    loaders = {
        "mnist": datasets.load_mnist,
        "fashion-mnist": datasets.load_fashion_mnist,
        "animal-mnist": datasets.load_animal_mnist,
        "cifar10": datasets.load_cifar10,
    }
    return loaders[name](path)


def load_table_data(
    name: str,
    path: str | None,
    label_column: str | None,
    normal_classes: tuple[str, ...],
    mlbench: str | None,
    tiny: bool,
    seed: int,
) -> datasets.TabularData:
    """The encoded table of `kdd` or `tabular` (a file, or an mlbench table by name).

    In tiny runs a seeded random subset of `TINY_MAX_ROWS` rows is kept.
    """
    if name == "kdd":
        table = datasets.load_kddcup99(path)
    elif mlbench is not None:
        if not normal_classes:
            raise ValueError("`--normal-classes` is required for an mlbench table.")
        table = datasets.load_mlbench(mlbench, normal_classes, label_column=label_column,
                                      path=path)
    else:
        if path is None or label_column is None or not normal_classes:
            raise ValueError(
                "The tabular experiment needs `--data-path` (CSV, Parquet or .rda file), "
                "`--label-column` and `--normal-classes`, or `--mlbench NAME` with "
                f"`--normal-classes`. Received: data_path={path!r}, "
                f"label_column={label_column!r}, normal_classes={list(normal_classes)}"
            )
        table = datasets.load_table(path, label_column, normal_classes)
    if not tiny:
        return table
    rows = _seeded_rows(len(table.y), TINY_MAX_ROWS, seed)
    return datasets.TabularData(
        table.x[rows], table.y[rows], table.labels[rows], table.feature_names,
        table.numeric_columns, table.rows[rows],
    )


def load_videos(
    name: str, path: str | None, frame_size: tuple[int, int], tiny: bool, seed: int
) -> tuple[datasets.Videos, datasets.Videos]:
    """`(train, test)` videos of a video dataset at `frame_size`."""
    if name in ("moving-mnist", "moving-fashion-mnist"):
        sizes = MOVING_MNIST_TINY if tiny else MOVING_MNIST
        images = load_images(name.removeprefix("moving-"), path)
        return datasets.make_moving_mnist(**sizes, frame_size=frame_size, seed=seed,
                                          mnist=images)
    if name in ("vtest", "vtest-dev"):
        footage = datasets.load_vtest(path, size=frame_size)
        return datasets.make_vtest_benchmark(
            footage, *datasets.vtest_object(), split="dev" if name == "vtest-dev" else "test",
            seed=seed, **(VTEST_TINY if tiny else {}))
    loaders = {
        "ucsd-ped2": lambda: datasets.load_ucsd_ped(path, variant="ped2", size=frame_size),
        "avenue": lambda: datasets.load_avenue(path, size=frame_size),
        "shanghaitech": lambda: datasets.load_shanghaitech(path, size=frame_size),
    }
    return loaders[name]()
