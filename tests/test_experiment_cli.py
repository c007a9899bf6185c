"""`memae experiment`: every dataset path end to end in its tiny configuration.

Datasets that exist offline here (MNIST, Fashion-MNIST) are used for real, in
tiny form; the others are written in their published formats in `tmp_path`.
"""

import argparse
import contextlib
import itertools
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.io import savemat

from memae_tf.common.contract import DEFAULT_FRAME_SCORE
from memae_tf.data.cifar10 import TEST_BATCH, TRAIN_BATCHES
from memae_tf.data.kdd import FLAGS, PROTOCOLS, SERVICES
from memae_tf.evaluation.cli import add_experiment_command

FRAMES = 20  # more than one 16-frame clip per video


def experiment(argv, capsys=None):
    parser = argparse.ArgumentParser(prog="memae")
    add_experiment_command(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["experiment", *argv])
    status = args.func(args)
    return status, (capsys.readouterr().out if capsys else "")


def results(out):
    return json.loads((out / "results.json").read_text())


# An AUROC that an inverted score (1 - AUROC) or a random one (about 0.5) cannot reach.
# Only for models whose tiny run separates its data: one epoch on a few images leaves the
# neural variants at 0.33-0.65 on MNIST, random CIFAR pixels have no anomalies, and 16-frame
# clips of 20-frame videos all hold the same bright frames (measured with this suite's runs).
SEPARATED = 0.8


def assert_reports(out, n_tasks, units, separated=()):
    """The stored results and their plots; `separated`: the models that must rank anomalies."""
    stored = results(out)
    assert len(stored["tasks"]) == n_tasks
    for name, task in stored["tasks"].items():
        auroc = task["metrics"]["auroc"]
        assert 0.0 <= auroc <= 1.0
        assert name.split("/")[0] not in separated or auroc > SEPARATED, (name, auroc)
    assert len((out / "results.csv").read_text().strip().splitlines()) == n_tasks + 1
    assert "## AUROC per unit" in (out / "results.md").read_text()
    for unit in units:
        assert (out / "plots" / f"roc_{unit}.png").stat().st_size > 0
        assert (out / "plots" / f"hist_{unit}.png").stat().st_size > 0


# --- dataset files in their published formats ---------------------------------------------------


def write_cifar_batches(folder):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in (*TRAIN_BATCHES, TEST_BATCH):
        content = {b"labels": list(range(10)) * 2,
                   b"data": rng.integers(0, 256, (20, 3072), dtype=np.uint8)}
        (folder / name).write_bytes(pickle.dumps(content, protocol=2))


def write_kdd_file(path, n=120):
    rng = np.random.default_rng(0)
    lines = []
    for i in range(n):
        label = "normal." if i % 5 == 0 else "smurf."
        numbers = [f"{v:.2f}" for v in rng.random(37) * (5 if label == "normal." else 1)]
        lines.append(",".join([
            str(int(rng.integers(0, 10))), PROTOCOLS[i % 3], SERVICES[i % len(SERVICES)],
            FLAGS[i % len(FLAGS)], *numbers, label,
        ]))
    path.write_text("\n".join(lines) + "\n")


def write_frames(folder, n, bright=()):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(len(str(folder)))
    for i in range(n):
        pixels = rng.integers(0, 60, (24, 24), dtype=np.uint8)
        if i in bright:
            pixels += 180
        Image.fromarray(pixels).save(folder / f"{i + 1:03d}.tif" if folder.parent.name in (
            "Train", "Test") else folder / f"{i}.jpg")


ANOMALOUS = range(10, 16)


def ucsd_layout(root):
    write_frames(root / "Train" / "Train001", FRAMES)
    write_frames(root / "Test" / "Test001", FRAMES, bright=ANOMALOUS)
    (root / "Test" / "UCSDped2.m").write_text("TestVideoFile{end+1}.gt_frame = [11:16];\n")
    return root


