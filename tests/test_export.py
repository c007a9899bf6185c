"""SavedModel export: signatures, fresh-process parity, warmup, config files, atomicity."""

import os
import pathlib
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import text_format
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import prediction_log_pb2
from tensorflow_serving.config import model_server_config_pb2
from test_memory_layer import numpy_memory

from memae_tf.export import (
    BatchingParameters,
    export_saved_model,
    write_batching_parameters,
    write_models_config,
    write_warmup_requests,
)
from memae_tf.models import build_autoencoder, encode_queries, find_memory_layer
from memae_tf.scoring_graph import ScoringGraph, reconstruction_outputs

IMAGE_SHAPE = (16, 16, 1)


def _image_model() -> keras.Model:
    return build_autoencoder("mnist", "memae", input_shape=IMAGE_SHAPE, filters=(4, 8),
                             kernel_sizes=3, num_items=10, latent="local")


def _signature_defs(version_dir: pathlib.Path) -> dict:
    saved_model = saved_model_pb2.SavedModel.FromString(
        (version_dir / "saved_model.pb").read_bytes()
    )
    (meta_graph,) = saved_model.meta_graphs
    return dict(meta_graph.signature_def)


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return np.random.default_rng(0).uniform(size=(9, *IMAGE_SHAPE)).astype("float32")


@pytest.fixture(scope="module")
def exported(tmp_path_factory, images):
    """A conv MemAE exported with the median score of `images` as threshold."""
    keras.utils.set_random_seed(3)
    model = _image_model()
    reconstruction = model(images, training=False).numpy()
    threshold = float(np.median(((images - reconstruction) ** 2).mean(axis=(1, 2, 3))))
    root = tmp_path_factory.mktemp("models")
    path = export_saved_model(model, root / "digits", threshold=threshold)
    return model, threshold, path


def test_first_export_is_version_one_at_the_base_path(exported):
    _, _, path = exported
    assert path.name == "1" and (path / "saved_model.pb").is_file()


def test_signatures_have_the_documented_inputs_and_outputs(exported):
    signatures = _signature_defs(exported[2])
    expected = {
        "serving_default": {"score": (tf.float32, [-1]), "is_anomaly": (tf.bool, [-1]),
                            "reconstruction": (tf.float32, [-1, *IMAGE_SHAPE])},
        "score_map": {"score_map": (tf.float32, [-1, *IMAGE_SHAPE])},
        "memory_attention": {"memory_attention": (tf.float32, [-1, 4, 4, 10])},
        # A bare model's export knows its threshold, not its input range (MemAE.export
        # adds input_range, expected_rate and reference_quantiles: test_client_served.py).
        "model_info": {"threshold": (tf.float32, [-1])},
    }
    for name, outputs in expected.items():
        signature = signatures[name]
        assert signature.method_name == "tensorflow/serving/predict"
        (input_name, info), = signature.inputs.items()
        assert input_name == "x" and info.dtype == tf.float32.as_datatype_enum
        assert [d.size for d in info.tensor_shape.dim] == [-1, *IMAGE_SHAPE]
        got = {key: (tf.dtypes.as_dtype(value.dtype), [d.size for d in value.tensor_shape.dim])
               for key, value in signature.outputs.items()}
        assert got == outputs


def test_only_video_models_export_frame_score(exported):
    # An image model has no clip frames to score (test_video_streaming.py serves a video one).
    assert "frame_score" not in _signature_defs(exported[2])


def test_saved_model_uses_only_standard_tensorflow_ops(exported):
    saved_model = saved_model_pb2.SavedModel.FromString(
        (exported[2] / "saved_model.pb").read_bytes()
    )
    graph = saved_model.meta_graphs[0].graph_def
    ops = {node.op for node in graph.node}
    ops |= {node.op for function in graph.library.function for node in function.node_def}
    ops -= {function.signature.name for function in graph.library.function}
    assert ops <= set(dir(tf.raw_ops))


