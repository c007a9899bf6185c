"""ModelManager's version life cycle, checked against TF Serving's policies without SavedModels.

Loading is replaced by a stand-in servable (a version directory holding a file
named `broken` fails to load), so that each test reads as the order of loads and
unloads that TF Serving's sources prescribe:
tensorflow_serving/core/availability_preserving_policy.cc (what unloads when),
tensorflow_serving/core/aspired_version_policy.cc (which new version loads first),
tensorflow_serving/core/aspired_versions_manager.cc (a version in error stays aspired),
tensorflow_serving/core/loader_harness.cc and util/retrier.cc (load retries),
tensorflow_serving/core/basic_manager.cc and manager.h (the NOT_FOUND messages).
tests/test_serving.py and tests/reliability/test_version_faults.py serve real versions.
"""

import threading
import time
from typing import ClassVar

import grpc
import pytest
from google.protobuf import text_format

from memae_tf.serving import model_manager
from memae_tf.serving.errors import ServingError
from memae_tf.serving.model_manager import (
    ModelManager,
    State,
    VersionPolicy,
    VersionState,
    check_poll_seconds,
)


class _StandInServable:
    """Records loads in `loads`, tries in `tries`, warmups (version, iterations) in `warmups`.

    Each warmup's `method_name_check` goes to `method_name_checks`.

    A version directory holding a file named `broken` fails to load.

    A `broken` file holding a number fails that many more tries, then is removed
    (a copy that completes); holding anything else, every try fails.
    """

    loads: ClassVar[list[int]] = []
    tries: ClassVar[list[int]] = []
    warmups: ClassVar[list[tuple[int, int]]] = []
    method_name_checks: ClassVar[list[bool]] = []

    def __init__(self, version, path, metrics=None):
        _StandInServable.tries.append(version)
        broken = path / "broken"
        if broken.exists():
            text = broken.read_text()
            if text.isdigit():
                if int(text) <= 1:
                    broken.unlink()
                else:
                    broken.write_text(str(int(text) - 1))
            raise ServingError(grpc.StatusCode.DATA_LOSS, f"{path} is broken")
        self.version = version
        self.path = path
        _StandInServable.loads.append(version)

    def warm_up(self, iterations: int = 1, method_name_check: bool = False) -> int:
        _StandInServable.warmups.append((self.version, iterations))
        _StandInServable.method_name_checks.append(method_name_check)
        return 0


@pytest.fixture
def loads(monkeypatch) -> list[int]:
    monkeypatch.setattr(_StandInServable, "loads", [])
    monkeypatch.setattr(_StandInServable, "tries", [])
    monkeypatch.setattr(_StandInServable, "warmups", [])
    monkeypatch.setattr(_StandInServable, "method_name_checks", [])
    monkeypatch.setattr(model_manager, "Servable", _StandInServable)
    return _StandInServable.loads


def _versions(base, *versions, broken=(), failing_tries="x"):
    for version in versions:
        (base / str(version)).mkdir(parents=True, exist_ok=True)
    for version in broken:
        (base / str(version)).mkdir(parents=True, exist_ok=True)
        (base / str(version) / "broken").write_text(failing_tries)


def _policy(text: str) -> VersionPolicy:
    return text_format.Parse(text, VersionPolicy())


def _manager(base, policy: str = "", retries: int = 0, interval: float = 0) -> ModelManager:
    return ModelManager("kdd", base, poll_interval=0, version_policy=_policy(policy),
                        max_num_load_retries=retries, load_retry_interval=interval)


def _states(manager) -> dict[int, str]:
    return {v: State.Name(s.state) for v, s in manager.version_states().items()}


def test_new_aspired_versions_load_highest_first(tmp_path, loads):
    # aspired_version_policy.cc GetHighestAspiredNewServableId: the highest new version first.
    _versions(tmp_path, 1, 2, 3)
    manager = _manager(tmp_path, "all { }")
    manager.start()
    assert loads == [3, 2, 1]
    assert manager.available_versions == [1, 2, 3]


def test_a_new_latest_version_replaces_the_previous_once_it_serves(tmp_path, loads):
    _versions(tmp_path, 1)
    manager = _manager(tmp_path)
    seen = []
    manager.add_listener(seen.append)
    manager.start()
    _versions(tmp_path, 2)
    manager.poll()
    assert manager.available_versions == [2]
    assert _states(manager) == {1: "END", 2: "AVAILABLE"}
    assert seen == [False, True, True]  # now, after start, after the swap


