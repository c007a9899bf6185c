"""TF Serving's configuration files, read and checked as TF Serving reads and checks them.

Every file TF Serving takes (`--model_config_file`, `--batching_parameters_file`,
`--monitoring_config_file`, `--ssl_config_file`) is a text-format protobuf;
`read_text_proto` parses one like TF Serving's `ParseProtoTextFile`
(tensorflow_serving/util/proto_util.h). `ModelServerConfig` is
tensorflow-serving-api's own message; the others are in `memae_tf.serving.proto`.
"""

from __future__ import annotations

import os
import pathlib
from typing import TypeVar

import grpc
from google.protobuf import message as protobuf_message
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from memae_tf.serving.errors import ServingError, invalid_argument

# The only platform this server loads (TF Serving's kTensorFlowModelPlatform).
TENSORFLOW_PLATFORM = "tensorflow"

Message = TypeVar("Message", bound=protobuf_message.Message)


def read_text_proto(path: str | os.PathLike, message_type: type[Message]) -> Message:
    """Parses a text-format protobuf file into a new `message_type`.

    Like TF Serving's `ParseProtoTextFile`: a file that cannot be read fails
    with NOT_FOUND (missing) or the OS error, one that does not parse with
    INVALID_ARGUMENT `Invalid protobuf file: '<path>'`, to which the parser's
    reason (line, column, unknown field) is added.

    Args:
        path: The file.
        message_type: The message class, e.g. `ModelServerConfig`.

    Returns:
        The parsed message.

    Raises:
        ServingError: When the file is missing, unreadable or not a valid text
            proto of `message_type`.

    Example:

    >>> from memae_tf.serving.proto import MonitoringConfig
    >>> config = read_text_proto("monitoring.config", MonitoringConfig)  # doctest: +SKIP
    >>> config.prometheus_config.enable  # doctest: +SKIP
    True
    """
    try:
        text = pathlib.Path(path).read_text(encoding="utf-8")
    except FileNotFoundError as error:
        raise ServingError(grpc.StatusCode.NOT_FOUND,
                           f"{os.fspath(path)}; No such file or directory") from error
    except (OSError, UnicodeDecodeError) as error:
        raise ServingError(grpc.StatusCode.FAILED_PRECONDITION,
                           f"Could not read {os.fspath(path)}: {error}") from error
    message = message_type()
    try:
        text_format.Parse(text, message)
    except text_format.ParseError as error:
        raise invalid_argument(
            f"Invalid protobuf file: '{os.fspath(path)}' (expected a text-format "
            f"{message_type.DESCRIPTOR.full_name}): {error}"
        ) from error
    return message


def single_model_config(
    model_name: str, model_base_path: str | os.PathLike
) -> model_server_config_pb2.ModelServerConfig:
    """The config of `--model_name`/`--model_base_path`: one TensorFlow model, default policy.

    As TF Serving's `BuildSingleModelConfig` (tensorflow_serving/model_servers/server.cc).

    Example:

    >>> print(single_model_config("memae", "/models/memae"), end="")
    model_config_list {
      config {
        name: "memae"
        base_path: "/models/memae"
        model_platform: "tensorflow"
      }
    }
    """
    config = model_server_config_pb2.ModelServerConfig()
    config.model_config_list.config.add(
        name=model_name, base_path=os.fspath(model_base_path),
        model_platform=TENSORFLOW_PLATFORM,
    )
    return config


def _platform(config: model_server_config_pb2.ModelConfig) -> str:
    if config.model_type != model_server_config_pb2.MODEL_TYPE_UNSPECIFIED:
        if config.model_platform:
            raise invalid_argument(
                "Illegal setting both ModelServerConfig::model_type (deprecated) and "
                f"ModelServerConfig::model_platform, model name is {config.name}"
            )
        if config.model_type == model_server_config_pb2.TENSORFLOW:
            return TENSORFLOW_PLATFORM
        raise invalid_argument(
            f"ModelServerConfig::model_type choice {config.model_type} not supported."
        )
    if not config.model_platform:
        raise invalid_argument(
            "Illegal setting neither ModelServerConfig::model_type (deprecated) nor "
            f"ModelServerConfig::model_platform, model name is {config.name}"
        )
    return config.model_platform


def check_model_config_list(
    config_list: model_server_config_pb2.ModelConfigList,
    previous: model_server_config_pb2.ModelConfigList | None = None,
) -> None:
    """Refuses a `model_config_list` that TF Serving refuses before taking it, with its messages.

    From tensorflow_serving/model_servers/server_core.cc: each name once and
    absolute base paths (`ValidateModelConfigList`), then, when a list is
    already served (`previous`), no model listed in both may change its
    platform (`ValidateNoModelsChangePlatforms`, which reads the platform of
    those models, `GetPlatform`). A name is also refused when it is empty or
    holds "/", which no request path can name. Whether the server has each
    model's platform TF Serving checks only after taking the config
    (`check_platforms`).

    Args:
        config_list: The new `ModelServerConfig.model_config_list`.
        previous: The list served until now, or None for a first config.

    Raises:
        ServingError: INVALID_ARGUMENT, saying which model and what was expected.
    """
    names = set()
    for config in config_list.config:
        if config.name in names:
            raise invalid_argument(
                f"Illegal to list model {config.name} multiple times in config list"
            )
        names.add(config.name)
        if not config.name or "/" in config.name:
            raise invalid_argument(
                f"Expected a model name that is non-empty and has no '/'; got "
                f"name={config.name!r}"
            )
    for config in config_list.config:
        if not os.path.isabs(config.base_path):
            raise invalid_argument(
                f"Expected model {config.name} to have an absolute path or URI; got "
                f"base_path()={config.base_path}"
            )
    if previous is None:
        return
    old_platforms = {config.name: _platform(config) for config in previous.config}
    for config in config_list.config:
        if config.name in old_platforms:
            old, new = old_platforms[config.name], _platform(config)
            if new != old:
                raise invalid_argument(
                    f"Illegal to change a model's platform. For model {config.name} "
                    f"platform was {old} and new platform requested is {new}"
                )


def check_platforms(config_list: model_server_config_pb2.ModelConfigList) -> None:
    """Refuses a model whose platform is not given or not this server's (`"tensorflow"`).

    As `ServerCore::CreateStoragePathRoutes` (server_core.cc), which runs
    after the config and its version labels were taken: `model_platform`, or
    the deprecated `model_type`, must name a platform the server has.

    Raises:
        ServingError: INVALID_ARGUMENT with TF Serving's message, naming the model.
    """
    for config in config_list.config:
        platform = _platform(config)
        if platform != TENSORFLOW_PLATFORM:
            raise invalid_argument(
                f"Model {config.name} requests unsupported platform {platform}"
            )
