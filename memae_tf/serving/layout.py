"""Reading a model base path: its versions (`memae_tf.common.contract`) and their fingerprints.

The layout itself (`<model_base_path>/<version>/`, the warmup records under
`assets.extra/`) is part of the serving contract; this module adds what only the
server needs. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import os
import pathlib


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