# TF Serving's CPU builds run with TensorFlow's oneDNN kernels on or off
# (TF_ENABLE_ONEDNN_OPTS): the export must score the same under both.
@pytest.mark.parametrize("onednn", ["0", "1"])
def test_fresh_process_without_memae_tf_reproduces_in_process_scores(
    exported, images, tmp_path, onednn
):
    model, threshold, path = exported
    np.save(tmp_path / "x.npy", images)
    script = textwrap.dedent(
        """
        import sys
        import numpy as np
        import tensorflow as tf
        from tensorflow.python.util import _pywrap_util_port

        # TensorFlow's own answer to "are the oneDNN kernels on?" (private, but the one it has).
        assert _pywrap_util_port.IsMklEnabled() == (sys.argv[4] == "1")
        loaded = tf.saved_model.load(sys.argv[1])
        x = tf.constant(np.load(sys.argv[2]))
        results = {}
        for name in ("serving_default", "score_map", "memory_attention"):
            for key, value in loaded.signatures[name](x=x).items():
                results[f"{name}/{key}"] = value.numpy()
        np.savez(sys.argv[3], **results)
        leaked = [m for m in sys.modules if m.startswith("memae_tf")]
        assert not leaked, leaked
        """
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TF_ENABLE_ONEDNN_OPTS": onednn}
    subprocess.run(
        [sys.executable, "-c", script, str(path), str(tmp_path / "x.npy"),
         str(tmp_path / "out.npz"), onednn],
        check=True, cwd=tmp_path, env=env, timeout=300,
    )
    served = np.load(tmp_path / "out.npz")
    in_process = reconstruction_outputs(model, tf.constant(images))
    in_process = {key: value.numpy() for key, value in in_process.items()}
    reconstruction = model(images, training=False).numpy()
    np.testing.assert_allclose(served["serving_default/score"], in_process["score"], rtol=1e-5)
    np.testing.assert_allclose(served["serving_default/score"],
                               ((images - reconstruction) ** 2).mean(axis=(1, 2, 3)), rtol=1e-5)
    np.testing.assert_array_equal(served["serving_default/is_anomaly"],
                                  served["serving_default/score"] > np.float32(threshold))
    assert 0 < served["serving_default/is_anomaly"].sum() < len(images)
    np.testing.assert_allclose(served["serving_default/reconstruction"], reconstruction,
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(served["score_map/score_map"], (images - reconstruction) ** 2,
                               rtol=1e-4, atol=1e-7)
    attention = served["memory_attention/memory_attention"]
    np.testing.assert_allclose(attention.sum(axis=-1), 1.0, rtol=1e-5)
    # the addressing of the layer's NumPy reference, from the encoder's queries
    layer = find_memory_layer(model)
    _, expected, _ = numpy_memory(encode_queries(model, images), layer.memory.numpy(),
                                  layer.effective_shrink_threshold, layer.similarity)
    np.testing.assert_allclose(attention, expected, rtol=1e-4, atol=1e-6)


def test_model_without_memory_has_no_attention_signature(tmp_path):
    model = build_autoencoder("kdd", "ae", input_shape=(12,), units=(8, 3))
    path = export_saved_model(model, tmp_path / "plain", threshold=0.1)
    assert set(_signature_defs(path)) == {"serving_default", "score_map", "model_info",
                                          "__saved_model_init_op"}


def test_warmup_file_holds_one_predict_request_per_signature(exported):
    path = exported[2] / "assets.extra" / "tf_serving_warmup_requests"
    logs = [prediction_log_pb2.PredictionLog.FromString(record.numpy())
            for record in tf.data.TFRecordDataset(str(path))]
    requests = {log.predict_log.request.model_spec.signature_name: log.predict_log.request
                for log in logs}
    assert set(requests) == {"serving_default", "score_map", "memory_attention", "model_info"}
    for request in requests.values():
        assert request.model_spec.name == "digits"
        assert tf.make_ndarray(request.inputs["x"]).shape == (1, *IMAGE_SHAPE)


def test_warmup_requests_are_written_where_tf_serving_reads_them_and_rewritten(tmp_path):
    # servables/tensorflow/saved_model_warmup_util.cc: <version>/assets.extra/
    # tf_serving_warmup_requests, TFRecords of PredictionLog. A SavedModel that already
    # has assets.extra (a second write) gets the file replaced.
    version = tmp_path / "1"
    version.mkdir()
    for shapes in ({"serving_default": (3,), "wide": (5,)}, {"serving_default": (2, 2)}):
        path = write_warmup_requests(version, "m", shapes)
        assert path == version / "assets.extra" / "tf_serving_warmup_requests"
        requests = [prediction_log_pb2.PredictionLog.FromString(record.numpy()).predict_log
                    .request for record in tf.data.TFRecordDataset(str(path))]
        assert {r.model_spec.signature_name: tf.make_ndarray(r.inputs["x"]).shape
                for r in requests} == {name: (1, *shape) for name, shape in shapes.items()}


def test_next_export_takes_the_next_free_version(tmp_path):
    model = build_autoencoder("kdd", "memae", input_shape=(12,), units=(8, 3), num_items=10)
    (tmp_path / "kdd" / "7").mkdir(parents=True)
    (tmp_path / "kdd" / "notes").mkdir()
    assert export_saved_model(model, tmp_path / "kdd", threshold=0.1).name == "8"
    assert export_saved_model(model, tmp_path / "kdd", threshold=0.1, version=3).name == "3"
    with pytest.raises(FileExistsError, match="Version 3"):
        export_saved_model(model, tmp_path / "kdd", threshold=0.1, version=3)


def test_failed_export_leaves_no_version_and_no_temporary_directory(tmp_path, monkeypatch):
    import memae_tf.export.saved_model as saved_model

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(saved_model, "write_warmup_requests", broken)
    model = build_autoencoder("kdd", "ae", input_shape=(12,), units=(8, 3))
    with pytest.raises(OSError, match="disk full"):
        export_saved_model(model, tmp_path / "kdd", threshold=0.1)
    assert list((tmp_path / "kdd").iterdir()) == []


def test_export_writes_models_config_with_one_entry_per_model_name(tmp_path):
    model = build_autoencoder("kdd", "ae", input_shape=(12,), units=(8, 3))
    export_saved_model(model, tmp_path / "first", threshold=0.1)
    export_saved_model(model, tmp_path / "second", threshold=0.1, serving_root="/srv")
    export_saved_model(model, tmp_path / "first", threshold=0.1)
    config = text_format.Parse((tmp_path / "models.config").read_text(),
                               model_server_config_pb2.ModelServerConfig())
    entries = {entry.name: entry for entry in config.model_config_list.config}
    assert sorted(entries) == ["first", "second"]
    assert entries["first"].base_path == "/models/first"
    assert entries["second"].base_path == "/srv/second"
    assert entries["first"].model_platform == "tensorflow"
    assert entries["first"].model_version_policy.latest.num_versions == 1


def test_batching_parameters_file_is_tf_serving_text_format(tmp_path):
    path = write_batching_parameters(tmp_path, BatchingParameters(max_batch_size=32))
    assert path.read_text().splitlines() == [
        "max_batch_size { value: 32 }",
        "batch_timeout_micros { value: 2000 }",
        "max_enqueued_batches { value: 100 }",
        "num_batch_threads { value: 4 }",
    ]


def test_models_config_keeps_entries_written_by_others(tmp_path):
    (tmp_path / "models.config").write_text(
        'model_config_list { config { name: "other" base_path: "/models/other" '
        'model_platform: "tensorflow" } }'
    )
    write_models_config(tmp_path, "memae")
    config = text_format.Parse((tmp_path / "models.config").read_text(),
                               model_server_config_pb2.ModelServerConfig())
    assert [entry.name for entry in config.model_config_list.config] == ["other", "memae"]


def test_invalid_batching_parameters_say_what_was_expected():
    with pytest.raises(ValueError, match=r"expected an integer >= 1. Received: max_batch_size=0"):
        BatchingParameters(max_batch_size=0)


@pytest.mark.parametrize(("field", "smallest"), [
    ("max_batch_size", 1), ("batch_timeout_micros", 0), ("max_enqueued_batches", 1),
    ("num_batch_threads", 1)])
def test_batching_parameters_take_the_smallest_values_tensorflows_batcher_takes(field,
                                                                             smallest):
    # TensorFlow's shared_batch_scheduler.h refuses a non-positive input_batch_size_limit,
    # max_enqueued_batches or num_batch_threads and a negative batch_timeout_micros (0:
    # run each batch as soon as it is taken); one below each is refused here.
    assert f"{field} {{ value: {smallest} }}" in BatchingParameters(
        **{field: smallest}).to_text()
    with pytest.raises(ValueError, match=rf"expected an integer >= {smallest}\. Received: "
                                         rf"{field}={smallest - 1}$"):
        BatchingParameters(**{field: smallest - 1})


def test_batching_parameters_cannot_be_changed_past_their_checks():
    parameters = BatchingParameters()
    with pytest.raises(AttributeError):
        parameters.max_batch_size = 0
    assert parameters.max_batch_size == 64


def test_config_files_are_readable_by_the_servers_user_and_their_paths_returned(tmp_path):
    # The files are written to a temporary file (private, as mkstemp makes it) and moved
    # into place; TF Serving may run as another user, so they end up rw-r--r--.
    models = write_models_config(tmp_path, "memae")
    batching = write_batching_parameters(tmp_path)
    assert (models, batching) == (tmp_path / "models.config",
                                  tmp_path / "batching_parameters.txt")
    assert [oct(path.stat().st_mode & 0o777) for path in (models, batching)] == ["0o644"] * 2
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "batching_parameters.txt", "models.config"]


def test_a_config_file_that_cannot_be_moved_into_place_leaves_the_old_one(tmp_path,
                                                                           monkeypatch):
    # TF Serving re-reads models.config while it runs: a failed write keeps the old file
    # whole and leaves no temporary file beside it.
    write_models_config(tmp_path, "first")
    before = (tmp_path / "models.config").read_text()

    def refuse(source, target):
        raise OSError("read-only file system")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError, match="read-only file system"):
        write_models_config(tmp_path, "second")
    assert (tmp_path / "models.config").read_text() == before
    assert [path.name for path in tmp_path.iterdir()] == ["models.config"]


