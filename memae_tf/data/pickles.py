"""Reading the pickled numpy datasets (MNIST `mnist.pkl.gz`, CIFAR-10 batches) safely.

Those files are pickles written by Python 2 with numpy arrays inside. A plain
`pickle.load` would run whatever code a tampered file names, so `load_pickle`
only lets a pickle build numpy arrays, dtypes and the built-in containers.
"""

from __future__ import annotations

import gzip
import os
import pickle
import zlib
from pathlib import Path
from typing import Any, BinaryIO

# (module, name) pairs a data pickle may reference: enough to rebuild numpy
# arrays written by numpy 1.x ("numpy.core") or 2.x ("numpy._core"), with any
# protocol (protocol 2 from Python 3 encodes bytes through `_codecs.encode`).
_ALLOWED_GLOBALS = frozenset(
    (f"{package}.{module}", name)
    for package in ("numpy.core", "numpy._core")
    for module, name in (
        ("multiarray", "_reconstruct"),
        ("multiarray", "scalar"),
        ("numeric", "_frombuffer"),
    )
) | {("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}


class _NumpyOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(
                f"Refusing to load `{module}.{name}` from a data pickle: only numpy arrays "
                f"and built-in containers are expected."
            )
        return super().find_class(module, name)


def load_pickle(source: str | os.PathLike | BinaryIO) -> Any:
    """Loads a Python 2 or 3 data pickle, gzip-compressed or not, allowing only numpy objects.

    Args:
        source: Pickle file (a name ending in `.gz` is decompressed), or an open
            binary stream positioned at the pickle.

    Returns:
        The unpickled object (Python 2 `str` objects are decoded as latin-1,
        which keeps numpy array buffers byte-exact).

    Raises:
        pickle.UnpicklingError: If the pickle references anything but numpy
            arrays, dtypes and built-in containers, or is not a pickle.
        ValueError: If the file is truncated or its gzip stream is corrupt.

    Example:

    ```python
    train, valid, test = load_pickle("mnist.pkl.gz")
    ```
    """
    if not isinstance(source, str | os.PathLike):
        return _NumpyOnlyUnpickler(source, encoding="latin1").load()
    path = Path(source)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as stream:
            return _NumpyOnlyUnpickler(stream, encoding="latin1").load()
    except (EOFError, gzip.BadGzipFile, zlib.error, ValueError) as error:
        raise ValueError(
            f"Invalid pickle file {path}: expected a complete pickle (truncated or corrupt). "
            f"Received: {type(error).__name__}: {error}"
        ) from error
