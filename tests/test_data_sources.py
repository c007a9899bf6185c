"""The shared search order: explicit path, local data folders, offline sources, download."""

from pathlib import Path

import pytest

from memae_tf.data import DatasetNotFoundError
from memae_tf.data.sources import DATA_DIR_ENV, Download, data_dirs, resolve


@pytest.fixture
def home(tmp_path, monkeypatch):
    """An empty home folder and no MEMAE_DATA_DIR, so only what a test creates is found."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    return home


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def failing_download() -> str:
    raise OSError("network unreachable")


def test_data_dirs_order_is_env_folders_then_keras_then_cache(home, monkeypatch, tmp_path):
    monkeypatch.setenv(DATA_DIR_ENV, f"{tmp_path / 'a'}:{tmp_path / 'b'}")
    assert data_dirs() == [
        tmp_path / "a",
        tmp_path / "b",
        home / ".keras" / "datasets",
        home / ".cache" / "memae_tf",
    ]


def test_explicit_path_is_read_even_when_other_copies_exist(home, tmp_path):
    write(home / ".keras" / "datasets" / "d.txt", "keras copy")
    explicit = write(tmp_path / "mine.txt", "explicit copy")
    assert resolve("d", Path.read_text, path=explicit, filenames=["d.txt"]) == "explicit copy"


def test_missing_explicit_path_is_an_error_naming_only_it(home, tmp_path):
    write(home / ".keras" / "datasets" / "d.txt", "keras copy")
    with pytest.raises(DatasetNotFoundError) as error:
        resolve("d", Path.read_text, path=tmp_path / "absent.txt", filenames=["d.txt"])
    assert error.value.tried == (f"{tmp_path / 'absent.txt'} (explicit path)",)


def test_env_folder_is_searched_before_keras_folder(home, monkeypatch, tmp_path):
    write(home / ".keras" / "datasets" / "d.txt", "keras copy")
    write(tmp_path / "env" / "d.txt", "env copy")
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "env"))
    assert resolve("d", Path.read_text, filenames=["d.txt"]) == "env copy"


def test_filenames_are_tried_in_order_within_a_folder(home):
    write(home / ".cache" / "memae_tf" / "second.txt", "second")
    write(home / ".cache" / "memae_tf" / "first.txt", "first")
    assert resolve("d", Path.read_text, filenames=["first.txt", "second.txt"]) == "first"


def test_offline_source_is_used_when_no_local_copy(home, tmp_path):
    shipped = write(tmp_path / "wheel" / "d.txt", "shipped")
    download = Download("net", failing_download)
    result = resolve(
        "d", Path.read_text, filenames=["d.txt"], offline={"wheel": shipped}, download=download
    )
    assert result == "shipped"


def test_download_runs_only_when_allowed(home):
    calls = []
    download = Download("net", lambda: calls.append(1) or "downloaded")
    assert resolve("d", Path.read_text, download=download) == "downloaded"
    with pytest.raises(DatasetNotFoundError, match="skipped: download=False"):
        resolve("d", Path.read_text, download=download, allow_download=False)
    assert calls == [1]


def test_error_names_every_place_tried_in_order(home, tmp_path):
    with pytest.raises(DatasetNotFoundError) as error:
        resolve(
            "demo",
            Path.read_text,
            filenames=["d.txt"],
            offline={"shipped wheel": tmp_path / "w.txt", "other package": None},
            download=Download("demo.fetch()", failing_download),
        )
    assert error.value.tried == (
        str(home / ".keras" / "datasets" / "d.txt"),
        str(home / ".cache" / "memae_tf" / "d.txt"),
        f"{tmp_path / 'w.txt'} (shipped wheel)",
        "other package (not installed)",
        "demo.fetch() (failed: network unreachable)",
    )
    assert isinstance(error.value, FileNotFoundError)
    assert "demo" in str(error.value) and "network unreachable" in str(error.value)


def test_empty_folder_left_by_an_interrupted_download_does_not_hide_offline_copy(home, tmp_path):
    # keras.datasets creates ~/.keras/datasets/NAME before it fetches; offline, the
    # fetch fails and the empty folder stays.
    (home / ".keras" / "datasets" / "d").mkdir(parents=True)
    shipped = tmp_path / "debian" / "d"
    write(shipped / "data.txt", "shipped")

    def read(folder: Path) -> str:
        return (folder / "data.txt").read_text()

    assert resolve("d", read, filenames=["d"], offline={"debian": shipped}) == "shipped"
    with pytest.raises(DatasetNotFoundError, match=r"datasets/d \(empty\)"):
        resolve("d", read, filenames=["d"], allow_download=False)
