"""The dependency-free foundations: the argument check and the serving contract."""

import ast
import pathlib

import numpy as np
import pytest
import tensorflow as tf

from memae_tf.common import contract
from memae_tf.common.checks import check_positive_int


@pytest.mark.parametrize("value", [1, 64, np.int64(3), np.uint8(7)])
def test_positive_integers_of_python_and_numpy_are_accepted_as_int(value):
    checked = check_positive_int("n", value)
    assert checked == int(value) and type(checked) is int


@pytest.mark.parametrize("value", [0, -1, True, False, 2.0, "3", None, np.float32(2)])
def test_bools_floats_and_non_positive_values_are_refused_with_name_and_value(value):
    with pytest.raises(ValueError, match=r"`n`, expected a positive integer\. Received: n="):
        check_positive_int("n", value)


def test_none_is_accepted_only_when_allowed_and_then_said_in_the_message():
    assert check_positive_int("version", None, allow_none=True) is None
    with pytest.raises(ValueError, match="expected None or a positive integer"):
        check_positive_int("version", 0, allow_none=True)


def test_the_exported_signatures_follow_the_contract(tmp_path):
    from memae_tf.export import export_saved_model
    from memae_tf.models import build_autoencoder

    model = build_autoencoder("kdd", "memae", input_shape=(5,), units=(4, 2), num_items=3)
    path = export_saved_model(model, tmp_path / "kdd", threshold=0.1)
    assert contract.version_directories(tmp_path / "kdd") == {1: path}
    assert contract.warmup_file(path).is_file()
    loaded = tf.saved_model.load(str(path))
    assert set(loaded.signatures) == {contract.SERVING_SIGNATURE, contract.SCORE_MAP_SIGNATURE,
                                      contract.ATTENTION_SIGNATURE, contract.MODEL_INFO_SIGNATURE}
    default = loaded.signatures[contract.SERVING_SIGNATURE]
    assert list(default.structured_input_signature[1]) == [contract.INPUT_NAME]
    assert set(default.structured_outputs) == {
        contract.SCORE_OUTPUT, contract.IS_ANOMALY_OUTPUT, contract.RECONSTRUCTION_OUTPUT
    }
    score_map = loaded.signatures[contract.SCORE_MAP_SIGNATURE].structured_outputs
    attention = loaded.signatures[contract.ATTENTION_SIGNATURE].structured_outputs
    assert set(score_map) == {contract.SCORE_MAP_OUTPUT}
    assert set(attention) == {contract.ATTENTION_OUTPUT}


def test_version_directories_are_the_children_named_by_an_ascii_number(tmp_path):
    # file_system_storage_path_source.cc ParseVersionNumber: absl::SimpleAtoi, which reads
    # ASCII digits only; a child whose name does not parse is skipped, no error. Digits of
    # other scripts ("²", "١٢"), which Python's str.isdigit also accepts, are no version.
    # GetChildren lists files too: a file named 7 is version 7 (whose load then fails).
    for name in ("3", "10", "²", "١٢", "v4", ".tmp-5"):
        (tmp_path / name).mkdir()
    (tmp_path / "7").write_text("a file")
    assert contract.version_directories(tmp_path) == {
        3: tmp_path / "3", 7: tmp_path / "7", 10: tmp_path / "10"}
    assert list(contract.version_directories(tmp_path)) == [3, 7, 10]
    assert contract.version_directories(tmp_path / "absent") == {}


@pytest.mark.parametrize(("name", "version"), [
    ("3", 3), ("03", 3), ("0", 0), ("+3", 3), ("-1", -1), ("-0", 0), (" 3", 3), ("3 ", 3),
    ("\t3\n", 3), ("\v\f\r3", 3), ("9223372036854775807", 2**63 - 1),
    ("-9223372036854775808", -(2**63)), ("9223372036854775808", None),
    ("-9223372036854775809", None), ("", None), (" ", None), ("+", None), ("-", None),
    ("+-3", None), ("- 3", None), ("3 4", None), ("3a", None), ("0x3", None), ("3.0", None),
    ("1e3", None), ("3_000", None), ("²", None), ("١٢", None), ("\u20033", None),
])
def test_a_version_name_is_read_as_absl_simple_atoi_reads_an_int64(name, version):
    # file_system_storage_path_source.cc ParseVersionNumber is absl::SimpleAtoi(int64_t*)
    # (absl/strings/numbers.cc safe_parse_sign_and_base, base 10): ascii_isspace at both
    # ends skipped, one sign, ASCII digits, leading zeros read, no 0x prefix in base 10,
    # out of int64 refused; U+2003 is no ASCII space.
    assert contract.parse_version_number(name) == version


