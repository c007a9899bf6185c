"""Named network presets from the paper, and the one entry point that builds them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import keras

from memae_tf.choices import DEFAULT_ERROR
from memae_tf.common.checks import check_choice
from memae_tf.models.conv2d import build_conv2d_autoencoder
from memae_tf.models.conv3d import build_conv3d_autoencoder
from memae_tf.models.dense import build_dense_autoencoder
from memae_tf.models.memory_block import check_variant

BUILDERS: dict[str, Callable[..., keras.Model]] = {
    "dense": build_dense_autoencoder,
    "conv2d": build_conv2d_autoencoder,
    "conv3d": build_conv3d_autoencoder,
}


@dataclass(frozen=True)
class Preset:
    """A named architecture: builder family, its arguments and the input range.

    Attributes:
        family: `"dense"`, `"conv2d"` or `"conv3d"`.
        kwargs: Builder arguments (without `variant`).
        input_range: `(low, high)` range of the model's inputs; uint8 images
            are scaled into it.
        description: One line for listings.
        error: The reconstruction error that scores a sample, `"mse"`, `"l1"`
            or `"ssim"` (see `memae_tf.scoring_graph.reconstruction_outputs`).
        training: `TrainingConfig` fields that `MemAE.fit` uses for this
            preset unless it is given a config or the setting.
    """

    family: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    input_range: tuple[float, float] = (0.0, 1.0)
    description: str = ""
    error: str = DEFAULT_ERROR
    training: dict[str, Any] = field(default_factory=dict)

    @property
    def takes_width_from_data(self) -> bool:
        """Whether the input width is left to the data of the first `fit` (no `input_shape`)."""
        return self.kwargs.get("input_shape", ()) is None


PRESETS: dict[str, Preset] = {
    # The memory rebuilds one global 16-value code per image. On the development set
    # (Fashion-MNIST, 10 classes, seed 0) MemAE's mean AUROC went from 0.847 (one
    # query per position of the 4×4×64 map) to 0.877 (global code of 64) and 0.897
    # (global code of 16): with 32 or 64 values the addressing of some classes
    # collapsed onto a single item (benchmarks/HISTORY.md). Inputs in [-1, 1] and a
    # linear output (the authors' convention), scored by 1 - SSIM with mirrored
    # borders: on the same set MemAE 0.8963 ([0, 1], sigmoid, squared error) -> 0.9016
    # (absolute error) -> 0.93 (SSIM), and the AE alike (HISTORY.md, "Development set:
    # Fashion-MNIST, input convention and scores" and "..., SSIM with the border
    # kept"). Nearest-item addressing: Fashion-MNIST ties it with the dot product
    # ("Development sets: nearest-item addressing, the SSIM window, the local code
    # under SSIM"); on the second image development set, Animal-MNIST's silhouettes on
    # black, it lifted MemAE from 0.85-0.86 to 0.90-0.91 in each of three seeds
    # ("Development set: Animal-MNIST silhouettes").
    "mnist": Preset(
        "conv2d",
        {"input_shape": (28, 28, 1), "filters": (16, 32, 64), "kernel_sizes": (1, 3, 3),
         "strides": 2, "activation": "relu", "num_items": 100, "output_activation": None,
         "latent": "global", "latent_dim": 16, "similarity": "euclidean"},
        input_range=(-1.0, 1.0),
        description="28×28×1 images in [-1, 1]; Conv 16-32-64, BN+ReLU, global code 16, "
                    "memory 100 addressed by distance, 1 − SSIM score",
        error="ssim",
    ),
    "cifar10": Preset(
        "conv2d",
        {"input_shape": (32, 32, 3), "filters": (64, 128, 128, 256), "kernel_sizes": 3,
         "strides": 2, "activation": "leaky_relu", "num_items": 500,
         "output_activation": "sigmoid"},
        description="32×32×3 images; Conv 64-128-128-256, BN+LeakyReLU, memory 500",
    ),
    "video": Preset(
        "conv3d",
        {"input_shape": (16, 256, 256, 1), "filters": (96, 128, 256, 256), "kernel_sizes": 3,
         "strides": ((1, 2, 2), 2, 2, 2), "activation": "leaky_relu", "num_items": 2000,
         "output_activation": None},
        input_range=(-1.0, 1.0),
        description="16-frame 256×256 clips in [-1, 1]; Conv3D 96-128-256-256, memory 2000",
    ),
    # λ = 0.005 (a quarter of 1/N): the softmax over 50 items of a 3-value code stays
    # near uniform (1/N), where λ = 1/N cut weights almost at random. On the development
    # table (Shuttle, 5 splits) MemAE's AUROC rose from 0.890 ± 0.085 to 0.937 ± 0.026.
    "kdd": Preset(
        "dense",
        {"input_shape": (120,), "units": (60, 30, 10, 3), "activation": "tanh",
         "num_items": 50, "shrink_threshold": 0.005, "output_activation": None},
        description="120 min-max scaled features; Dense 60-30-10-3 tanh, memory 50, λ 0.005",
    ),
    # Any table, raw features in: the width comes from the data at the first `fit`
    # (or `input_shape=(d,)`), the layer widths from the width (`tabular_units`), and
    # the scaling is part of the model (`FeatureScaler`, adapted on the training rows,
    # saved and exported with it). Settings chosen on the tabular development suite
    # (benchmarks/TABULAR_PROTOCOL.md; RESULTS.md, "Tabular preset: the development suite").
    # Numbers only: categorical columns are one-hot encoded before (`encode_table` and
    # `load_table` in memae_tf.data do it, as `column=value` 0/1 columns, which the
    # scaler then scales like any other); ordinal codes may go in as numbers.
    # Memory of 200 items: chosen over 50 and 500 (λ a quarter of 1/N in each) by
    # MemAE's mean rank among the suite's six models on seed 0 (3.25 against 3.50);
    # on seeds 0-1 it ranks 3.75 against 3.62 for 50 items (RESULTS.md, HISTORY.md).
    # A code four times as wide as `tabular_units` first gave (`code_scale=4`: 8 values
    # for 8 or 9 features, 16 for 18, 32 from 33 on; it was 2 to 8), chosen over 1 and 2
    # by MemAE's mean rank among the suite's six models, each with its own AE, over seeds
    # 0-2: 3.50 against 3.62 (mean AUROC 0.8235 against 0.8097; TABULAR_PROTOCOL.md,
    # "Third choice"). The AE gains more from it than MemAE does (HISTORY.md).
    # λ = 1/N (0.005 for 200 items), in place of a quarter of 1/N (set for the narrow
    # code, whose near-uniform weights λ = 1/N cut almost at random): with the wide
    # code it was chosen over a quarter of 1/N and over nearest-item addressing by
    # MemAE's mean rank among the suite's six models over seeds 0-1: 3.25 against
    # 3.50 and 3.75 (mean AUROC 0.837 against 0.827 and 0.805; TABULAR_PROTOCOL.md,
    # "Fourth choice").
    # λ = 2/N (0.01 for 200 items): at 1/N a normal row's code was still rebuilt from
    # 50-60 items, and the memory rebuilt normal rows 2.7-3 times worse than the AE on
    # the tables where it cost most (Vowel, Vehicle). Chosen over 1/N and 4/N by MemAE's
    # mean rank among the suite's six models over seeds 0-2: 3.00 against 3.12 and 3.25
    # (mean AUROC 0.844 against 0.832 and 0.844; TABULAR_PROTOCOL.md, "Fifth choice").
    # 60 epochs of 100 steps (6,000 steps) for MemAE and its AE alike: at 2,000 steps
    # the memory still rebuilt normal rows worse than the AE; with 6,000 it catches up
    # on Vehicle, and on Vowel the AE rebuilds the anomalies too while the memory keeps
    # them out. Chosen over 20 epochs by MemAE's mean rank among the suite's six
    # models, each length with its own AE, over seeds 0-2: 2.75 against 3.00 (mean
    # AUROC 0.859 against 0.844; the AE 3.12 against 2.88; TABULAR_PROTOCOL.md,
    # "Sixth choice").
    "tabular": Preset(
        "dense",
        {"input_shape": None, "units": None, "code_scale": 4, "activation": "tanh",
         "num_items": 200, "shrink_threshold": 0.01, "output_activation": None,
         "scaling": "standard"},
        description="raw table rows, width from the data; standard scaling in the model; "
                    "Dense d-16..64-8..32-8..32 tanh, memory 200, λ 0.01",
        # 6,000 steps of 32 rows whatever the table's size (steps_per_epoch).
        training={"batch_size": 32, "steps_per_epoch": 100, "epochs": 60},
    ),
}


def get_preset(name: str) -> Preset:
    """Returns the preset called `name`, or raises a ValueError listing the known ones."""
    return PRESETS[check_choice("preset", name, tuple(sorted(PRESETS)))]


def build_autoencoder(
    preset: str = "mnist", variant: str = "memae", **overrides: Any
) -> keras.Model:
    """Builds the autoencoder of a preset in one of the paper's three variants.

    Args:
        preset: `"mnist"`, `"cifar10"`, `"video"`, `"kdd"` or `"tabular"`
            (which needs an `input_shape=(d,)` override here; `MemAE` takes it
            from the data).
        variant: `"memae"` (memory, shrinkage, entropy loss), `"memae-nonspar"`
            (memory, no shrinkage, no entropy loss) or `"ae"` (no memory).
        **overrides: Builder arguments that replace the preset's, e.g.
            `input_shape=(36,)`, `num_items=20`, `shrink_threshold=0.0025`,
            `entropy_weight=2e-4`, `filters=(8, 16)`. A `memory` override (the
            deprecated name of `variant`) must equal `variant`.

    Returns:
        An uncompiled functional `keras.Model` mapping inputs to reconstructions.

    Raises:
        ValueError: If a `memory` override differs from `variant`.

    Example:

    >>> model = build_autoencoder("kdd", "ae", input_shape=(36,))
    >>> model.output_shape
    (None, 36)
    """
    spec = get_preset(preset)
    builder = BUILDERS[spec.family]
    if "memory" in overrides and overrides["memory"] != variant:
        raise ValueError(
            "`memory` is the deprecated name of `variant`: pass `variant` only. Received: "
            f"variant={variant!r}, memory={overrides['memory']!r}"
        )
    kwargs = {**spec.kwargs, **overrides, "variant": check_variant(variant)}
    kwargs.setdefault("name", f"{variant.replace('-', '_')}_{preset}")
    try:
        return builder(**kwargs)
    except TypeError as error:
        raise TypeError(f"Invalid override for preset {preset!r}: {error}") from error


def build_from_config(config: dict[str, Any]) -> tuple[keras.Model, dict[str, Any], Preset]:
    """Builds the autoencoder of a detector config `{"preset", "variant", "overrides"}`.

    Missing keys take the defaults of `build_autoencoder` (`"mnist"`, `"memae"`, none).

    Returns:
        `(model, config, preset)`: the model, the config with all three keys (and
        `error` when given), and the `Preset`. The model is None for a preset
        that takes its width from the data (`tabular`) when the overrides give
        no `input_shape`: `MemAE` builds it at the first `fit`.
    """
    config = {"preset": config.get("preset", "mnist"), "variant": config.get("variant", "memae"),
              "overrides": dict(config.get("overrides", {})),
              **({"error": config["error"]} if "error" in config else {})}
    preset = get_preset(config["preset"])
    if preset.takes_width_from_data and config["overrides"].get("input_shape") is None:
        check_variant(config["variant"])
        return None, config, preset
    model = build_autoencoder(config["preset"], config["variant"], **config["overrides"])
    return model, config, preset
