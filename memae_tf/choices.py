"""The closed sets of names that the API and the `memae` command accept.

They live here, in a module that imports nothing, so that the command line can
build its parser (and answer `--help`) without importing TensorFlow. Each is
re-exported by the module that owns the concept (`models.memory_block`,
`distribute`, `evaluation.baselines`, `evaluation.one_class`, `scoring`).
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


def check_choice(name: str, value: object, choices: tuple[str, ...]) -> str:
    """Returns `value` if it is one of `choices`, else raises a ValueError naming both.

    Example:

    >>> check_choice("error", "l1", ERRORS)
    'l1'
    """
    if value not in choices:
        raise ValueError(
            f"Received an invalid value for `{name}`, expected one of {choices}. "
            f"Received: {name}={value!r}"
        )
    return value