def test_a_failed_version_stays_aspired_and_no_older_one_loads_in_its_place(tmp_path, loads):
    # aspired_versions_manager.cc keeps a version in error aspired (the source still lists
    # it), so latest { num_versions: 2 } aspires 4 and the failed 5, not 3;
    # availability_preserving_policy.cc then unloads the unaspired 1-3 once 4 serves.
    _versions(tmp_path, 1, 2, 3, 4)
    manager = _manager(tmp_path, "all { }")
    manager.start()
    _versions(tmp_path, broken=[5])
    manager.reconfigure(tmp_path, _policy("latest { num_versions: 2 }"))
    assert manager.available_versions == [4]
    assert _states(manager) == {1: "END", 2: "END", 3: "END", 4: "AVAILABLE", 5: "END"}
    assert loads == [4, 3, 2, 1]


def test_while_every_aspired_version_fails_the_newest_serving_version_stays(tmp_path, loads):
    # availability_preserving_policy.cc GetNextAction: with aspired versions and none of
    # them ready (aspired_versions_manager.cc keeps a version in error aspired), the lowest
    # unaspired versions unload only while more than one is ready: the newest keeps serving.
    _versions(tmp_path, 1, 2, 3)
    manager = _manager(tmp_path, "all { }")
    manager.start()
    _versions(tmp_path, broken=[4])
    manager.reconfigure(tmp_path, _policy("specific { versions: 4 }"))
    assert manager.available_versions == [3]
    assert _states(manager) == {1: "END", 2: "END", 3: "AVAILABLE", 4: "END"}


def test_nothing_aspired_unloads_every_version(tmp_path, loads):
    # availability_preserving_policy.cc: with no aspired version, every unaspired one unloads.
    _versions(tmp_path, 1, 2)
    manager = _manager(tmp_path, "all { }")
    manager.start()
    manager.reconfigure(tmp_path, _policy("specific { versions: 7 }"))
    assert manager.available_versions == []
    assert not manager.available
    assert _states(manager) == {1: "END", 2: "END"}


def test_an_aspired_version_serving_unloads_every_unaspired_one(tmp_path, loads):
    _versions(tmp_path, 1, 2, 3)
    manager = _manager(tmp_path, "all { }")
    manager.start()
    manager.reconfigure(tmp_path, _policy("specific { versions: 1 }"))
    assert manager.available_versions == [1]
    assert loads == [3, 2, 1]  # version 1 was not loaded again


def test_a_version_whose_every_try_failed_is_not_tried_again_while_it_stays_aspired(
        tmp_path, loads):
    # aspired_versions_manager.cc ProcessAspiredVersionsRequest adds only versions not yet
    # managed (enable_reload_servables_with_error is off in the model server), so a
    # version in error is not reloaded, even once its files are whole; un-aspired, it is
    # forgotten, and aspired again it is loaded as a new version.
    _versions(tmp_path, 1)
    manager = _manager(tmp_path)
    manager.start()
    _versions(tmp_path, broken=[2])
    manager.poll()
    manager.poll()
    assert loads == [1] and _StandInServable.tries == [1, 2]
    assert manager.available_versions == [1]  # the only ready version keeps serving
    assert _states(manager) == {1: "AVAILABLE", 2: "END"}
    assert manager.version_states(2)[2].error_code == grpc.StatusCode.DATA_LOSS
    (tmp_path / "2" / "broken").unlink()  # whole now, and still aspired: not tried
    manager.poll()
    assert _StandInServable.tries == [1, 2]
    (tmp_path / "2").rename(tmp_path / "held")  # un-aspired: 1 is the latest again
    manager.poll()
    assert manager.available_versions == [1]
    (tmp_path / "held").rename(tmp_path / "2")  # aspired again: loaded as new
    manager.poll()
    assert loads == [1, 2]
    assert manager.available_versions == [2]
    assert manager.version_states(2) == {2: VersionState(State.AVAILABLE)}


