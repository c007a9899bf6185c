"""TF Serving's command-line flags (`tensorflow_model_server --port=8500 ...`), parsed as TF does.

The spelling, defaults and meaning of each flag are those of
tensorflow_serving/model_servers/main.cc and server.h; the syntax is that of
TensorFlow's flag parser (tensorflow/core/util/command_line_flags.cc): every
flag is `--name=value`, a boolean may also be given bare (`--enable_batching`)
and takes `true`/`false`/`1`/`0`. Only the flags this server implements are
accepted; any other is refused by name rather than silently ignored.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from memae_tf.common.contract import (
    GRPC_PORT,
    SERVE_LOAD_RETRY_INTERVAL_SECONDS,
    SERVE_MAX_NUM_LOAD_RETRIES,
)


def _schedulable_cpus() -> int:
    """The CPUs this process may run on, counted as TensorFlow's `port::NumSchedulableCPUs`.

    On Linux the process's CPU affinity mask (a container's cpuset, not its
    CPU quota); elsewhere the machine's CPUs.
    """
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 4


def default_threads() -> int:
    """TF Serving's default for `--grpc_max_threads` and `--rest_api_num_threads`.

    Four per schedulable CPU (tensorflow_serving/model_servers/server.h:
    `4.0 * port::NumSchedulableCPUs()`).
    """
    return 4 * _schedulable_cpus()


def _flag(default: object, help: str) -> object:
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class ModelServerOptions:
    """The `tensorflow_model_server` flags this server implements, with TF Serving's defaults.

    One attribute per flag, of the same name; `usage()` lists them with their
    meaning. Build one with `parse_flags(argv)`.

    Example:

    >>> ModelServerOptions(model_base_path="/models/memae").rest_api_port
    0
    """

    port: int = _flag(GRPC_PORT, "gRPC port; 0 serves gRPC on --grpc_socket_path only (refused "
                                 "without one)")
    grpc_socket_path: str = _flag(
        "", "UNIX socket (relative or absolute path) on which gRPC listens too, with the "
            "port's credentials")
    grpc_channel_arguments: str = _flag(
        "", "comma-separated key=value arguments of the gRPC server (e.g. "
            "grpc.max_connection_age_ms=2000): an int32 value as a number, else as a string")
    enable_grpc_healthcheck_service: bool = _flag(
        False, "serve gRPC's health service: '', 'ModelService' and 'PredictionService' "
               "SERVING once the models are loaded, whatever they do later; without it a "
               "health check is UNIMPLEMENTED")
    grpc_max_threads: int = _flag(
        default_threads(), "threads of the gRPC server, one of which keeps polling: at most "
                           "this many minus one RPCs run at once, the others are refused "
                           "RESOURCE_EXHAUSTED (4 per schedulable CPU by default)")
    rest_api_port: int = _flag(0, "REST port; 0 serves no REST API")
    rest_api_num_threads: int = _flag(
        default_threads(), "REST requests handled at once, each by a worker thread; more "
                           "wait for a free one (4 per schedulable CPU by default)")
    rest_api_timeout_in_ms: int = _flag(
        30000, "timeout of each REST predict, counted from the batching queue (429 past it "
               "there) or the run (504); 0 or less for none")
    rest_api_enable_cors_support: bool = _flag(
        False, "add CORS headers (any origin, POST and GET, Content-Type) to every REST "
               "API answer")
    model_name: str = _flag("default", "name of the single model (ignored with "
                                       "--model_config_file)")
    model_base_path: str = _flag("", "base path of the single model (ignored with "
                                     "--model_config_file)")
    model_config_file: str = _flag("", "text-format ModelServerConfig: the models, their "
                                       "version policies and labels")
    model_config_file_poll_wait_seconds: int = _flag(
        0, "seconds between two reads of --model_config_file; 0 reads it once")
    file_system_poll_wait_seconds: int = _flag(
        1, "seconds between two listings of each model base path; 0 lists once")
    num_load_threads: int = _flag(
        0, "threads that load model versions once the server has started; 0 loads one "
           "at a time")
    num_unload_threads: int = _flag(
        0, "threads that unload model versions; an unload only takes the version out of "
           "service, so every count behaves as 0")
    max_num_load_retries: int = _flag(
        SERVE_MAX_NUM_LOAD_RETRIES,
        "tries of a failed model load after the first, before giving up; 0 tries once")
    load_retry_interval_micros: int = _flag(
        round(SERVE_LOAD_RETRY_INTERVAL_SECONDS * 1e6),
        "microseconds between two tries of a failed load (1 minute); negative retries at once")
    saved_model_tags: str = _flag(
        "serve", "comma-separated tags of the SavedModel MetaGraph to load; only serve "
                 "is supported")
    enable_model_warmup: bool = _flag(
        True, "replay each version's assets.extra/tf_serving_warmup_requests when it loads, "
              "before it serves; false does not read the file")
    num_request_iterations_for_warmup: int = _flag(
        0, "times each warmup record is replayed, one after another, when a version loads; "
           "used only if > 0, else once")
    enable_signature_method_name_check: bool = _flag(
        False, "refuse (INTERNAL) a Predict on a signature whose method_name is not "
               "tensorflow/serving/predict, classify or regress")
    enable_serialization_as_tensor_content: bool = _flag(
        False, "Predict outputs as raw bytes in tensor_content instead of the typed fields "
               "(float_val, ...)")
    enable_batching: bool = _flag(False, "server-side batching of requests")
    batching_parameters_file: str = _flag(
        "", "text-format BatchingParameters (needs --enable_batching)")
    monitoring_config_file: str = _flag(
        "", "text-format MonitoringConfig: the Prometheus path on the REST port")
    ssl_config_file: str = _flag("", "text-format SSLConfig: TLS or mutual TLS on the gRPC port")
    tensorflow_session_parallelism: int = _flag(
        0, "threads of both TensorFlow op pools; 0 auto-configures (one per CPU); ignored "
           "when either of the next two is positive")
    tensorflow_intra_op_parallelism: int = _flag(
        0, "threads that run one op; 0 auto-configures (match the container's CPU limit)")
    tensorflow_inter_op_parallelism: int = _flag(
        0, "ops run at once; 0 auto-configures (match the container's CPU limit)")
    allow_version_labels_for_unavailable_models: bool = _flag(
        False, "let a new version label point at a version not yet AVAILABLE")


FLAGS = {field.name: field.type for field in dataclasses.fields(ModelServerOptions)}
# Every flag tensorflow_model_server defines (tensorflow_serving/model_servers/main.cc),
# whether this server implements it (`FLAGS`) or not.
TF_SERVING_FLAGS = frozenset((
    "port", "grpc_socket_path", "rest_api_port", "rest_api_num_threads",
    "rest_api_timeout_in_ms", "rest_api_enable_cors_support", "enable_batching",
    "allow_version_labels_for_unavailable_models", "batching_parameters_file",
    "enable_per_model_batching_parameters", "model_config_file",
    "model_config_file_poll_wait_seconds", "model_name", "model_base_path",
    "num_load_threads", "num_unload_threads", "max_num_load_retries",
    "load_retry_interval_micros", "file_system_poll_wait_seconds", "flush_filesystem_caches",
    "tensorflow_session_parallelism", "tensorflow_session_config_file",
    "tensorflow_intra_op_parallelism", "tensorflow_inter_op_parallelism",
    "use_alts_credentials", "ssl_config_file", "platform_config_file",
    "per_process_gpu_memory_fraction", "saved_model_tags", "grpc_channel_arguments",
    "grpc_max_threads", "enable_model_warmup", "num_request_iterations_for_warmup",
    "version", "monitoring_config_file", "remove_unused_fields_from_bundle_metagraph",
    "prefer_tflite_model", "num_tflite_pools", "num_tflite_interpreters_per_pool",
    "enable_signature_method_name_check", "xla_cpu_compilation_enabled",
    "xla_gpu_compilation_enabled", "enable_profiler", "thread_pool_factory_config_file",
    "mixed_precision", "skip_initialize_tpu", "enable_grpc_healthcheck_service",
    "enable_serialization_as_tensor_content",
))


def _flag_name(argument: str) -> str | None:
    """The flag an argument sets (`--name` or `--name=value`), or None for another argument."""
    return argument[2:].partition("=")[0] if argument.startswith("--") else None


def unknown_arguments(argv: Sequence[str]) -> list[str]:
    """Returns the arguments that are no flag of tensorflow_model_server, in order.

    TensorFlow's flag parser (tensorflow/core/util/command_line_flags.cc)
    leaves them in argv, and main.cc prints `unknown argument: ` with the
    first of them and the usage, then starts the server anyway: they change
    nothing. (A flag of tensorflow_model_server that this server does not
    implement is refused instead, by `parse_flags`.)

    Example:

    >>> unknown_arguments(["--port=8500", "--rest_api_prot=8501", "models"])
    ['--rest_api_prot=8501', 'models']
    """
    return [argument for argument in argv if _flag_name(argument) not in TF_SERVING_FLAGS]


def _value(name: str, kind: str, text: str | None) -> object:
    if kind == "bool":
        if text is None or text.lower() == "true" or text == "1":
            return True
        if text.lower() == "false" or text == "0":
            return False
    elif text is None:
        raise ValueError(f"Flag --{name} needs a value: expected --{name}=VALUE.")
    elif kind == "str":
        return text
    else:
        try:
            return int(text)
        except ValueError:
            pass
    raise ValueError(f"Couldn't interpret value {text} for flag {name}.")


def parse_flags(argv: Sequence[str]) -> ModelServerOptions:
    """Returns the options that TF Serving's flags in `argv` set (program name excluded).

    Args:
        argv: E.g. the container's `args` of a Kubernetes Deployment.

    Returns:
        A `ModelServerOptions`; flags not given keep TF Serving's defaults.

    Arguments that are no flag of tensorflow_model_server are skipped, as
    TF Serving skips them (`unknown_arguments` lists them).

    Raises:
        ValueError: For a flag of tensorflow_model_server this server does not
            implement, a missing value or a value of the wrong type, saying
            what was expected.

    Example:

    >>> options = parse_flags(["--port=8500", "--rest_api_port=8501", "--enable_batching"])
    >>> options.rest_api_port, options.enable_batching, options.model_name
    (8501, True, 'default')
    """
    values: dict[str, object] = {}
    for argument in argv:
        name = _flag_name(argument)
        if name not in TF_SERVING_FLAGS:
            continue
        if name not in FLAGS:
            raise ValueError(
                f"{argument}: --{name} is a flag of tensorflow_model_server that the "
                "development server does not implement. Expected only flags it implements, "
                f"as --name=value: {', '.join('--' + flag for flag in FLAGS)}."
            )
        _, equals, text = argument.partition("=")
        values[name] = _value(name, FLAGS[name], text if equals else None)
    return ModelServerOptions(**values)


def usage(program: str = "memae model-server") -> str:
    """Returns the help text: each flag with its default and meaning."""
    lines = [f"usage: {program} --name=value ...  (tensorflow_model_server's flags)", ""]
    for flag in dataclasses.fields(ModelServerOptions):
        default = str(flag.default).lower() if flag.type == "bool" else repr(flag.default)
        lines += [f"  --{flag.name}={flag.type.upper()}  (default {default})",
                  f"      {flag.metadata['help']}"]
    return "\n".join(lines) + "\n"
