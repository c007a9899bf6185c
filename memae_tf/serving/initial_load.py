"""The first config's loads on a thread pool, and the versions a server's start waits for.

As TF Serving's fast initial load (tensorflow_serving/core/load_servables_fast.cc,
`ConnectSourcesWithFastInitialLoad`, called by model_servers/server_core.cc for
the first config): until every model of the config has a version that reached
AVAILABLE or END, versions load on a pool of `4 * schedulable CPUs` threads
(`ServerCore::Options::num_initial_load_threads`), each new aspired version as
soon as it is listed, newest first; the start then waits for the loads still
running (`BasicManager::SetNumLoadThreads` joins the pool) before it returns,
and later loads run on the manager's load threads (`LoadThreads`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, TypeVar

State = TypeVar("State")


class InitialLoad(Generic[State]):
    """The pool of a server's first loads, and the version each model's start is decided by.

    TF Serving waits for `ServableRequest::Latest` of each model
    (core/servable_state_monitor.cc): at each version event, the monitor looks
    through a model's versions from the newest down for one that is AVAILABLE
    or END, and the wait ends at the first event after which every model has
    one. The version found then decides the model: the start fails if it is
    END, even when another version of the model serves. Which version that is
    depends on which loads end first: an older version that loads while the
    newest is still loading (or waiting to retry) starts the server; a newest
    version that fails first stops it.

    Args:
        model_names: The models the start waits for.
        threads: Threads of the load pool.

    Example:

    >>> load = InitialLoad(["memae"], threads=2)
    >>> load.settle("memae", 1, "AVAILABLE")
    >>> load.settle("memae", 2, "END")
    >>> load.reached(timeout=0)
    {'memae': (1, 'AVAILABLE')}
    >>> load.shutdown()
    """

    def __init__(self, model_names: Iterable[str], threads: int) -> None:
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="initial-load")
        self._settled: dict[str, dict[int, State]] = {name: {} for name in model_names}
        self._reached: dict[str, tuple[int, State]] | None = None
        self._changed = threading.Condition()

    def submit(self, load: Callable[[], None]) -> None:
        """Runs `load` on the pool."""
        self._pool.submit(load)

    def settle(self, model_name: str, version: int, state: State) -> None:
        """Records that a version became AVAILABLE or reached END (a load that failed)."""
        with self._changed:
            versions = self._settled.get(model_name)
            if versions is None:
                return
            versions[version] = state
            if self._reached is None and all(self._settled.values()):
                self._reached = {name: max(versions.items(), key=lambda item: item[0])
                                 for name, versions in self._settled.items()}
            self._changed.notify_all()

    def reached(self, timeout: float | None = None) -> dict[str, tuple[int, State]] | None:
        """Model → (version, state) that ended the wait, or None if `timeout` passed first."""
        with self._changed:
            self._changed.wait_for(lambda: self._reached is not None, timeout)
            return None if self._reached is None else dict(self._reached)

    def shutdown(self) -> None:
        """Waits for the loads submitted so far to end, as TF Serving's start does."""
        self._pool.shutdown(wait=True)


class LoadThreads:
    """Where a server's versions load once it has started: TF Serving's load executor.

    As `BasicManager`'s executor (core/basic_manager.cc `CreateExecutor`) with
    `--num_load_threads`: N > 0 threads load up to N versions, of any models,
    at once; 0, the default, loads on the manager's own thread, one version at
    a time, here one thread of its own. Either way the listings of the base
    paths (TF Serving's source thread) and config reloads go on while a load
    runs or waits to be retried: they hand the versions to load over and
    return, and a reload waits only for the models it adds
    (`ServerCore::ReloadConfig`).

    Args:
        threads: `--num_load_threads`; 0 for one thread.
        on_settle: Called after each version becomes AVAILABLE or fails.

    Example:

    >>> loaded = []
    >>> threads = LoadThreads(2, on_settle=lambda: None)
    >>> threads.submit(lambda: loaded.append("memae 2"))
    >>> threads.shutdown(wait=True)
    >>> loaded
    ['memae 2']
    """

    def __init__(self, threads: int, on_settle: Callable[[], None]) -> None:
        self._pool = ThreadPoolExecutor(max_workers=max(threads, 1), thread_name_prefix="load")
        self._on_settle = on_settle

    def submit(self, load: Callable[[], None]) -> None:
        """Runs `load` on the load threads."""
        self._pool.submit(load)

    def settle(self, model_name: str, version: int, state: object) -> None:
        """Tells the waiting reloads that a version became AVAILABLE or failed."""
        self._on_settle()

    def shutdown(self, wait: bool = False) -> None:
        """Drops the loads not started; with `wait`, waits for the running ones."""
        self._pool.shutdown(wait=wait, cancel_futures=True)
