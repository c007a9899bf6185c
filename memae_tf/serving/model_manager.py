"""Version policy "latest" for one model base path, with polling and hot swap."""

from __future__ import annotations

import logging
import os
import pathlib
import threading
from collections.abc import Callable
from dataclasses import dataclass

import grpc
from tensorflow_serving.apis import get_model_status_pb2

from memae_tf.common.contract import version_directories
from memae_tf.serving.errors import ServingError, not_found
from memae_tf.serving.layout import directory_fingerprint
from memae_tf.serving.servable import Servable

logger = logging.getLogger(__name__)
State = get_model_status_pb2.ModelVersionStatus.State


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
    """Serves the newest version under a model base path and follows new ones.

    Every `poll_interval` seconds the base path is listed; when its largest
    version differs from the one served, that version is loaded with
    `tf.saved_model.load`, warmed up from its `assets.extra` warmup records and
    only then swapped in. Requests already running keep the version they
    started with, so none is dropped; the old version is freed when the last
    one finishes. A version that fails to load (a truncated `saved_model.pb`,
    missing variables, a directory still being copied) is logged and reported
    (state END with its error), and the newest version that loads keeps
    serving; the failed version is tried again only once its files change
    (e.g. when the copy completes).

    Args:
        model_name: Name clients use for the model.
        model_base_path: Directory holding the integer version directories.
        poll_interval: Positive number of seconds between two listings.

    Example:

    >>> manager = ModelManager("memae", "models/memae")  # doctest: +SKIP
    >>> manager.start(); manager.servable(None).version  # doctest: +SKIP
    2
    """

    def __init__(
        self, model_name: str, model_base_path: str | os.PathLike, poll_interval: float = 1.0
    ) -> None:
        if not isinstance(model_name, str) or not model_name or "/" in model_name:
            raise ValueError(
                "Received an invalid value for `model_name`, expected a non-empty name "
                f"without '/'. Received: model_name={model_name!r}"
            )
        if isinstance(poll_interval, bool) or not (
            isinstance(poll_interval, (int, float)) and poll_interval > 0
        ):
            raise ValueError(
                "Received an invalid value for `poll_interval`, expected a positive number "
                f"of seconds. Received: poll_interval={poll_interval!r}"
            )
        self.model_name = model_name
        self.model_base_path = pathlib.Path(model_base_path)
        self.poll_interval = float(poll_interval)
        self._lock = threading.Lock()
        self._servable: Servable | None = None
        self._states: dict[int, VersionState] = {}
        # Failed version → fingerprint of its directory when it failed.
        self._failed: dict[int, tuple] = {}
        self._listeners: list[Callable[[bool], None]] = []
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def available(self) -> bool:
        """Whether a version is loaded and serving."""
        return self._servable is not None

    def add_listener(self, listener: Callable[[bool], None]) -> None:
        """Calls `listener(available)` now and whenever the served version changes."""
        self._listeners.append(listener)
        listener(self.available)

    def start(self) -> None:
        """Loads the current latest version, then polls in a background thread."""
        if not self.model_base_path.is_dir():
            logger.warning("Model base path %s does not exist yet; waiting for versions.",
                           self.model_base_path)
        self.poll()
        self._thread = threading.Thread(target=self._poll_forever, daemon=True,
                                        name=f"poll-{self.model_name}")
        self._thread.start()

    def stop(self) -> None:
        """Stops polling; the served version stays loaded for requests in flight."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()

    def _poll_forever(self) -> None:
        while not self._stopping.wait(self.poll_interval):
            try:
                self.poll()
            except Exception:  # an unreadable directory must not end polling
                logger.exception("Polling %s failed.", self.model_base_path)

    def _set_state(self, version: int, state: VersionState) -> None:
        with self._lock:
            self._states[version] = state

    def _load(self, version: int, path: pathlib.Path) -> Servable | None:
        self._set_state(version, VersionState(State.LOADING))
        fingerprint = directory_fingerprint(path)
        logger.info("Loading %s version %d from %s.", self.model_name, version, path)
        try:
            servable = Servable(version, path)
            warmed = servable.warm_up()
        except Exception as error:  # a broken version must not stop the server
            code = error.code if isinstance(error, ServingError) else grpc.StatusCode.UNKNOWN
            self._set_state(version, VersionState(State.END, code, str(error)))
            self._failed[version] = fingerprint
            logger.error("Could not load %s version %d: %s", self.model_name, version, error)
            return None
        self._failed.pop(version, None)
        logger.info("Loaded %s version %d (%d warmup requests).", self.model_name, version,
                    warmed)
        return servable

    def poll(self) -> None:
        """Lists the base path once and loads, swaps or unloads to serve its latest version.

        When the latest version fails to load, the newest version that loads is
        served instead (the one already served, if it is the newest left).
        """
        while True:
            versions = version_directories(self.model_base_path)
            candidates = [v for v, path in versions.items() if v not in self._failed
                          or self._failed[v] != directory_fingerprint(path)]
            aspired = max(candidates) if candidates else None
            current = self._servable.version if self._servable is not None else None
            if aspired == current:
                return
            new = None if aspired is None else self._load(aspired, versions[aspired])
            if new is not None or aspired is None:
                break
        with self._lock:
            old, self._servable = self._servable, new
            if new is not None:
                self._states[new.version] = VersionState(State.AVAILABLE)
            if old is not None:
                self._states[old.version] = VersionState(State.END)
        logger.info("%s now serves version %s.", self.model_name, aspired)
        for listener in self._listeners:
            listener(self.available)

    def servable(self, version: int | None) -> Servable:
        """Returns the servable for a request, or raises NOT_FOUND like TF Serving.

        Args:
            version: A specific version, or None for the latest.
        """
        servable = self._servable
        if servable is not None and version in (None, servable.version):
            return servable
        wanted = (f"Latest({self.model_name})" if version is None
                  else f"Specific({self.model_name}, {version})")
        serving = "none" if servable is None else str(servable.version)
        raise not_found(
            f"Servable not found for request: {wanted}. Version served: {serving}."
        )

    def version_states(self, version: int | None = None) -> dict[int, VersionState]:
        """Returns version → state for the versions seen, or for one of them.

        Raises:
            ServingError: NOT_FOUND if nothing (or not `version`) was seen.
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