def avenue_layout(root):
    write_frames(root / "training_videos" / "01", FRAMES)
    write_frames(root / "testing_videos" / "01", FRAMES, bright=ANOMALOUS)
    masks = np.empty((1, FRAMES), dtype=object)
    for i in range(FRAMES):
        masks[0, i] = np.full((24, 24), int(i in ANOMALOUS), np.uint8)
    (root / "testing_label_mask").mkdir()
    savemat(root / "testing_label_mask" / "1_label.mat", {"volLabel": masks})
    return root


def shanghaitech_layout(root):
    write_frames(root / "training" / "frames" / "01_001", FRAMES)
    write_frames(root / "testing" / "frames" / "01_0014", FRAMES, bright=ANOMALOUS)
    (root / "testing" / "test_frame_mask").mkdir(parents=True)
    np.save(root / "testing" / "test_frame_mask" / "01_0014.npy",
            np.isin(np.arange(FRAMES), ANOMALOUS).astype(np.int64))
    return root


# --- one path per dataset -----------------------------------------------------------------------


def test_mnist_tiny_runs_every_variant_and_baseline(tmp_path):
    out = tmp_path / "mnist"
    status, _ = experiment(["mnist", "--tiny", "--baselines", "ocsvm,iforest",
                            "--normal-classes", "7", "--out", str(out)])
    assert status == 0
    assert_reports(out, n_tasks=5, units=["class7"], separated=("ocsvm", "iforest"))
    config = results(out)["config"]
    assert config["tiny"] and config["epochs"] == 1


def test_fashion_mnist_tiny_with_the_deprecated_classes_option(tmp_path, capsys):
    out = tmp_path / "fashion"
    with pytest.warns(DeprecationWarning, match="--classes is deprecated"):
        experiment(["fashion-mnist", "--tiny", "--variants", "memae", "--classes", "3",
                    "--memory-init", "keep", "--out", str(out)])
    assert "warning: --classes is deprecated and will be removed; use --normal-classes" in (
        capsys.readouterr().err)
    assert_reports(out, n_tasks=1, units=["class3"])
    assert list(results(out)["tasks"]) == ["memae/class=3"]
    assert json.loads((out / "results.json").read_text())["config"]["memory_init"] == "keep"


def test_mnist_tiny_with_gcn_preprocessing(tmp_path):
    out = tmp_path / "gcn"
    experiment(["mnist", "--tiny", "--variants", "ae", "--baselines", "iforest",
                "--normal-classes", "4", "--preprocess", "gcn", "--out", str(out)])
    assert_reports(out, n_tasks=2, units=["class4"], separated=("iforest",))
    assert json.loads((out / "results.json").read_text())["config"]["preprocess"] == "gcn"


def test_cifar10_tiny_from_python_batches(tmp_path):
    batches = tmp_path / "cifar-10-batches-py"
    write_cifar_batches(batches)
    out = tmp_path / "cifar"
    experiment(["cifar10", "--tiny", "--variants", "memae", "--baselines", "iforest",
                "--data-path", str(batches), "--out", str(out)])
    assert_reports(out, n_tasks=4, units=["class0", "class1"])
    assert results(out)["tasks"]["memae/class=0"]["info"]["n_train"] == 10


def test_kdd_tiny_reports_precision_recall_f1(tmp_path):
    path = tmp_path / "kddcup.data_10_percent"
    write_kdd_file(path)
    out = tmp_path / "kdd"
    experiment(["kdd", "--tiny", "--variants", "memae", "--baselines", "iforest",
                "--data-path", str(path), "--out", str(out)])
    assert_reports(out, n_tasks=2, units=["run0"], separated=("memae", "iforest"))
    task = results(out)["tasks"]["memae/run=0"]
    assert {"precision", "recall", "f1", "aupr"} <= task["metrics"].keys()
    assert task["info"]["flagged_share"] == 0.2
    assert "| f1 |" in (out / "results.md").read_text()


