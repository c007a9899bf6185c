"""The benchmark scripts run (quick mode), and their RESULTS.md editing keeps other sections."""

import importlib.util
import json
import os
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest

BENCHMARKS = pathlib.Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import _common  # noqa: E402

from memae_tf.choices import score_batch_size  # noqa: E402


@pytest.mark.slow
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
        # `score(x)` as a user calls it, at the detector's default batch.
        assert f"| `score(x)`, default batch ({score_batch_size((28, 28, 1))}) |" in result.stdout


def _profile_tables(stdout: str) -> dict[str, tuple[float, list[tuple[float, int, str]]]]:
    """profile_ops.py's tables: title → (total ms per call, [(ms, share %, label)])."""
    tables = {}
    for line in stdout.splitlines():
        title = re.fullmatch(r"\*\*(.+)\*\* — ([\d.]+) ms of operations per call", line)
        row = re.fullmatch(r"\| ([\d.]+) \| (\d+)% \| (.+) \|", line)
        if title:
            rows = []
            tables[title.group(1)] = (float(title.group(2)), rows)
        elif row:
            rows.append((float(row.group(1)), int(row.group(2)), row.group(3)))
    return tables


@pytest.mark.slow
@pytest.mark.parametrize("xla, kind", [("--xla", "XLA"), ("--no-xla", "TensorFlow graph")])
def test_profile_quick_mode_attributes_each_call_to_the_networks_layers(xla, kind):
    from memae_tf import MemAE

    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / "profile_ops.py"), "--quick", "--top", "100000", xla],
        capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    tables = _profile_tables(result.stdout)
    assert list(tables) == [f"Training step ({kind}, batch 64)",
                            "MemAE.score (TensorFlow graph, batch 1024)"]
    layers = {layer.name for layer in MemAE.from_preset("mnist").model.layers}
    convolutions = {"encoder_conv1", "encoder_conv2", "encoder_conv3", "decoder_deconv1",
                    "decoder_deconv2", "reconstruction"}
    assert convolutions <= layers
    seen = {}
    for title, (total, rows) in tables.items():
        # Every operation listed (--top above their number): the rows make up the total,
        # costliest first, each share its part of the total (both rounded as printed).
        ms = np.array([row[0] for row in rows])
        assert len(rows) > 10 and np.all(ms >= 0) and np.all(np.diff(ms) <= 0)
        assert abs(ms.sum() - total) <= 0.005 + 0.0005 * len(rows)
        for value, share, _ in rows:
            assert abs(share - 100 * value / total) <= 0.5 + 100 * 0.0005 / total + 1e-9
        places = {label.split(" · ")[0] for _, _, label in rows}
        seen[title] = places
        assert places <= ({"optimizer", "–"} | layers
                          | {f"{where} (backward)" for where in layers | {"–"}}), places
        # A convolutional network: its convolutions take most of each call, and most of
        # the time is put on a layer of the network.
        conv_ms = sum(value for value, _, label in rows
                      if "conv" in label.split(" · ")[1].lower())
        named_ms = sum(value for value, _, label in rows
                       if not label.startswith(("–", "optimizer")))
        assert conv_ms > total / 2 and named_ms > total / 2
    training, scoring = seen.values()
    # Training runs each convolution forward and backward, and the optimizer's update;
    # scoring runs forward only.
    assert {f"{name} (backward)" for name in convolutions} <= training
    assert "optimizer" in training and convolutions <= training
    assert not any(place == "optimizer" or place.endswith("(backward)") for place in scoring)


def test_profile_labels_name_the_layer_the_pass_and_the_operation():
    import profile_ops

    layers = {"encoder_conv2", "memory"}
    label = profile_ops._label
    assert label("memae/encoder_conv2/convolution:Conv2D", layers) == "encoder_conv2 · Conv2D"
    # Keras' and tf.function's name suffixes (`_1`, `_inference_12`) are not part of the name.
    assert label("memae_1/encoder_conv2_1/Relu:Relu", layers) == "encoder_conv2 · Relu"
    assert label("memae/memory_inference_12/MatMul:MatMul", layers) == "memory · MatMul"
    assert label("gradient_tape/memae/encoder_conv2/Conv2DBackpropInput:Conv2DBackpropInput",
                 layers) == "encoder_conv2 (backward) · Conv2DBackpropInput"
    assert label("adam/Mul_3:Mul", layers) == "optimizer · Mul"
    # Inside Keras' multi-step loop (TensorFlow graph, no XLA) the optimizer's scope is
    # nested, and the fused Adam's update ops sit outside it.
    loop = "while/body/_1/while/cond/then/_395/while/cond/StatefulPartitionedCall"
    assert label(f"{loop}/adam/Pow_3:Pow", layers) == "optimizer · Pow"
    assert label(f"{loop}/ResourceApplyAdam_7:ResourceApplyAdam",
                 layers) == "optimizer · ResourceApplyAdam"
    assert label(f"{loop}/memae_mnist_1/memory_1/Softmax:_MklSoftmax",
                 layers) == "memory · _MklSoftmax"
    assert label("memae/Square:Square", layers) == "– · Square"