@pytest.mark.parametrize("retries", [0, 1, 3])
def test_a_failed_load_is_tried_max_num_load_retries_more_times_then_ends(
        tmp_path, loads, retries, caplog):
    # retrier.cc Retry: one try, then up to max_num_retries more while the status is an
    # error (loader_harness.cc Load); the last error is the version's (END, DATA_LOSS).
    _versions(tmp_path, broken=[2])
    manager = _manager(tmp_path, retries=retries)
    with caplog.at_level("INFO", logger="memae_tf.serving.model_manager"):
        manager.start()
    assert _StandInServable.tries == [2] * (retries + 1) and loads == []
    assert manager.version_states(2)[2] == VersionState(
        State.END, grpc.StatusCode.DATA_LOSS, f"{tmp_path / '2'} is broken")
    messages = [r.getMessage() for r in caplog.records]
    assert [m for m in messages if " retry: " in m] == [
        f"Retrying of Loading servable: {{name: kdd version: 2}} retry: {n}"
        for n in range(1, retries + 1)]
    assert messages.count("Loading servable: {name: kdd version: 2} failed: DATA_LOSS: "
                          f"{tmp_path / '2'} is broken") == retries + 1
    assert messages.count("Retrying of Loading servable: {name: kdd version: 2} exhausted "
                          f"max_num_retries: {retries}") == 1


def test_a_load_that_succeeds_on_a_retry_serves(tmp_path, loads):
    # A copy still under way when the version is found: a later try of the same load
    # (retrier.cc) finds it whole, and it serves without waiting for a new listing.
    _versions(tmp_path, broken=[2], failing_tries="2")
    manager = _manager(tmp_path, retries=5)
    manager.start()
    assert _StandInServable.tries == [2, 2, 2] and loads == [2]
    assert manager.version_states() == {2: VersionState(State.AVAILABLE)}
    assert manager.latest_failure() is None


def test_a_version_reports_loading_between_tries_and_stop_cancels_the_retries(
        tmp_path, loads, caplog):
    # loader_harness.cc: the state stays kLoading while Retry sleeps between tries; a
    # cancelled retry (should_retry false) ends the load with the last error.
    _versions(tmp_path, broken=[2])
    manager = _manager(tmp_path, retries=5, interval=60)
    starting = threading.Thread(target=manager.start)
    starting.start()
    deadline = time.monotonic() + 60
    while not _StandInServable.tries and time.monotonic() < deadline:
        time.sleep(0.01)
    assert manager.version_states(2)[2].state == State.LOADING
    with caplog.at_level("INFO", logger="memae_tf.serving.model_manager"):
        manager.stop()
        starting.join(timeout=10)
    assert not starting.is_alive()
    assert _StandInServable.tries == [2]
    assert manager.version_states(2)[2].state == State.END
    assert "Retrying of Loading servable: {name: kdd version: 2} was cancelled." in (
        caplog.messages)
    assert not any("exhausted" in message for message in caplog.messages)


@pytest.mark.parametrize(("retries", "interval", "message"), [
    (-1, 0, "max_num_load_retries"), (1.5, 0, "max_num_load_retries"),
    (True, 0, "max_num_load_retries"), (2, -1, "load_retry_interval"),
    (2, "1", "load_retry_interval")])
def test_retry_settings_that_are_not_a_count_and_seconds_are_refused(
        tmp_path, retries, interval, message):
    with pytest.raises(ValueError, match=f"invalid value for `{message}`"):
        ModelManager("kdd", tmp_path, max_num_load_retries=retries,
                     load_retry_interval=interval)


def test_tf_servings_retry_defaults_are_5_tries_a_minute_apart(tmp_path):
    # server.h / main.cc: max_num_load_retries = 5, load_retry_interval_micros = 1 minute.
    manager = ModelManager("kdd", tmp_path)
    assert (manager.max_num_load_retries, manager.load_retry_interval) == (5, 60.0)


@pytest.mark.parametrize(("enabled", "iterations", "warmups", "logged"), [
    (True, 1, [(3, 1), (2, 1)], "(0 warmup requests)"),
    (True, 4, [(3, 4), (2, 4)], "(0 warmup requests)"),
    (False, 4, [], "(warmup disabled)")])
