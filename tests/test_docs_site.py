"""The documentation site builds with `mkdocs build --strict` and covers the API.

One build per test session (about half a minute): `--strict` turns every
warning into a failure, so a broken link, a missing reference, a snippet file
that does not exist or a docstring that mkdocstrings cannot render fails here.
The built pages are then checked for what the site promises: an entry in the
API reference for every public name of `memae_tf.__all__` and of each
subpackage's `__all__`, and the six notebooks rendered with their outputs.
"""

from __future__ import annotations

import importlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# The build is a subprocess of about half a minute: scheduled first (tests/conftest.py).
pytestmark = pytest.mark.slow

@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
        env={"PATH": str(Path(sys.executable).parent), "NO_MKDOCS_2_WARNING": "1",
             "HOME": str(tmp_path_factory.mktemp("home"))})
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stderr[-8000:]}"
    yield out
    shutil.rmtree(out, ignore_errors=True)


def public_packages() -> dict[str, list[str]]:
    """`{package: its __all__}` for memae_tf and every subpackage that has one."""
    found = {}
    for init in sorted((ROOT / "memae_tf").rglob("__init__.py")):
        name = ".".join(init.parent.relative_to(ROOT).parts)
        names = getattr(importlib.import_module(name), "__all__", None)
        if names:
            found[name] = list(names)
    return found


def test_api_reference_has_an_entry_for_every_public_name(site):
    packages = public_packages()
    assert {"memae_tf", "memae_tf.client", "memae_tf.data", "memae_tf.models"} <= set(packages)
    missing = []
    for package, names in packages.items():
        page = site / "api" / package / "index.html"
        ids = set(re.findall(r'id="([\w.]+)"', page.read_text())) if page.exists() else set()
        for name in names:
            # mkdocstrings anchors an entry at the path of the module that defines it.
            if not any(re.fullmatch(rf"memae_tf(\.\w+)*\.{re.escape(name)}", i) for i in ids):
                missing.append(f"{package}.{name}")
    assert not missing, f"no API entry for {missing}"


def test_api_entries_render_their_docstrings(site):
    page = (site / "api" / "memae_tf" / "index.html").read_text()
    assert "Memory-augmented autoencoder anomaly detector" in page   # MemAE's docstring
    assert "language-pycon" in page or "highlight" in page             # its doctest, fenced


@pytest.mark.parametrize("notebook", sorted((ROOT / "notebooks").glob("*.ipynb")),
                         ids=lambda path: path.stem)
def test_notebook_is_rendered_with_its_outputs(site, notebook):
    cells = json.loads(notebook.read_text())["cells"]
    images = sum(1 for cell in cells for output in cell.get("outputs", [])
                 if "image/png" in output.get("data", {}))
    page = (site / "notebooks" / notebook.stem / "index.html").read_text()
    assert page.count("data:image/png;base64") >= images
    first_heading = next(cell for cell in cells if cell["cell_type"] == "markdown")
    title = "".join(first_heading["source"]).splitlines()[0].lstrip("# ").strip()
    assert title.split("`")[0][:30] in page


def test_results_page_includes_results_md(site):
    page = (site / "benchmarks" / "RESULTS" / "index.html").read_text()
    first_table_row = next(line for line in (ROOT / "benchmarks" / "RESULTS.md").read_text()
                           .splitlines() if line.startswith("| MNIST"))
    assert first_table_row.split("|")[3].strip() in page
