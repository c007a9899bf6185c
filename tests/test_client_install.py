"""The TensorFlow-free client distribution (`client/`): its packaging, messages and install."""

import json
import pathlib
import shutil
import subprocess
import sys
import textwrap
import tomllib

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
    # The distribution's two folders, so that the build leaves the checkout untouched.
    source = tmp_path / "src"
    shutil.copytree(ROOT / "client", source / "client")
    for package in ("client", "common"):
        shutil.copytree(ROOT / "memae_tf" / package, source / "memae_tf" / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    subprocess.run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                    str(source / "client")], check=True, timeout=900)
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
