"""The versions of one model: TF Serving's version policies, polling and hot swap."""

from __future__ import annotations

import functools
import logging
import os
import pathlib
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import grpc
from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.config import file_system_storage_path_source_pb2

from memae_tf.common.checks import check_bool, check_positive_int
from memae_tf.common.contract import (
    SERVE_LOAD_RETRY_INTERVAL_SECONDS,
    SERVE_MAX_NUM_LOAD_RETRIES,
    SERVE_POLL_INTERVAL_SECONDS,
    version_children,
)
from memae_tf.serving.errors import ServingError, invalid_argument, not_found
from memae_tf.serving.initial_load import InitialLoad, LoadThreads
from memae_tf.serving.metrics import ServingMetrics
from memae_tf.serving.servable import Servable

logger = logging.getLogger(__name__)
State = get_model_status_pb2.ModelVersionStatus.State
VersionPolicy = (
    file_system_storage_path_source_pb2.FileSystemStoragePathSourceConfig.ServableVersionPolicy
)


def aspired_versions(policy: VersionPolicy, versions: Iterable[int]) -> list[int]:
    """Returns the versions a `model_version_policy` serves among those on disk, ascending.

    As TF Serving's `FileSystemStoragePathSource`
    (tensorflow_serving/sources/storage_path/file_system_storage_path_source.cc):
    `latest` (the default, also when no policy is set) serves the
    `max(num_versions, 1)` largest versions, `all` every version, `specific`
    the listed versions that exist.

    Args:
        policy: A `ServableVersionPolicy` (`ModelConfig.model_version_policy`).
        versions: The version numbers found under the model base path.

    Returns:
        The aspired versions, ascending.

    Example:

    >>> policy = VersionPolicy(latest=VersionPolicy.Latest(num_versions=2))
    >>> aspired_versions(policy, [1, 3, 2])
    [2, 3]
    >>> aspired_versions(VersionPolicy(specific=VersionPolicy.Specific(versions=[1, 5])), [1, 2])
    [1]
    """
    found = sorted(set(versions))
    choice = policy.WhichOneof("policy_choice")
    if choice == "all":
        return found
    if choice == "specific":
        wanted = set(policy.specific.versions)
        return [version for version in found if version in wanted]
    count = max(policy.latest.num_versions, 1)
    return found[-count:]


def check_load_retries(
    max_num_load_retries: object, load_retry_interval: object
) -> tuple[int, float]:
    """Returns the load retry settings if they are a count >= 0 and seconds >= 0, else raises.

    Raises:
        ValueError: Naming the argument, saying what was expected.
    """
    if isinstance(max_num_load_retries, bool) or not (
            isinstance(max_num_load_retries, int) and max_num_load_retries >= 0):
        raise ValueError(
            "Received an invalid value for `max_num_load_retries`, expected an integer >= 0 "
            f"(0 tries a load once). Received: max_num_load_retries={max_num_load_retries!r}")
    return max_num_load_retries, check_poll_seconds("load_retry_interval", load_retry_interval,
                                                    "0 retries at once")


def check_poll_seconds(name: str, value: object, zero: str = "0 lists once") -> float:
    """Returns `value` as float if it is a non-negative number of seconds, else raises.

    Raises:
        ValueError: Naming `name`, for a bool, a non-number or a negative number.
    """
    if isinstance(value, bool) or not (isinstance(value, (int, float)) and value >= 0):
        raise ValueError(
            f"Received an invalid value for `{name}`, expected a non-negative number of "
            f"seconds ({zero}). Received: {name}={value!r}"
        )
    return float(value)


def log_poll_failure(error: Exception) -> None:
    """Logs a listing that failed, with TF Serving's line.

    `FileSystemStoragePathSource`'s polling thread logs the status its poll
    returned (file_system_storage_path_source.cc, `SetAspiredVersionsCallback`).
    """
    message = error.message if isinstance(error, ServingError) else str(error)
    logger.error("FileSystemStoragePathSource encountered a filesystem access error: %s",
                 message)


