"""The detector's file format: a Keras `.keras` archive with one extra metadata entry.

`save_archive` writes the model with `keras.Model.save` and adds
`memae_tf.json` (preset config, input range, threshold, error) to the zip, all
into a temporary file renamed over the target, so the path always holds a
complete archive. `load_archive` verifies the zip's checksums, reads the
metadata and loads the model in Keras' safe mode (no Lambda layers, no pickles).
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import keras

import memae_tf.layers  # noqa: F401  (registers MemoryLayer for keras.saving.load_model)

METADATA_ENTRY = "memae_tf.json"
KERAS_CONFIG_ENTRY = "config.json"
FORMAT_VERSION = 1


def save_archive(model: keras.Model, path: str | os.PathLike, metadata: dict[str, Any]) -> Path:
    """Atomically writes `model` and `metadata` to a `.keras` archive at `path`.

    Args:
        model: The Keras model.
        path: Target file, ending in `.keras`; its folder is created.
        metadata: JSON-serialisable detector metadata; `format_version` is added.

    Returns:
        The path written.

    Raises:
        ValueError: If `path` does not end in `.keras`.
    """
    path = Path(path)
    if path.suffix != ".keras":
        raise ValueError(f"The path must end in '.keras'. Received: path={str(path)!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    metadata = {"format_version": FORMAT_VERSION, **metadata}
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.",
                                         suffix=".partial.keras")
    os.close(handle)
    try:
        model.save(temporary)
        with zipfile.ZipFile(temporary, "a") as archive:
            archive.writestr(METADATA_ENTRY, json.dumps(metadata, indent=2))
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def read_archive_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """Checks that `path` is a complete Keras archive and returns the detector metadata.

    Returns:
        The metadata, or `{}` for a plain Keras model saved without it.

    Raises:
        ValueError: Naming the file and what is wrong with it.
    """
    where = repr(str(path))
    try:
        with zipfile.ZipFile(path) as archive:
            damaged = archive.testzip()
            names = archive.namelist()
            raw = archive.read(METADATA_ENTRY) if METADATA_ENTRY in names else None
            config = archive.read(KERAS_CONFIG_ENTRY) if KERAS_CONFIG_ENTRY in names else None
    except (zipfile.BadZipFile, EOFError, OSError) as error:
        raise ValueError(
            f"{where} is not a complete .keras archive (truncated or not a zip file): {error}"
        ) from error
    if damaged is not None:
        raise ValueError(
            f"{where} is corrupt or was tampered with: the checksum of its entry "
            f"{damaged!r} does not match."
        )
    if KERAS_CONFIG_ENTRY not in names:
        raise ValueError(
            f"{where} is a zip file but not a Keras model archive: expected an entry "
            f"{KERAS_CONFIG_ENTRY!r}. Received entries: {sorted(names)[:10]}"
        )
    model_config = _json_object(config, KERAS_CONFIG_ENTRY, where)
    if not {"class_name", "config"} <= model_config.keys():
        raise ValueError(
            f"{where}: expected {KERAS_CONFIG_ENTRY} to hold a serialised Keras model (keys "
            f"'class_name' and 'config'). Received keys: {sorted(model_config)[:10]}"
        )
    return {} if raw is None else _json_object(raw, METADATA_ENTRY, where)


def _json_object(raw: bytes, entry: str, where: str) -> dict[str, Any]:
    """The JSON object in the archive entry `entry`, or a ValueError naming the file."""
    try:
        value = json.loads(raw)
    except ValueError as error:
        raise ValueError(f"{where}: its {entry} is not valid JSON: {error}") from error
    if not isinstance(value, dict):
        raise ValueError(
            f"{where}: expected {entry} to hold a JSON object. Received: {type(value).__name__}"
        )
    return value


def load_archive(path: str | os.PathLike) -> tuple[keras.Model, dict[str, Any]]:
    """Reads a `.keras` archive written by `save_archive` (or a plain Keras model).

    Returns:
        `(model, metadata)`; the model is not compiled.

    Raises:
        FileNotFoundError: If there is no file at `path`.
        ValueError: If the file is truncated, corrupt or tampered with, or is
            not a Keras archive of a model (the message says which).
        TypeError: Keras' error for a model config naming a class this
            installation cannot find; other TypeErrors are bugs and pass as they are.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No saved detector at {str(path)!r}.")
    metadata = read_archive_metadata(path)
    try:
        model = keras.saving.load_model(path, safe_mode=True, compile=False)
    except (ValueError, OSError, KeyError) as error:  # what Keras and h5py raise for bad content
        raise ValueError(
            f"Could not load a detector from {str(path)!r}: {type(error).__name__}: {error}"
        ) from error
    return model, metadata
