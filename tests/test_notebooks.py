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
import re
import sys
from pathlib import Path

import nbformat
import numpy as np
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
    OUTPUT_CHECKS[path.stem]([_printed(cell) for cell in executed])


def test_every_notebook_has_its_output_checks():
    assert sorted(OUTPUT_CHECKS) == [path.stem for path in NOTEBOOKS]


# ----------------------------------------------- what the QUICK runs print, checked
# A QUICK run trains for one epoch on a few hundred samples, so its AUROCs say nothing
# about the method (on MNIST they fall below 0.5: a one-epoch network rebuilds thin
# digits best); the checks hold what must be true whatever the training did: counts that
# agree between cells, values the code promises (served = in-process, a reload keeps the
# threshold), identities (effective items = exp(mean entropy); at the contamination
# threshold as many rows are flagged as there are anomalies, so precision = recall), and
# an AUROC floor only where one epoch already separates the data (Shuttle).


def _printed(cell) -> str:
    """What a code cell printed and displayed (stdout and text/plain), in order."""
    return "".join(output.text if output.output_type == "stream" else _text(output)
                   for output in cell.outputs
                   if output.output_type != "stream" or output.name == "stdout")


def _find(pattern: str, text: str) -> tuple[str, ...]:
    found = re.search(pattern, text, re.MULTILINE)
    assert found, f"{pattern!r} not in:\n{text}"
    return found.groups()


def _report(text: str) -> dict[str, list[float]]:
    """A MemoryReport.summary() table printed by pandas: statistic → one value per column."""
    rows = {}
    for line in text.splitlines():
        name, *values = line.split()
        if name in ("num_items", "num_queries", "mean_nonzeros", "median_nonzeros",
                    "mean_entropy", "effective_items", "num_unused"):
            rows[name] = [float(value) for value in values]
    return rows


def _check_report(report: dict[str, list[float]], queries: list[int], num_items: int) -> None:
    assert report["num_queries"] == queries and set(report["num_items"]) == {num_items}
    np.testing.assert_allclose(report["effective_items"], np.exp(report["mean_entropy"]),
                               rtol=1e-5)
    assert all(0 <= unused <= num_items for unused in report["num_unused"])


def _check_quickstart(printed: list[str]) -> None:
    n_fit, n_val = map(int, _find(r"train on (\d+) images of digit 0, (\d+) held out",
                                  printed[1]))
    n_test, anomalies, percent = map(int, _find(
        r"test: (\d+) images, (\d+) anomalies \((\d+)%\)", printed[1]))
    assert (n_fit, n_val, n_test) == (512, 128, 1000)  # MAX_FIT, MAX_FIT // 4, MAX_TEST
    assert percent == round(100 * anomalies / n_test)
    # Both models' reports count the test images of cell 1.
    supports = re.findall(r"^\s+(normal|anomaly)\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+(\d+)$",
                          printed[4], re.MULTILINE)
    assert supports == [("normal", str(n_test - anomalies)), ("anomaly", str(anomalies))] * 2
    assert f"memory_attention shape: ({n_test}, 100)" in printed[6]
    for mean, union in re.findall(r"([\d.]+) of 100 items used per image on average "
                                  r"\(median \d+\); (\d+) items used", printed[6]):
        assert float(mean) <= int(union) <= 100  # each image's items are among them
    (threshold,) = _find(r"=== memae: threshold_ = ([\d.]+)", printed[4])
    assert f"threshold_={threshold}" in printed[7]  # the reloaded detector's


def _check_custom_model(printed: list[str]) -> None:
    assert _find(r"train (\d+), threshold (\d+), test (\d+)", printed[1]) == (
        "512", "128", "300")
    # Per setting: λ, α, AUROC, items per query, effective items, normal test MSE (pandas
    # may wrap the table: a setting's values then continue in the second block).
    sweep = {}
    for name, values in re.findall(r"^(\w[\w ]+ \(λ=[^)]+\))\s+([\d. ]+)$", printed[6],
                                   re.MULTILINE):
        sweep.setdefault(name, []).extend(float(value) for value in values.split())
    assert len(sweep) == 5 and all(len(values) == 6 for values in sweep.values()), sweep
    items = {name: values[3] for name, values in sweep.items()}
    effective = {name: values[4] for name, values in sweep.items()}
    # Without shrinkage every softmax weight is above 0; hard shrinkage drops items, more
    # of them at 3/N than at 1/N. exp(entropy) never exceeds the items a query uses.
    assert items["dense memory (λ=0, α=0)"] == 100.0
    assert (items["strong shrinkage (λ=3/N, α=2e-4)"] < items["paper default (λ=1/N, α=2e-4)"]
            < 100.0)
    assert all(effective[name] <= items[name] + 0.05 for name in items)
    (threshold,) = _find(r"threshold_ = ([\d.]+);", printed[4])
    assert f"threshold_={threshold}," in printed[8]  # the reloaded detector's


