"""ODDS-style anomaly detection protocols on the real tables of mlbench.

Each protocol names the mlbench table, its normal classes and its anomaly
classes (rows of any other class are discarded), and how the features are
taken. Features are the raw values: numeric columns as they are; factor
columns whose levels are numbers (BreastCancer's ratings 1-10, Ionosphere's
0/1 column) become those numbers; columns that are not measurements of the
sample (Vowel's speaker, BreastCancer's Id) or are constant (Ionosphere's V2)
are dropped; rows with a missing value are dropped (BreastCancer: 16).
Nothing is scaled here: the `tabular` preset scales inside the model.

The anomalies are the smallest class of each table (ODDS' choice for Glass,
Ionosphere, Pima and BreastCancer, whose tables ODDS also derives from UCI;
for Shuttle ODDS takes the five smallest classes and discards class 4,
"High"); Vowel's 11 classes are all of one size, so its first class in the
factor's order, "hid", is the anomaly.

| protocol | normal | anomalies | rows | features | anomaly share |
|---|---|---|---|---|---|
| Shuttle | Rad.Flow | Fpv.Close, Fpv.Open, Bypass, Bpv.Close, Bpv.Open | 49,097 | 9 | 7.15% |
| Ionosphere | good | bad | 351 | 33 | 35.90% |
| PimaIndiansDiabetes | neg | pos | 768 | 8 | 34.90% |
| BreastCancer | benign | malignant | 683 | 9 | 34.99% |
| Vehicle | bus, opel, saab | van | 846 | 18 | 23.52% |
| Glass | 1, 2, 3, 5, 7 | 6 | 214 | 9 | 4.21% |
| Vowel | the 10 other vowels | hid | 990 | 9 | 9.09% |
| Sonar | M | R | 208 | 60 | 46.63% |
| Satellite (test) | red soil, grey soil, very damp grey soil | the 3 others | 6,435 | 36 | 31.64% |

Splits (`protocol_split`): split `k` draws a random half of the normal rows
(seeded by `k`) for training; the test rows are the other normal half and
every anomaly. Training sees normal rows only.

`LetterRecognition` is held out as an unseen table and has no protocol here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pandas as pd

from memae_tf.data.tabular import (
    MLBENCH_LABEL_COLUMNS,
    TabularData,
    encode_table,
    read_mlbench,
)


@dataclass(frozen=True)
class TableProtocol:
    """Which rows of an mlbench table are normal or anomalous, and how its features are taken.

    Attributes:
        table: The mlbench table.
        normal: The normal classes.
        anomalies: The anomaly classes; rows of other classes are discarded.
        numeric: Factor columns whose levels are numbers, taken as numbers.
        drop_columns: Columns that are not features.
    """

    table: str
    normal: tuple[str, ...]
    anomalies: tuple[str, ...]
    numeric: tuple[str, ...] = ()
    drop_columns: tuple[str, ...] = ()


_BREAST_CANCER_RATINGS = ("Cl.thickness", "Cell.size", "Cell.shape", "Marg.adhesion",
                          "Epith.c.size", "Bare.nuclei", "Bl.cromatin", "Normal.nucleoli",
                          "Mitoses")

# The development suite: tabular defaults are chosen on these.
DEVELOPMENT_PROTOCOLS: dict[str, TableProtocol] = {
    "Shuttle": TableProtocol(
        "Shuttle", ("Rad.Flow",), ("Fpv.Close", "Fpv.Open", "Bypass", "Bpv.Close", "Bpv.Open")),
    "Ionosphere": TableProtocol("Ionosphere", ("good",), ("bad",), numeric=("V1",),
                                drop_columns=("V2",)),
    "PimaIndiansDiabetes": TableProtocol("PimaIndiansDiabetes", ("neg",), ("pos",)),
    "BreastCancer": TableProtocol("BreastCancer", ("benign",), ("malignant",),
                                  numeric=_BREAST_CANCER_RATINGS, drop_columns=("Id",)),
    "Vehicle": TableProtocol("Vehicle", ("bus", "opel", "saab"), ("van",)),
    "Glass": TableProtocol("Glass", ("1", "2", "3", "5", "7"), ("6",)),
    "Vowel": TableProtocol(
        "Vowel", ("hId", "hEd", "hAd", "hYd", "had", "hOd", "hod", "hUd", "hud", "hed"),
        ("hid",), drop_columns=("V1",)),
    "Sonar": TableProtocol("Sonar", ("M",), ("R",)),
}
# Test tables, run once with the chosen defaults.
TEST_PROTOCOLS: dict[str, TableProtocol] = {
    "Satellite": TableProtocol(
        "Satellite", ("red soil", "grey soil", "very damp grey soil"),
        ("cotton crop", "damp grey soil", "vegetation stubble")),
}
PROTOCOLS = {**DEVELOPMENT_PROTOCOLS, **TEST_PROTOCOLS}


def get_protocol(name: str) -> TableProtocol:
    """The protocol called `name`, or a ValueError listing the known ones."""
    if name not in PROTOCOLS:
        raise ValueError(f"Unknown table protocol {name!r}. Expected one of {list(PROTOCOLS)}.")
    return PROTOCOLS[name]


def load_protocol(
    name: str, path: str | os.PathLike | None = None, download: bool = True
) -> TabularData:
    """Loads the table of a protocol as raw features and normal (0) / anomaly (1) labels.

    Args:
        name: A protocol of `PROTOCOLS` (see the module docstring).
        path: Explicit `.rda` file, or a folder holding it (see `load_mlbench`).
        download: Whether `fetch_mlbench()` may run when no copy is found.

    Returns:
        A `TabularData` holding the normal and anomaly rows only, features unscaled.

    Raises:
        DatasetNotFoundError: If the table is found nowhere.

    Example:

    ```python
    data = load_protocol("Glass", download=False)
    data.x.shape, data.y.mean()  # (214, 9), 0.042
    ```
    """
    protocol = get_protocol(name)
    frame = read_mlbench(protocol.table, path, download)
    label = MLBENCH_LABEL_COLUMNS[protocol.table]
    kept = frame[frame[label].astype(str).isin({*protocol.normal, *protocol.anomalies})]
    kept = kept.assign(**{column: pd.to_numeric(kept[column].astype(str), errors="coerce")
                          .where(kept[column].notna())
                          for column in protocol.numeric})
    return encode_table(kept, label, protocol.normal, drop_columns=protocol.drop_columns)


def protocol_split(y: np.ndarray, split: int, train_share: float = 0.5
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Training rows (a seeded share of the normal rows) and test rows (the rest).

    Args:
        y: Labels, 0 normal and 1 anomaly.
        split: Split number; it seeds the draw.
        train_share: Share of the normal rows used for training, in (0, 1).

    Returns:
        `(train_rows, test_rows)`, sorted: training rows are normal only; the
        test rows are the other normal rows and every anomaly.

    Example:

    >>> train, test = protocol_split(np.array([0, 0, 0, 0, 1]), split=0)
    >>> len(train), len(test), 4 in test
    (2, 3, True)
    """
    if not 0.0 < train_share < 1.0:
        raise ValueError(f"Expected `train_share` in (0, 1). Received: train_share={train_share!r}")
    normal = np.flatnonzero(np.asarray(y) == 0)
    order = np.random.default_rng(split).permutation(normal)
    train = np.sort(order[:round(train_share * len(normal))])
    return train, np.setdiff1d(np.arange(len(y)), train)
