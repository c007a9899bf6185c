"""TF Serving's flags and configuration files, read by the server as TF Serving reads them.

Each test names the TF Serving source whose behaviour it checks. No server is
started here except where the startup itself is refused and, in a fresh
process, to read TensorFlow's thread pools; see tests/test_model_server.py for
the running server.
"""

import dataclasses
import logging
import os
import pathlib
import subprocess
import sys
from typing import ClassVar

import grpc
import pytest
import tensorflow as tf
from google.protobuf import text_format
from serving_helpers import (
    StandInServable,
    assert_generated_code_is_current,
    exported_small_model,
    free_port,
)
from tensorflow_serving.config import model_server_config_pb2

from memae_tf.cli import main
from memae_tf.serving.config import check_model_config_list, check_platforms, read_text_proto
from memae_tf.serving.errors import ServingError
from memae_tf.serving.flags import (
    ModelServerOptions,
    default_threads,
    parse_flags,
    unknown_arguments,
)
from memae_tf.serving.model_manager import VersionPolicy, aspired_versions
from memae_tf.serving.proto import BatchingParameters, MonitoringConfig, SSLConfig
from memae_tf.serving.server import start_model_server
from memae_tf.serving.threads import apply_thread_pools, thread_pools

ROOT = pathlib.Path(__file__).resolve().parents[1]
PROTO = pathlib.Path("memae_tf/serving/proto/serving_config.proto")


def test_committed_messages_are_what_make_proto_generates(tmp_path):
    assert_generated_code_is_current(PROTO, tmp_path)


# (field, number, type) as declared in TF Serving's .proto files, read from
# tensorflow_serving/servables/tensorflow/session_bundle_config.proto,
# tensorflow_serving/config/monitoring_config.proto and
# tensorflow_serving/config/ssl_config.proto.
_TYPES = {1: "double", 3: "int64", 8: "bool", 9: "string", 11: "message"}
TF_SERVING_FIELDS = {
    BatchingParameters: [
        ("max_batch_size", 1, "google.protobuf.Int64Value"),
        ("batch_timeout_micros", 2, "google.protobuf.Int64Value"),
        ("max_enqueued_batches", 3, "google.protobuf.Int64Value"),
        ("num_batch_threads", 4, "google.protobuf.Int64Value"),
        ("thread_pool_name", 5, "google.protobuf.StringValue"),
        ("allowed_batch_sizes", 6, "repeated int64"),
        ("pad_variable_length_inputs", 7, "bool"),
        ("enable_large_batch_splitting", 8, "google.protobuf.BoolValue"),
        ("max_execution_batch_size", 9, "google.protobuf.Int64Value"),
    ],
    MonitoringConfig: [("prometheus_config", 1, "memae_tf.serving_config.PrometheusConfig")],
    SSLConfig: [("server_key", 1, "string"), ("server_cert", 2, "string"),
                ("custom_ca", 3, "string"), ("client_verify", 4, "bool")],
}


def _declared(field) -> str:
    kind = field.message_type.full_name if field.message_type else _TYPES[field.type]
    return f"repeated {kind}" if field.is_repeated else kind


@pytest.mark.parametrize("message", list(TF_SERVING_FIELDS), ids=lambda m: m.__name__)
def test_messages_have_tf_servings_field_names_numbers_and_types(message):
    fields = [(f.name, f.number, _declared(f)) for f in message.DESCRIPTOR.fields]
    assert fields == TF_SERVING_FIELDS[message]


def test_batching_parameters_have_the_wire_format_of_the_clients_own_copy():
    # The client's copy (memae_tf/client/proto/tf_serving.proto) was transcribed
    # separately from TF Serving's file: both must encode the same bytes.
    text = ("max_batch_size { value: 64 } batch_timeout_micros { value: 2000 } "
            "max_enqueued_batches { value: 100 } num_batch_threads { value: 4 } "
            "thread_pool_name { value: 'pool' } allowed_batch_sizes: [8, 64] "
            "pad_variable_length_inputs: true enable_large_batch_splitting { value: true } "
            "max_execution_batch_size { value: 32 }")
    from memae_tf.client.proto import tf_serving_pb2

    ours = text_format.Parse(text, BatchingParameters())
    theirs = tf_serving_pb2.BatchingParameters.FromString(ours.SerializeToString())
    assert text_format.MessageToString(theirs) == text_format.MessageToString(ours)


