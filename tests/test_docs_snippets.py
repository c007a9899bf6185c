"""Every Python snippet of README.md and the documentation pages runs.

The ```` ```python ```` blocks of each page are run in order, as one session,
in a fresh interpreter whose working directory is a temporary folder, so a
snippet that no longer matches the package fails here. One substitution is
made, and only of the data's size: `memae_tf.data.load_mnist` returns the first
3,000 training and 1,000 test images of the real MNIST (the snippets train on
one digit of them, about 300 images, in seconds instead of minutes). Every
other line, the epochs included, runs as a reader would run it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
PAGES = [page for page in PAGES if "_hooks" not in page.parts and not page.is_symlink()
         and page.parent.name != "benchmarks"]

SMALL_MNIST = textwrap.dedent("""
    import memae_tf.data
    import memae_tf.data.mnist

    _load_mnist = memae_tf.data.mnist.load_mnist

    def load_mnist(*args, **kwargs):
        (x, y), (x_test, y_test) = _load_mnist(*args, **kwargs)
        return (x[:3000], y[:3000]), (x_test[:1000], y_test[:1000])

    memae_tf.data.load_mnist = memae_tf.data.mnist.load_mnist = load_mnist
""")


def python_blocks(text: str) -> list[str]:
    """The bodies of the ```` ```python ```` fences of a markdown text, in order."""
    return re.findall(r"^```python\n(.*?)^```", text, re.S | re.M)


def test_python_blocks_finds_fenced_python_only():
    text = "a\n```python\nx = 1\n```\n```bash\nls\n```\n```python\ny = 2\n```\n"
    assert python_blocks(text) == ["x = 1\n", "y = 2\n"]


def test_the_pages_with_examples_have_them_collected():
    counts = {page.relative_to(ROOT).as_posix(): len(python_blocks(page.read_text()))
              for page in PAGES}
    assert counts["README.md"] >= 1
    assert counts["docs/guides/keras.md"] >= 4
    assert counts["docs/guides/grpc.md"] >= 3
    assert counts["docs/guides/kubernetes.md"] >= 1


@pytest.mark.slow
@pytest.mark.parametrize(
    "page", [page for page in PAGES if python_blocks(page.read_text())],
    ids=lambda page: page.relative_to(ROOT).as_posix())
def test_page_snippets_run_in_order(page, tmp_path):
    blocks = python_blocks(page.read_text())
    script = tmp_path / "snippets.py"
    script.write_text(SMALL_MNIST + "\n" + "\n".join(blocks))
    env = {**os.environ, "MPLBACKEND": "Agg", "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, (
        f"{page.name}: the snippets failed\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}")
