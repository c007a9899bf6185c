"""The documentation's figures were drawn with the current defaults.

`benchmarks/docs_figures.py` (`make figures`) draws docs/reconstruction_grid.png
and docs/memory_items.png and records, next to them in docs/figures.json, the
preset and training settings it used and each PNG's SHA-256. These tests compare
that record with the preset as it is now: a change to the `mnist` preset (its
network, input range, score or training settings) fails here until the figures
are drawn again.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

from memae_tf.models.presets import get_preset
from memae_tf.training import TrainingConfig

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
FIGURES = ("reconstruction_grid.png", "memory_items.png")


def record() -> dict:
    return json.loads((DOCS / "figures.json").read_text())


def as_json(value):
    return json.loads(json.dumps(value))


def test_every_figure_has_a_record_matching_its_file():
    records = record()
    assert set(records) == set(FIGURES)
    for name in FIGURES:
        digest = hashlib.sha256((DOCS / name).read_bytes()).hexdigest()
        assert records[name]["sha256"] == digest, f"{name} changed after it was recorded"


@pytest.mark.parametrize("name", FIGURES)
def test_figure_was_drawn_with_the_current_preset(name):
    drawn = record()[name]
    preset = get_preset(drawn["preset"])
    assert drawn["kwargs"] == as_json(preset.kwargs), "the preset's network changed"
    assert drawn["input_range"] == as_json(preset.input_range)
    assert drawn["error"] == preset.error


@pytest.mark.parametrize("name", FIGURES)
def test_figure_was_trained_with_the_current_training_defaults(name):
    drawn = record()[name]
    preset = get_preset(drawn["preset"])
    config = TrainingConfig(**(getattr(preset, "training", None) or {}))
    assert drawn["training"], "no training settings recorded"
    for setting, value in drawn["training"].items():
        assert value == as_json(getattr(config, setting)), f"training setting {setting} changed"


def test_figure_record_names_its_machine_and_command():
    for drawn in record().values():
        assert drawn["machine"]["cpu"] and drawn["machine"]["instruction_set"]
        assert drawn["command"].startswith("python benchmarks/docs_figures.py")


def test_keras_guide_caption_matches_the_recorded_run():
    guide = (DOCS / "guides" / "keras.md").read_text()
    drawn = record()["reconstruction_grid.png"]
    caption = re.search(r"From the current `(\w+)` preset \(digit (\d+) normal, (\d+) epochs;"
                        r" AUROC over the\s+whole test set: MemAE ([\d.]+), AE ([\d.]+);", guide)
    assert caption, "the figures' caption is missing from docs/guides/keras.md"
    preset, digit, epochs, memae, ae = caption.groups()
    assert preset == drawn["preset"]
    assert int(digit) == drawn["data"]["normal_digit"]
    assert int(epochs) == drawn["training"]["epochs"]
    assert memae == f"{drawn['measured']['auroc_memae']:.3f}"
    assert ae == f"{drawn['measured']['auroc_ae']:.3f}"