def test_profile_maps_xla_instructions_to_the_tensorflow_ops_they_compile(tmp_path):
    import profile_ops

    (tmp_path / "module_0001.train_step.after_optimizations.txt").write_text(
        'ENTRY %main {\n'
        '  %convolution.3 = f32[64,14,14,16]{3,2,1,0} convolution(%p0, %p1), '
        'metadata={op_type="Conv2D" op_name="memae/encoder_conv2/convolution"}\n'
        '  ROOT %add_fusion.1 = f32[64]{0} fusion(%x), kind=kLoop, '
        'metadata={op_type="AddV2" op_name="adam/add"}\n'
        '  %p2 = f32[4]{0} parameter(2)\n}\n')
    (tmp_path / "module_0001.train_step.before_optimizations.txt").write_text(
        '  %dot.7 = f32[2]{0} dot(%a, %b), metadata={op_name="ignored/before"}\n')
    assert profile_ops._hlo_op_names(tmp_path) == {
        "convolution.3": "memae/encoder_conv2/convolution", "add_fusion.1": "adam/add"}


def test_profile_table_shares_are_parts_of_every_operations_total():
    import profile_ops

    table = profile_ops._table("T", [(3.0, "a · X"), (0.6, "b · Y"), (0.4, "c · Z")], top=2)
    assert table.splitlines() == [
        "**T** — 4.00 ms of operations per call", "",
        "| ms/call | share | layer · operation |", "|---|---|---|",
        "| 3.000 | 75% | a · X |", "| 0.600 | 15% | b · Y |"]


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


def test_score_shift_known_answer():
    import score_shift

    labels = np.array([0, 0, 0, 0, 0, 1, 1, 1])
    scores = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 4.5, 8.0, 9.0])
    shift = score_shift.score_shift(labels, scores)
    # normal median 3, anomalous median 8, normal quartiles 2 and 4 (linear interpolation)
    assert shift["normal median"] == 3.0 and shift["anomaly median"] == 8.0
    assert shift["gap"] == 5.0 and shift["normal IQR"] == 2.0 and shift["gap / IQR"] == 2.5
    # 14 of the 15 (anomaly, normal) pairs are ordered; 4.5 is below 5 only
    assert shift["AUROC"] == pytest.approx(14 / 15)
    with pytest.raises(ValueError, match="0 anomalous"):
        score_shift.score_shift(np.zeros(3), np.arange(3.0))


