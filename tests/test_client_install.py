"""The TensorFlow-free client distribution (`client/`): its packaging, messages and install."""

import email
import json
import pathlib
import re
import shutil
import subprocess
import sys
import tarfile
import textwrap
import tomllib
import zipfile

import keras
import numpy as np
import pytest
from serving_helpers import assert_generated_code_is_current

from memae_tf.export import export_saved_model
from memae_tf.models import build_autoencoder
from memae_tf.serving import serve

ROOT = pathlib.Path(__file__).resolve().parents[1]
PROTO = pathlib.Path("memae_tf/client/proto/tf_serving.proto")
FEATURES = 6


def _toml(path: pathlib.Path) -> dict:
    return tomllib.loads(path.read_text())


def test_client_distribution_requires_exactly_the_client_extra():
    client = _toml(ROOT / "client" / "pyproject.toml")["project"]
    package = _toml(ROOT / "pyproject.toml")["project"]
    assert client["dependencies"] == package["optional-dependencies"]["client"]
    assert client["version"] == package["version"]


def test_committed_messages_are_what_make_proto_generates(tmp_path):
    assert_generated_code_is_current(PROTO, tmp_path)


def distribution_source(folder: pathlib.Path) -> pathlib.Path:
    """Copies what the distribution is built from (`client/` and the two packages it
    takes from `memae_tf/`) under `folder`, so that a build leaves the checkout
    untouched; returns the copy of `client/`."""
    shutil.copytree(ROOT / "client", folder / "client",
                    ignore=shutil.ignore_patterns("build", "*.egg-info"))
    for package in ("client", "common"):
        shutil.copytree(ROOT / "memae_tf" / package, folder / "memae_tf" / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    return folder / "client"


def repository_links(markdown: str) -> list[str]:
    """The targets of the Markdown and HTML links and images in `markdown` that are
    neither absolute URLs (a scheme such as `https:`) nor anchors in the page: the
    ones that only resolve inside a checkout, and break on PyPI."""
    targets = re.findall(r"\]\(\s*<?([^)\s>]+)", markdown)  # [text](target), ![alt](target)
    targets += re.findall(r"^ {0,3}\[[^\]]+\]:\s*<?([^\s>]+)", markdown, flags=re.MULTILINE)
    targets += re.findall(r"""\b(?:href|src)\s*=\s*["']([^"']+)""", markdown)
    return [target for target in targets
            if not re.match(r"[A-Za-z][A-Za-z0-9+.-]*:|#", target)]


def test_repository_links_are_the_relative_targets_and_not_urls_or_anchors():
    text = textwrap.dedent(
        """
        [a](../README.md) ![b](docs/plot.png "title") [c](https://example.org/x)
        [d](#install) [e](mailto:team@example.org) <a href="serving/README.md">f</a>

        [g]: ./LICENSE
        [h]: https://example.org/y
        """
    )
    assert repository_links(text) == [
        "../README.md", "docs/plot.png", "./LICENSE", "serving/README.md"]


def test_the_wheel_and_sdist_carry_the_license_and_a_readme_that_stands_alone(tmp_path):
    """Builds both offline, with the installed setuptools (--no-build-isolation)."""
    source = distribution_source(tmp_path / "src")
    version = _toml(ROOT / "client" / "pyproject.toml")["project"]["version"]
    license_text = (ROOT / "LICENSE").read_bytes()
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--no-build-isolation", "--wheel-dir", str(tmp_path / "dist"),
                    str(source)], check=True, timeout=300)
    subprocess.run([sys.executable, "-c", "import sys; from setuptools import build_meta; "
                    "build_meta.build_sdist(sys.argv[1])", str(tmp_path / "dist")],
                   cwd=source, check=True, timeout=300, capture_output=True)

    (wheel,) = (tmp_path / "dist").glob("*.whl")
    info = f"memae_tf_client-{version}.dist-info"
    with zipfile.ZipFile(wheel) as archive:
        assert archive.read(f"{info}/licenses/LICENSE") == license_text
        metadata = email.message_from_string(archive.read(f"{info}/METADATA").decode())
    assert metadata["License-Expression"] == "Apache-2.0"
    assert metadata.get_all("License-File") == ["LICENSE"]
    description = metadata.get_payload()
    assert description.strip() == (ROOT / "client" / "README.md").read_text().strip()
    assert repository_links(description) == []

    (sdist,) = (tmp_path / "dist").glob("*.tar.gz")
    with tarfile.open(sdist) as archive:
        assert archive.extractfile(f"memae_tf_client-{version}/LICENSE").read() == license_text
        pkg_info = email.message_from_string(
            archive.extractfile(f"memae_tf_client-{version}/PKG-INFO").read().decode())
    assert pkg_info.get_all("License-File") == ["LICENSE"]
    assert repository_links(pkg_info.get_payload()) == []


@pytest.fixture
def served_model(tmp_path):
    """A small model served by the development server, with its scores computed in-process."""
    keras.utils.set_random_seed(3)
    model = build_autoencoder("kdd", "memae", input_shape=(FEATURES,), units=(4, 2),
                              num_items=5)
    rows = np.random.default_rng(2).uniform(-1, 1, size=(9, FEATURES)).astype("float32")
    scores = ((rows - model(rows, training=False).numpy()) ** 2).mean(axis=1)
    export_saved_model(model, tmp_path / "models" / "kdd", threshold=float(np.median(scores)))
    handle = serve(tmp_path / "models" / "kdd", "kdd", port=0, host="127.0.0.1")
    yield handle.port, rows, scores
    handle.stop(grace=0)


@pytest.mark.slow
def test_a_fresh_venv_with_only_the_client_scores_against_the_local_server(
    tmp_path, served_model
):
    port, rows, expected = served_model
    source = distribution_source(tmp_path / "src")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    subprocess.run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                    str(source)], check=True, timeout=900)
    script = textwrap.dedent(
        """
        import importlib.metadata, importlib.util, json, sys
        import numpy as np
        from memae_tf.client import MemAEClient

        rows = np.asarray(json.loads(sys.argv[2]), dtype=np.float32)
        with MemAEClient(f"127.0.0.1:{sys.argv[1]}", "kdd", timeout=60) as client:
            scores = client.score(rows)
            (status,) = client.status()
        print(json.dumps({
            "scores": scores.tolist(),
            "state": status.state,
            "tensorflow": importlib.util.find_spec("tensorflow") is not None,
            "distributions": sorted(d.metadata["Name"].lower().replace("_", "-")
                                    for d in importlib.metadata.distributions()),
        }))
        """
    )
    # -I: ignore PYTHONPATH and the working directory, so only the venv's packages count.
    answer = subprocess.run([python, "-I", "-c", script, str(port), json.dumps(rows.tolist())],
                            check=True, capture_output=True, text=True, timeout=300)
    result = json.loads(answer.stdout)
    np.testing.assert_allclose(result["scores"], expected, rtol=1e-5)
    assert result["state"] == "AVAILABLE"
    assert not result["tensorflow"]
    installed = set(result["distributions"]) - {"pip", "setuptools"}
    assert {"memae-tf-client", "grpcio", "protobuf", "numpy"} <= installed
    assert not {name for name in installed if "tensorflow" in name or "keras" in name}