def test_the_configmaps_files_parse(tmp_path):
    import yaml

    data = yaml.safe_load((ROOT / "serving/k8s/configmap.yaml").read_text())["data"]
    for name, text in data.items():
        (tmp_path / name).write_text(text)
    config = read_text_proto(tmp_path / "models.config", model_server_config_pb2.ModelServerConfig)
    check_model_config_list(config.model_config_list)
    batching = read_text_proto(tmp_path / "batching_parameters.txt", BatchingParameters)
    assert batching.max_batch_size.value == 64 and batching.batch_timeout_micros.value == 2000
    monitoring = read_text_proto(tmp_path / "monitoring.config", MonitoringConfig)
    assert monitoring.prometheus_config.enable
    assert monitoring.prometheus_config.path == "/monitoring/prometheus/metrics"


# ------------------------------------------------ files (util/proto_util.h)


def test_an_unknown_field_is_invalid_argument_naming_the_file(tmp_path):
    path = tmp_path / "batching_parameters.txt"
    path.write_text("max_batch_size { value: 64 }\nmax_batch { value: 8 }\n")
    with pytest.raises(ServingError) as info:
        read_text_proto(path, BatchingParameters)
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert f"Invalid protobuf file: '{path}'" in info.value.message
    assert "max_batch" in info.value.message and "2:1" in info.value.message


def test_a_missing_file_is_not_found_naming_the_file(tmp_path):
    with pytest.raises(ServingError) as info:
        read_text_proto(tmp_path / "models.config", model_server_config_pb2.ModelServerConfig)
    assert info.value.code == grpc.StatusCode.NOT_FOUND
    assert str(tmp_path / "models.config") in info.value.message


# ------------------------------------------- model list (server_core.cc)


def _config(text: str) -> model_server_config_pb2.ModelConfigList:
    return text_format.Parse(text, model_server_config_pb2.ModelServerConfig()).model_config_list


@pytest.mark.parametrize(("text", "message"), [
    ('model_config_list { config { name: "a" base_path: "/m/a" model_platform: "tensorflow" }'
     ' config { name: "a" base_path: "/m/b" model_platform: "tensorflow" } }',
     "Illegal to list model a multiple times in config list"),
    ('model_config_list { config { name: "a" base_path: "m/a" model_platform: "tensorflow" } }',
     "Expected model a to have an absolute path or URI; got base_path()=m/a"),
    ('model_config_list { config { name: "a" base_path: "/m/a" } }',
     "Illegal setting neither ModelServerConfig::model_type (deprecated) nor "
     "ModelServerConfig::model_platform, model name is a"),
    ('model_config_list { config { name: "a" base_path: "/m/a" model_platform: "tflite" } }',
     "Model a requests unsupported platform tflite"),
])
def test_a_model_list_tf_serving_refuses_is_refused_with_its_message(text, message):
    # server_core.cc: ValidateModelConfigList, then (once taken) CreateStoragePathRoutes.
    with pytest.raises(ServingError) as info:
        check_model_config_list(_config(text))
        check_platforms(_config(text))
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.message == message


@pytest.mark.parametrize("name", ["", "a/b"])
def test_a_model_name_no_request_path_can_name_is_refused(name):
    # Our own check (TF Serving takes such a name, but no REST path or gRPC model_spec
    # could reach it usefully): empty, or holding the path separator.
    text = f'model_config_list {{ config {{ name: "{name}" base_path: "/m/a" }} }}'
    with pytest.raises(ServingError) as info:
        check_model_config_list(_config(text))
    assert info.value.message == (
        f"Expected a model name that is non-empty and has no '/'; got name={name!r}")


def test_a_duplicate_name_is_found_before_a_relative_path_of_an_earlier_model():
    # ValidateModelConfigList checks every name first, then every base path.
    text = ('model_config_list { config { name: "a" base_path: "m/a" model_platform: '
            '"tensorflow" } config { name: "a" base_path: "/m/b" model_platform: "tensorflow" } }')
    with pytest.raises(ServingError, match="Illegal to list model a multiple times"):
        check_model_config_list(_config(text))


