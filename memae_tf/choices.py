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
SCORE_BATCH_SIZE = 256  # samples per forward pass when scoring
# Video evaluation (`evaluation.video`): frames no clip scores are interpolated or
# dropped; the frame a clip's score belongs to.
FILLS = ("interpolate", "drop")
ALIGNMENTS = ("end", "centre")
# How a clip's per-pixel error becomes the score of the frame it scores
# (`evaluation.frame_score`): the whole clip's mean, its last frame's mean, the
# last frame's worst patch, the last frame's error per unit of moving content,
# the last frame's mean plus the error of its change from the frame before.
FRAME_SCORES = ("clip", "last", "patch", "relative", "last_plus_temporal")
# `"patch"`: the side of its square windows and the pixels between them;
# `"relative"`: the floor added to the frame's moving content.
FRAME_SCORE_PATCH_SIZE = 8
FRAME_SCORE_PATCH_STRIDE = 4
FRAME_SCORE_CONTENT_FLOOR = 1e-3