def test_each_load_warms_up_the_version_unless_model_warmup_is_disabled(
        tmp_path, loads, caplog, enabled, iterations, warmups, logged):
    # saved_model_bundle_source_adapter.cc GetServableCreator: after the bundle is created,
    # RunSavedModelWarmup runs only when the config's enable_model_warmup is set (server.cc
    # copies --enable_model_warmup there), with the config's model_warmup_options (server.cc
    # copies --num_request_iterations_for_warmup there); either way the version serves.
    _versions(tmp_path, 2, 3)
    manager = ModelManager("kdd", tmp_path, poll_interval=0, version_policy=_policy("all { }"),
                           enable_model_warmup=enabled, warmup_iterations=iterations)
    with caplog.at_level("INFO", logger="memae_tf.serving.model_manager"):
        manager.start()
    assert _StandInServable.warmups == warmups and manager.available_versions == [2, 3]
    assert f"Loaded kdd version 3 {logged}." in caplog.messages


def test_model_warmup_is_on_by_default_and_takes_only_a_bool(tmp_path):
    # server.h Server::Options: enable_model_warmup = true.
    assert ModelManager("kdd", tmp_path).enable_model_warmup is True
    with pytest.raises(ValueError, match=r"expected True or False\. Received: "
                                         "enable_model_warmup='false'"):
        ModelManager("kdd", tmp_path, enable_model_warmup="false")


@pytest.mark.parametrize("check", [False, True])
def test_each_warmup_takes_the_signature_method_name_check(tmp_path, loads, check):
    # server.cc SetSignatureMethodNameCheckFeature sets a process-wide flag (util.cc) that
    # saved_model_warmup.cc's RunPredict/RunClassify/RunRegress read as the RPCs do; off
    # by default (server.h enable_signature_method_name_check = false).
    _versions(tmp_path, 2, 3)
    options = {"signature_method_name_check": True} if check else {}
    ModelManager("kdd", tmp_path, poll_interval=0, version_policy=_policy("all { }"),
                 **options).start()
    assert _StandInServable.method_name_checks == [check, check]
    with pytest.raises(ValueError, match=r"Received: signature_method_name_check=1"):
        ModelManager("kdd", tmp_path, signature_method_name_check=1)


@pytest.mark.parametrize("iterations", [0, -1, 1.5, True])
def test_warmup_iterations_are_once_by_default_and_a_positive_count(tmp_path, iterations):
    # saved_model_warmup_util.cc RunSavedModelWarmup: each record once unless
    # ModelWarmupOptions.num_request_iterations is set (server.cc: only when positive).
    assert ModelManager("kdd", tmp_path).warmup_iterations == 1
    with pytest.raises(ValueError, match=r"Received: warmup_iterations="):
        ModelManager("kdd", tmp_path, warmup_iterations=iterations)


def test_latest_failure_names_the_newest_aspired_version_only_when_it_failed(tmp_path, loads):
    # server_core.cc WaitUntilModelsAvailable waits for ServableRequest::Latest: the newest
    # aspired version, whatever older ones do.
    _versions(tmp_path, 1, 2, broken=[3])
    manager = _manager(tmp_path, "all { }")
    manager.start()
    assert manager.available_versions == [1, 2]
    version, state = manager.latest_failure()
    assert version == 3 and state.state == State.END
    assert (state.error_code, state.error_message) == (
        grpc.StatusCode.DATA_LOSS, f"{tmp_path / '3'} is broken")
    (tmp_path / "3").rename(tmp_path / "held")  # no longer aspired
    manager.poll()
    assert manager.latest_failure() is None
    assert _manager(tmp_path / "empty").latest_failure() is None  # no versions yet


def test_a_newest_version_not_tried_yet_is_no_failure(tmp_path, loads):
    # WaitUntilModelsAvailable fails only on a version in error; one the manager has not
    # tried (on disk before the first or since the last poll) is still to come.
    _versions(tmp_path, 1)
    manager = _manager(tmp_path)
    assert manager.latest_failure() is None  # before start
    manager.start()
    _versions(tmp_path, broken=[2])
    assert manager.latest_failure() is None  # 2 not polled yet
    manager.poll()
    assert manager.latest_failure()[0] == 2