@pytest.mark.parametrize(("new", "message"), [
    ('model_platform: "tflite"', "Illegal to change a model's platform. For model a platform "
                                 "was tensorflow and new platform requested is tflite"),
    ("model_type: OTHER", "ModelServerConfig::model_type choice 2 not supported."),
    ("", "Illegal setting neither ModelServerConfig::model_type (deprecated) nor "
         "ModelServerConfig::model_platform, model name is a"),
])
def test_a_model_served_may_not_change_its_platform(new, message):
    # server_core.cc ValidateNoModelsChangePlatforms: GetPlatform of each model in both
    # lists, INVALID_ARGUMENT when they differ; models new to the list are not compared.
    old = _config('model_config_list { config { name: "a" base_path: "/m/a" '
                  'model_platform: "tensorflow" } }')
    changed = _config(f'model_config_list {{ config {{ name: "a" base_path: "/m/a" {new} }} '
                      'config { name: "b" base_path: "/m/b" model_platform: "tflite" } }')
    with pytest.raises(ServingError) as info:
        check_model_config_list(changed, old)
    assert (info.value.code, info.value.message) == (grpc.StatusCode.INVALID_ARGUMENT, message)
    same = _config('model_config_list { config { name: "a" base_path: "/m/z" '
                   'model_type: TENSORFLOW } config { name: "b" base_path: "/m/b" '
                   'model_platform: "tflite" } }')
    check_model_config_list(same, old)  # model_type TENSORFLOW is the same platform


# ----------------------- version policies (file_system_storage_path_source.cc)


@pytest.mark.parametrize(("policy", "expected"), [
    ("", [5]),  # no policy: latest 1
    ("latest { }", [5]),  # num_versions 0 counts as 1
    ("latest { num_versions: 2 }", [3, 5]),
    ("latest { num_versions: 9 }", [1, 2, 3, 5]),
    ("all { }", [1, 2, 3, 5]),
    ("specific { versions: 2 versions: 4 }", [2]),  # 4 is not on disk
    ("specific { }", []),
])
def test_version_policy_chooses_the_versions_tf_serving_aspires(policy, expected):
    assert aspired_versions(text_format.Parse(policy, VersionPolicy()), [3, 1, 5, 2]) == expected


# ------------------------------------------------------- flags (main.cc)


def test_unset_flags_take_tf_servings_defaults():
    # tensorflow_serving/model_servers/server.h (Server::Options) and server.cc; every
    # flag is named, so that a default changed in the class shows here.
    options = parse_flags([])
    assert options == ModelServerOptions(
        port=8500, grpc_socket_path="", grpc_channel_arguments="",
        enable_grpc_healthcheck_service=False, grpc_max_threads=4 * len(os.sched_getaffinity(0)),
        rest_api_port=0, rest_api_num_threads=4 * len(os.sched_getaffinity(0)),
        rest_api_enable_cors_support=False, rest_api_timeout_in_ms=30000, model_name="default",
        model_base_path="", model_config_file="", model_config_file_poll_wait_seconds=0,
        file_system_poll_wait_seconds=1, num_load_threads=0, num_unload_threads=0,
        max_num_load_retries=5, load_retry_interval_micros=60_000_000, saved_model_tags="serve",
        enable_model_warmup=True, num_request_iterations_for_warmup=0,
        enable_signature_method_name_check=False,
        enable_serialization_as_tensor_content=False, enable_batching=False,
        batching_parameters_file="", monitoring_config_file="",
        ssl_config_file="", tensorflow_session_parallelism=0, tensorflow_intra_op_parallelism=0,
        tensorflow_inter_op_parallelism=0,
        allow_version_labels_for_unavailable_models=False,
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.port = 9000


def test_the_default_thread_count_is_four_per_cpu_of_the_affinity_mask(monkeypatch):
    # tsl/platform/default/port.cc NumSchedulableCPUs: CPU_COUNT of sched_getaffinity(0)
    # (this process's mask, not pid 1's nor the machine's CPUs).
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 3, 5} if pid == 0 else {0})
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    assert default_threads() == 12