@pytest.mark.parametrize("threshold", [None, float("nan"), "0.1", True])
def test_threshold_must_be_a_finite_float(tmp_path, threshold):
    model = build_autoencoder("kdd", "ae", input_shape=(12,), units=(8, 3))
    with pytest.raises(ValueError, match="expected a finite float"):
        export_saved_model(model, tmp_path / "kdd", threshold=threshold)


def test_scoring_graph_of_another_model_is_rejected(tmp_path):
    model = build_autoencoder("kdd", "ae", input_shape=(12,), units=(8, 3), name="a")
    other = build_autoencoder("kdd", "ae", input_shape=(12,), units=(8, 3), name="b")
    with pytest.raises(ValueError, match="ScoringGraph of `model`"):
        export_saved_model(model, tmp_path / "kdd", threshold=0.1,
                           scoring_graph=ScoringGraph(other))
    assert not (tmp_path / "kdd").exists()


def test_model_that_is_not_an_autoencoder_is_rejected(tmp_path):
    inputs = keras.Input((12,))
    model = keras.Model(inputs, keras.layers.Dense(3)(inputs))
    with pytest.raises(ValueError, match="outputs of the same shape"):
        export_saved_model(model, tmp_path / "kdd", threshold=0.1)


def test_saved_model_cli_lists_every_signature(exported):
    cli = pathlib.Path(sys.executable).with_name("saved_model_cli")
    if not cli.exists():
        pytest.skip("saved_model_cli is not installed beside this Python")
    shown = subprocess.run([str(cli), "show", "--all", "--dir", str(exported[2])],
                           capture_output=True, text=True, check=True, timeout=120).stdout
    for name in ("serving_default", "score_map", "memory_attention"):
        assert f"signature_def['{name}']" in shown
    assert "outputs['is_anomaly']" in shown and "inputs['x']" in shown


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"input_range": (1.0, -1.0)}, "low < high"),
        ({"input_range": (1.0, 1.0)}, "low < high"),
        ({"input_range": (0.0, float("inf"))}, "low < high"),
        ({"input_range": (float("nan"), 1.0)}, "low < high"),
        ({"expected_rate": 0.05}, "together"),
        ({"reference_quantiles": np.arange(101.0)}, "together"),
        ({"expected_rate": 1.5, "reference_quantiles": np.arange(101.0)}, r"share in \(0, 1\)"),
        ({"expected_rate": 0.0, "reference_quantiles": np.arange(101.0)}, r"share in \(0, 1\)"),
        ({"expected_rate": 1.0, "reference_quantiles": np.arange(101.0)}, r"share in \(0, 1\)"),
        ({"expected_rate": True, "reference_quantiles": np.arange(101.0)}, r"share in \(0, 1\)"),
        ({"expected_rate": 0.05, "reference_quantiles": np.arange(101.0)[::-1]},
         "non-decreasing"),
        ({"expected_rate": 0.05, "reference_quantiles": np.arange(100.0)}, "101 finite"),
        ({"expected_rate": 0.05, "reference_quantiles": [*range(100), float("nan")]},
         "101 finite"),
    ],
)
def test_model_info_values_are_checked_before_anything_is_written(tmp_path, options, message):
    model = build_autoencoder("kdd", "ae", input_shape=(4,), units=(3, 2))
    with pytest.raises(ValueError, match=message):
        export_saved_model(model, tmp_path / "kdd", threshold=0.1, **options)
    assert not (tmp_path / "kdd").exists()  # not even an empty model base path


