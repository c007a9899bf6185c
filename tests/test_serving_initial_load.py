"""A server's start with several versions of a model: loaded concurrently, decided as TF Serving.

Follows TF Serving's fast initial load: model_servers/server_core.cc
(`ConnectAdaptersToManagerAndAwaitModelLoads`: `ServableRequest::Latest` of each
model, on `num_initial_load_threads` threads), core/load_servables_fast.cc
(`ConnectSourcesWithFastInitialLoad`: the wait, its message, then
`SetNumLoadThreads` joining the pool) and core/servable_state_monitor.cc
(`HasAnyServableInStreamReachedState`: a model's versions looked through from the
newest down for one AVAILABLE or END, at each event). Loading is replaced by a
stand-in whose loads wait for what the test says, so that the order in which
versions settle, which decides TF Serving's start, is the test's.
"""

import logging
import threading
import time
from collections.abc import Callable
from typing import ClassVar

import grpc
import pytest
from google.protobuf import text_format

from memae_tf.serving import model_manager
from memae_tf.serving.errors import ServingError
from memae_tf.serving.initial_load import InitialLoad
from memae_tf.serving.model_registry import ModelRegistry, ModelServerConfig


def _until(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


class _GatedServable:
    """Loads once `gates[(model, version)]()` returns; fails if (model, version) is in `broken`."""

    gates: ClassVar[dict[tuple[str, int], Callable[[], None]]] = {}
    broken: ClassVar[set[tuple[str, int]]] = set()
    threads: ClassVar[set[str]] = set()

    def __init__(self, version, path, metrics=None):
        key = (path.parent.name, version)
        _GatedServable.threads.add(threading.current_thread().name)
        _GatedServable.gates.get(key, lambda: None)()
        if key in _GatedServable.broken:
            raise ServingError(grpc.StatusCode.DATA_LOSS, f"{path} is broken")
        self.version = version

    def warm_up(self, iterations: int = 1, method_name_check: bool = False) -> int:
        return 0


@pytest.fixture
def gated(monkeypatch):
    monkeypatch.setattr(_GatedServable, "gates", {})
    monkeypatch.setattr(_GatedServable, "broken", set())
    monkeypatch.setattr(_GatedServable, "threads", set())
    monkeypatch.setattr(model_manager, "Servable", _GatedServable)
    return _GatedServable


def _config(tmp_path, models: dict[str, str]) -> ModelServerConfig:
    text = "".join(
        f'config {{ name: "{name}" base_path: "{tmp_path / name}" model_platform: "tensorflow" '
        f"model_version_policy {{ {policy} }} }}" for name, policy in models.items())
    return text_format.Parse(f"model_config_list {{ {text} }}", ModelServerConfig())


def _versions(tmp_path, name: str, *versions: int) -> None:
    for version in versions:
        (tmp_path / name / str(version)).mkdir(parents=True)


def _available(registry, name: str, version: int) -> Callable[[], None]:
    return lambda: _until(lambda: version in registry[name].available_versions)


def _ended(registry, name: str, version: int) -> Callable[[], None]:
    def ended() -> bool:
        states = registry[name]._states
        return version in states and states[version].state == model_manager.State.END
    return lambda: _until(ended)


@pytest.mark.parametrize("policy", ["all { }", "specific { versions: [1, 2] }",
                                    "latest { num_versions: 2 }"])
def test_an_older_version_available_before_the_newest_fails_starts_the_server(
        tmp_path, gated, policy, caplog):
    # servable_state_monitor.cc HasAnyServableInStreamReachedState: version 2 still
    # loading when 1 becomes AVAILABLE, the Latest request is met by 1; the start
    # (load_servables_fast.cc) then waits for 2's load to end (SetNumLoadThreads joins
    # the pool) and succeeds; 2 is END with its error, logged by
    # aspired_versions_manager.cc PerformAction, and 1 serves.
    _versions(tmp_path, "kdd", 1, 2)
    gated.broken.add(("kdd", 2))
    registry = ModelRegistry(0, max_num_load_retries=0)
    gated.gates[("kdd", 2)] = _available(registry, "kdd", 1)
    with caplog.at_level(logging.ERROR, logger="memae_tf.serving.model_manager"):
        registry.reload_config(_config(tmp_path, {"kdd": policy}))
    try:
        states = registry.version_states("kdd")
        assert registry["kdd"].available_versions == [1]
        assert registry["kdd"].servable(None).version == 1
        assert (states[2].state, states[2].error_code) == (
            model_manager.State.END, grpc.StatusCode.DATA_LOSS)
        assert (f"Servable {{name: kdd version: 2}} cannot be loaded: DATA_LOSS: "
                f"{tmp_path / 'kdd' / '2'} is broken") in caplog.messages
    finally:
        registry.stop()


@pytest.mark.parametrize("policy", ["all { }", "specific { versions: [1, 2] }",
                                    "latest { num_versions: 2 }"])
def test_a_newest_version_failing_before_an_older_one_loads_stops_the_start(
        tmp_path, gated, policy):
    # servable_state_monitor.cc: 2 is END while 1 still loads, so the Latest request is
    # met by 2 in error; load_servables_fast.cc fails the start with UNKNOWN, once 1's
    # load has ended (1 is then AVAILABLE, but the start has failed).
    _versions(tmp_path, "kdd", 1, 2)
    gated.broken.add(("kdd", 2))
    registry = ModelRegistry(0, max_num_load_retries=0)
    gated.gates[("kdd", 1)] = _ended(registry, "kdd", 2)
    try:
        with pytest.raises(ServingError) as info:
            registry.reload_config(_config(tmp_path, {"kdd": policy}))
        assert info.value.code == grpc.StatusCode.UNKNOWN
        assert info.value.message == (
            "1 servable(s) did not become available: {{{name: kdd version: 2} due to "
            f"error: DATA_LOSS: {tmp_path / 'kdd' / '2'} is broken}}, }}")
        assert registry["kdd"].available_versions == [1]  # its load ran to the end
    finally:
        registry.stop()


@pytest.mark.parametrize("fails_first", [True, False])
def test_an_older_version_that_fails_stops_the_start_only_if_it_settles_first(
        tmp_path, gated, fails_first):
    # servable_state_monitor.cc: whichever version is first AVAILABLE or END meets the
    # Latest request, the older one too: its error stops the start while 2 still loads;
    # once 2 serves, 1's later failure changes nothing (2 serves, 1 is END).
    _versions(tmp_path, "kdd", 1, 2)
    gated.broken.add(("kdd", 1))
    registry = ModelRegistry(0, max_num_load_retries=0)
    if fails_first:
        gated.gates[("kdd", 2)] = _ended(registry, "kdd", 1)
    else:
        gated.gates[("kdd", 1)] = _available(registry, "kdd", 2)
    try:
        if fails_first:
            with pytest.raises(ServingError) as info:
                registry.reload_config(_config(tmp_path, {"kdd": "all { }"}))
            assert info.value.message.startswith(
                "1 servable(s) did not become available: {{{name: kdd version: 1} due to "
                "error: DATA_LOSS: ")
        else:
            registry.reload_config(_config(tmp_path, {"kdd": "all { }"}))
        assert registry["kdd"].available_versions == [2]
        assert registry.version_states("kdd")[1].state == model_manager.State.END
    finally:
        registry.stop()


def test_a_newest_version_that_retries_lets_an_older_one_start_the_server(tmp_path, gated):
    # loader_harness.cc / retrier.cc: a load being retried stays LOADING, so with
    # retries (TF Serving's default: 5, a minute apart) an older version that loads
    # meanwhile meets the Latest request; the start returns after the last retry.
    _versions(tmp_path, "kdd", 1, 2)
    gated.broken.add(("kdd", 2))
    registry = ModelRegistry(0, max_num_load_retries=2, load_retry_interval=0.2)
    try:
        registry.reload_config(_config(tmp_path, {"kdd": "latest { num_versions: 2 }"}))
        assert registry["kdd"].available_versions == [1]
        assert registry.version_states("kdd")[2].state == model_manager.State.END
    finally:
        registry.stop()


def test_each_model_is_decided_by_its_newest_settled_version_when_the_last_model_settles(
        tmp_path, gated):
    # servable_state_monitor.cc ShouldSendStateReachedNotification: the wait ends at the
    # first event after which every model has a version AVAILABLE or END, and each
    # model's is then the newest such version. kdd's 1 serves first, but its 2 has
    # failed by the time mnist's 1 loads: the start fails on kdd's 2.
    _versions(tmp_path, "kdd", 1, 2)
    _versions(tmp_path, "mnist", 1)
    gated.broken.add(("kdd", 2))
    registry = ModelRegistry(0, max_num_load_retries=0)
    gated.gates[("kdd", 2)] = _available(registry, "kdd", 1)
    gated.gates[("mnist", 1)] = _ended(registry, "kdd", 2)
    try:
        with pytest.raises(ServingError) as info:
            registry.reload_config(_config(tmp_path, {"mnist": "all { }", "kdd": "all { }"}))
        assert info.value.message.startswith(
            "1 servable(s) did not become available: {{{name: kdd version: 2} due to error: ")
        assert registry["mnist"].available_versions == [1]
    finally:
        registry.stop()


def test_versions_load_concurrently_at_start_and_one_at_a_time_after(tmp_path, gated):
    # server_core.cc: the first config's loads run on num_initial_load_threads threads
    # (version 1 loads while 2 waits for it); load_servables_fast.cc then restores
    # num_load_threads (0: the manager's own thread), so a later config's new model
    # loads newest first on the polling thread, and its newest failing fails the reload
    # (server_core.cc WaitUntilModelsAvailable), though its older version serves; that
    # thread is the load thread, not the polling thread (basic_manager.cc CreateExecutor).
    _versions(tmp_path, "kdd", 1, 2)
    registry = ModelRegistry(0.05, max_num_load_retries=0)
    gated.gates[("kdd", 2)] = _available(registry, "kdd", 1)
    try:
        registry.reload_config(_config(tmp_path, {"kdd": "all { }"}))
        assert registry["kdd"].available_versions == [1, 2]
        assert gated.threads and all(t.startswith("initial-load") for t in gated.threads)
        gated.threads.clear()
        _versions(tmp_path, "mnist", 1, 2)
        gated.broken.add(("mnist", 2))
        with pytest.raises(ServingError) as info:
            registry.reload_config(_config(tmp_path, {"kdd": "all { }", "mnist": "all { }"}))
        assert info.value.message.startswith(
            "1 model(s) did not become available: {{{name: mnist version: 2} due to error: ")
        assert gated.threads == {"load_0"}
        # The reload returned when version 2 failed; version 1 loads after it.
        _until(lambda: registry["mnist"].available_versions == [1])
    finally:
        registry.stop()


def _state(registry, name: str, version: int) -> int:
    return registry.version_states(name)[version].state


@pytest.mark.parametrize("threads", [2, 3])
def test_after_the_start_versions_load_at_once_on_num_load_threads_threads(
        tmp_path, gated, threads):
    """basic_manager.cc CreateExecutor: --num_load_threads=N > 0 loads on a pool of N
    threads; aspired_versions_manager.cc starts one load a tick, newest first, without
    waiting for it. Version 3 loads only once version 2 serves, so both must load at
    once: one thread would never end."""
    _versions(tmp_path, "kdd", 1)
    registry = ModelRegistry(0.05, max_num_load_retries=0, num_load_threads=threads)
    try:
        registry.reload_config(_config(tmp_path, {"kdd": "all { }"}))
        gated.threads.clear()
        gated.gates[("kdd", 3)] = _available(registry, "kdd", 2)
        _versions(tmp_path, "kdd", 2, 3)
        _until(lambda: registry["kdd"].available_versions == [1, 2, 3])
        assert gated.threads == {"load_0", "load_1"}
    finally:
        registry.stop()


def test_after_the_start_versions_load_one_at_a_time_newest_first_by_default(tmp_path, gated):
    """With --num_load_threads=0 the manager's one thread loads (basic_manager.cc: an
    inline executor on the manage-state thread), newest first (availability_preserving
    _policy.cc): version 2 waits while version 3 loads."""
    _versions(tmp_path, "kdd", 1)
    registry = ModelRegistry(0.05, max_num_load_retries=0)
    release = threading.Event()
    try:
        registry.reload_config(_config(tmp_path, {"kdd": "all { }"}))
        gated.gates[("kdd", 3)] = lambda: release.wait(10)
        _versions(tmp_path, "kdd", 2, 3)
        _until(lambda: 3 in registry.version_states("kdd"))
        time.sleep(0.3)  # several listings
        assert 2 not in registry["kdd"].available_versions
        release.set()
        _until(lambda: registry["kdd"].available_versions == [1, 2, 3])
    finally:
        release.set()
        registry.stop()


def test_a_reload_returns_while_a_load_waits_to_be_retried(tmp_path, gated):
    """model_service_impl.cc HandleReloadConfigRequest -> ServerCore::ReloadConfig hands
    the new config to the source and router and waits only for the models it adds
    (WaitUntilModelsAvailable): a version of another model waiting a minute between two
    tries (loader_harness.cc, retrier.cc) holds the manager's thread, not the reload."""
    _versions(tmp_path, "kdd", 1)
    registry = ModelRegistry(0.05, max_num_load_retries=1, load_retry_interval=60)
    try:
        config = _config(tmp_path, {"kdd": "all { }"})
        registry.reload_config(config)
        gated.broken.add(("kdd", 2))
        _versions(tmp_path, "kdd", 2)
        _until(lambda: "load_0" in gated.threads)
        time.sleep(0.2)  # the first try has failed; the retry waits a minute
        started = time.monotonic()
        registry.reload_config(_config(tmp_path, {"kdd": "latest { num_versions: 2 }"}))
        assert time.monotonic() - started < 5
        assert _state(registry, "kdd", 2) == model_manager.State.LOADING
        assert registry["kdd"].available_versions == [1]
    finally:
        registry.stop()


def test_a_version_loading_when_its_model_leaves_the_config_ends_unloaded(tmp_path, gated):
    """ServerCore::ReloadConfig returns without waiting for the removed model
    (WaitUntilModelsAvailable waits for added ones only); its version still loading
    finishes on the load thread and is then unloaded (AvailabilityPreservingPolicy:
    nothing aspired), reporting END, never AVAILABLE."""
    _versions(tmp_path, "kdd", 1)
    _versions(tmp_path, "mnist", 1)
    registry = ModelRegistry(0.05, max_num_load_retries=0)
    release = threading.Event()
    try:
        registry.reload_config(_config(tmp_path, {"kdd": "all { }", "mnist": "all { }"}))
        gated.gates[("kdd", 2)] = lambda: release.wait(10)
        _versions(tmp_path, "kdd", 2)
        _until(lambda: 2 in registry.version_states("kdd"))
        registry.reload_config(_config(tmp_path, {"mnist": "all { }"}))
        release.set()
        _until(lambda: _state(registry, "kdd", 2) == model_manager.State.END)
        assert _state(registry, "kdd", 1) == model_manager.State.END
        assert registry.version_states("mnist")[1].state == model_manager.State.AVAILABLE
    finally:
        release.set()
        registry.stop()


def test_the_initial_load_is_decided_at_the_first_event_all_models_have_settled():
    # servable_state_monitor.cc: at each event, each model's versions from the newest
    # down; the first event at which each has one ends the wait, later events change
    # nothing.
    load = InitialLoad(["kdd", "mnist"], threads=1)
    load.settle("kdd", 1, "AVAILABLE")
    assert load.reached(timeout=0) is None  # mnist has none yet
    load.settle("kdd", 3, "END")
    load.settle("mnist", 2, "AVAILABLE")
    load.settle("kdd", 4, "AVAILABLE")
    load.settle("other", 9, "END")  # not awaited
    assert load.reached(timeout=0) == {"kdd": (3, "END"), "mnist": (2, "AVAILABLE")}
    ran = []
    load.submit(lambda: ran.append(time.sleep(0.05)))
    load.shutdown()  # waits for it
    assert ran == [None]


def test_the_start_waits_for_a_model_that_settles_on_another_thread():
    # servable_state_monitor.cc WaitUntilServablesReachState blocks until the event that
    # settles the last awaited model, then answers.
    load = InitialLoad(["memae"], threads=1)
    settler = threading.Timer(0.1, load.settle, ("memae", 1, "AVAILABLE"))
    settler.start()
    try:
        assert load.reached(timeout=30) == {"memae": (1, "AVAILABLE")}
    finally:
        settler.join()
        load.shutdown()