def test_score_shift_script_averages_units_of_stored_runs(tmp_path):
    scores_dir = tmp_path / "scores"
    scores_dir.mkdir()
    labels = np.array([0, 0, 0, 1, 1])
    runs = {"class=0": [0.0, 1.0, 2.0, 5.0, 7.0], "class=1": [1.0, 2.0, 3.0, 3.0, 3.0]}
    tasks = {}
    for unit, values in runs.items():
        tasks[f"ae/{unit}"] = {"model": "ae", "unit": unit}
        np.savez(scores_dir / f"ae__{unit.replace('=', '')}.npz", scores=np.array(values),
                 labels=labels)
    (tmp_path / "results.json").write_text(json.dumps({"config": {}, "tasks": tasks}))
    result = subprocess.run([sys.executable, str(BENCHMARKS / "score_shift.py"), str(tmp_path)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]
    row = next(line for line in result.stdout.splitlines() if line.startswith("| ae |"))
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    # gaps 6 - 1 = 5 and 3 - 2 = 1, mean 3; units 2
    assert cells[3] == "3" and cells[-1] == "2"


def test_machine_record_names_the_vector_extensions_in_a_fixed_order():
    cpuinfo = ("processor : 0\nmodel name : AMD EPYC\n"
               "flags : fpu avx2 sse2 fma avx512f avx512_vnni\nprocessor : 1\nflags : fpu\n")
    assert _common.vector_extensions(cpuinfo) == "avx512f avx512_vnni avx2 fma"
    assert _common.vector_extensions("flags : fpu sse2 avx2 fma") == "avx2 fma"
    assert _common.vector_extensions("model name : old\nflags : fpu sse2") == "none listed"


@pytest.mark.slow
def test_machine_record_reports_the_onednn_state_tensorflow_applies():
    """Unset, TensorFlow decides by the CPU (off on AVX2-only machines): the record says
    what TensorFlow applied, checked against the variable set both ways in fresh processes."""
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import _common;"
            "print(_common.onednn_state())")
    for value, state in (("0", "off"), ("1", "on")):
        env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": value, "TF_CPP_MIN_LOG_LEVEL": "3"}
        result = subprocess.run([sys.executable, "-c", code, str(BENCHMARKS)], env=env,
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-4000:]
        assert result.stdout.strip().splitlines()[-1] == f"{value} (oneDNN {state})"


@pytest.mark.slow
def test_first_call_profile_separates_the_one_time_set_up():
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / "first_call.py"), "--samples", "256", "--epochs", "1",
         "--score", "64"], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    report = json.loads(result.stdout)
    first, second = report["first_fit"], report["second_fit"]
    # The memory items are drawn from encodings once, at the first fit only.
    assert first["phases_cpu_s"]["adapt_memory"] > 0
    assert "adapt_memory" not in second["phases_cpu_s"]
    assert len(first["epochs_cpu_s"]) == len(second["epochs_cpu_s"]) == 1
    # 256 images are 4 batches of 64: one call of the 32-step train function per epoch,
    # the training data scored once per fit for decision_scores_.
    for call in (first, second, report["third_fit"]):
        assert len(call["train_calls_cpu_s"]) == 1
        assert {"train_steps", "memory_checks", "decision_scores", "other"} <= set(
            call["phases_cpu_s"])
        assert "main (Python)" in call["threads_cpu_s"]
    assert "vector extensions" in report["machine"]


@pytest.mark.slow
def test_isa_cap_makes_onednn_and_pytorch_pick_avx2_kernels():
    """`cap_isa("avx2")` is a proxy for an AVX2-only machine only if the libraries obey it:
    oneDNN reports the ISA it dispatches to (ONEDNN_VERBOSE's `info,cpu,isa` line, oneDNN's
    documented `ONEDNN_MAX_CPU_ISA`) and PyTorch its ATen capability."""
    if "avx2" not in _common.vector_extensions(pathlib.Path("/proc/cpuinfo").read_text()).split():
        pytest.skip("this CPU has no AVX2")
    prelude = ("import os, sys; sys.path.insert(0, sys.argv[1]); import _common;"
               "_common.cap_isa('avx2'); os.environ['ONEDNN_VERBOSE'] = '1';")
    checks = {
        "tensorflow": "import tensorflow as tf; tf.nn.conv2d(tf.ones([1, 8, 8, 1]), "
                      "tf.ones([3, 3, 1, 4]), 1, 'SAME')",
        "torch": "import torch; print('aten', torch.backends.cpu.get_cpu_capability())",
    }
    outputs = {}
    for library, code in checks.items():
        result = subprocess.run([sys.executable, "-c", prelude + code, str(BENCHMARKS)],
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-4000:]
        outputs[library] = result.stdout
    assert "aten AVX2" in outputs["torch"]
    isa_lines = [line for line in outputs["tensorflow"].splitlines() if ",info,cpu,isa:" in line]
    assert isa_lines and all(line.endswith("Intel AVX2") for line in isa_lines), isa_lines


def test_isa_cap_rejects_an_unknown_cap_and_keeps_earlier_xla_flags(monkeypatch):
    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_enable_fast_math=false")
    for name in ("ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ValueError, match="Received: cap='avx3'"):
        _common.cap_isa("avx3")
    _common.cap_isa("avx2")
    assert os.environ["XLA_FLAGS"] == "--xla_cpu_enable_fast_math=false --xla_cpu_max_isa=AVX2"
    assert os.environ["ONEDNN_MAX_CPU_ISA"] == "AVX2"
