"""The benchmark scripts run (quick mode), and their RESULTS.md editing keeps other sections."""

import importlib.util
import pathlib
import subprocess
import sys

import pytest

BENCHMARKS = pathlib.Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import _common  # noqa: E402


def test_speed_quick_mode_reports_every_measurement():
    command = [sys.executable, str(BENCHMARKS / "speed.py"), "--quick", "--presets", "mnist,kdd",
               "--steps-per-execution", "2"]
    if importlib.util.find_spec("torch") is not None:
        command.append("--torch")
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    rows = [line for line in result.stdout.splitlines() if line.startswith(("| mnist", "| kdd"))]
    assert len(rows) == 2
    assert all("–" not in row for row in rows)
    assert "| first `fit` call (set-up included) |" in result.stdout  # the user's default path
    assert "| second `fit` call (compiled) |" in result.stdout
    if "--torch" in command:
        assert "| training |" in result.stdout and "| MemAE.score |" in result.stdout


def test_profile_quick_mode_lists_the_costliest_operations():
    result = subprocess.run([sys.executable, str(BENCHMARKS / "profile_ops.py"), "--quick"],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "| ms/call |" in result.stdout


@pytest.mark.parametrize("existing", ["", "# Results\n\n## Paper reproduction\n\nTheirs.\n"])
def test_write_measured_adds_the_section_and_keeps_the_others(tmp_path, existing):
    path = tmp_path / "RESULTS.md"
    path.write_text(existing)
    _common.write_measured(path, "Speed", "first table")
    path.write_text(path.read_text() + "\nAnalysis by hand.\n")
    _common.write_measured(path, "Speed", "second table")
    text = path.read_text()
    assert "second table" in text and "first table" not in text
    assert "Analysis by hand." in text
    if existing:
        assert text.startswith(existing.rstrip())
