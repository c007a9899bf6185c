"""KDDCUP99 10%: rows in the published format, one-hot positions and labels known by hand."""

import gzip
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from memae_tf.data import DatasetNotFoundError, MinMaxScaler, load_kddcup99
from memae_tf.data import kdd as kdd_module
from memae_tf.data.sources import DATA_DIR_ENV

# Three connections as they appear in kddcup.data_10_percent.
ROWS = [
    "0,tcp,http,SF,181,5450,0,0,0,0,0,1,0,0,0,0,0,0,0,0,0,0,8,8,0.00,0.00,0.00,0.00,1.00,"
    "0.00,0.00,9,9,1.00,0.00,0.11,0.00,0.00,0.00,0.00,0.00,normal.",
    "0,icmp,ecr_i,SF,1032,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,511,511,0.00,0.00,0.00,0.00,1.00,"
    "0.00,0.00,255,255,1.00,0.00,1.00,0.00,0.00,0.00,0.00,0.00,smurf.",
    "0,tcp,private,S0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,123,6,1.00,1.00,0.00,0.00,0.05,"
    "0.07,0.00,255,26,0.10,0.05,0.00,0.00,1.00,1.00,0.00,0.00,neptune.",
]

# Feature layout worked out by hand: duration (0), protocol_type icmp/tcp/udp (1-3), the
# 66 services in ASCII order (4-69; http is the 23rd, ecr_i the 15th, private the 46th),
# the 11 flags in ASCII order (70-80; S0 is the 6th, SF the 10th), then the other 37
# numeric columns (81-117) starting with src_bytes and dst_bytes.
TCP, ICMP = 2, 1
HTTP, ECR_I, PRIVATE = 4 + 22, 4 + 14, 4 + 45
S0, SF = 70 + 5, 70 + 9
SRC_BYTES, DST_BYTES, COUNT = 81, 82, 81 + 18


@pytest.fixture
def kdd_file(tmp_path):
    path = tmp_path / "kddcup.data_10_percent"
    path.write_text("\n".join(ROWS) + "\n")
    return path


def test_gives_118_features_whatever_the_rows(kdd_file):
    data = load_kddcup99(kdd_file, download=False)
    assert data.x.shape == (3, 118) and data.x.dtype == np.float32
    assert len(data.feature_names) == 118
    assert len(data.numeric_columns) == 38


def test_one_hot_positions_match_hand_computed_layout(kdd_file):
    data = load_kddcup99(kdd_file, download=False)
    names = data.feature_names
    assert names[TCP] == "protocol_type=tcp" and names[HTTP] == "service=http"
    assert names[PRIVATE] == "service=private" and names[S0] == "flag=S0"
    assert names[SRC_BYTES] == "src_bytes" and names[-1] == "dst_host_srv_rerror_rate"
    one_hot = data.x[:, 1:81]
    np.testing.assert_array_equal(one_hot.sum(axis=1), [3, 3, 3])
    for row, hot in enumerate([(TCP, HTTP, SF), (ICMP, ECR_I, SF), (TCP, PRIVATE, S0)]):
        np.testing.assert_array_equal(np.flatnonzero(data.x[row, 1:81]) + 1, hot)


def test_numeric_columns_keep_raw_values(kdd_file):
    data = load_kddcup99(kdd_file, download=False)
    np.testing.assert_array_equal(data.x[:, SRC_BYTES], [181, 1032, 0])
    np.testing.assert_array_equal(data.x[:, DST_BYTES], [5450, 0, 0])
    np.testing.assert_array_equal(data.x[:, COUNT], [8, 511, 123])
    expected_numeric = [0, *range(81, 118)]
    np.testing.assert_array_equal(data.numeric_columns, expected_numeric)


def test_normal_traffic_is_the_anomaly_class(kdd_file):
    data = load_kddcup99(kdd_file, download=False)
    np.testing.assert_array_equal(data.y, [1, 0, 0])
    np.testing.assert_array_equal(data.labels, ["normal", "smurf", "neptune"])


