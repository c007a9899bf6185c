"""The notebooks in notebooks/ run top to bottom, as Jupyter runs them, in QUICK mode.

Each notebook is executed by a real IPython kernel (nbclient + ipykernel), so
what is tested is what a user runs: cell order, shared state between cells,
IPython's display of the last expression, and matplotlib inside a kernel. The kernel
is the interpreter running the tests, declared in a throw-away kernelspec, so a
"python3" kernel installed elsewhere on the machine is never picked up by
accident. `MEMAE_NOTEBOOK_QUICK=1` shrinks every notebook to a smoke run, and
`MPLBACKEND=Agg` keeps matplotlib non-interactive.

A notebook is skipped only when the real dataset it reads is absent: the
notebooks never download in QUICK mode, so a missing dataset surfaces as a
`DatasetNotFoundError` in a cell, whose message names every place searched.

The notebooks are committed with the outputs of a full (not QUICK) run, so that
they read well on a code host before anyone runs them; the QUICK execution here
works on a copy and never writes them back.
"""

import json
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
KERNEL_NAME = "memae-tf-notebook-test"
QUICK_FLAG = "MEMAE_NOTEBOOK_QUICK"
# Generous: QUICK cells take seconds, but the test machine's cores are shared.
CELL_TIMEOUT_S = 300
# Committed outputs hold PNG figures; a notebook above this size has figures at too
# high a resolution (or too many of them) for a code host to show comfortably.
MAX_NOTEBOOK_BYTES = 3_000_000
STARTUP_TIMEOUT_S = 120


@pytest.fixture
def kernel_name(tmp_path, monkeypatch):
    """Declares a kernel running this interpreter with the QUICK settings; returns its name."""
    spec_dir = tmp_path / "jupyter" / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True)
    (tmp_path / "tmp").mkdir()
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "memae-tf notebook test",
        "language": "python",
        "env": {
            QUICK_FLAG: "1",
            "MPLBACKEND": "Agg",
            "TF_CPP_MIN_LOG_LEVEL": "3",
            "IPYTHONDIR": str(tmp_path / "ipython"),  # no history or profile in ~/.ipython
            "TMPDIR": str(tmp_path / "tmp"),  # the notebooks' tempfile folders end up here
        },
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    return KERNEL_NAME


def test_notebooks_are_found():
    assert [path.name for path in NOTEBOOKS] == [
        "01_quickstart_mnist.ipynb",
        "02_custom_model_memory_layer.ipynb",
        "03_serving_grpc.ipynb",
        "04_memory_inspection.ipynb",
        "05_video_anomalies.ipynb",
        "06_tabular.ipynb",
    ]


def _text(output) -> str:
    if output.output_type == "stream":
        return output.text
    return output.get("data", {}).get("text/plain", "")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_is_committed_with_the_outputs_of_a_full_run(path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code_cells, f"{path.name} has no code cells"
    assert any(QUICK_FLAG in cell.source for cell in code_cells), (
        f"{path.name} must read the {QUICK_FLAG} environment variable"
    )
    counts = [cell.execution_count for cell in code_cells]
    assert counts == list(range(1, len(code_cells) + 1)), (
        f"{path.name}: run every cell once, top to bottom, before committing. "
        f"Received execution counts {counts}"
    )
    outputs = [output for cell in code_cells for output in cell.outputs]
    errors = [output.ename for output in outputs if output.output_type == "error"]
    assert not errors, f"{path.name} was committed with errors: {errors}"
    assert "QUICK=False" in "".join(_text(output) for output in code_cells[0].outputs), (
        f"{path.name}: commit the outputs of a full run (MEMAE_NOTEBOOK_QUICK unset)"
    )
    assert path.stat().st_size < MAX_NOTEBOOK_BYTES


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_runs_without_errors_in_quick_mode(path, kernel_name, tmp_path):
    notebook = nbformat.read(path, as_version=4)
    workdir = tmp_path / "cwd"  # whatever a notebook writes next to itself lands here
    workdir.mkdir()
    client = NotebookClient(
        notebook,
        kernel_name=kernel_name,
        timeout=CELL_TIMEOUT_S,
        startup_timeout=STARTUP_TIMEOUT_S,
        allow_errors=False,
        resources={"metadata": {"path": str(workdir)}},
    )
    try:
        client.execute()
    except CellExecutionError as error:
        if error.ename == "DatasetNotFoundError":
            reason = str(error.evalue).splitlines()[0]
            pytest.skip(f"{path.name} needs a real dataset that is absent here: {reason}")
        raise
    executed = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(cell.execution_count for cell in executed), "some code cells did not run"