def _check_serving(printed: list[str]) -> None:
    # Served and in-process scores agree: the SavedModel, gRPC, REST, then version 2.
    (saved,) = _find(r"max \|SavedModel - detector.score\| = (\S+)$", printed[3])
    (grpc_1,) = _find(r"max \|gRPC - in-process\| = (\S+)$", printed[6])
    (grpc_2,) = _find(r"served version 2 - max \|gRPC - in-process\| = (\S+)$", printed[9])
    assert max(float(saved), float(grpc_1), float(grpc_2)) <= 1e-5
    rest, grpc_scores = _find(r"REST: (\[.*\]) gRPC: (\[.*\])", printed[8])
    assert rest == grpc_scores
    assert ("'score': ('float32', (16,))" in printed[6]
            and "'is_anomaly': ('bool', (16,))" in printed[6]
            and "'reconstruction': ('float32', (16, 28, 28, 1))" in printed[6])
    assert "score_map (2, 28, 28, 1) memory_attention (2, 100)" in printed[6]
    # is_anomaly is score > threshold, row by row (rows printed equal to it are skipped).
    (threshold,) = _find(r"threshold ([\d.]+)$", printed[6])
    rows = re.findall(r"^\s+\d\s+([\d.]+)\s+(True|False)$", printed[6], re.MULTILINE)
    assert len(rows) == 8
    for score, flag in rows:
        if score != threshold:
            assert (float(score) > float(threshold)) == (flag == "True"), (score, threshold)
    assert "version=1, state='END'" in printed[9]
    assert "version=2, state='AVAILABLE'" in printed[9]


def _check_memory_inspection(printed: list[str]) -> None:
    n_fit, n_test, anomalies = map(int, _find(
        r"trained on (\d+) images of digit 3; test: (\d+) images, (\d+) anomalies", printed[1]))
    assert (n_fit, n_test) == (512, 400)
    _check_report(_report(printed[4]), [n_test - anomalies, anomalies], 100)
    assert f"scored {n_test} TFDS test images" in printed[10]


def _check_video(printed: list[str]) -> None:
    n_train, n_test, length, clip = map(int, _find(
        r"'n_train': (\d+), 'n_test': (\d+), 'length': (\d+)\}, clips of (\d+) frames",
        printed[0]))
    videos = re.findall(r"^\d+\s+test_\d+_(\w+)\s+(\d+)\s+(\d+)$", printed[1], re.MULTILINE)
    assert len(videos) == n_test
    for kind, frames, anomalous in videos:
        assert int(frames) == length
        assert (int(anomalous) == 0) == (kind == "normal") and int(anomalous) < length
    # Training clips every TRAIN_STRIDE = 2 frames, test clips at every frame.
    assert _find(r"(\d+) training clips, (\d+) test clips of shape (.*)$", printed[3]) == (
        str(n_train * ((length - clip) // 2 + 1)), str(n_test * (length - clip + 1)),
        f"({clip}, 64, 64, 1)")


def _check_tabular(printed: list[str]) -> None:
    # UCI's Statlog (Shuttle): 43,500 + 14,500 rows of 9 attributes.
    assert "58000 rows, 9 features: V1, V2, V3, V4, V5, V6, V7, V8, V9" in printed[1]
    n_test, percent = _find(r"test (\d+) rows, ([\d.]+)% anomalous", printed[1])
    per_class = {name: int(count) for name, count in
                 re.findall(r"^([A-Z][\w.]+)\s+(\d+)$", printed[1], re.MULTILINE)}
    n_test, normal = int(n_test), per_class["Rad.Flow"]
    assert sum(per_class.values()) == n_test
    assert float(percent) == round(100 * (n_test - normal) / n_test, 1)
    # Shuttle's classes separate after one epoch already: every model far above chance.
    aurocs = dict(re.findall(r"^(memae|ae|ocsvm|iforest)\s+([\d.]+)\s+[\d.]+$", printed[2],
                             re.MULTILINE))
    assert len(aurocs) == 4 and min(map(float, aurocs.values())) > 0.8, aurocs
    rules = re.findall(r"(fpr|contamination)=[\d.]+\s+[-\d.]+\s+([\d.]+)\s+([\d.]+)\s+"
                       r"([\d.]+)$", printed[4], re.MULTILINE)
    assert len(rules) == 4
    for rule, precision, recall, f1 in rules:
        precision, recall, f1 = float(precision), float(recall), float(f1)
        assert f1 == pytest.approx(2 * precision * recall / (precision + recall), abs=2e-4)
        if rule == "contamination":
            assert precision == recall
    _check_report(_report(printed[6]), [normal, n_test - normal], 200)


OUTPUT_CHECKS = {
    "01_quickstart_mnist": _check_quickstart,
    "02_custom_model_memory_layer": _check_custom_model,
    "03_serving_grpc": _check_serving,
    "04_memory_inspection": _check_memory_inspection,
    "05_video_anomalies": _check_video,
    "06_tabular": _check_tabular,
}