def test_tabular_tiny_from_a_csv_file(tmp_path):
    rng = np.random.default_rng(0)
    kinds = np.where(rng.random(150) < 0.2, "rare", "usual")
    rows = ["a,b,kind"] + [f"{rng.random():.3f},{rng.random() + (k == 'rare'):.3f},{k}"
                           for k in kinds]
    path = tmp_path / "table.csv"
    path.write_text("\n".join(rows) + "\n")
    out = tmp_path / "tabular"
    experiment(["tabular", "--tiny", "--variants", "ae", "--data-path", str(path),
                "--label-column", "kind", "--normal-classes", "usual", "--out", str(out)])
    assert_reports(out, n_tasks=1, units=["run0"], separated=("ae",))
    assert results(out)["config"]["normal_classes"] == ["usual"]
    assert results(out)["tasks"]["ae/run=0"]["info"]["anomaly_share"] > 0


@pytest.mark.parametrize(
    ("dataset", "layout"),
    [("ucsd-ped2", lambda p: ucsd_layout(p / "UCSDped2")),
     ("avenue", lambda p: avenue_layout(p / "avenue")),
     ("shanghaitech", lambda p: shanghaitech_layout(p / "shanghaitech"))],
)
def test_video_datasets_tiny_from_their_layouts(tmp_path, dataset, layout):
    root = layout(tmp_path)
    out = tmp_path / "run"
    experiment([dataset, "--tiny", "--variants", "memae", "--data-path", str(root),
                "--out", str(out)])
    assert_reports(out, n_tasks=1, units=["all"])
    info = results(out)["tasks"]["memae/all"]["info"]
    # One test video of 20 frames: 5 clips; every frame scored by interpolation.
    assert info["n_test_clips"] == 5 and info["n_scored_frames"] == FRAMES


def test_moving_mnist_tiny_with_a_baseline(tmp_path):
    out = tmp_path / "moving"
    experiment(["moving-mnist", "--tiny", "--variants", "ae", "--baselines", "iforest",
                "--frame-score", "clip", "--out", str(out)])
    assert_reports(out, n_tasks=2, units=["all"])


def test_video_baselines_need_the_clip_score_and_say_so_before_training(tmp_path):
    # A baseline scores a clip as a whole: no per-pixel error to score a frame by.
    out = tmp_path / "moving"
    with pytest.raises(ValueError, match=r"expected frame_score='clip' .*Received: "
                                         r"frame_score='last_plus_temporal'"):
        experiment(["moving-mnist", "--tiny", "--variants", "ae", "--baselines", "iforest",
                    "--out", str(out)])
    assert not (out / "results.json").exists()


def test_moving_fashion_mnist_tiny_scored_by_ssim(tmp_path):
    out = tmp_path / "moving-fashion"
    experiment(["moving-fashion-mnist", "--tiny", "--variants", "memae", "--error", "ssim",
                "--out", str(out)])
    assert_reports(out, n_tasks=1, units=["all"])
    assert results(out)["config"]["error"] == "ssim"
    # Scored frame by frame as `memae score-video` and StreamScorer score by default.
    assert results(out)["config"]["frame_score"] == DEFAULT_FRAME_SCORE


def test_moving_fashion_mnist_draws_garments_not_digits():
    from memae_tf.data import load_fashion_mnist, load_mnist, make_moving_mnist
    from memae_tf.evaluation.datasets import MOVING_MNIST_TINY, load_videos

    train, _ = load_videos("moving-fashion-mnist", None, (32, 32), tiny=True, seed=0)
    for source, same in ((load_fashion_mnist(), True), (load_mnist(), False)):
        expected, _ = make_moving_mnist(**MOVING_MNIST_TINY, frame_size=(32, 32), seed=0,
                                        mnist=source)
        assert np.array_equal(train.frames[0], expected.frames[0]) is same


# --- results are never overwritten silently -----------------------------------------------------


# The results store does not depend on the model, so these use the fast Isolation Forest.


@pytest.fixture
def kdd_run(tmp_path):
    path = tmp_path / "kddcup.data_10_percent"
    write_kdd_file(path)
    return ["kdd", "--tiny", "--variants", "", "--data-path", str(path),
            "--out", str(tmp_path / "kdd")]


def test_existing_results_are_refused_without_resume_or_overwrite(kdd_run):
    experiment([*kdd_run, "--baselines", "iforest"])
    with pytest.raises(FileExistsError, match="--resume"):
        experiment([*kdd_run, "--baselines", "iforest"])