def test_scaler_fit_on_training_rows_only(kdd_file):
    data = load_kddcup99(kdd_file, download=False)
    scaler = MinMaxScaler(columns=data.numeric_columns).fit(data.x[1:])
    scaled = scaler.transform(data.x)
    # src_bytes over the training rows: min 0, max 1032; count: min 123, max 511.
    np.testing.assert_allclose(scaled[:, SRC_BYTES], [181 / 1032, 1.0, 0.0], rtol=1e-6)
    np.testing.assert_allclose(scaled[:, COUNT], [(8 - 123) / (511 - 123), 1.0, 0.0], rtol=1e-6)
    # dst_bytes is 0 in both training rows: only shifted, so the test row keeps 5450.
    np.testing.assert_array_equal(scaled[:, DST_BYTES], [5450, 0, 0])
    np.testing.assert_array_equal(scaled[:, 1:81], data.x[:, 1:81])


def test_gzip_file_is_read(tmp_path, kdd_file):
    path = tmp_path / "kddcup.data_10_percent.gz"
    path.write_bytes(gzip.compress(kdd_file.read_bytes()))
    np.testing.assert_array_equal(load_kddcup99(path).x, load_kddcup99(kdd_file).x)


def test_found_in_data_dir(tmp_path, kdd_file, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv(DATA_DIR_ENV, str(kdd_file.parent))
    assert load_kddcup99(download=False).x.shape == (3, 118)


def test_missing_without_download_raises(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    with pytest.raises(DatasetNotFoundError, match="fetch_kddcup99"):
        load_kddcup99(download=False)


def test_unknown_service_is_rejected(tmp_path):
    path = tmp_path / "kdd"
    path.write_text(ROWS[0].replace(",http,", ",http_8001,") + "\n")
    with pytest.raises(ValueError, match="http_8001"):
        load_kddcup99(path)


def test_wrong_field_count_is_rejected(tmp_path):
    path = tmp_path / "kdd"
    path.write_text(ROWS[0].rsplit(",", 1)[0] + "\n")
    with pytest.raises(ValueError, match="expected 42 fields"):
        load_kddcup99(path)


def test_service_vocabulary_is_full_kdd_list_minus_services_absent_from_10_percent():
    # Reference: the service names of TensorFlow Datasets' KDDCUP99 builder (complete
    # training set and corrected test set).
    import tensorflow_datasets.datasets.kddcup99.kddcup99_dataset_builder as builder

    source = Path(builder.__file__).read_text()
    block = re.search(r"'service': tfds\.features\.ClassLabel\(\s*names=\[(.*?)\]", source, re.S)
    full = set(re.findall(r"'([^']+)'", block.group(1)))
    absent = {"aol", "harvest", "http_2784", "http_8001", "icmp"}
    assert set(kdd_module.SERVICES) == full - absent
    assert len(kdd_module.SERVICES) == 66


def test_sklearn_download_format_is_decoded(monkeypatch):
    # fetch_kddcup99 returns an object array with bytes for the symbolic columns and labels.
    fields = [row.split(",") for row in ROWS]

    def field(value: str, column: int):
        return value.encode() if column in (1, 2, 3) else float(value)

    data = np.array([[field(v, c) for c, v in enumerate(f[:41])] for f in fields], dtype=object)
    target = np.array([f[41].encode() for f in fields], dtype=object)

    bunch = SimpleNamespace(data=data, target=target)
    monkeypatch.setattr("sklearn.datasets.fetch_kddcup99", lambda **kwargs: bunch)
    downloaded = kdd_module._download()
    np.testing.assert_array_equal(downloaded.y, [1, 0, 0])
    assert downloaded.x[0, HTTP] == 1 and downloaded.x[2, PRIVATE] == 1
    np.testing.assert_array_equal(downloaded.x[:, SRC_BYTES], [181, 1032, 0])