@pytest.mark.parametrize(("policy", "served"), [("", [3]), ("all { }", [-1, 0, 3])])
def test_signed_padded_and_spaced_names_are_versions_and_a_negative_one_serves(
        tmp_path, loads, policy, served):
    # file_system_storage_path_source.cc ParseVersionNumber (absl::SimpleAtoi): "+3" is 3,
    # "-1" is -1 and " 0" is 0; nothing skips negative versions (the manager serves any
    # int64), so `all` serves -1 and `latest` takes the largest.
    for name in ("+3", "-1", " 0", "v2"):
        (tmp_path / name).mkdir()
    manager = _manager(tmp_path, policy)
    manager.start()
    assert manager.available_versions == served
    assert manager.servable(3).path == tmp_path / "+3"
    if -1 in served:
        assert manager.servable(-1).path == tmp_path / "-1"


@pytest.mark.parametrize(("policy", "loaded_from"), [("", "3"), ("all { }", "03")])
def test_two_names_of_one_version_warn_and_one_is_loaded(
        tmp_path, loads, caplog, policy, loaded_from):
    # IndexChildrenByVersion keeps the later name in byte order and warns at each listing;
    # `all` aspires every child (AspireAllVersions) and the manager takes the first of
    # them (aspired_versions_manager.cc: the second "is already being managed").
    for name in ("03", "3"):
        (tmp_path / name).mkdir()
    with caplog.at_level("WARNING", logger="memae_tf.serving.model_manager"):
        manager = _manager(tmp_path, policy)
        manager.start()
    assert manager.servable(3).path == tmp_path / loaded_from
    assert caplog.messages == ["Duplicate version directories detected. Version 3 will be "
                               "loaded from 3, 03 will be ignored."]


def test_specific_versions_that_all_exist_by_name_are_taken_without_a_listing(
        tmp_path, loads, caplog):
    # AspireSpecificVersionsFastPath: FileExists(base/StrCat(version)) for each, no
    # GetChildren, hence no duplicate warning; when one is missing by its own name, the
    # listing finds it under another ("07").
    for name in ("03", "3", "07"):
        (tmp_path / name).mkdir()
    with caplog.at_level("WARNING", logger="memae_tf.serving.model_manager"):
        manager = _manager(tmp_path, "specific { versions: [3] }")
        manager.start()
        assert caplog.messages == []
        assert manager.servable(3).path == tmp_path / "3"
        manager.configure(tmp_path, _policy("specific { versions: [3, 7] }"))
        manager.poll()
    assert manager.servable(7).path == tmp_path / "07"
    assert caplog.messages == ["Duplicate version directories detected. Version 3 will be "
                               "loaded from 3, 03 will be ignored."]


def test_latest_request_gets_the_highest_available_version(tmp_path, loads):
    _versions(tmp_path, 1, 3, 2)
    manager = _manager(tmp_path, "all { }")
    manager.start()
    assert manager.servable(None).version == 3
    assert manager.servable(2).version == 2


@pytest.mark.parametrize(("version", "request_text"), [
    (None, "Latest(kdd)"), (4, "Specific(kdd, 4)")])
def test_a_servable_not_served_is_not_found_with_tf_servings_request_text(
        tmp_path, loads, version, request_text):
    # basic_manager.cc: "Servable not found for request: " + ServableRequest::DebugString()
    # (manager.h: "Latest(name)" or "Specific(name, version)").
    manager = _manager(tmp_path)
    manager.start()
    with pytest.raises(ServingError) as info:
        manager.servable(version)
    assert info.value.code == grpc.StatusCode.NOT_FOUND
    # The request's text and nothing after it (no list of what is served).
    assert info.value.message == f"Servable not found for request: {request_text}"


def test_unload_all_ends_every_version_and_tells_the_listeners(tmp_path, loads):
    _versions(tmp_path, 1, 2)
    manager = _manager(tmp_path, "all { }")
    manager.start()
    seen = []
    manager.add_listener(seen.append)
    manager.unload_all()
    assert seen == [True, False]
    assert _states(manager) == {1: "END", 2: "END"}
    with pytest.raises(ServingError):
        manager.servable(None)


def test_a_manager_without_polling_starts_no_thread(tmp_path, loads):
    manager = _manager(tmp_path)
    manager.start()
    assert manager._thread is None
    manager.stop()


@pytest.mark.parametrize("name", ["", "a/b", 3, None])
def test_a_model_name_that_is_empty_has_a_slash_or_is_no_string_is_refused(tmp_path, name):
    with pytest.raises(ValueError, match="expected a non-empty name without '/'"):
        ModelManager(name, tmp_path, poll_interval=0)


