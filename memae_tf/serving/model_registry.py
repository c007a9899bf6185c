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

from memae_tf.common.checks import check_bool, check_positive_int
from memae_tf.common.contract import SERVE_LOAD_RETRY_INTERVAL_SECONDS, SERVE_MAX_NUM_LOAD_RETRIES
from memae_tf.serving.config import check_model_config_list, check_platforms, read_text_proto
from memae_tf.serving.errors import ServingError, invalid_argument
from memae_tf.serving.flags import default_threads
from memae_tf.serving.initial_load import InitialLoad, LoadThreads
from memae_tf.serving.metrics import ServingMetrics
from memae_tf.serving.model_manager import (
    ModelManager,
    State,
    VersionState,
    check_load_retries,
    check_poll_seconds,
    log_poll_failure,
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
    (`check_platforms`); then models no longer listed are unloaded (their
    versions report END), models still listed take their new base path and
    version policy at the next listing, and `reload_config` waits until each
    new model has a version available (`_await_models`: no timeout, as TF
    Serving). As in TF Serving, a label can only move to a version already
    loaded: first publish the version through the policy, then point the
    label at it in a later config.

    One thread lists every model's base path (`poll`), at once after the
    first config and then every `file_system_poll_wait_seconds`, as TF
    Serving's one `FileSystemStoragePathSource`; a base path that does not
    exist fails the whole listing, so no model takes new versions until it
    exists. With 0 the base paths are listed once, at the first config: as in
    TF Serving, a model added by a later config is never listed, and that
    reload waits until `stop()`. Until the first config's models are served,
    the versions listed load concurrently on a pool of 4 threads per
    schedulable CPU (`InitialLoad`, TF Serving's fast initial load); later
    ones load on `num_load_threads` threads, or one thread for 0
    (`LoadThreads`), while the listings and reloads go on.

    Args:
        file_system_poll_wait_seconds: Seconds between two listings of the
            models' base paths (0: once, at the first config).
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
        warmup_iterations: Times each warmup record is replayed (TF Serving's
            `--num_request_iterations_for_warmup`, when positive).
        signature_method_name_check: Whether warmup records on a signature of
            another method fail the load (TF Serving's process-wide
            `--enable_signature_method_name_check`).
        num_load_threads: Threads that load versions once the first config's
            models serve (TF Serving's `--num_load_threads`); 0 loads one
            version at a time on one thread, as TF Serving's manager thread.

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
        warmup_iterations: int = 1,
        signature_method_name_check: bool = False,
        num_load_threads: int = 0,
    ) -> None:
        if not isinstance(num_load_threads, int) or num_load_threads < 0:
            raise ValueError(
                "Received an invalid value for `num_load_threads`, expected 0 or a positive "
                f"number of threads. Received: num_load_threads={num_load_threads!r}")
        self.file_system_poll_wait_seconds = check_poll_seconds(
            "file_system_poll_wait_seconds", file_system_poll_wait_seconds)
        self.max_num_load_retries, self.load_retry_interval = check_load_retries(
            max_num_load_retries, load_retry_interval)
        self.enable_model_warmup = check_bool("enable_model_warmup", enable_model_warmup)
        self.warmup_iterations = check_positive_int("warmup_iterations", warmup_iterations)
        self.signature_method_name_check = check_bool("signature_method_name_check",
                                                      signature_method_name_check)
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
        self._poll_lock = threading.Lock()  # one listing of the base paths at a time
        self._polled = threading.Condition()  # notified after each listing, load, and at stop
        self._wakes = 0  # notifications so far
        self._poll_thread: threading.Thread | None = None
        # Where listed versions load: the first config's InitialLoad until it is served,
        # then the load threads.
        self._load_threads = LoadThreads(num_load_threads, self._wake)
        self._pool: InitialLoad | LoadThreads = self._load_threads

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
        first = self._poll_thread is None  # server_core.cc: no storage path source yet
        listed = {model.name: model for model in config_list.config}
        if first:
            # server_core.h Options::num_initial_load_threads: 4 * schedulable CPUs.
            self._pool = InitialLoad(listed, default_threads())
        added = []
        with self._poll_lock:  # a listing sees the old models or the new, never a mix
            previous = self._managers
            managers = {}
            for name, model in listed.items():
                manager = previous.get(name)
                if manager is None:
                    manager = ModelManager(name, model.base_path, 0,
                                           model.model_version_policy, self.metrics,
                                           self.max_num_load_retries,
                                           self.load_retry_interval, self.enable_model_warmup,
                                           self.warmup_iterations,
                                           self.signature_method_name_check)
                    self._removed.pop(name, None)
                    manager.add_listener(self._notify)
                    added.append(name)
                    logger.info("Added model %s from %s.", name, model.base_path)
                else:
                    # FileSystemStoragePathSource::UpdateConfig: the next listing uses it.
                    manager.configure(model.base_path, model.model_version_policy)
                managers[name] = manager
            self._managers = managers
            for name in previous.keys() - listed.keys():
                previous[name].unload_all()
                self._removed[name] = previous[name]
                logger.info("Removed model %s.", name)
        self._notify()
        if first:
            self._poll_thread = threading.Thread(target=self._poll_forever, daemon=True,
                                                 name="poll-models")
            self._poll_thread.start()
        self._await_models(added, first)

    def poll(self) -> None:
        """Lists every model's base path once, then serves what each listing found.

        As TF Serving's `FileSystemStoragePathSource::PollFileSystemAndInvokeCallback`
        (tensorflow_serving/sources/storage_path/file_system_storage_path_source.cc):
        the base paths are listed in the config's order, and one that cannot be
        listed (a base path that does not exist) ends the poll: the error is
        logged and no model, before or after it in the config, takes a new
        listing in that poll. The versions serving keep serving.
        """
        with self._poll_lock:
            managers = list(self._managers.values())
            try:
                listings = [manager.list_versions() for manager in managers]
            except (ServingError, OSError) as error:
                log_poll_failure(error)
            else:
                for manager, on_disk in zip(managers, listings, strict=True):
                    manager.update_versions(on_disk, self._pool)
        self._wake()

    def _wake(self) -> None:
        """Wakes the reloads waiting for models: after each listing, and each load."""
        with self._polled:
            self._wakes += 1
            self._polled.notify_all()

    def _poll_forever(self) -> None:
        # A PeriodicFunction runs at once, then every interval; 0 is TF Serving's one-shot
        # thread: one listing, never another, whatever later configs add.
        while not self._stopping.is_set():
            try:
                self.poll()
            except Exception:  # an unreadable directory must not end polling
                logger.exception("Polling the models' base paths failed.")
            if not self.file_system_poll_wait_seconds or self._stopping.wait(
                    self.file_system_poll_wait_seconds):
                return

    def _await_models(self, names: list[str], first: bool) -> None:
        """Waits until each new model has a version available, or an error decides it, then checks.

        As `ServerCore::WaitUntilModelsAvailable` and, for the first config,
        `ConnectSourcesWithFastInitialLoad` (core/load_servables_fast.cc), both
        waiting for `ServableRequest::Latest` of each model: no timeout, so a
        model without versions on disk holds the config load (and the server's
        start) until one is published and loads; the polls go on meanwhile, at
        `file_system_poll_wait_seconds`, logging TF Serving's warnings. At the
        first config the versions load concurrently and the wait ends as
        `InitialLoad` says; at a later one a model's newest aspired version
        decides once it has settled (`latest_failure`), unless an older one
        serves first (with several load threads).
        `stop()` ends the wait.

        Raises:
            ServingError: CANCELLED when `stop()` ends the wait; UNKNOWN as
                `_raise_for_failures` when the version that ended the wait of a
                model is not available.
        """
        if first:
            self._await_initial_load(names)
            return

        def pending() -> list[str]:
            with self._poll_lock:  # between two listings: each took its whole effect
                return [name for name in names
                        if not (self._managers[name].available
                                or self._managers[name].latest_failure() is not None)]

        # Woken after each listing and load; pending() runs without `_polled`, which a
        # load thread takes under its manager's lock. The timeout lets a
        # KeyboardInterrupt through.
        seen = [self._wakes]
        while (waiting := pending()) and not self._stopping.is_set():
            with self._polled:
                self._polled.wait_for(lambda: self._wakes != seen[0], timeout=0.5)
                seen[0] = self._wakes
        if waiting:
            _raise_cancelled(waiting)
        _raise_for_failures([(name, *failure) for name in sorted(names)
                             if (failure := self._managers[name].latest_failure()) is not None],
                            first)

    def _await_initial_load(self, names: list[str]) -> None:
        initial_load = self._pool
        # The timeout lets a KeyboardInterrupt through.
        while (reached := initial_load.reached(timeout=0.5)) is None and (
                not self._stopping.is_set()):
            pass
        with self._poll_lock:
            self._pool = self._load_threads
        # load_servables_fast.cc restores the manager's num_load_threads before it returns
        # the wait's status, and BasicManager::SetNumLoadThreads joins the pool first: the
        # start waits for every load still running, retries included.
        initial_load.shutdown()
        if reached is None:
            _raise_cancelled([name for name in names if not self._managers[name].available])
        _raise_for_failures([(name, version, state)
                             for name, (version, state) in sorted(reached.items())
                             if state.state != State.AVAILABLE], first=True)

    def reload_config(self, config: ModelServerConfig) -> None:
        """Serves the models of a new config, as TF Serving's `ServerCore::ReloadConfig`.

        Returns once each new model has a version available or the version
        its wait ended on failed to load (`_await_models`): a new model
        without versions on disk (or whose base path does not exist) holds
        the call, without timeout, until a version is published and loads, or
        until `stop()`. The first config loads its versions concurrently and
        returns only once every load it started has ended, retries included.

        Args:
            config: The new `ModelServerConfig`.

        Raises:
            ServingError: FAILED_PRECONDITION for a transition TF Serving refuses
                or a label on a version not available; INVALID_ARGUMENT for an
                invalid model list or a `custom_model_config`; UNKNOWN, with TF
                Serving's message, when the version a new model's wait ended on
                failed to load (at a later config the newest aspired version;
                at the first, see `InitialLoad`; the model stays, its polling
                goes on);
                CANCELLED when `stop()` ends the wait for new models.
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
            logger.info("Adding/updating models.")
            self._apply_models(config.model_config_list)
            logger.info("Finished adding/updating models")

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
        """Stops polling the config file and the base paths; ends a wait for models."""
        self._stopping.set()
        for manager in list(self._managers.values()):
            manager.stop()  # cancels a load waiting to be retried
        self._load_threads.shutdown()
        self._wake()
        for thread in (self._config_thread, self._poll_thread):
            if thread is not None and thread is not threading.current_thread():
                thread.join()


def _raise_cancelled(waiting: list[str]) -> None:
    raise ServingError(grpc.StatusCode.CANCELLED,
                       f"Stopped while waiting for models {waiting} to become available.")


def _raise_for_failures(failures: list[tuple[str, int, VersionState]], first: bool) -> None:
    """Raises as TF Serving's wait for new models when a model's awaited version is not available.

    One that ended in an error fails the config load with UNKNOWN: at the
    first config (the server's start) `N servable(s) did not become available:
    ...` (core/load_servables_fast.cc, `ConnectSourcesWithFastInitialLoad`),
    at a later one `N model(s) did not become available: ...`
    (model_servers/server_core.cc, `WaitUntilModelsAvailable`), each followed
    by `{{name: M version: V} due to error: CODE: message}, ` in the order of
    the model names, then `}`.

    Args:
        failures: (model name, version, state) of each model whose awaited
            version is not available, ordered by name.
        first: Whether the config is the first (the server's start).
    """
    if not failures:
        return
    details = "".join(
        f"{{{{name: {name} version: {version}}}"
        + (f" due to error: {state.error_code.name}: {state.error_message}"
           if state.error_code != grpc.StatusCode.OK else "")
        + "}, "
        for name, version, state in failures)
    what = "servable(s)" if first else "model(s)"
    raise ServingError(grpc.StatusCode.UNKNOWN,
                       f"{len(failures)} {what} did not become available: {{{details}}}")
