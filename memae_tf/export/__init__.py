"""Export of trained autoencoders as TF Serving SavedModels, with TF Serving's config files."""

from memae_tf.export.saved_model import (
    ATTENTION_SIGNATURE,
    FRAME_SCORE_SIGNATURE,
    INPUT_NAME,
    SCORE_MAP_SIGNATURE,
    SERVING_SIGNATURE,
    export_saved_model,
)
from memae_tf.export.serving_config import (
    BATCHING_PARAMETERS_FILENAME,
    DEFAULT_SERVING_ROOT,
    MODELS_CONFIG_FILENAME,
    BatchingParameters,
    models_config_entry,
    write_batching_parameters,
    write_models_config,
)
from memae_tf.export.warmup import write_warmup_requests

__all__ = [
    "ATTENTION_SIGNATURE",
    "BATCHING_PARAMETERS_FILENAME",
    "DEFAULT_SERVING_ROOT",
    "FRAME_SCORE_SIGNATURE",
    "INPUT_NAME",
    "MODELS_CONFIG_FILENAME",
    "SCORE_MAP_SIGNATURE",
    "SERVING_SIGNATURE",
    "BatchingParameters",
    "export_saved_model",
    "models_config_entry",
    "write_batching_parameters",
    "write_models_config",
    "write_warmup_requests",
]