@pytest.mark.parametrize("seconds", [-1, -0.5, True, "1", None, float("nan")])
def test_a_poll_interval_that_is_not_a_non_negative_number_is_refused(tmp_path, seconds):
    with pytest.raises(ValueError, match="expected a non-negative number of seconds"):
        ModelManager("kdd", tmp_path, poll_interval=seconds)


@pytest.mark.parametrize("seconds", [0, 0.0, 2, 0.25])
def test_a_poll_interval_of_zero_or_more_seconds_is_taken(tmp_path, seconds):
    assert ModelManager("kdd", tmp_path, poll_interval=seconds).poll_interval == seconds


@pytest.mark.parametrize("seconds", [0, 3, 0.5])
def test_checked_poll_seconds_come_back_as_a_float(seconds):
    checked = check_poll_seconds("file_system_poll_wait_seconds", seconds)
    assert type(checked) is float and checked == seconds


def test_version_states_are_frozen(tmp_path):
    state = VersionState(State.AVAILABLE)
    with pytest.raises(AttributeError):
        state.state = State.END


def test_a_missing_base_path_is_logged_and_serves_nothing(tmp_path, loads, caplog):
    # file_system_storage_path_source.cc PollFileSystemForServable: FileExists(base_path)
    # fails the listing ("Could not find base path ..."), which the polling thread logs.
    manager = _manager(tmp_path / "absent")
    with caplog.at_level("WARNING", logger="memae_tf.serving.model_manager"):
        manager.start()
    assert caplog.messages == [
        "FileSystemStoragePathSource encountered a filesystem access error: Could not find "
        f"base path {tmp_path / 'absent'} for servable kdd with error NOT_FOUND: "
        f"{tmp_path / 'absent'}; No such file or directory"]
    assert manager.available_versions == [] and loads == []


def test_a_base_path_that_goes_missing_changes_nothing_and_one_emptied_unloads(
        tmp_path, loads, caplog):
    # The failed listing returns before CallAspiredVersionsCallback, so the manager keeps
    # its versions (a volume remounting does not unload the model); an existing base path
    # without versions aspires none, and every version unloads, with the warning
    # "No versions of servable ... found under base path ...".
    base = tmp_path / "kdd"
    _versions(base, 1, 2)
    manager = _manager(base, "all { }")
    manager.start()
    base.rename(tmp_path / "away")
    with caplog.at_level("WARNING", logger="memae_tf.serving.model_manager"):
        manager.poll()
    assert manager.available_versions == [1, 2]
    assert _states(manager) == {1: "AVAILABLE", 2: "AVAILABLE"}
    assert [r.levelname for r in caplog.records] == ["ERROR"]
    assert "Could not find base path" in caplog.messages[0]
    caplog.clear()
    base.mkdir()  # back, but empty
    with caplog.at_level("WARNING", logger="memae_tf.serving.model_manager"):
        manager.poll()
    assert manager.available_versions == []
    assert caplog.messages == [
        f"No versions of servable kdd found under base path {base}. Did you forget to name "
        "your leaf directory as a number (eg. '/1/')?"]


@pytest.mark.parametrize(("policy", "messages"), [
    ("specific { versions: 2 versions: 5 }", [
        "Version 5 of servable kdd, which was requested to be served as a 'specific' "
        "version in the servable's version policy, was not found in the file system"]),
    ("specific { versions: 7 }", [
        "Version 7 of servable kdd, which was requested to be served as a 'specific' "
        "version in the servable's version policy, was not found in the file system",
        "No versions of servable kdd found under base path {base}. Did you forget to name "
        "your leaf directory as a number (eg. '/1/')?"]),
    ("specific { }", ["No specific versions requested for servable kdd."]),
    ("latest { num_versions: 3 }", []),
])
def test_requested_versions_not_on_disk_are_warned_as_tf_serving_does(
        tmp_path, loads, caplog, policy, messages):
    # file_system_storage_path_source.cc AspireSpecificVersions(FastPath).
    _versions(tmp_path, 1, 2)
    with caplog.at_level("WARNING", logger="memae_tf.serving.model_manager"):
        _manager(tmp_path, policy).start()
    assert caplog.messages == [m.format(base=tmp_path) for m in messages]


def test_an_existing_base_path_starts_without_a_warning(tmp_path, loads, caplog):
    _versions(tmp_path, 1)
    with caplog.at_level("WARNING", logger="memae_tf.serving.model_manager"):
        _manager(tmp_path).start()
    assert caplog.records == []


