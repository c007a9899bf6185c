"""KDDCUP99 10% network intrusion data, encoded as in DAGMM (Zong et al., 2018) and MemAE.

Each line of `kddcup.data_10_percent` (494 021 connections) has 41 comma-separated
features and a label ending with ".", e.g. `smurf.` or `normal.`.

Encoding:

- the 3 symbolic columns `protocol_type`, `service` and `flag` are one-hot
  encoded with fixed vocabularies, so any file (even a few lines) gives the same
  columns: `PROTOCOLS` (3), `SERVICES` (the 66 services of the 10% set) and
  `FLAGS` (11). Each one-hot block takes its column's place;
- the other 38 columns are kept as numbers, unscaled. Min-max scale them with
  `MinMaxScaler(columns=data.numeric_columns)` fit on the training rows only;
- labels are inverted, as in DAGMM: about 80% of the 10% set is attack
  traffic, so attacks are the *normal* class (y = 0) and the `normal.`
  connections (about 20%) are the anomalies (y = 1).

That gives 38 + 3 + 66 + 11 = 118 features. DAGMM and MemAE report 120
dimensions, which this one-hot encoding of the 10% set cannot produce: the 10%
set holds 66 distinct services (and every protocol and flag). The complete
KDDCUP99 training set adds 4 more services (`aol`, `harvest`, `http_2784`,
`http_8001`, giving 122 features) and its corrected test set one more (`icmp`).
118 is also the width of the widely used preprocessed `kdd_cup.npz` of DAGMM
reproductions. A row whose service is not among the 66 raises an error rather
than being silently mis-encoded.

Search order (see `memae_tf.data.sources`): the explicit `path`;
`kddcup.data_10_percent[.gz]` or `kddcup.data_10_percent_corrected` in the local
data folders; then `sklearn.datasets.fetch_kddcup99(percent10=True)` when
downloads are allowed (it reuses scikit-learn's own cache when present).
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from memae_tf.data.sources import Download, resolve
from memae_tf.data.tabular import TabularData, encode_features

COLUMNS = (
    "duration",
    "protocol_type",
    "service",
    "flag",
    "src_bytes",
    "dst_bytes",
    "land",
    "wrong_fragment",
    "urgent",
    "hot",
    "num_failed_logins",
    "logged_in",
    "num_compromised",
    "root_shell",
    "su_attempted",
    "num_root",
    "num_file_creations",
    "num_shells",
    "num_access_files",
    "num_outbound_cmds",
    "is_host_login",
    "is_guest_login",
    "count",
    "srv_count",
    "serror_rate",
    "srv_serror_rate",
    "rerror_rate",
    "srv_rerror_rate",
    "same_srv_rate",
    "diff_srv_rate",
    "srv_diff_host_rate",
    "dst_host_count",
    "dst_host_srv_count",
    "dst_host_same_srv_rate",
    "dst_host_diff_srv_rate",
    "dst_host_same_src_port_rate",
    "dst_host_srv_diff_host_rate",
    "dst_host_serror_rate",
    "dst_host_srv_serror_rate",
    "dst_host_rerror_rate",
    "dst_host_srv_rerror_rate",
)

PROTOCOLS = ("icmp", "tcp", "udp")
FLAGS = ("OTH", "REJ", "RSTO", "RSTOS0", "RSTR", "S0", "S1", "S2", "S3", "SF", "SH")
SERVICES = (
    "IRC",
    "X11",
    "Z39_50",
    "auth",
    "bgp",
    "courier",
    "csnet_ns",
    "ctf",
    "daytime",
    "discard",
    "domain",
    "domain_u",
    "echo",
    "eco_i",
    "ecr_i",
    "efs",
    "exec",
    "finger",
    "ftp",
    "ftp_data",
    "gopher",
    "hostnames",
    "http",
    "http_443",
    "imap4",
    "iso_tsap",
    "klogin",
    "kshell",
    "ldap",
    "link",
    "login",
    "mtp",
    "name",
    "netbios_dgm",
    "netbios_ns",
    "netbios_ssn",
    "netstat",
    "nnsp",
    "nntp",
    "ntp_u",
    "other",
    "pm_dump",
    "pop_2",
    "pop_3",
    "printer",
    "private",
    "red_i",
    "remote_job",
    "rje",
    "shell",
    "smtp",
    "sql_net",
    "ssh",
    "sunrpc",
    "supdup",
    "systat",
    "telnet",
    "tftp_u",
    "tim_i",
    "time",
    "urh_i",
    "urp_i",
    "uucp",
    "uucp_path",
    "vmnet",
    "whois",
)
CATEGORIES = {"protocol_type": PROTOCOLS, "service": SERVICES, "flag": FLAGS}
ANOMALY_LABEL = "normal"


def load_kddcup99(path: str | os.PathLike | None = None, download: bool = True) -> TabularData:
    """Loads KDDCUP99 10% with one-hot symbolic columns and DAGMM's inverted labels.

    Args:
        path: Explicit `kddcup.data_10_percent` file, plain or `.gz`. When given,
            nothing else is searched.
        download: Whether `sklearn.datasets.fetch_kddcup99(percent10=True)` may
            be tried when no local copy is found.

    Returns:
        A `TabularData` with `x` float32 `(n, 118)` unscaled, `y` int64 (1 for
        the `normal.` connections, 0 for attacks), `labels` without the final
        ".", the 118 `feature_names` and the 38 `numeric_columns`.

    Raises:
        DatasetNotFoundError: If the data is found nowhere.
        ValueError: If a line does not have 42 fields or holds an unknown
            protocol, service or flag.

    Example:

    ```python
    data = load_kddcup99(download=False)
    scaler = MinMaxScaler(columns=data.numeric_columns).fit(data.x[train_rows])
    x_train = scaler.transform(data.x[train_rows])
    ```
    """
    return resolve(
        "KDDCUP99 10%",
        read_kddcup99,
        path=path,
        filenames=(
            "kddcup.data_10_percent",
            "kddcup.data_10_percent.gz",
            "kddcup.data_10_percent_corrected",
        ),
        download=Download("sklearn.datasets.fetch_kddcup99(percent10=True)", _download),
        allow_download=download,
    )


def read_kddcup99(path: str | os.PathLike) -> TabularData:
    """Reads and encodes a file in the KDDCUP99 format (plain, or gzip if named `.gz`).

    Args:
        path: The file: one connection a line, 41 features and a label.

    Returns:
        A `TabularData`, as in `load_kddcup99`.
    """
    frame = pd.read_csv(path, header=None, dtype={1: str, 2: str, 3: str, 41: str})
    if frame.shape[1] != len(COLUMNS) + 1:
        raise ValueError(
            f"KDDCUP99 file {path}: expected {len(COLUMNS) + 1} fields a line (41 features "
            f"and a label). Received: {frame.shape[1]}"
        )
    return encode_kddcup99(frame.iloc[:, :-1], frame.iloc[:, -1])


def encode_kddcup99(features: pd.DataFrame, labels: pd.Series) -> TabularData:
    """Encodes KDDCUP99 rows: fixed one-hot vocabularies, labels `normal` → 1, attacks → 0.

    Args:
        features: The 41 feature columns, in the dataset's order (names are replaced
            by `COLUMNS`).
        labels: Labels such as `"smurf."` or `"normal."` (the final "." is optional).

    Returns:
        A `TabularData`, as in `load_kddcup99`.
    """
    features = features.set_axis(list(COLUMNS), axis=1)
    x, names, numeric = encode_features(features, CATEGORIES)
    labels = labels.astype(str).str.strip().str.rstrip(".").to_numpy(dtype=object)
    y = (labels == ANOMALY_LABEL).astype(np.int64)
    return TabularData(x, y, labels, names, numeric, np.arange(len(labels)))


def _download() -> TabularData:
    from sklearn.datasets import fetch_kddcup99

    bunch = fetch_kddcup99(percent10=True, download_if_missing=True)

    def text(values: np.ndarray) -> pd.Series:
        return pd.Series(values).map(lambda v: v.decode() if isinstance(v, bytes) else str(v))

    features = pd.DataFrame(bunch.data, columns=list(COLUMNS))
    for column in CATEGORIES:
        features[column] = text(features[column].to_numpy())
    numeric = [column for column in COLUMNS if column not in CATEGORIES]
    features[numeric] = features[numeric].astype(np.float64)
    return encode_kddcup99(features, text(bunch.target))
