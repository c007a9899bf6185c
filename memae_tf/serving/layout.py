"""TF Serving's on-disk conventions for a model base path.

`<model_base_path>/<version>/` holds one SavedModel per integer version, and
`<version>/assets.extra/tf_serving_warmup_requests` the warmup requests. Shared
by the exporter (which writes this layout) and the development server (which
reads it); nothing here imports TensorFlow.
"""

from __future__ import annotations

import os
import pathlib

WARMUP_DIRNAME = "assets.extra"
WARMUP_FILENAME = "tf_serving_warmup_requests"


def version_directories(model_base_path: str | os.PathLike) -> dict[int, pathlib.Path]:
    """Returns version → directory for the versions under a model base path.

    Like TF Serving, only sub-directories named by a non-negative integer count,
    so in-progress exports in hidden temporary directories are ignored. A
    missing base path has no versions.

    Args:
        model_base_path: Directory of the model's versions.

    Returns:
        Dict sorted by version.

    Example:

    >>> version_directories("models/memae")  # doctest: +SKIP
    {1: PosixPath('models/memae/1'), 2: PosixPath('models/memae/2')}
    """
    base = pathlib.Path(model_base_path)
    if not base.is_dir():
        return {}
    found = {int(p.name): p for p in base.iterdir() if p.name.isdigit() and p.is_dir()}
    return dict(sorted(found.items()))


def directory_fingerprint(path: str | os.PathLike) -> tuple[tuple[str, int, int], ...]:
    """Returns (relative path, size, mtime in ns) of every file under `path`, sorted.

    Two equal fingerprints mean nothing was written in between, e.g. to tell a
    version directory still being copied from one that is complete.
    """
    root = pathlib.Path(path)
    entries = []
    for folder, _, files in os.walk(root):
        for name in files:
            file = pathlib.Path(folder) / name
            try:
                stat = file.stat()
            except OSError:  # removed while listing
                continue
            entries.append((str(file.relative_to(root)), stat.st_size, stat.st_mtime_ns))
    return tuple(sorted(entries))


def warmup_file(version_dir: str | os.PathLike) -> pathlib.Path:
    """Returns the path of the warmup records inside a SavedModel version directory."""
    return pathlib.Path(version_dir) / WARMUP_DIRNAME / WARMUP_FILENAME