def test_polling_runs_on_a_daemon_thread_that_outlives_a_failed_listing(
        tmp_path, loads, caplog, monkeypatch):
    # A daemon thread does not hold up the process's exit; an unreadable base path
    # (here: the first listing raising) is logged and the next listing still runs.
    manager = ModelManager("kdd", tmp_path, poll_interval=0.001)
    listings = []
    second_listing = threading.Event()
    poll = manager.poll

    def flaky_poll():
        listings.append(len(listings))
        if len(listings) == 2:
            raise OSError("unreadable")
        if len(listings) == 3:
            second_listing.set()
        poll()

    monkeypatch.setattr(manager, "poll", flaky_poll)
    with caplog.at_level("ERROR", logger="memae_tf.serving.model_manager"):
        manager.start()
        (thread,) = [t for t in threading.enumerate() if t.name == "poll-kdd"]
        assert second_listing.wait(timeout=60)
        manager.stop()
    assert thread.daemon and not thread.is_alive()
    # Only this manager's records: under xdist other tests' servers share the process.
    assert [r.getMessage() for r in caplog.records if str(tmp_path) in r.getMessage()] == [
        f"Polling {tmp_path} failed."]


def test_states_of_a_version_never_seen_or_of_a_model_without_versions_are_not_found(
        tmp_path, loads):
    # get_model_status_impl.cc: "Could not find version N of model NAME" and
    # "Could not find any versions of model NAME".
    manager = _manager(tmp_path)
    manager.start()
    with pytest.raises(ServingError) as info:
        manager.version_states()
    assert (info.value.code, info.value.message) == (
        grpc.StatusCode.NOT_FOUND, "Could not find any versions of model kdd")
    _versions(tmp_path, 1)
    manager.poll()
    with pytest.raises(ServingError) as info:
        manager.version_states(9)
    assert (info.value.code, info.value.message) == (
        grpc.StatusCode.NOT_FOUND, "Could not find version 9 of model kdd")
    assert manager.version_states(1) == {1: VersionState(State.AVAILABLE)}


@pytest.mark.parametrize("first", [True, False], ids=["at-start", "at-reload"])
def test_a_config_whose_new_model_has_a_failed_latest_version_fails_with_tf_servings_message(
        tmp_path, loads, first):
    # UNKNOWN "N servable(s) did not become available: {" at the first config
    # (core/load_servables_fast.cc ConnectSourcesWithFastInitialLoad, the server's start),
    # "N model(s) did not become available: {" at a later one (server_core.cc
    # WaitUntilModelsAvailable); then "{<ServableId DebugString> due to error: <status>}, "
    # per model, then "}"; ServableId::DebugString is "{name: M version: V}", an absl
    # status prints "CODE: msg".
    from memae_tf.serving.model_registry import ModelRegistry, ModelServerConfig

    _versions(tmp_path / "good", 1)
    _versions(tmp_path / "bad", 1, broken=[2])
    _versions(tmp_path / "worse", broken=[4])

    def config(*names: str) -> ModelServerConfig:
        text = "".join(f'config {{ name: "{name}" base_path: "{tmp_path / name}" '
                       'model_platform: "tensorflow" }' for name in names)
        return text_format.Parse(f"model_config_list {{ {text} }}", ModelServerConfig())

    registry = ModelRegistry(0.05, max_num_load_retries=0)
    try:
        if not first:
            registry.reload_config(config("good"))
        with pytest.raises(ServingError) as info:
            registry.reload_config(config("worse", "good", "bad"))
        assert info.value.code == grpc.StatusCode.UNKNOWN
        assert info.value.message == (
            f"2 {'servable(s)' if first else 'model(s)'} did not become available: {{"
            f"{{{{name: bad version: 2}} due to error: DATA_LOSS: {tmp_path / 'bad' / '2'} "
            "is broken}, "
            f"{{{{name: worse version: 4}} due to error: DATA_LOSS: {tmp_path / 'worse' / '4'} "
            "is broken}, }")
        # The models stay, as in TF Serving's manager: the good one serves.
        assert registry["good"].available_versions == [1]
        assert registry["bad"].available_versions == []  # 1 is not aspired under latest
    finally:
        registry.stop()