def _served(path: pathlib.Path, signature: str, x: np.ndarray) -> dict[str, np.ndarray]:
    """The outputs of one signature of an export, loaded with TensorFlow alone."""
    function = tf.saved_model.load(str(path)).signatures[signature]
    return {key: value.numpy() for key, value in function(x=tf.constant(x)).items()}


def _table_model() -> keras.Model:
    keras.utils.set_random_seed(4)
    return build_autoencoder("kdd", "ae", input_shape=(12,), units=(8, 3))


def test_a_score_equal_to_the_threshold_is_no_anomaly_and_the_comparison_is_in_float64(
    tmp_path,
):
    model = _table_model()
    x = np.random.default_rng(6).uniform(-1, 1, size=(6, 12)).astype("float32")
    scores = _served(export_saved_model(model, tmp_path / "kdd", threshold=1.0),
                     "serving_default", x)["score"]
    # The threshold of version 2 is a served score; that of version 3 lies a quarter of a
    # float32 step below another, so that it rounds to that score in float32.
    equal = float(scores[0])
    below = float(scores[1]) - float(np.spacing(scores[1])) / 4
    assert np.float32(below) == scores[1]
    served = {}
    for version, threshold in ((2, equal), (3, below)):
        path = export_saved_model(model, tmp_path / "kdd", threshold=threshold, version=version)
        served[version] = _served(path, "serving_default", x)
        np.testing.assert_array_equal(served[version]["score"], scores)
        flags = scores.astype(np.float64) > threshold
        np.testing.assert_array_equal(served[version]["is_anomaly"], flags)
        # model_info's float32 threshold gives a client the same flags.
        info = _served(path, "model_info", x[:1])["threshold"][0]
        np.testing.assert_array_equal(scores > info, flags)
    assert not served[2]["is_anomaly"][0]
    assert served[3]["is_anomaly"][1]  # a float32 comparison would find them equal


