"""Saving a detector is atomic; loading refuses truncated, foreign and tampered files clearly."""

import struct
import zipfile

import keras
import numpy as np
import pytest

from memae_tf.detector import MemAE
from memae_tf.saving import load_archive, read_archive_metadata

WEIGHTS_ENTRY = "model.weights.h5"


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    x = np.random.default_rng(0).uniform(size=(64, 8)).astype("f4")
    keras.utils.set_random_seed(0)
    detector = MemAE.from_preset("kdd", input_shape=(8,), units=(6, 3))
    detector.fit(x, epochs=1, verbose=0)
    detector.infer_threshold(x)
    path = detector.save(tmp_path_factory.mktemp("detector") / "detector.keras")
    return detector, path, x


def test_saved_detector_reloads_with_the_same_scores(saved):
    detector, path, x = saved
    np.testing.assert_allclose(MemAE.load(path).score(x), detector.score(x), rtol=1e-6)


def test_save_that_fails_midway_leaves_the_previous_file_and_no_partial_file(saved, tmp_path,
                                                                              monkeypatch):
    detector, original, x = saved
    target = tmp_path / "detector.keras"
    target.write_bytes(original.read_bytes())

    def crash_after_half(self, filepath, *args, **kwargs):
        with open(filepath, "wb") as file:
            file.write(original.read_bytes()[: original.stat().st_size // 2])
        raise OSError("disk full")

    monkeypatch.setattr(keras.Model, "save", crash_after_half)
    with pytest.raises(OSError, match="disk full"):
        detector.save(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["detector.keras"]
    np.testing.assert_allclose(MemAE.load(target).score(x), detector.score(x), rtol=1e-6)


def test_truncated_file_is_refused_naming_the_file(saved, tmp_path):
    _, original, _ = saved
    path = tmp_path / "half.keras"
    path.write_bytes(original.read_bytes()[: original.stat().st_size * 2 // 3])
    with pytest.raises(ValueError, match=r"half\.keras' is not a complete \.keras archive"):
        MemAE.load(path)


def test_foreign_file_is_refused(tmp_path):
    path = tmp_path / "notes.keras"
    path.write_text("not an archive")
    with pytest.raises(ValueError, match=r"not a complete \.keras archive"):
        MemAE.load(path)


def test_zip_that_is_not_a_keras_archive_is_refused_listing_its_entries(tmp_path):
    path = tmp_path / "other.keras"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("readme.txt", "hello")
    with pytest.raises(ValueError, match=r"not a Keras model archive.*\['readme.txt'\]"):
        MemAE.load(path)


def test_tampered_weights_are_refused_by_their_checksum(saved, tmp_path):
    _, original, _ = saved
    data = bytearray(original.read_bytes())
    with zipfile.ZipFile(original) as archive:
        info = archive.getinfo(WEIGHTS_ENTRY)
    name_length, extra_length = struct.unpack("<HH", data[info.header_offset + 26:
                                                          info.header_offset + 30])
    start = info.header_offset + 30 + name_length + extra_length
    data[start + info.compress_size // 2] ^= 0xFF
    path = tmp_path / "tampered.keras"
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=f"tampered with: the checksum of its entry "
                                         f"'{WEIGHTS_ENTRY}'"):
        MemAE.load(path)


def test_archive_that_would_run_code_is_refused_by_safe_mode(tmp_path):
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Lambda(lambda t: t * 2)(inputs))
    path = tmp_path / "lambda.keras"
    model.save(path)
    with pytest.raises(ValueError, match=r"Could not load a detector from .*safe_mode"):
        MemAE.load(path)


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="No saved detector"):
        MemAE.load(tmp_path / "absent.keras")


def _rewritten(original, tmp_path, entry, content):
    """A copy of the archive `original` with `entry` replaced (its checksum is valid)."""
    with zipfile.ZipFile(original) as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
    entries[entry] = content
    path = tmp_path / "rewritten.keras"
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return path


def test_unreadable_weights_are_refused_naming_the_file(saved, tmp_path):
    path = _rewritten(saved[1], tmp_path, WEIGHTS_ENTRY, b"not an HDF5 file" * 64)
    with pytest.raises(ValueError, match=r"Could not load a detector from .*rewritten\.keras"
                                         r".*OSError"):
        MemAE.load(path)


@pytest.mark.parametrize(("config", "match"), [
    (b"{not json", "its config.json is not valid JSON"),
    (b"[1, 2]", "expected config.json to hold a JSON object. Received: list"),
    (b'{"module": "keras"}', r"a serialised Keras model .* Received keys: \['module'\]"),
])
def test_a_model_config_that_is_not_a_keras_model_is_refused(saved, tmp_path, config, match):
    with pytest.raises(ValueError, match=match):
        MemAE.load(_rewritten(saved[1], tmp_path, "config.json", config))


def test_a_bug_while_loading_is_not_reported_as_a_corrupt_file(saved, monkeypatch):
    def load_model(*args, **kwargs):
        raise TypeError("a bug in the loading code")

    monkeypatch.setattr(keras.saving, "load_model", load_model)
    with pytest.raises(TypeError, match="a bug in the loading code"):
        MemAE.load(saved[1])


def test_a_detector_is_saved_into_folders_made_for_it(saved, tmp_path):
    detector, _, x = saved
    path = detector.save(tmp_path / "runs" / "best" / "detector.keras")
    np.testing.assert_allclose(MemAE.load(path).score(x), detector.score(x), rtol=1e-6)


def test_the_metadata_is_read_beside_the_smallest_keras_model_config(saved, tmp_path):
    # A serialised Keras model needs the keys 'class_name' and 'config', no others; the
    # metadata of archives written now says format 1.
    path = _rewritten(saved[1], tmp_path, "config.json",
                      b'{"class_name": "Functional", "config": {}}')
    metadata = read_archive_metadata(path)
    assert metadata["format_version"] == 1
    assert metadata["threshold"] == saved[0].threshold_


def test_a_model_is_loaded_without_its_training_configuration(saved):
    # load_archive's contract: the model comes back uncompiled (no optimiser or loss
    # restored), which a detector that only scores does not need.
    model, _ = load_archive(saved[1])
    assert not model.compiled