def test_of_two_names_for_one_version_the_later_in_byte_order_counts(tmp_path):
    # file_system_storage_path_source.cc: the children go through a std::set (byte order),
    # and IndexChildrenByVersion keeps the last name of a version: "3" after "+3" and "03".
    for name in ("03", "3", "+3", "-1", "4 "):
        (tmp_path / name).mkdir()
    assert [(v, p.name) for v, p in contract.version_children(tmp_path)] == [
        (3, "+3"), (-1, "-1"), (3, "03"), (3, "3"), (4, "4 ")]
    assert contract.version_directories(tmp_path) == {
        -1: tmp_path / "-1", 3: tmp_path / "3", 4: tmp_path / "4 "}


def test_the_contracts_tf_serving_defaults_are_server_hs():
    # tensorflow_serving/model_servers/server.h Server::Options: grpc_port = 8500,
    # max_num_load_retries = 5, load_retry_interval_micros = 60 s,
    # file_system_poll_wait_seconds = 1 (memae serve's listing of the base path).
    assert contract.GRPC_PORT == 8500
    assert contract.SERVE_MAX_NUM_LOAD_RETRIES == 5
    assert contract.SERVE_LOAD_RETRY_INTERVAL_SECONDS == 60e6 / 1e6
    assert contract.SERVE_POLL_INTERVAL_SECONDS == 1.0


def test_the_default_row_limit_is_the_shipped_batching_files():
    import yaml

    configmap = pathlib.Path(contract.__file__).parents[2] / "serving/k8s/configmap.yaml"
    batching = yaml.safe_load(configmap.read_text())["data"]["batching_parameters.txt"]
    assert f"max_batch_size {{ value: {contract.DEFAULT_MAX_BATCH_SIZE} }}" in batching


def test_reference_quantiles_are_taken_at_every_percent():
    # Levels i / (count - 1): 0, 0.01, ..., 1, every percent once.
    levels = np.arange(contract.REFERENCE_QUANTILE_COUNT) / (
        contract.REFERENCE_QUANTILE_COUNT - 1)
    np.testing.assert_allclose(levels * 100, np.arange(101))


def test_the_frame_score_settings_are_the_video_protocols():
    # benchmarks/VIDEO_PROTOCOL.md, the frame scores: "patch" is the largest mean over the
    # 8 x 8 windows at a stride of 4 pixels, "relative" divides by the moving content
    # + 0.001.
    from memae_tf import choices

    assert (choices.FRAME_SCORE_PATCH_SIZE, choices.FRAME_SCORE_PATCH_STRIDE) == (8, 4)
    assert choices.FRAME_SCORE_CONTENT_FLOOR == 0.001


def _modules_where(matches) -> list[str]:
    """The package's modules (paths under memae_tf/) holding a syntax node that `matches`."""
    package = pathlib.Path(contract.__file__).parents[1]
    return sorted(
        path.relative_to(package).as_posix()
        for path in package.rglob("*.py")
        if any(matches(node) for node in ast.walk(ast.parse(path.read_text())))
    )


def test_the_frame_score_names_are_written_once_in_the_contract():
    # The exporter, the client, the scoring graph and the command line all take them
    # from `contract.FRAME_SCORES`: a second list could drift from the served outputs.
    written = _modules_where(
        lambda node: isinstance(node, ast.Tuple | ast.List | ast.Set)
        and {"last", "patch", "relative"} <= {getattr(item, "value", None) for item in node.elts})
    assert written == ["common/contract.py"]
    assert contract.FRAME_SCORES == ("clip", "last", "patch", "relative", "last_plus_temporal")


def test_the_flagged_frame_scores_are_derived_once_in_the_contract():
    # Every frame score but "clip" has its own threshold and flag; the detector that
    # sets the thresholds, the exporter that checks them and the client that reads
    # them back all take the list from `contract.FLAGGED_FRAME_SCORES`.
    derived = _modules_where(
        lambda node: isinstance(node, ast.comprehension) and node.ifs
        and getattr(node.iter, "id", None) == "FRAME_SCORES")
    assert derived == ["common/contract.py"]
    assert contract.FLAGGED_FRAME_SCORES == ("last", "patch", "relative", "last_plus_temporal")
