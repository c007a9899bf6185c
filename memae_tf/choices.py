"""The closed sets of names that the API and the `memae` command accept, and shared defaults.

They live here, in a module that imports nothing, so that the command line can
build its parser (and answer `--help`) without importing TensorFlow. Each is
re-exported by the module that owns the concept (`models.memory_block`,
`distribute`, `evaluation.baselines`, `evaluation.one_class`, `evaluation.video`,
`scoring_graph`). Check a value with `memae_tf.common.checks.check_choice`.
"""

VARIANTS = ("memae", "memae-nonspar", "ae")
MEMORY_INITS = ("data", "keep")  # see `adapt_memory` and `MemAE.fit(memory_init=...)`
LR_DECAYS = ("auto", "cosine", "none")  # see `TrainingConfig.lr_decay`
STRATEGIES = ("auto", "default", "mirrored", "multiworker")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
BASELINES = ("ocsvm", "iforest", "lof", "ecod")
PREPROCESSING = ("none", "gcn")
# Reconstruction errors that score a sample: the paper's squared error, the
# absolute error of the authors' released code, and one minus the structural
# similarity (SSIM) of image and reconstruction (images only).
ERRORS = ("mse", "l1", "ssim")
DEFAULT_ERROR = "mse"  # of a custom model, and of presets that name none
# Samples per forward pass when scoring, unless a `batch_size` is given: as many
# as hold SCORE_BATCH_VALUES input values, a power of two from 1 to
# SCORE_BATCH_MAX (`score_batch_size`).
SCORE_BATCH_VALUES = 2**20
SCORE_BATCH_MAX = 1024
# Video evaluation (`evaluation.video`): frames no clip scores are interpolated or
# dropped; the frame a clip's score belongs to.
FILLS = ("interpolate", "drop")
ALIGNMENTS = ("end", "centre")
# Settings of the frame scores (`evaluation.frame_score`; their names,
# `FRAME_SCORES`, are the serving contract's, `memae_tf.common.contract`):
# `"patch"`: the side of its square windows and the pixels between them;
# `"relative"`: the floor added to the frame's moving content.
FRAME_SCORE_PATCH_SIZE = 8
FRAME_SCORE_PATCH_STRIDE = 4
FRAME_SCORE_CONTENT_FLOOR = 1e-3


def score_batch_size(sample_shape: tuple[int, ...]) -> int:
    """The default scoring batch for samples of `sample_shape`.

    The largest power of two of samples whose input values fit in
    `SCORE_BATCH_VALUES` (2²⁰, 4 MiB of float32), at most `SCORE_BATCH_MAX`
    and at least 1: large batches cost less per sample on a CPU, and the
    bound keeps a batch of video clips within memory.

    Args:
        sample_shape: One sample's shape, e.g. `(28, 28, 1)`.

    Returns:
        Samples per forward pass.

    Example:

    >>> score_batch_size((28, 28, 1)), score_batch_size((32, 32, 3))
    (1024, 256)
    >>> score_batch_size((16, 256, 256, 1))
    1
    """
    values = 1
    for size in sample_shape:
        values *= int(size)
    fitting = max(1, SCORE_BATCH_VALUES // max(values, 1))
    return min(SCORE_BATCH_MAX, 1 << (fitting.bit_length() - 1))
