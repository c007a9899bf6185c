"""Tables (CSV, Parquet, R) turned into features and normal / anomaly labels."""

import subprocess
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from memae_tf.data import DatasetNotFoundError, fetch_mlbench, load_mlbench, load_table
from memae_tf.data.sources import DATA_DIR_ENV
from memae_tf.data.tabular import encode_table, read_table

FRAME = pd.DataFrame(
    {
        "size": [1.5, 2.0, np.nan, 4.0, 0.5],
        "colour": ["red", "blue", "red", "green", "red"],
        "code": [3, 1, 3, 2, 1],
        "flag": [True, False, True, True, False],
        "kind": ["cat", "dog", "cat", "fish", "cat"],
    }
)
# By hand: row 2 has a missing size and is dropped. Columns in place: size, the colour
# one-hot (sorted: blue, green, red), code (numeric unless named categorical), flag as 0/1.
EXPECTED_NAMES = ("size", "colour=blue", "colour=green", "colour=red", "code", "flag")
EXPECTED_X = np.array(
    [
        [1.5, 0, 0, 1, 3, 1],
        [2.0, 1, 0, 0, 1, 0],
        [4.0, 0, 1, 0, 2, 1],
        [0.5, 0, 0, 1, 1, 0],
    ],
    np.float32,
)


def assert_expected(data):
    assert data.feature_names == EXPECTED_NAMES
    np.testing.assert_array_equal(data.x, EXPECTED_X)
    np.testing.assert_array_equal(data.y, [0, 1, 1, 0])
    np.testing.assert_array_equal(data.labels, ["cat", "dog", "fish", "cat"])
    np.testing.assert_array_equal(data.numeric_columns, [0, 4, 5])
    np.testing.assert_array_equal(data.rows, [0, 1, 3, 4])


def test_csv_is_encoded_and_rows_with_missing_values_dropped(tmp_path):
    FRAME.to_csv(tmp_path / "t.csv", index=False)
    assert_expected(load_table(tmp_path / "t.csv", "kind", normal_classes=["cat"]))


def test_parquet_gives_same_result_as_csv(tmp_path):
    pytest.importorskip("pyarrow")
    FRAME.to_parquet(tmp_path / "t.parquet")
    assert_expected(load_table(tmp_path / "t.parquet", "kind", normal_classes=["cat"]))


def test_r_factor_keeps_unused_levels_as_columns(tmp_path):
    import rdata

    frame = pd.DataFrame(
        {
            "v": [0.25, 0.75],
            "f": pd.Categorical(["b", "a"], categories=["a", "b", "z"]),
            "Class": pd.Categorical(["ok", "bad"]),
        }
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rdata.write_rda(tmp_path / "T.rda", {"T": frame})
    data = load_table(tmp_path / "T.rda", "Class", normal_classes=["ok"])
    assert data.feature_names == ("v", "f=a", "f=b", "f=z")
    np.testing.assert_array_equal(data.x, [[0.25, 0, 1, 0], [0.75, 1, 0, 0]])
    np.testing.assert_array_equal(data.y, [0, 1])


def test_named_numeric_column_is_one_hot_encoded():
    data = encode_table(FRAME.dropna(), "kind", ["cat"], categorical=["code"])
    assert data.feature_names[4:7] == ("code=1", "code=2", "code=3")
    np.testing.assert_array_equal(data.x[:, 4:7], [[0, 0, 1], [1, 0, 0], [0, 1, 0], [1, 0, 0]])


def test_dropped_columns_are_not_features():
    data = encode_table(FRAME, "kind", ["cat"], drop_columns=["colour", "size"])
    assert data.feature_names == ("code", "flag")
    assert len(data.y) == 5


def test_classes_compare_as_strings():
    frame = pd.DataFrame({"v": [1.0, 2.0, 3.0], "label": [0, 1, 0]})
    np.testing.assert_array_equal(encode_table(frame, "label", [0]).y, [0, 1, 0])
    np.testing.assert_array_equal(encode_table(frame, "label", ["1"]).y, [1, 0, 1])


def test_unknown_column_is_reported_with_available_columns():
    with pytest.raises(ValueError, match=r"\['target'\].*Received columns"):
        encode_table(FRAME, "target", ["cat"])


def test_normal_class_absent_from_table_is_an_error():
    with pytest.raises(ValueError, match=r"\['bird'\].*Received classes: \['cat', 'dog', 'fish'\]"):
        encode_table(FRAME, "kind", ["bird"])


def test_unknown_file_type_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="Unknown table format"):
        read_table(tmp_path / "t.xlsx")


# --- mlbench ---------------------------------------------------------------------------------

