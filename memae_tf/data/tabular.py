"""Tables with a class column, turned into an anomaly detection problem.

A table (CSV, Parquet, or an R data frame in `.rda` / `.rds`) has feature
columns and one label column. The user names the *normal* classes; every other
class is an anomaly. `encode_table` returns numpy arrays:

- `x` float32: numeric columns as they are (booleans as 0/1), and each
  categorical column one-hot encoded in its place, as `column=value` features.
  Categorical columns are the non-numeric ones (strings, R factors) plus any
  named in `categorical`. Their vocabulary is the factor's levels for a pandas
  categorical (R factors keep unused levels), otherwise the sorted distinct values.
- `y` int64: 0 for a row of a normal class, 1 for an anomaly.
- `numeric_columns`: indices of the non-one-hot columns of `x`, to min-max scale
  with `MinMaxScaler(columns=...)` fit on the training rows only (scaling is
  left to the caller because only the caller knows which rows are training rows).

Rows with a missing value (NaN / NA) in any kept column, label included, are
dropped; `TabularData.rows` gives the original positions of the rows kept.

mlbench tables: the R package mlbench ships classic UCI tables (Shuttle,
Satellite, Ionosphere, BreastCancer, PimaIndiansDiabetes, ...) as `.rda` files.
Debian packages it as `r-cran-mlbench`; `fetch_mlbench()` downloads and unpacks
that package with `apt-get download` and `dpkg -x`, without installing it.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from memae_tf.data.sources import Download, cache_dir, fetch_debian_files, resolve

MLBENCH_DEBIAN_PACKAGE = "r-cran-mlbench"
MLBENCH_PACKAGE_DATA = Path("usr/lib/R/site-library/mlbench/data")

# Label column, and columns that are identifiers rather than features, of the
# mlbench classification tables.
MLBENCH_LABEL_COLUMNS = {
    "BreastCancer": "Class",
    "DNA": "Class",
    "Glass": "Type",
    "HouseVotes84": "Class",
    "Ionosphere": "Class",
    "LetterRecognition": "lettr",
    "PimaIndiansDiabetes": "diabetes",
    "PimaIndiansDiabetes2": "diabetes",
    "Satellite": "classes",
    "Shuttle": "Class",
    "Sonar": "Class",
    "Soybean": "Class",
    "Vehicle": "Class",
    "Vowel": "Class",
    "Zoo": "type",
}
MLBENCH_ID_COLUMNS = {"BreastCancer": ("Id",)}


@dataclass(frozen=True)
class TabularData:
    """An encoded table: features, anomaly labels and what each column means.

    Attributes:
        x: float32 features `(n, d)`, unscaled.
        y: int64 `(n,)`, 0 for normal rows and 1 for anomalies.
        labels: `(n,)` original class of each row, as strings.
        feature_names: The `d` feature names; one-hot features are `column=value`.
        numeric_columns: int64 indices of the columns of `x` that are not one-hot.
        rows: int64 `(n,)` positions of the kept rows in the original table.
    """

    x: np.ndarray
    y: np.ndarray
    labels: np.ndarray
    feature_names: tuple[str, ...]
    numeric_columns: np.ndarray
    rows: np.ndarray


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    """Reads a CSV (`.csv`, `.csv.gz`), Parquet (`.parquet`, `.pq`) or R (`.rda`, `.rds`) table.

    Args:
        path: The file. The first row of a CSV file is its header. An `.rda`
            file must hold one data frame, or one named like the file.

    Returns:
        The table as a pandas DataFrame (R factors become pandas categoricals).

    Raises:
        ValueError: If the file type is unknown or an `.rda` file holds several
            objects, none named like the file.
        ImportError: If a Parquet file is read without `pyarrow` installed.

    Example:

    ```python
    frame = read_table("Shuttle.rda")
    ```
    """
    path = Path(path)
    name = path.name.lower()
    if name.endswith((".csv", ".csv.gz")):
        return pd.read_csv(path)
    if name.endswith((".parquet", ".pq")):
        return pd.read_parquet(path)
    if name.endswith((".rda", ".rdata", ".rds")):
        return _read_r(path)
    raise ValueError(
        f"Unknown table format for {path}: expected a name ending in .csv, .csv.gz, "
        f".parquet, .pq, .rda, .rdata or .rds."
    )


def _read_r(path: Path) -> pd.DataFrame:
    import rdata

    with warnings.catch_warnings():
        # Files saved by old R versions carry no encoding tag; rdata then assumes
        # ASCII and says so once per string, which is right for these tables.
        warnings.filterwarnings("ignore", message="Unknown encoding", category=UserWarning)
        try:
            objects = ({path.stem: rdata.read_rds(path)} if path.suffix.lower() == ".rds"
                       else rdata.read_rda(path))
        except Exception as error:  # rdata raises anything from EOFError to NotImplementedError
            raise ValueError(
                f"{path}: could not be read as R data; expected a complete .rda/.rds file "
                f"(truncated or corrupt?). Received: {type(error).__name__}: {error}"
            ) from error
    if path.stem in objects:
        table = objects[path.stem]
    elif len(objects) == 1:
        table = next(iter(objects.values()))
    else:
        raise ValueError(
            f"{path}: expected one data frame, or one named {path.stem!r}. "
            f"Received objects: {sorted(objects)}"
        )
    if not isinstance(table, pd.DataFrame):
        raise ValueError(f"{path}: expected an R data frame. Received: {type(table).__name__}")
    return table


def encode_features(
    frame: pd.DataFrame, categories: Mapping[str, Sequence] | None = None
) -> tuple[np.ndarray, tuple[str, ...], np.ndarray]:
    """One-hot encodes the categorical columns of a table without missing values.

    Args:
        frame: The feature columns only.
        categories: Fixed vocabularies `{column: values}`. Those columns are
            one-hot encoded with exactly these values, in this order, whatever
            the rows hold. Other non-numeric columns use their own vocabulary
            (categorical levels, or sorted distinct values).

    Returns:
        `(x, feature_names, numeric_columns)` as in `TabularData`.

    Raises:
        ValueError: If a value is not in its column's fixed vocabulary, or a
            value is missing.

    Example:

    ```python
    frame = pd.DataFrame({"size": [1.0, 2.0], "colour": ["red", "blue"]})
    x, names, numeric = encode_features(frame)
    # names == ("size", "colour=blue", "colour=red"); numeric == [0]
    ```
    """
    categories = dict(categories or {})
    blocks, names, numeric = [], [], []
    for column in frame.columns:
        values = frame[column]
        if values.isna().any():
            raise ValueError(f"Column {column!r}: expected no missing values, found some.")
        if column not in categories and _is_numeric(values):
            numeric.append(sum(block.shape[1] for block in blocks))
            blocks.append(values.to_numpy(np.float32).reshape(-1, 1))
            names.append(str(column))
            continue
        vocabulary = list(categories.get(column, _vocabulary(values)))
        codes = pd.Index(vocabulary).get_indexer(values.to_numpy())  # -1: not in it
        if (codes < 0).any():
            unknown = sorted({str(v) for v in values[codes < 0]})
            raise ValueError(
                f"Column {column!r}: expected values in its vocabulary {vocabulary}. "
                f"Received unknown values: {unknown}"
            )
        one_hot = np.zeros((len(codes), len(vocabulary)), np.float32)
        one_hot[np.arange(len(codes)), codes] = 1.0
        blocks.append(one_hot)
        names.extend(f"{column}={value}" for value in vocabulary)
    x = np.concatenate(blocks, axis=1) if blocks else np.zeros((len(frame), 0), np.float32)
    return x, tuple(names), np.asarray(numeric, np.int64)


def _is_numeric(values: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(values) and not isinstance(
        values.dtype, pd.CategoricalDtype
    )


def _vocabulary(values: pd.Series) -> list:
    if isinstance(values.dtype, pd.CategoricalDtype):
        return list(values.dtype.categories)
    distinct = values.unique().tolist()
    try:
        return sorted(distinct)
    except TypeError:  # mixed types, e.g. numbers and strings in one object column
        return sorted(distinct, key=str)


def encode_table(
    frame: pd.DataFrame,
    label_column: str,
    normal_classes: Sequence,
    *,
    drop_columns: Sequence[str] = (),
    categorical: Sequence[str] = (),
) -> TabularData:
    """Turns a table into features and normal (0) / anomaly (1) labels.

    Args:
        frame: The table.
        label_column: The class column.
        normal_classes: Classes counted as normal; all others are anomalies.
            Classes compare as strings, so `[1]` and `["1"]` both name class 1.
        drop_columns: Columns that are not features (identifiers, other targets).
        categorical: Numeric columns to one-hot encode anyway (integer codes).

    Returns:
        A `TabularData`; rows with a missing value are dropped.

    Raises:
        ValueError: If a named column is missing, `normal_classes` is empty, or
            a normal class does not occur in the table.

    Example:

    ```python
    frame = pd.DataFrame({"v": [0.5, 0.1, 0.9], "kind": ["a", "b", "a"]})
    data = encode_table(frame, "kind", normal_classes=["a"])
    # data.y == [0, 1, 0]
    ```
    """
    named = [label_column, *drop_columns, *categorical]
    missing = [column for column in named if column not in frame.columns]
    if missing:
        raise ValueError(
            f"Expected columns {missing} in the table. Received columns: {list(frame.columns)}"
        )
    normal = {str(c) for c in normal_classes}
    if not normal:
        raise ValueError("Expected at least one normal class. Received: normal_classes=[]")

    kept = frame.drop(columns=list(drop_columns)).reset_index(drop=True)
    complete = kept.notna().all(axis=1).to_numpy()
    kept = kept[complete]
    labels = kept[label_column].astype(str).to_numpy(dtype=object)
    absent = sorted(normal - set(labels))
    if absent:
        raise ValueError(
            f"Normal classes {absent} do not occur in column {label_column!r}. "
            f"Received classes: {sorted(set(labels))}"
        )
    features = kept.drop(columns=[label_column])
    fixed = {column: _vocabulary(features[column]) for column in categorical}
    x, names, numeric = encode_features(features, fixed)
    y = np.array([label not in normal for label in labels], np.int64)
    return TabularData(x, y, labels, names, numeric, np.flatnonzero(complete))


def load_table(
    path: str | os.PathLike,
    label_column: str,
    normal_classes: Sequence,
    *,
    drop_columns: Sequence[str] = (),
    categorical: Sequence[str] = (),
) -> TabularData:
    """Reads a table file with `read_table` and encodes it with `encode_table`.

    Args:
        path: CSV, Parquet or R file.
        label_column: The class column.
        normal_classes: Classes counted as normal.
        drop_columns: Columns that are not features.
        categorical: Numeric columns to one-hot encode anyway.

    Returns:
        A `TabularData`.

    Example:

    ```python
    data = load_table("credit.parquet", "Class", normal_classes=[0])
    ```
    """
    return encode_table(
        read_table(path),
        label_column,
        normal_classes,
        drop_columns=drop_columns,
        categorical=categorical,
    )


def load_mlbench(
    name: str,
    normal_classes: Sequence,
    *,
    label_column: str | None = None,
    drop_columns: Sequence[str] | None = None,
    path: str | os.PathLike | None = None,
    download: bool = True,
) -> TabularData:
    """Loads a table of the R package mlbench as an anomaly detection problem.

    The `.rda` file is searched as described in `memae_tf.data.sources`: the
    explicit `path`; `NAME.rda` or `mlbench/NAME.rda` in the local data folders
    (`fetch_mlbench` fills `~/.cache/memae_tf/mlbench`); the Debian package's
    folder `/usr/lib/R/site-library/mlbench/data`; then, when allowed,
    `fetch_mlbench()`.

    Args:
        name: Table name, as the file is named, e.g. `"Shuttle"`.
        normal_classes: Classes counted as normal, e.g. `["Rad.Flow"]` for Shuttle.
        label_column: The class column; known for the tables of
            `MLBENCH_LABEL_COLUMNS`, required for others.
        drop_columns: Columns that are not features; defaults to the table's
            identifier columns (`MLBENCH_ID_COLUMNS`).
        path: Explicit `.rda` file, or a folder holding `NAME.rda`.
        download: Whether `fetch_mlbench()` may run when no copy is found.

    Returns:
        A `TabularData`.

    Raises:
        DatasetNotFoundError: If the table is found nowhere.
        ValueError: If `label_column` is needed and not given.

    Example:

    ```python
    data = load_mlbench("Shuttle", normal_classes=["Rad.Flow"], download=False)
    ```
    """
    label_column = label_column or MLBENCH_LABEL_COLUMNS.get(name)
    if label_column is None:
        raise ValueError(
            f"No known label column for mlbench table {name!r}: pass `label_column=`. "
            f"Known tables: {sorted(MLBENCH_LABEL_COLUMNS)}"
        )
    if drop_columns is None:
        drop_columns = MLBENCH_ID_COLUMNS.get(name, ())
    frame = read_mlbench(name, path, download)
    return encode_table(frame, label_column, normal_classes, drop_columns=drop_columns)


def read_mlbench(
    name: str, path: str | os.PathLike | None = None, download: bool = True
) -> pd.DataFrame:
    """Reads a table of the R package mlbench as it is (factors as pandas categoricals).

    Searched as `load_mlbench` describes.

    Args:
        name: Table name, as the file is named, e.g. `"Shuttle"`.
        path: Explicit `.rda` file, or a folder holding `NAME.rda`.
        download: Whether `fetch_mlbench()` may run when no copy is found.

    Returns:
        The table as a pandas DataFrame.

    Raises:
        DatasetNotFoundError: If the table is found nowhere.

    Example:

    ```python
    frame = read_mlbench("Glass", download=False)
    ```
    """
    filename = f"{name}.rda"
    if path is not None and Path(path).is_dir():
        path = Path(path) / filename
    return resolve(
        f"mlbench {name}",
        read_table,
        path=path,
        filenames=(filename, f"mlbench/{filename}"),
        offline={"Debian package r-cran-mlbench": Path("/") / MLBENCH_PACKAGE_DATA / filename},
        download=Download(
            f"apt-get download {MLBENCH_DEBIAN_PACKAGE}",
            lambda: read_table(fetch_mlbench() / filename),
        ),
        allow_download=download,
    )


def fetch_mlbench(destination: str | os.PathLike | None = None) -> Path:
    """Downloads the Debian package r-cran-mlbench and copies its `.rda` tables to a folder.

    Runs `apt-get download r-cran-mlbench` and `dpkg -x` in a temporary folder
    (no root needed, nothing is installed), then copies
    `usr/lib/R/site-library/mlbench/data/*.rda` to `destination`.

    Args:
        destination: Target folder; defaults to `~/.cache/memae_tf/mlbench`,
            where `load_mlbench` looks.

    Returns:
        The folder holding the `.rda` files.

    Raises:
        RuntimeError: If `apt-get` or `dpkg` is missing (not a Debian-like system).
        subprocess.CalledProcessError: If the download or the extraction fails.

    Example:

    ```python
    folder = fetch_mlbench()  # then load_mlbench("Shuttle", ["Rad.Flow"]) finds it
    ```
    """
    destination = Path(destination) if destination else cache_dir() / "mlbench"
    return fetch_debian_files(MLBENCH_DEBIAN_PACKAGE, MLBENCH_PACKAGE_DATA, ["*.rda"],
                              destination)
