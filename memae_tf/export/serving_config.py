"""TF Serving configuration files written next to the exported models.

TF Serving reads two text-format protobuf files beside the model directories:
`models.config` (a `ModelServerConfig` with one `model_config_list` entry per
model name, passed with `--model_config_file`) and `batching_parameters.txt`
(the `BatchingParameters` passed with `--batching_parameters_file` when
`--enable_batching` is on).
"""

from __future__ import annotations

import os
import pathlib
import posixpath
import tempfile
from dataclasses import dataclass, fields

from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from memae_tf.common.contract import DEFAULT_MAX_BATCH_SIZE

MODELS_CONFIG_FILENAME = "models.config"
BATCHING_PARAMETERS_FILENAME = "batching_parameters.txt"
DEFAULT_SERVING_ROOT = "/models"


@dataclass(frozen=True)
class BatchingParameters:
    """Server-side batching settings of TF Serving (`--enable_batching`).

    TF Serving merges concurrent requests into one batch of at most
    `max_batch_size` rows, waiting at most `batch_timeout_micros` for a batch
    to fill, with `num_batch_threads` batches running in parallel and at most
    `max_enqueued_batches` waiting.

    Args:
        max_batch_size: Positive integer, the largest merged batch.
        batch_timeout_micros: Non-negative integer, the longest wait in µs.
        max_enqueued_batches: Positive integer, the queue length.
        num_batch_threads: Positive integer, batches processed in parallel.

    Example:

    >>> print(BatchingParameters(max_batch_size=32).to_text().splitlines()[0])
    max_batch_size { value: 32 }
    """

    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE
    batch_timeout_micros: int = 2000
    max_enqueued_batches: int = 100
    num_batch_threads: int = 4

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            minimum = 0 if field.name == "batch_timeout_micros" else 1
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ValueError(
                    f"Received an invalid value for `{field.name}`, expected an integer "
                    f">= {minimum}. Received: {field.name}={value!r}"
                )

    def to_text(self) -> str:
        """Returns the `BatchingParameters` text proto that TF Serving reads."""
        return "".join(
            f"{field.name} {{ value: {getattr(self, field.name)} }}\n" for field in fields(self)
        )


def _write_atomically(path: pathlib.Path, text: str) -> None:
    # TF Serving re-reads its config files while running; never show it half a file.
    handle, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        # mkstemp makes the file private; the server may run as another user.
        os.chmod(temp_name, 0o644)
        os.replace(temp_name, path)
    except BaseException:
        pathlib.Path(temp_name).unlink(missing_ok=True)
        raise


def models_config_entry(
    model_name: str, serving_root: str = DEFAULT_SERVING_ROOT
) -> model_server_config_pb2.ModelConfig:
    """Returns the `model_config_list` entry that serves `model_name` (latest version).

    Args:
        model_name: The model name clients ask for.
        serving_root: The directory that holds the model directories inside
            the TF Serving container (the model volume's mount path).

    Returns:
        A `ModelConfig` with `base_path = serving_root/model_name`, platform
        `tensorflow` and the version policy "latest".
    """
    entry = model_server_config_pb2.ModelConfig(
        name=model_name,
        base_path=posixpath.join(serving_root, model_name),
        model_platform="tensorflow",
    )
    entry.model_version_policy.latest.num_versions = 1
    return entry


def write_models_config(
    config_dir: str | os.PathLike, model_name: str, serving_root: str = DEFAULT_SERVING_ROOT
) -> pathlib.Path:
    """Adds or replaces the entry of `model_name` in `config_dir/models.config`.

    Entries of other models are kept, so several exported models share one file.

    Args:
        config_dir: Directory of the file (the parent of the model base paths).
        model_name: The model name.
        serving_root: Where `config_dir` is mounted inside the server container.

    Returns:
        The path of `models.config`.

    Example:

    >>> write_models_config("models", "memae")  # doctest: +SKIP
    PosixPath('models/models.config')
    """
    path = pathlib.Path(config_dir) / MODELS_CONFIG_FILENAME
    config = model_server_config_pb2.ModelServerConfig()
    if path.exists():
        text_format.Parse(path.read_text(encoding="utf-8"), config)
    entries = config.model_config_list.config
    kept = [entry for entry in entries if entry.name != model_name]
    del entries[:]
    entries.extend([*kept, models_config_entry(model_name, serving_root)])
    _write_atomically(path, text_format.MessageToString(config))
    return path


def write_batching_parameters(
    config_dir: str | os.PathLike, parameters: BatchingParameters | None = None
) -> pathlib.Path:
    """Writes `config_dir/batching_parameters.txt`.

    Args:
        config_dir: Directory of the file.
        parameters: The settings; `None` means `BatchingParameters()`.

    Returns:
        The path of the file.
    """
    parameters = BatchingParameters() if parameters is None else parameters
    path = pathlib.Path(config_dir) / BATCHING_PARAMETERS_FILENAME
    _write_atomically(path, parameters.to_text())
    return path