MLBENCH_FOLDERS = [
    Path("/usr/lib/R/site-library/mlbench/data"),
    Path("/tmp/mlbench/usr/lib/R/site-library/mlbench/data"),
    Path.home() / ".cache" / "memae_tf" / "mlbench",
]
REAL = next((f for f in MLBENCH_FOLDERS if (f / "Ionosphere.rda").exists()), None)
needs_mlbench = pytest.mark.skipif(REAL is None, reason="mlbench .rda files not available")


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)


@needs_mlbench
def test_real_ionosphere_matches_published_counts():
    data = load_mlbench("Ionosphere", normal_classes=["good"], path=REAL, download=False)
    # UCI Ionosphere: 351 radar returns, 225 good and 126 bad, 34 attributes; the first
    # two are R factors (V1 with levels 0/1, V2 constant 0), one-hot encoded here.
    assert data.x.shape == (351, 35)
    assert data.y.sum() == 126
    assert data.feature_names[:3] == ("V1=0", "V1=1", "V2=0")


@needs_mlbench
def test_real_breast_cancer_drops_id_and_incomplete_rows():
    data = load_mlbench("BreastCancer", normal_classes=["benign"], path=REAL, download=False)
    # 699 biopsies, 16 with a missing Bare.nuclei; 9 ordinal factors of levels 1..10
    # (Mitoses has 9 levels), all one-hot encoded; the Id column is not a feature.
    assert data.x.shape == (683, 89)
    assert not any(name.startswith("Id") for name in data.feature_names)
    assert data.y.sum() == 239


@needs_mlbench
def test_mlbench_found_in_data_dir_subfolder(tmp_path, isolated, monkeypatch):
    (tmp_path / "mlbench").mkdir()
    (tmp_path / "mlbench" / "Sonar.rda").write_bytes((REAL / "Sonar.rda").read_bytes())
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path))
    data = load_mlbench("Sonar", normal_classes=["R"], download=False)
    assert data.x.shape == (208, 60) and data.y.sum() == 111


def test_mlbench_missing_names_debian_package_and_skipped_fetch(isolated, monkeypatch):
    monkeypatch.setattr("memae_tf.data.tabular.MLBENCH_PACKAGE_DATA", Path("absent"))
    with pytest.raises(DatasetNotFoundError) as error:
        load_mlbench("Shuttle", normal_classes=["Rad.Flow"], download=False)
    tried = "\n".join(error.value.tried)
    assert "r-cran-mlbench" in tried and "skipped: download=False" in tried


def test_mlbench_unknown_table_needs_label_column():
    with pytest.raises(ValueError, match="pass `label_column=`"):
        load_mlbench("Ozone", normal_classes=["1"], download=False)


def test_fetch_mlbench_copies_tables_from_extracted_package(tmp_path, monkeypatch):
    # apt-get and dpkg are replaced by their documented effects: `apt-get download PKG`
    # writes PKG_VERSION_ARCH.deb into the working folder, `dpkg -x DEB DIR` lays out the
    # tree of the archive it is given. Each checks its arguments, so a wrong package name,
    # a wrong archive or an unchecked failure makes the fetch fail.
    calls = []

    def fake_run(command, cwd=None, check=False, timeout=None, capture_output=False):
        calls.append(command)
        assert check, "a failed download or extraction must raise"
        if command[:2] == ["apt-get", "download"]:
            (package,) = command[2:]
            Path(cwd, f"{package}_2.1-3_all.deb").write_text(package)
        elif command[:2] == ["dpkg", "-x"]:
            archive, root = command[2:]
            if Path(archive).read_text() == "r-cran-mlbench":
                data = Path(root) / "usr/lib/R/site-library/mlbench/data"
                data.mkdir(parents=True)
                (data / "Zoo.rda").write_bytes(b"table")
                (data / "README").write_bytes(b"not a table")
        else:
            raise AssertionError(f"unexpected command {command}")
        return subprocess.CompletedProcess(command, 0)

    monkeypatch.setattr("memae_tf.data.sources.subprocess.run", fake_run)
    monkeypatch.setattr("memae_tf.data.sources.shutil.which", lambda tool: f"/usr/bin/{tool}")
    folder = fetch_mlbench(tmp_path / "out")
    assert folder == tmp_path / "out"
    assert [c[:3] for c in calls] == [["apt-get", "download", "r-cran-mlbench"],
                                      ["dpkg", "-x", calls[1][2]]]
    assert Path(calls[1][2]).name == "r-cran-mlbench_2.1-3_all.deb"
    assert sorted(p.name for p in folder.iterdir()) == ["Zoo.rda"]
    assert (folder / "Zoo.rda").read_bytes() == b"table"