@pytest.mark.parametrize(("cpus", "threads"), [(3, 12), (None, 16)])
def test_without_an_affinity_mask_the_threads_count_the_machines_cpus_or_guess_4(
        monkeypatch, cpus, threads):
    # port.cc elsewhere: the hardware concurrency, else kDefaultCores = 4 ("semi-conservative
    # guess").
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: cpus)
    assert default_threads() == threads


def test_the_model_server_help_lists_every_flag_with_its_default(capsys):
    assert main(["model-server", "--help"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("usage: memae model-server --name=value ...") and text.endswith("\n")
    # Defaults shown as TensorFlow's flag parser takes them: a boolean as false/true.
    assert "  --enable_batching=BOOL  (default false)\n" in text
    assert "  --port=INT  (default 8500)\n" in text
    for field in dataclasses.fields(ModelServerOptions):
        assert f"  --{field.name}=" in text and field.metadata["help"] in text


@pytest.mark.parametrize(("argument", "value"), [
    ("--enable_batching", True), ("--enable_batching=true", True),
    ("--enable_batching=TRUE", True), ("--enable_batching=1", True),
    ("--enable_batching=false", False), ("--enable_batching=0", False),
])
def test_boolean_flags_take_tensorflows_flag_syntax(argument, value):
    # tensorflow/core/util/command_line_flags.cc: bare, or =true/false/1/0.
    assert parse_flags([argument]).enable_batching is value


@pytest.mark.parametrize(("argv", "message"), [
    (["--port", "8500"], "Flag --port needs a value"),  # TF's flags take no separate value
    (["--port=eighty"], "Couldn't interpret value eighty for flag port."),
    (["--enable_batching=yes"], "Couldn't interpret value yes for flag enable_batching."),
    (["--tensorflow_session_config_file=/etc/s.txt"],
     "--tensorflow_session_config_file=/etc/s.txt: --tensorflow_session_config_file is a "
     "flag of tensorflow_model_server that the development server does not implement."),
])
def test_flags_outside_the_syntax_are_refused_saying_what_was_expected(argv, message):
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(")):
        parse_flags(argv)


@pytest.mark.parametrize(("argv", "code", "message"), [
    (["--port=0", "--model_base_path=/m/a"], grpc.StatusCode.INVALID_ARGUMENT,
     "At least one of server_options.grpc_port or server_options.grpc_socket_path must be set."),
    ([], grpc.StatusCode.INVALID_ARGUMENT,
     "Both server_options.model_base_path and server_options.model_config_file are empty!"),
    (["--model_base_path=/m/a", "--batching_parameters_file=/etc/b.txt"],
     grpc.StatusCode.INVALID_ARGUMENT,
     "server_options.batching_parameters_file is set without setting "
     "server_options.enable_batching to true."),
    (["--model_base_path=/m/a", "--tensorflow_session_parallelism=2",
      "--tensorflow_intra_op_parallelism=2", "--tensorflow_inter_op_parallelism=2"],
     grpc.StatusCode.INVALID_ARGUMENT,
     "Either configure server_options.tensorflow_session_parallelism or "
     "(server_options.tensorflow_intra_op_parallelism, "
     "server_options.tensorflow_inter_op_parallelism) separately. You cannot configure all."),
    (["--model_base_path=/m/a", "--max_num_load_retries=-1"], grpc.StatusCode.INVALID_ARGUMENT,
     "--max_num_load_retries is negative (-1), which TF Serving reads as an unsigned count "
     "of about four billion retries; expected 0 (load once) or a positive number of "
     "retries."),
    # gRPC's ThreadManager::Initialize (src/cpp/thread_manager/thread_manager.cc) crashes
    # without a thread for its one poller; a negative count aborts in older gRPC releases.
    (["--model_base_path=/m/a", "--grpc_max_threads=0"], grpc.StatusCode.INVALID_ARGUMENT,
     "--grpc_max_threads=0: No thread quota available to even create the minimum required "
     "polling threads (i.e 1). Unable to start the thread manager; expected a positive "
     "number of threads."),
    (["--model_base_path=/m/a", "--grpc_max_threads=-1"], grpc.StatusCode.INVALID_ARGUMENT,
     "--grpc_max_threads is negative (-1), which gRPC's thread quota does not take as a "
     "count (older releases abort, newer ones read it as unsigned: no limit); expected a "
     "positive number of threads."),
    # basic_manager.cc CreateExecutor: a negative count, stored as a uint32, reaches the
    # thread pool's int as itself and fails its CHECK (tensorflow/core/platform/threadpool.cc).
    (["--model_base_path=/m/a", "--num_load_threads=-1"], grpc.StatusCode.INVALID_ARGUMENT,
     "Check failed: num_threads >= 1 (-1 vs. 1): --num_load_threads is negative, which TF "
     "Serving passes to its thread pool as that count; expected 0 (no thread pool) or a "
     "positive number of threads."),
    (["--model_base_path=/m/a", "--num_unload_threads=-2"], grpc.StatusCode.INVALID_ARGUMENT,
     "Check failed: num_threads >= 1 (-2 vs. 1): --num_unload_threads is negative, which TF "
     "Serving passes to its thread pool as that count; expected 0 (no thread pool) or a "
     "positive number of threads."),
])
def test_startup_refuses_the_flag_combinations_tf_serving_refuses(argv, code, message):
    # tensorflow_serving/model_servers/server.cc (Server::BuildAndStart).
    with pytest.raises(ServingError) as info:
        start_model_server(parse_flags(argv))
    assert (info.value.code, info.value.message) == (code, message)


@pytest.mark.parametrize(("argv", "retries", "seconds", "warmup", "iterations"), [
    ([], 5, 60.0, True, 1),
    (["--max_num_load_retries=0", "--load_retry_interval_micros=250000"], 0, 0.25, True, 1),
    (["--max_num_load_retries=2", "--load_retry_interval_micros=-1"], 2, 0.0, True, 1),
    (["--enable_model_warmup=false"], 5, 60.0, False, 1),
    (["--num_request_iterations_for_warmup=3"], 5, 60.0, True, 3),
    (["--num_request_iterations_for_warmup=-2"], 5, 60.0, True, 1),
])
def test_the_load_flags_reach_every_models_manager(tmp_path, monkeypatch, argv, retries,
                                                  seconds, warmup, iterations):
    # main.cc / server.cc pass the retry flags to ServerCore's manager (basic_manager.h:
    # max_num_load_retries, load_retry_interval_micros; retrier.cc: a negative interval
    # does not wait), --enable_model_warmup to the SessionBundleConfig of every model, and
    # --num_request_iterations_for_warmup to its model_warmup_options only when positive
    # (saved_model_warmup_util.cc replays each record once without it).
    from memae_tf.serving import model_manager

    class Recorded(model_manager.ModelManager):
        seen: ClassVar[list] = []

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            Recorded.seen.append((self.max_num_load_retries, self.load_retry_interval,
                                  self.enable_model_warmup, self.warmup_iterations))

    monkeypatch.setattr("memae_tf.serving.model_registry.ModelManager", Recorded)
    # The start waits for a version (server_core.cc): an empty one, which a stand-in loads.
    monkeypatch.setattr(model_manager, "Servable", StandInServable)
    (tmp_path / "1").mkdir()
    flags = [f"--model_base_path={tmp_path}", f"--port={free_port()}", *argv]
    with start_model_server(parse_flags(flags), host="127.0.0.1"):
        pass
    assert Recorded.seen == [(retries, seconds, warmup, iterations)]


@pytest.mark.parametrize("text", ["", "serve,gpu", "gpu", "tpu,serve"])
def test_saved_model_tags_other_than_serve_are_refused_at_start(text):
    # server.cc splits --saved_model_tags at commas; loader.cc FindMetaGraphDefToLoad
    # needs a MetaGraph with exactly that tag set, which a memae export (tagged serve)
    # has only for serve. TF Serving fails the load; the development server refuses first.
    with pytest.raises(ServingError) as info:
        start_model_server(parse_flags(["--model_base_path=/m/a",
                                        f"--saved_model_tags={text}"]))
    assert (info.value.code, info.value.message) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        f"--saved_model_tags={text}: the development server loads the MetaGraph tagged "
        "'serve' only (TF Serving loads the one whose tag set is exactly this list's); "
        "expected --saved_model_tags=serve, the default.")


@pytest.mark.parametrize("argv", [["--num_load_threads=0", "--num_unload_threads=0"],
                                  ["--num_unload_threads=4"], ["--saved_model_tags=serve"],
                                  ["--saved_model_tags=serve,serve"]])
def test_the_supported_values_of_load_flags_start_the_server(tmp_path, monkeypatch, argv):
    # basic_manager.cc CreateExecutor: 0 is an InlineExecutor, loads and unloads run in
    # the manager's own thread, as here; an unload here has no work to put on a thread.
    # The tag set {serve} is the one a memae export has (a tag listed twice is one). The
    # start waits for a version (server_core.cc): an empty one, which a stand-in loads.
    from memae_tf.serving import model_manager

    monkeypatch.setattr(model_manager, "Servable", StandInServable)
    (tmp_path / "1").mkdir()
    flags = [f"--model_base_path={tmp_path}", f"--port={free_port()}", *argv]
    with start_model_server(parse_flags(flags), host="127.0.0.1") as server:
        assert list(server.models) == ["default"]


def test_startup_names_a_batching_file_that_does_not_parse(tmp_path):
    bad = tmp_path / "batching_parameters.txt"
    bad.write_text("max_batch_size: 64\n")  # a wrapper message, not a scalar
    with pytest.raises(ServingError, match=f"Invalid protobuf file: '{bad}'"):
        start_model_server(parse_flags(["--model_base_path=/m/a", "--enable_batching",
                                        f"--batching_parameters_file={bad}"]))


def test_an_argument_tf_serving_does_not_know_is_printed_and_the_server_starts_anyway(capsys):
    # tensorflow/core/util/command_line_flags.cc Flags::Parse leaves an argument that is no
    # defined flag in argv; main.cc prints "unknown argument: " with the first (argv[1])
    # and the usage on stdout, then goes on to start the server (here: refused later, for
    # its own reason, which shows it got that far).
    flags = ["--rest_api_prot=8501", "models", "--port=0", "--model_base_path=/m/a"]
    assert unknown_arguments(flags) == ["--rest_api_prot=8501", "models"]
    assert parse_flags(flags) == parse_flags(["--port=0", "--model_base_path=/m/a"])
    assert main(["model-server", *flags]) == 255
    out, err = capsys.readouterr()
    assert out.startswith("unknown argument: --rest_api_prot=8501\nusage: memae model-server")
    assert "Failed to start server. Error: INVALID_ARGUMENT: At least one of" in err


def test_the_model_server_command_prints_tf_servings_start_failure(capsys):
    # tensorflow_serving/model_servers/main.cc: "Failed to start server. Error: ...", exit -1.
    assert main(["model-server", "--port=0", "--model_base_path=/m/a"]) == 255
    assert ("Failed to start server. Error: INVALID_ARGUMENT: At least one of "
            "server_options.grpc_port") in capsys.readouterr().err


# ------------------------------------------ TensorFlow's thread pools (server.cc)


@pytest.mark.parametrize(("session", "intra", "inter", "pools"), [
    (0, 0, 0, (0, 0)),  # all auto-configured
    (4, 0, 0, (4, 4)),  # the session flag sizes both pools
    (4, 2, 0, (2, 0)),  # a positive intra/inter flag wins; the other stays auto
    (4, 0, 3, (0, 3)),
    (0, 2, 3, (2, 3)),
    (4, 1, 0, (1, 0)),  # 1 is positive
    (4, 0, 1, (0, 1)),
])
def test_thread_pools_follow_tf_servings_rule(session, intra, inter, pools):
    # tensorflow_serving/model_servers/server.cc (Server::BuildAndStart): intra > 0 or
    # inter > 0 sets the session config from those two flags, else from
    # --tensorflow_session_parallelism for both.
    options = ModelServerOptions(tensorflow_session_parallelism=session,
                                 tensorflow_intra_op_parallelism=intra,
                                 tensorflow_inter_op_parallelism=inter)
    assert thread_pools(options) == pools


def test_thread_pools_refuse_all_three_flags_at_one_thread_each():
    # server.cc refuses all three when each is > 0, so 1 counts.
    options = ModelServerOptions(tensorflow_session_parallelism=1,
                                 tensorflow_intra_op_parallelism=1,
                                 tensorflow_inter_op_parallelism=1)
    with pytest.raises(ServingError, match="You cannot configure all"):
        thread_pools(options)


class TensorFlowPools:
    """tf.config.threading's four functions as tensorflow/python/eager/context.py defines
    them: 0 until set; setting the value it has is a no-op; setting another once the
    runtime started raises RuntimeError."""

    def __init__(self, monkeypatch, intra=0, inter=0, started=False):
        self.threads, self.started, self.set_calls = {"intra": intra, "inter": inter}, started, []
        for name in ("intra", "inter"):
            monkeypatch.setattr(tf.config.threading, f"get_{name}_op_parallelism_threads",
                                lambda name=name: self.threads[name])
            monkeypatch.setattr(tf.config.threading, f"set_{name}_op_parallelism_threads",
                                lambda value, name=name: self._set(name, value))

    def _set(self, name, value):
        self.set_calls.append((name, value))
        if self.threads[name] == value:
            return
        if self.started:
            raise RuntimeError(f"{name.title()} op parallelism cannot be modified after "
                               "initialization.")
        self.threads[name] = value


@pytest.mark.parametrize(("intra", "inter", "current", "set_calls"), [
    (0, 0, (0, 0), []),  # auto-configured: left alone
    (-3, -1, (0, 0), []),  # 0 or less: auto-configured
    (2, 0, (0, 0), [("intra", 2)]),
    (0, 7, (0, 0), [("inter", 7)]),
    (2, 7, (2, 0), [("inter", 7)]),  # a pool already of the wanted size is not set again
])
def test_the_flags_pools_are_set_where_they_differ_from_tensorflows(
        monkeypatch, intra, inter, current, set_calls):
    pools = TensorFlowPools(monkeypatch, *current)
    apply_thread_pools(intra, inter)
    assert pools.set_calls == set_calls
    assert pools.threads == {"intra": max(intra, current[0]), "inter": max(inter, current[1])}


def test_pools_tensorflow_already_fixed_are_kept_with_a_warning(monkeypatch, caplog):
    pools = TensorFlowPools(monkeypatch, intra=4, inter=4, started=True)
    with caplog.at_level(logging.WARNING, logger="memae_tf.serving.threads"):
        apply_thread_pools(1, 4)
    assert pools.threads == {"intra": 4, "inter": 4}
    assert [record.getMessage() for record in caplog.records] == [
        "--tensorflow_intra_op_parallelism=1 cannot take effect: TensorFlow's runtime already "
        "started in this process with intra-op threads 4 (0: auto-configured). Start the "
        "server in a fresh process (memae model-server) to size it."]


@pytest.mark.slow
def test_a_fresh_server_runs_tensorflow_with_the_flags_thread_pools(tmp_path):
    # TensorFlow's inter-op pool threads are named tf_Compute: counted after a
    # server started with --tensorflow_inter_op_parallelism=7 has run an op, they
    # are the flag's seven, not one per CPU.
    code = (
        "import collections, os, sys\n"
        "from memae_tf.serving.flags import parse_flags\n"
        "from memae_tf.serving.server import start_model_server\n"
        "import tensorflow as tf\n"
        "server = start_model_server(parse_flags(sys.argv[1:]), host='127.0.0.1')\n"
        "tf.function(lambda x: tf.matmul(x, x) + tf.reduce_sum(x))(tf.ones((64, 64)))\n"
        "names = collections.Counter(open(f'/proc/self/task/{t}/comm').read().strip()\n"
        "                            for t in os.listdir('/proc/self/task'))\n"
        "print(tf.config.threading.get_intra_op_parallelism_threads(), names['tf_Compute'])\n"
        "server.stop()\n")
    _, base_path = exported_small_model(tmp_path, 3)  # the start waits for a version
    flags = [f"--port={free_port()}", f"--model_base_path={base_path}",
             "--file_system_poll_wait_seconds=0",
             "--tensorflow_intra_op_parallelism=1", "--tensorflow_inter_op_parallelism=7"]
    done = subprocess.run([sys.executable, "-c", code, *flags], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["1", "7"]