def _float32_of_bits(bits: int) -> np.float32:
    return np.array(bits, np.uint32).view(np.float32)[()]


@pytest.mark.parametrize(
    ("threshold", "expected"),
    [
        (0.1, _float32_of_bits(0x3DCCCCCC)),  # float32(0.1) is 0x3DCCCCCD, above 0.1
        (0.7, _float32_of_bits(0x3F333333)),  # float32(0.7) is below 0.7 already
        (0.5, np.float32(0.5)),  # a float32 itself
        (-0.1, _float32_of_bits(0xBDCCCCCD)),  # -float32(0.1) is below -0.1
        (1e39, np.finfo(np.float32).max),  # beyond float32's range
        (-1e39, np.float32(-np.inf)),
    ],
)
def test_model_info_threshold_is_the_largest_float32_not_above_the_threshold(
    threshold, expected
):
    from memae_tf.export.saved_model import _float32_at_or_below

    got = _float32_at_or_below(threshold)
    assert got.dtype == np.float32 and got == expected


def test_model_info_repeats_each_constant_once_per_input_row(tmp_path):
    quantiles = np.linspace(0.0, 1.0, 101)
    quantiles[51] = quantiles[50]  # ties are quantiles too
    path = export_saved_model(_table_model(), tmp_path / "kdd", threshold=0.5,
                              input_range=(-1.0, 2.0), expected_rate=0.05,
                              reference_quantiles=quantiles)
    info = _served(path, "model_info", np.zeros((3, 12), np.float32))
    assert {key: (value.dtype, value.shape) for key, value in info.items()} == {
        "threshold": (np.float32, (3,)), "input_range": (np.float64, (3, 2)),
        "expected_rate": (np.float64, (3,)), "reference_quantiles": (np.float64, (3, 101))}
    np.testing.assert_array_equal(info["threshold"], np.float32(0.5))
    np.testing.assert_array_equal(info["input_range"], [[-1.0, 2.0]] * 3)
    np.testing.assert_array_equal(info["expected_rate"], [0.05] * 3)
    np.testing.assert_array_equal(info["reference_quantiles"], [quantiles] * 3)