@dataclass(frozen=True)
class VersionState:
    """Where a version is in its life cycle, as `GetModelStatus` reports it.

    Attributes:
        state: A `ModelVersionStatus.State` value (LOADING, AVAILABLE, END, ...).
        error_code: OK, or the code of the error that stopped the version.
        error_message: The error's message, empty when OK.
    """

    state: int
    error_code: grpc.StatusCode = grpc.StatusCode.OK
    error_message: str = ""


class ModelManager:
    """Serves the versions of one model that its version policy asks for, following new ones.

    Every `poll_interval` seconds the base path is listed and the policy
    (`aspired_versions`) says which versions to serve. Each new aspired version
    is loaded with `tf.saved_model.load`, warmed up from its `assets.extra`
    warmup records (unless `enable_model_warmup` is False) and only then made
    available; versions no longer aspired
    are unloaded as TF Serving's `AvailabilityPreservingPolicy`
    (tensorflow_serving/core/availability_preserving_policy.cc) does: once an
    aspired version is available, or when nothing is aspired any more, and
    otherwise all but the newest of them keep serving. Requests already
    running keep the version they started with, so none is dropped; an
    unloaded version is freed when the last one finishes.

    A load that fails (a truncated `saved_model.pb`, missing variables, a
    directory still being copied) is tried again `max_num_load_retries` times,
    `load_retry_interval` seconds apart, as TF Serving's `LoaderHarness::Load`
    (tensorflow_serving/core/loader_harness.cc, util/retrier.cc): the version
    reports LOADING meanwhile, and a copy that completes in time is served.
    A manager started alone loads on its polling thread, one version after
    another, so no new listing happens while a load is retried; in a
    `ModelRegistry` its versions load on the registry's threads
    (`update_versions` with a pool): concurrently at the first config (an
    `InitialLoad`, TF Serving's fast initial load), then on its `LoadThreads`
    (TF Serving's `--num_load_threads`). A version whose
    every try failed is logged and reported (state END with its error) and
    stays aspired, as TF Serving keeps a
    version in error aspired (tensorflow_serving/core/aspired_versions_manager.cc):
    it is not tried again while it stays aspired, even if its files change;
    no older version is loaded in its place, and the versions already
    serving unload as above (with `latest`, the previous version keeps
    serving until a newer one loads). Removed (or no longer chosen by the
    policy) and published again, it is loaded again. Its failure is logged
    as TF Serving's manager logs it: `Servable {name: M version: V} cannot
    be loaded: CODE: message`. A config reload that adds a model fails when
    the model's newest aspired version failed (`latest_failure`).

    Args:
        model_name: Name clients use for the model.
        model_base_path: Directory holding the integer version directories.
        poll_interval: Seconds between two listings; 0 lists once, at
            `start()` (TF Serving's `--file_system_poll_wait_seconds=0`).
        version_policy: `ModelConfig.model_version_policy`; None means TF
            Serving's default, `latest { num_versions: 1 }`.
        metrics: Where each load attempt is counted (`Servable`'s
            `load_attempt_count` and `load_latency`); None records nothing.
        max_num_load_retries: Tries of a failed load after the first (TF
            Serving's `--max_num_load_retries`, default 5); 0 tries once.
        load_retry_interval: Seconds between two tries (TF Serving's
            `--load_retry_interval_micros`, default 1 minute); 0 retries at once.
        enable_model_warmup: Whether a load replays the version's
            `assets.extra/tf_serving_warmup_requests` (TF Serving's
            `--enable_model_warmup`, default True); False does not read the
            file, so a broken one does not fail the load.
        warmup_iterations: Times each warmup record is replayed, one after
            another, before the next record (TF Serving's
            `--num_request_iterations_for_warmup`; once by default).
        signature_method_name_check: Whether warmup predict, classify and
            regress records on a signature of another method fail the load,
            as their requests fail (TF Serving's process-wide
            `--enable_signature_method_name_check`).

    Example:

    >>> manager = ModelManager("memae", "models/memae")  # doctest: +SKIP
    >>> manager.start(); manager.servable(None).version  # doctest: +SKIP
    2
    """

    def __init__(
        self,
        model_name: str,
        model_base_path: str | os.PathLike,
        poll_interval: float = SERVE_POLL_INTERVAL_SECONDS,
        version_policy: VersionPolicy | None = None,
        metrics: ServingMetrics | None = None,
        max_num_load_retries: int = SERVE_MAX_NUM_LOAD_RETRIES,
        load_retry_interval: float = SERVE_LOAD_RETRY_INTERVAL_SECONDS,
        enable_model_warmup: bool = True,
        warmup_iterations: int = 1,
        signature_method_name_check: bool = False,
    ) -> None:
        if not isinstance(model_name, str) or not model_name or "/" in model_name:
            raise ValueError(
                "Received an invalid value for `model_name`, expected a non-empty name "
                f"without '/'. Received: model_name={model_name!r}"
            )
        check_poll_seconds("poll_interval", poll_interval)
        self.max_num_load_retries, self.load_retry_interval = check_load_retries(
            max_num_load_retries, load_retry_interval)
        self.enable_model_warmup = check_bool("enable_model_warmup", enable_model_warmup)
        self.warmup_iterations = check_positive_int("warmup_iterations", warmup_iterations)
        self.signature_method_name_check = check_bool("signature_method_name_check",
                                                      signature_method_name_check)
        self.model_name = model_name
        self.model_base_path = pathlib.Path(model_base_path)
        self.poll_interval = float(poll_interval)
        self.metrics = metrics
        self._policy = VersionPolicy()
        if version_policy is not None:
            self._policy.CopyFrom(version_policy)
        self._lock = threading.Lock()  # guards _servables and _states
        self._poll_lock = threading.RLock()  # one poll at a time (thread, reload, start)
        self._servables: dict[int, Servable] = {}
        self._states: dict[int, VersionState] = {}
        self._failed: set[int] = set()  # aspired versions whose every try failed
        self._loading: set[int] = set()  # versions handed to a pool (InitialLoad, LoadThreads)
        self._aspired: list[int] = []  # the policy's choice at the last poll
        self._listeners: list[Callable[[bool], None]] = []
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def available(self) -> bool:
        """Whether a version is loaded and serving."""
        return bool(self._servables)

    @property
    def available_versions(self) -> list[int]:
        """The versions loaded and serving, ascending."""
        return sorted(self._servables)

    def add_listener(self, listener: Callable[[bool], None]) -> None:
        """Calls `listener(available)` now and whenever the served versions change."""
        self._listeners.append(listener)
        listener(self.available)

    def start(self) -> None:
        """Loads the aspired versions, then polls in a background thread (if polling)."""
        self.poll()
        if self.poll_interval > 0:
            self._thread = threading.Thread(target=self._poll_forever, daemon=True,
                                            name=f"poll-{self.model_name}")
            self._thread.start()

    def stop(self) -> None:
        """Stops polling; the served versions stay loaded for requests in flight."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()

    def configure(
        self, model_base_path: str | os.PathLike, version_policy: VersionPolicy
    ) -> None:
        """Takes a new base path and version policy (a config reload) for the next poll."""
        with self._poll_lock:
            self.model_base_path = pathlib.Path(model_base_path)
            self._policy.CopyFrom(version_policy)

    def reconfigure(
        self, model_base_path: str | os.PathLike, version_policy: VersionPolicy
    ) -> None:
        """Takes a new base path and version policy (`configure`) and polls with them now."""
        self.configure(model_base_path, version_policy)
        self.poll()

    def unload_all(self) -> None:
        """Stops polling and unloads every version (the model left the config)."""
        self.stop()
        with self._poll_lock, self._lock:
            for version in self._servables:
                self._states[version] = VersionState(State.END)
            self._servables = {}
        logger.info("%s unloaded.", self.model_name)
        self._notify()

    def _poll_forever(self) -> None:
        while not self._stopping.wait(self.poll_interval):
            try:
                self.poll()
            except Exception:  # an unreadable directory must not end polling
                logger.exception("Polling %s failed.", self.model_base_path)

    def _notify(self) -> None:
        for listener in self._listeners:
            listener(self.available)

    def _set_state(self, version: int, state: VersionState) -> None:
        with self._lock:
            self._states[version] = state

    def _load(self, version: int, path: pathlib.Path) -> Servable | VersionState:
        """Loads and warms up a version, with retries; returns it, or its END state."""
        self._set_state(version, VersionState(State.LOADING))
        servable_id = f"{{name: {self.model_name} version: {version}}}"
        logger.info("Loading %s version %d from %s.", self.model_name, version, path)
        for attempt in range(self.max_num_load_retries + 1):
            if attempt:
                if self._stopping.wait(self.load_retry_interval):
                    logger.info("Retrying of Loading servable: %s was cancelled.", servable_id)
                    break
                logger.info("Retrying of Loading servable: %s retry: %d", servable_id, attempt)
            try:
                servable = Servable(version, path, self.metrics)
                # saved_model_bundle_source_adapter.cc runs RunSavedModelWarmup only
                # when the config's enable_model_warmup is set.
                warmup = "warmup disabled"
                if self.enable_model_warmup:
                    records = servable.warm_up(self.warmup_iterations,
                                               self.signature_method_name_check)
                    warmup = f"{records} warmup requests"
            except Exception as error:  # a broken version must not stop the server
                failure = error
                code = (error.code if isinstance(error, ServingError)
                        else grpc.StatusCode.UNKNOWN)
                logger.error("Loading servable: %s failed: %s: %s", servable_id, code.name,
                             error)
                continue
            logger.info("Loaded %s version %d (%s).", self.model_name, version, warmup)
            return servable
        else:  # retrier.cc logs this after the last try, also with no retries
            logger.info("Retrying of Loading servable: %s exhausted max_num_retries: %d",
                        servable_id, self.max_num_load_retries)
        # aspired_versions_manager.cc PerformAction: the load's callback logs its status.
        logger.error("Servable %s cannot be loaded: %s: %s", servable_id, code.name, failure)
        return VersionState(State.END, code, str(failure))

    def _load_and_serve(self, version: int, path: pathlib.Path,
                        pool: InitialLoad | LoadThreads | None = None) -> None:
        """Loads a version and serves it, or records its failure; tells `pool` either."""
        loaded = self._load(version, path)
        with self._lock:  # the state and its event together, as TF Serving's event bus
            self._loading.discard(version)
            if isinstance(loaded, VersionState):
                self._failed.add(version)
                self._states[version] = loaded
            elif pool is not None and self._stopping.is_set():
                # The model left the config (or the server stops) while this version
                # loaded on a pool: it ends unloaded, as an unaspired version does.
                self._states[version] = VersionState(State.END)
            else:
                self._servables = {**self._servables, version: loaded}
                self._states[version] = VersionState(State.AVAILABLE)
            if pool is not None:
                pool.settle(self.model_name, version, self._states[version])

    def _load_in_pool(self, version: int, path: pathlib.Path,
                      pool: InitialLoad | LoadThreads) -> None:
        try:
            with self._lock:
                # AvailabilityPreservingPolicy loads only versions still aspired: one a
                # later listing dropped while it waited for a thread is not loaded.
                if version not in self._aspired or self._stopping.is_set():
                    self._loading.discard(version)
                    return
            before = self.available_versions
            self._load_and_serve(version, path, pool)
            self._unload_unaspired(before)
        except Exception:  # a pool thread's error would otherwise vanish in its future
            logger.exception("Loading %s version %d failed.", self.model_name, version)

    def latest_failure(self) -> tuple[int, VersionState] | None:
        """The newest version the last poll aspired and its state, if it failed to load; else None.

        A config reload waits for the latest version of each model it adds
        (`ServerCore::WaitUntilModelsAvailable`, `ServableRequest::Latest`):
        its loads run one after another, newest first, so the newest aspired
        version is the first to become AVAILABLE or END, and the reload fails
        when it ended in an error, even while an older one serves. A model
        without versions yet has none.
        """
        aspired = self._aspired
        if not aspired or aspired[-1] not in self._failed:
            return None
        return aspired[-1], self._states[aspired[-1]]

    def poll(self) -> None:
        """Lists the base path once (`list_versions`) and serves what it found (`update_versions`).

        A base path that cannot be listed is logged with TF Serving's line and
        changes nothing: the versions serving keep serving.
        """
        with self._poll_lock:
            try:
                on_disk = self.list_versions()
            except (ServingError, OSError) as error:
                log_poll_failure(error)
                return
            self.update_versions(on_disk)

    def list_versions(self) -> dict[int, pathlib.Path]:
        """Lists the base path: version → directory, logging TF Serving's warnings.

        As `PollFileSystemForServable`
        (tensorflow_serving/sources/storage_path/file_system_storage_path_source.cc):
        a base path that does not exist is an error, never an empty listing;
        one without the versions the policy asks for logs TF Serving's warnings.
        Each child, directory or file, whose name `parse_version_number` reads
        is a version ("+3", " 3" and "03" are version 3, "-1" is version -1);
        of two names for one version, `_index_children` says which counts. A
        `specific` policy whose versions all exist under their own names takes
        them without a listing.

        Raises:
            ServingError: INVALID_ARGUMENT `Could not find base path <path> for
                servable <name> with error NOT_FOUND: ...` when the base path
                does not exist.
        """
        with self._poll_lock:
            base = self.model_base_path
            if not base.exists():
                raise invalid_argument(
                    f"Could not find base path {base} for servable {self.model_name} with "
                    f"error NOT_FOUND: {base}; No such file or directory")
            on_disk = self._specific_versions_fast_path(base)
            if on_disk is None:
                on_disk = self._index_children(version_children(base))
                self._log_missing_versions(on_disk, aspired_versions(self._policy, on_disk))
        return on_disk

    def _specific_versions_fast_path(self, base: pathlib.Path) -> dict[int, pathlib.Path] | None:
        """`AspireSpecificVersionsFastPath`: each listed version's own name, if all exist.

        A `specific` policy whose versions all exist under their decimal names
        takes them without listing the base path; otherwise (or for another
        policy) None, and the base path is listed.
        """
        if self._policy.WhichOneof("policy_choice") != "specific":
            return None
        wanted = self._policy.specific.versions
        if not wanted:
            logger.warning("No specific versions requested for servable %s.", self.model_name)
            return {}
        if not all((base / str(version)).exists() for version in wanted):
            return None
        return {version: base / str(version) for version in sorted(set(wanted))}

    def _index_children(self, children: list[tuple[int, pathlib.Path]]) -> dict[int, pathlib.Path]:
        """Version → path of a listing, as TF Serving picks among names of one version.

        `IndexChildrenByVersion` keeps the later name in byte order and warns
        (at every listing); `all` aspires every child (`AspireAllVersions`),
        and its manager takes the first of a version's names, refusing the
        others.
        """
        indexed: dict[int, pathlib.Path] = {}
        first: dict[int, pathlib.Path] = {}
        for version, path in children:
            if version in indexed:
                logger.warning("Duplicate version directories detected. Version %d will be "
                               "loaded from %s, %s will be ignored.", version, path.name,
                               indexed[version].name)
            indexed[version] = path
            first.setdefault(version, path)
        chosen = first if self._policy.WhichOneof("policy_choice") == "all" else indexed
        return dict(sorted(chosen.items()))

    def update_versions(self, on_disk: dict[int, pathlib.Path],
                        pool: InitialLoad | LoadThreads | None = None) -> None:
        """Loads the aspired versions among `on_disk` (`list_versions`) and unloads the others.

        New aspired versions load newest first: without `pool` one after
        another before this returns; with one (a server's first config's
        `InitialLoad`, or its `LoadThreads` after the start) each is handed to
        it, and this returns at once. One whose every try failed is not tried
        again until it has left the aspired versions. A listing without
        versions unloads them all, as TF Serving's empty aspired list.
        """
        with self._poll_lock:
            before = self.available_versions
            aspired = self._aspired = aspired_versions(self._policy, on_disk)
            with self._lock:  # loads on a pool change these meanwhile
                self._failed &= set(aspired)  # un-aspired: loaded again if aspired again
                new = [version for version in reversed(aspired)
                       if version not in self._servables
                       and version not in self._failed | self._loading]
                if pool is not None:
                    self._loading.update(new)
            for version in new:
                if pool is None:
                    self._load_and_serve(version, on_disk[version])
                else:
                    pool.submit(functools.partial(
                        self._load_in_pool, version, on_disk[version], pool))
            self._unload_unaspired(before)

    def _unload_unaspired(self, before: list[int]) -> None:
        """Unloads what the last listing no longer aspires, as `AvailabilityPreservingPolicy`.

        Tells the listeners when the versions serving differ from `before`.
        """
        with self._poll_lock:
            aspired = self._aspired
            unaspired = sorted(v for v in self._servables if v not in aspired)
            if aspired and not any(v in self._servables for v in aspired):
                # AvailabilityPreservingPolicy: with aspired versions none of which is
                # ready (failed ones stay aspired), unaspired versions unload only while
                # more than one is ready: the newest keeps serving.
                unaspired = unaspired[:-1]
            with self._lock:
                self._servables = {v: s for v, s in self._servables.items()
                                   if v not in unaspired}
                for version in unaspired:
                    self._states[version] = VersionState(State.END)
            after = self.available_versions
        if after != before:
            logger.info("%s now serves versions %s.", self.model_name, after)
            self._notify()

    def _log_missing_versions(self, on_disk: dict, aspired: list[int]) -> None:
        # file_system_storage_path_source.cc: AspireSpecificVersions(FastPath) and
        # PollFileSystemForServable's warnings, at every listing.
        name, base = self.model_name, self.model_base_path
        if self._policy.WhichOneof("policy_choice") == "specific":
            for version in sorted(set(self._policy.specific.versions) - set(on_disk)):
                logger.warning(
                    "Version %d of servable %s, which was requested to be served as a "
                    "'specific' version in the servable's version policy, was not found in "
                    "the file system", version, name)
        if not aspired:
            logger.warning("No versions of servable %s found under base path %s. Did you "
                           "forget to name your leaf directory as a number (eg. '/1/')?",
                           name, base)

    def servable(self, version: int | None) -> Servable:
        """Returns the servable for a request, or raises NOT_FOUND like TF Serving.

        Args:
            version: A specific version, or None for the latest available.
        """
        servables = self._servables
        if version is None and servables:
            return servables[max(servables)]
        if version in servables:
            return servables[version]
        wanted = (f"Latest({self.model_name})" if version is None
                  else f"Specific({self.model_name}, {version})")
        # basic_manager.cc (GetUntypedServableHandle): the request's DebugString, nothing else.
        raise not_found(f"Servable not found for request: {wanted}")

    def version_states(self, version: int | None = None) -> dict[int, VersionState]:
        """Returns version → state for the versions seen, or for one of them.

        Raises:
            ServingError: NOT_FOUND if nothing (or not `version`) was seen, with
                TF Serving's messages (model_servers/get_model_status_impl.cc).
        """
        with self._lock:
            states = dict(sorted(self._states.items()))
        if version is not None:
            if version not in states:
                raise not_found(f"Could not find version {version} of model {self.model_name}")
            return {version: states[version]}
        if not states:
            raise not_found(f"Could not find any versions of model {self.model_name}")
        return states