def test_resume_runs_only_the_missing_tasks(kdd_run, capsys):
    experiment([*kdd_run, "--baselines", "iforest"], capsys)
    before = results(Path(kdd_run[-1]))["tasks"]["iforest/run=0"]
    _, log = experiment([*kdd_run, "--baselines", "iforest,ocsvm", "--resume"], capsys)
    assert "1 tasks to run, 1 already done (skipped)" in log
    stored = results(Path(kdd_run[-1]))["tasks"]
    assert set(stored) == {"iforest/run=0", "ocsvm/run=0"} and stored["iforest/run=0"] == before


def test_resume_with_a_different_config_is_refused(kdd_run):
    experiment([*kdd_run, "--baselines", "iforest"])
    with pytest.raises(ValueError, match="seed: stored 0 vs 1"):
        experiment([*kdd_run, "--baselines", "iforest", "--seed", "1", "--resume"])


def test_overwrite_replaces_previous_results(kdd_run):
    experiment([*kdd_run, "--baselines", "iforest"])
    experiment([*kdd_run, "--baselines", "ocsvm", "--overwrite"])
    assert set(results(Path(kdd_run[-1]))["tasks"]) == {"ocsvm/run=0"}


def test_invalid_arguments_are_reported():
    with pytest.raises(SystemExit):
        experiment(["mnist", "--variants", "memae,vae", "--out", "x"])
    with pytest.raises(ValueError, match="--normal-classes applies to the one-class datasets "
                                         "and tabular, not kdd"):
        experiment(["kdd", "--tiny", "--normal-classes", "1", "--out", "x"])
    with pytest.raises(ValueError, match="not tabular-suite"):
        experiment(["tabular-suite", "--tiny", "--normal-classes", "good", "--out", "x"])
    with pytest.raises(ValueError, match="--normal-classes of mnist: expected comma-separated "
                                         "non-negative integers"):
        experiment(["mnist", "--tiny", "--normal-classes", "shirt", "--out", "x"])
    with pytest.raises(ValueError, match="`preprocess` applies to the one-class"):
        experiment(["kdd", "--tiny", "--preprocess", "gcn", "--out", "x"])


def test_animal_mnist_tiny(tmp_path):
    out = tmp_path / "animal"
    experiment(["animal-mnist", "--tiny", "--variants", "memae", "--normal-classes", "6",
                "--out", str(out)])
    assert_reports(out, n_tasks=1, units=["class6"])


_FACTORS = itertools.count(2)


def _retracing_warnings(quiet: bool) -> list[str]:
    """The messages TensorFlow's logger passes on while a loop makes a new tf.function per call."""
    import logging

    import tensorflow as tf

    from memae_tf.evaluation.cli import _quiet_retracing

    seen: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    logger = logging.getLogger("tensorflow")
    handler = Collect(level=logging.WARNING)
    logger.addHandler(handler)
    try:
        with _quiet_retracing() if quiet else contextlib.nullcontext():
            # TensorFlow counts traces per code object (equal code, one count): a
            # different one for each call of this helper, so each meets the detector anew.
            code = compile(f"lambda x: x * {next(_FACTORS)}.0", "<task>", "eval")
            for size in range(1, 9):  # a new function each time, as an experiment's tasks
                tf.function(eval(code), autograph=False)(tf.zeros((size,)))
            logger.warning("another TensorFlow warning")
    finally:
        logger.removeHandler(handler)
    return seen


def test_experiment_silences_only_tensorflows_retracing_warning():
    # TensorFlow's frequent-tracing detector (polymorphic_function.py) warns after
    # 5 traces in a row of functions made in a loop, as every task's new detector is.
    loud = _retracing_warnings(quiet=False)
    assert any("triggered tf.function retracing" in message for message in loud), loud
    import logging

    filters = list(logging.getLogger("tensorflow").filters)
    quiet = _retracing_warnings(quiet=True)
    assert quiet == ["another TensorFlow warning"]
    assert logging.getLogger("tensorflow").filters == filters  # removed afterwards
    assert any("triggered tf.function retracing" in m for m in _retracing_warnings(quiet=False))
