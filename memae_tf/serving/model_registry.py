"""The models one server serves, from a `ModelServerConfig`, with version labels and reloads.

`ModelRegistry` follows TF Serving's `ServerCore`
(tensorflow_serving/model_servers/server_core.cc): `reload_config` accepts a
new `model_config_list`, assigns its version labels, adds, reconfigures and
removes models; requests name a model and a version, a label or neither
(the latest).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator, Mapping

import grpc
from tensorflow_serving.config import model_server_config_pb2

from memae_tf.common.checks import check_bool
from memae_tf.common.contract import SERVE_LOAD_RETRY_INTERVAL_SECONDS, SERVE_MAX_NUM_LOAD_RETRIES
from memae_tf.serving.config import check_model_config_list, check_platforms, read_text_proto
from memae_tf.serving.errors import ServingError, invalid_argument
from memae_tf.serving.metrics import ServingMetrics
from memae_tf.serving.model_manager import (
    ModelManager,
    VersionState,
    check_load_retries,
    check_poll_seconds,
)

logger = logging.getLogger(__name__)
ModelServerConfig = model_server_config_pb2.ModelServerConfig


class ModelRegistry(Mapping[str, ModelManager]):
    """Model name → `ModelManager` of the models a `ModelServerConfig` lists.

    `reload_config` follows `ServerCore::ReloadConfig`: the first config is
    taken, later ones only when they are again a `model_config_list` (or the
    same config); the list is checked (`check_model_config_list`: names,
    paths, no model changing its platform) and taken; then the version labels
    are assigned, each to a version that is AVAILABLE at
    that moment (FAILED_PRECONDITION otherwise, before any model changes),
    unless `allow_version_labels_for_unavailable_models` allows a label that
    is new or keeps its version; then each model's platform is checked
    (`check_platforms`); then new models are loaded, models still
    listed take their new base path and version policy, and models no longer
    listed are unloaded (their versions report END). As in TF Serving, a label
    can only move to a version already loaded: first publish the version
    through the policy, then point the label at it in a later config.

    Args:
        file_system_poll_wait_seconds: Seconds between two listings of each
            model's base path (0: once per config change).
        allow_version_labels_for_unavailable_models: TF Serving's flag of that
            name.
        metrics: Where the models' load attempts are counted; None records
            nothing.
        max_num_load_retries: Tries of a failed load after the first (TF
            Serving's `--max_num_load_retries`); 0 tries once.
        load_retry_interval: Seconds between two tries (TF Serving's
            `--load_retry_interval_micros`, in seconds).
        enable_model_warmup: Whether loads replay each version's warmup
            requests (TF Serving's `--enable_model_warmup`).

    Example:

    >>> registry = ModelRegistry()
    >>> registry.reload_config_file("models.config")  # doctest: +SKIP
    >>> registry["memae"].servable(None).version  # doctest: +SKIP
    2
    """

    def __init__(
        self,
        file_system_poll_wait_seconds: float = 1.0,
        allow_version_labels_for_unavailable_models: bool = False,
        metrics: ServingMetrics | None = None,
        max_num_load_retries: int = SERVE_MAX_NUM_LOAD_RETRIES,
        load_retry_interval: float = SERVE_LOAD_RETRY_INTERVAL_SECONDS,
        enable_model_warmup: bool = True,
    ) -> None:
        self.file_system_poll_wait_seconds = check_poll_seconds(
            "file_system_poll_wait_seconds", file_system_poll_wait_seconds)
        self.max_num_load_retries, self.load_retry_interval = check_load_retries(
            max_num_load_retries, load_retry_interval)
        self.enable_model_warmup = check_bool("enable_model_warmup", enable_model_warmup)
        self.allow_version_labels_for_unavailable_models = bool(
            allow_version_labels_for_unavailable_models
        )
        self.metrics = metrics
        self._config: ModelServerConfig | None = None
        self._config_lock = threading.Lock()
        self._managers: dict[str, ModelManager] = {}
        self._removed: dict[str, ModelManager] = {}
        self._labels: dict[str, dict[str, int]] = {}
        self._listeners: list[Callable[[bool], None]] = []
        self._stopping = threading.Event()
        self._config_thread: threading.Thread | None = None

    # Mapping over the models of the current config.
    def __getitem__(self, name: str) -> ModelManager:
        return self._managers[name]

    def __iter__(self) -> Iterator[str]:
        return iter(dict(self._managers))

    def __len__(self) -> int:
        return len(self._managers)

    @property
    def config(self) -> ModelServerConfig | None:
        """A copy of the config last accepted, or None before the first."""
        with self._config_lock:
            if self._config is None:
                return None
            copy = ModelServerConfig()
            copy.CopyFrom(self._config)
            return copy

    @property
    def available(self) -> bool:
        """Whether every listed model (and at least one) has a version serving."""
        managers = list(self._managers.values())
        return bool(managers) and all(manager.available for manager in managers)

    def add_listener(self, listener: Callable[[bool], None]) -> None:
        """Calls `listener(available)` now and whenever a model's availability changes."""
        self._listeners.append(listener)
        listener(self.available)

    def _notify(self, _: bool = False) -> None:
        for listener in self._listeners:
            listener(self.available)

    def version_for_label(self, model_name: str, label: str) -> int:
        """Returns the version a label points at (`ServerCore::GetModelVersionForLabel`).

        Raises:
            ServingError: INVALID_ARGUMENT `Unrecognized servable version label: <label>`
                when the model has no such label.
        """
        version = self._labels.get(model_name, {}).get(label)
        if version is None:
            raise invalid_argument(f"Unrecognized servable version label: {label}")
        return version

    def labels(self, model_name: str) -> dict[str, int]:
        """Returns label → version of a model (empty without labels)."""
        return dict(self._labels.get(model_name, {}))

    def version_states(
        self, model_name: str, version: int | None = None
    ) -> dict[int, VersionState]:
        """Version → state of a model, listed or removed (removed models report END).

        Raises:
            ServingError: NOT_FOUND, with TF Serving's messages, for a model or
                version never seen.
        """
        manager = self._managers.get(model_name) or self._removed.get(model_name)
        if manager is None:
            if version is not None:
                raise ServingError(grpc.StatusCode.NOT_FOUND,
                                   f"Could not find version {version} of model {model_name}")
            raise ServingError(grpc.StatusCode.NOT_FOUND,
                               f"Could not find any versions of model {model_name}")
        return manager.version_states(version)

    def _assign_labels(self, config_list: model_server_config_pb2.ModelConfigList) -> None:
        labels: dict[str, dict[str, int]] = {}
        for model in config_list.config:
            manager = self._managers.get(model.name)
            for label, version in model.version_labels.items():
                allowed = self.allow_version_labels_for_unavailable_models and (
                    self._labels.get(model.name, {}).get(label, version) == version
                )
                available = manager is not None and version in manager.available_versions
                if not allowed and not available:
                    raise ServingError(
                        grpc.StatusCode.FAILED_PRECONDITION,
                        f"Request to assign label to version {version} of model "
                        f"{model.name}, which is not currently available for inference",
                    )
                labels.setdefault(model.name, {})[label] = version
        self._labels = labels

    def _apply_models(self, config_list: model_server_config_pb2.ModelConfigList) -> None:
        # Requests read `_managers` without a lock: it is replaced, never changed.
        listed = {model.name: model for model in config_list.config}
        previous = self._managers
        self._managers = {name: m for name, m in previous.items() if name in listed}
        for name in previous.keys() - listed.keys():
            previous[name].unload_all()
            self._removed[name] = previous[name]
            logger.info("Removed model %s.", name)
        added = []
        for name, model in listed.items():
            manager = self._managers.get(name)
            if manager is not None:
                manager.reconfigure(model.base_path, model.model_version_policy)
                continue
            manager = ModelManager(name, model.base_path, self.file_system_poll_wait_seconds,
                                   model.model_version_policy, self.metrics,
                                   self.max_num_load_retries, self.load_retry_interval,
                                   self.enable_model_warmup)
            self._removed.pop(name, None)
            manager.add_listener(self._notify)
            manager.start()
            self._managers = {**self._managers, name: manager}
            added.append(name)
            logger.info("Added model %s from %s.", name, model.base_path)
        self._notify()
        _raise_unless_available({name: self._managers[name] for name in added})

    def reload_config(self, config: ModelServerConfig) -> None:
        """Serves the models of a new config, as TF Serving's `ServerCore::ReloadConfig`.

        Returns once every new model's aspired versions were tried (loaded or
        failed); models without versions yet keep being polled.

        Args:
            config: The new `ModelServerConfig`.

        Raises:
            ServingError: FAILED_PRECONDITION for a transition TF Serving refuses
                or a label on a version not available; INVALID_ARGUMENT for an
                invalid model list or a `custom_model_config`; UNKNOWN, with TF
                Serving's message, when a new model's newest aspired version
                failed to load (the model stays, its polling goes on).
        """
        with self._config_lock:
            old = self._config
            first = old is None or old.WhichOneof("config") is None
            accepted = first or old == config or (
                old.WhichOneof("config") == config.WhichOneof("config") == "model_config_list"
            )
            if not accepted:
                raise ServingError(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    "Cannot transition to requested config. It is only legal to transition "
                    "from one ModelConfigList to another.",
                )
            kind = config.WhichOneof("config")
            if kind is None:
                logger.info("Taking no action for empty config.")
                return
            if kind != "model_config_list":
                raise invalid_argument(
                    "ModelServer does not yet support custom model config; expected a "
                    "model_config_list."
                )
            check_model_config_list(config.model_config_list,
                                    None if first else old.model_config_list)
            # As TF Serving, the config is taken before its labels and platforms are
            # checked: a config refused there is tried again as a whole when re-read.
            self._config = ModelServerConfig()
            self._config.CopyFrom(config)
            self._assign_labels(config.model_config_list)
            check_platforms(config.model_config_list)
            self._apply_models(config.model_config_list)

    def reload_config_file(self, path: str | os.PathLike) -> None:
        """Re-reads a `--model_config_file` and reloads it (`PollFilesystemAndReloadConfig`)."""
        self.reload_config(read_text_proto(path, ModelServerConfig))

    def poll_config_file(self, path: str | os.PathLike, wait_seconds: float) -> None:
        """Re-reads `path` every `wait_seconds` in a background thread, logging failures.

        As TF Serving's `--model_config_file_poll_wait_seconds`: an unreadable
        file or a refused config is logged and the models serve on unchanged.
        """
        if not wait_seconds > 0:
            raise ValueError(
                "Received an invalid value for `wait_seconds`, expected a positive number "
                f"of seconds. Received: wait_seconds={wait_seconds!r}"
            )

        def poll() -> None:
            while not self._stopping.wait(wait_seconds):
                try:
                    self.reload_config_file(path)
                except ServingError as error:
                    logger.error("Failed to reload %s: %s: %s", path, error.code.name,
                                 error.message)
                except Exception:  # polling must outlive any config
                    logger.exception("Failed to reload %s.", path)

        self._config_thread = threading.Thread(target=poll, daemon=True, name="poll-config")
        self._config_thread.start()

    def stop(self) -> None:
        """Stops polling the config file and every model's base path."""
        self._stopping.set()
        if self._config_thread is not None:
            self._config_thread.join()
        for manager in list(self._managers.values()):
            manager.stop()


def _raise_unless_available(managers: Mapping[str, ModelManager]) -> None:
    """Raises as `ServerCore::WaitUntilModelsAvailable` when a model's latest version failed.

    TF Serving (model_servers/server_core.cc) waits for the latest version of
    each new model; one that ended in an error fails the config load (and the
    server's start) with UNKNOWN `N model(s) did not become available:
    {{name: M version: V} due to error: CODE: message}, }`.
    """
    failures = [(name, failure) for name, manager in sorted(managers.items())
                if (failure := manager.latest_failure()) is not None]
    if not failures:
        return
    details = "".join(
        f"{{{{name: {name} version: {version}}} due to error: "
        f"{state.error_code.name}: {state.error_message}}}, "
        for name, (version, state) in failures)
    raise ServingError(grpc.StatusCode.UNKNOWN,
                       f"{len(failures)} model(s) did not become available: {{{details}}}")
