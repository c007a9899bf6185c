"""`memae report`: one self-contained HTML file per run folder, checked in a real browser."""

import base64
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from memae_tf.cli import main
from memae_tf.evaluation.experiment import ExperimentConfig, ResultStore
from memae_tf.evaluation.html_report import experiment_page, write_report
from memae_tf.evaluation.metrics import Evaluation, ranking_metrics

PNG = b"\x89PNG\r\n\x1a\n"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _embedded_pngs(page: str) -> list[bytes]:
    sources = re.findall(r'<img [^>]*src="([^"]+)"', page)
    assert all(src.startswith("data:image/png;base64,") for src in sources), "external image"
    return [base64.b64decode(src.split(",", 1)[1]) for src in sources]


@pytest.fixture
def experiment_dir(tmp_path):
    """An experiment folder with two models on two units, made through the result store."""
    out = tmp_path / "experiment"
    store = ResultStore(out, ExperimentConfig("mnist", epochs=3))
    rng = np.random.default_rng(0)
    labels = np.r_[np.zeros(50, int), np.ones(30, int)]
    for unit in ("class=0", "class=1"):
        for model, gap in (("memae", 2.0), ("ae", 1.0)):
            scores = rng.normal(labels * gap, 1.0)
            store.add({"model": model, "unit": unit, "metrics": ranking_metrics(labels, scores),
                       "info": {}, "seconds": 1.5},
                      Evaluation(scores, labels, ranking_metrics(labels, scores)))
    (out / "command.txt").write_text("memae experiment mnist --epochs 3 --out experiment\n")
    return out


def test_experiment_report_embeds_tables_figures_settings_and_the_command(experiment_dir):
    path = write_report(experiment_page(experiment_dir), experiment_dir / "report.html")
    page = path.read_text()
    assert all(png.startswith(PNG) for png in _embedded_pngs(page))
    assert len(_embedded_pngs(page)) == 4  # curves and histograms of two units
    assert "memae experiment mnist --epochs 3 --out experiment" in page
    stored = json.loads((experiment_dir / "results.json").read_text())["tasks"]
    assert f"{stored['ae/class=1']['metrics']['auroc']:.4f}" in page
    assert "<td>epochs</td><td>3</td>" in page
    assert "http://" not in page and "https://" not in page and "<script" not in page


def test_cli_reports_a_trained_detector_with_its_memory(tmp_path):
    rng = np.random.default_rng(0)
    images = (rng.random((160, 16, 16)) * 255).astype(np.uint8)
    classes = np.arange(160) % 2
    images[classes == 1, 4:12, 4:12] = 255  # class 1 has a bright square
    data = tmp_path / "images.npz"
    np.savez(data, x_train=images[:120], y_train=classes[:120], x_test=images[120:],
             y_test=classes[120:])
    run = tmp_path / "run"
    assert main(["train", "--data", str(data), "--normal-classes", "0", "--epochs", "1",
                 "--verbose", "0", "--out", str(run), "--override", "input_shape=[16,16,1]",
                 "--override", "filters=[4,8]", "--override", "kernel_sizes=3",
                 "--override", "num_items=6"]) == 0
    assert main(["report", str(run)]) == 0
    page = (run / "report.html").read_text()
    # curves, histogram, reconstruction grid, memory addressing, decoded memory items
    assert len(_embedded_pngs(page)) == 5
    assert "memae train --data" in page and "<th>auroc</th>" in page
    assert "Memory items decoded" in page and "<td>anomalous</td>" in page


def test_report_needs_a_run_folder(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "Expected a run folder with results.json" in capsys.readouterr().err


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (Debian: chromium)")
def test_report_images_load_in_headless_chromium(experiment_dir, tmp_path):
    page = experiment_page(experiment_dir).render()
    count = len(_embedded_pngs(page))
    # A probe, added to a copy only: the report itself has no script.
    probe = ("<script>window.addEventListener('load', () => { const ok = [...document.images]"
             ".filter(i => i.complete && i.naturalWidth > 100).length; "
             "document.body.setAttribute('data-loaded-images', ok); });</script>")
    probed = tmp_path / "probed.html"
    probed.write_text(page.replace("</body>", probe + "</body>"))
    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             "--virtual-time-budget=10000"]
    dom = subprocess.run([*flags, "--dump-dom", probed.as_uri()], capture_output=True,
                         text=True, timeout=120, check=True).stdout
    assert f'data-loaded-images="{count}"' in dom

    report = write_report(experiment_page(experiment_dir), tmp_path / "report.html")
    # MEMAE_REPORT_SCREENSHOT=path keeps the screenshot, to look at it.
    screenshot = Path(os.environ.get("MEMAE_REPORT_SCREENSHOT", tmp_path / "report.png"))
    subprocess.run([*flags, "--window-size=1200,2400", f"--screenshot={screenshot}",
                    report.as_uri()], capture_output=True, timeout=120, check=True)
    with Image.open(screenshot) as image:
        pixels = np.asarray(image.convert("L"))
    assert pixels.shape == (2400, 1200)
    assert (pixels < 200).mean() > 0.02  # text, tables and plots drawn, not a blank page