VIDEO_SHAPE = (8, 16, 16, 1)


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    """A small video autoencoder, its scoring graph and clips with their frame scores."""
    keras.utils.set_random_seed(8)
    model = build_autoencoder("video", "ae", input_shape=VIDEO_SHAPE, filters=(2, 2, 2, 2))
    graph = ScoringGraph(model)
    clips = np.random.default_rng(8).uniform(-1, 1, size=(4, *VIDEO_SHAPE)).astype("float32")
    frame_scores = {key: value.numpy() for key, value in graph.frame_scores(clips).items()}
    return model, graph, clips, frame_scores, tmp_path_factory.mktemp("video")


def test_a_video_export_flags_each_frame_score_above_its_threshold(video):
    model, graph, clips, frame_scores, root = video
    last, patch = np.sort(frame_scores["last"]), np.sort(frame_scores["patch"])
    thresholds = {"last": (last[1] + last[2]) / 2, "patch": (patch[0] + patch[1]) / 2}
    path = export_saved_model(model, root / "walkway", threshold=1.0, scoring_graph=graph,
                              frame_thresholds={k: float(v) for k, v in thresholds.items()})
    served = _served(path, "frame_score", clips)
    assert set(served) == {"clip", "last", "patch", "relative", "last_plus_temporal",
                           "is_anomaly_last", "is_anomaly_patch"}
    assert served["is_anomaly_last"].sum() == 2 and served["is_anomaly_patch"].sum() == 3
    info = _served(path, "model_info", clips[:2])
    for name, threshold in thresholds.items():
        flags = served[name].astype(np.float64) > threshold
        np.testing.assert_array_equal(served[f"is_anomaly_{name}"], flags)
        assert info[f"threshold_{name}"].dtype == np.float32
        np.testing.assert_array_equal(served[name] > info[f"threshold_{name}"][0], flags)


@pytest.mark.parametrize(
    "frame_thresholds",
    [{"clip": 1.0}, {"last": 1.0, "mean": 1.0}, [("last", 1.0)], {"last": float("nan")}],
    ids=["clip", "unknown", "pairs", "nan"],
)
def test_a_video_export_refuses_frame_thresholds_it_cannot_flag(video, frame_thresholds):
    model, graph, _, _, root = video
    with pytest.raises(ValueError, match=r"frame_thresholds|finite float"):
        export_saved_model(model, root / "refused", threshold=1.0, scoring_graph=graph,
                           frame_thresholds=frame_thresholds)
    assert not (root / "refused").exists()


def test_model_name_names_the_config_entry_and_the_warmup_requests(tmp_path):
    path = export_saved_model(_table_model(), tmp_path / "exports", threshold=0.1,
                              model_name="kdd")
    config = text_format.Parse((tmp_path / "models.config").read_text(),
                               model_server_config_pb2.ModelServerConfig())
    assert [entry.name for entry in config.model_config_list.config] == ["kdd"]
    logs = [prediction_log_pb2.PredictionLog.FromString(record.numpy()) for record in
            tf.data.TFRecordDataset(str(path / "assets.extra" / "tf_serving_warmup_requests"))]
    assert {log.predict_log.request.model_spec.name for log in logs} == {"kdd"}


@pytest.mark.parametrize("model_name", ["", "a/b", 7])
def test_a_model_name_that_cannot_name_a_model_is_refused(tmp_path, model_name):
    with pytest.raises(ValueError, match=r"expected a non-empty name without '/'"):
        export_saved_model(_table_model(), tmp_path / "kdd", threshold=0.1,
                           model_name=model_name)
    assert not (tmp_path / "kdd").exists()


def test_an_export_creates_missing_folders_prints_nothing_and_is_readable_by_all(
    tmp_path, capsys
):
    path = export_saved_model(_table_model(), tmp_path / "a" / "b" / "kdd", threshold=0.1)
    assert path == tmp_path / "a" / "b" / "kdd" / "1"
    assert capsys.readouterr().out == ""
    # The server may run as another user: others read and list the version, only the
    # owner writes (as a directory made under the usual umask 022).
    assert path.stat().st_mode & 0o777 == 0o755
