"""ModelManager's version life cycle, checked against TF Serving's policies without SavedModels.

Loading is replaced by a stand-in servable (a version directory holding a file
named `broken` fails to load), so that each test reads as the order of loads and
unloads that TF Serving's sources prescribe:
tensorflow_serving/core/availability_preserving_policy.cc (what unloads when),
tensorflow_serving/core/aspired_version_policy.cc (which new version loads first),
tensorflow_serving/core/basic_manager.cc and manager.h (the NOT_FOUND messages).
tests/test_serving.py and tests/reliability/test_version_faults.py serve real versions.
"""

from typing import ClassVar

import grpc
import pytest
from google.protobuf import text_format

from memae_tf.serving import model_manager
from memae_tf.serving.errors import ServingError
from memae_tf.serving.model_manager import ModelManager, State, VersionPolicy


class _StandInServable:
    """Records each load in `loads`; a directory holding `broken` fails to load."""

    loads: ClassVar[list[int]] = []

    def __init__(self, version, path, metrics=None):
        if (path / "broken").exists():
            raise ServingError(grpc.StatusCode.DATA_LOSS, f"{path} is broken")
        self.version = version
        self.path = path
        _StandInServable.loads.append(version)

    def warm_up(self) -> int:
        return 0


@pytest.fixture
def loads(monkeypatch) -> list[int]:
    monkeypatch.setattr(_StandInServable, "loads", [])
    monkeypatch.setattr(model_manager, "Servable", _StandInServable)
    return _StandInServable.loads


def _versions(base, *versions, broken=()):
    for version in versions:
        (base / str(version)).mkdir(parents=True, exist_ok=True)
    for version in broken:
        (base / str(version)).mkdir(parents=True, exist_ok=True)
        (base / str(version) / "broken").write_text("x")


def _policy(text: str) -> VersionPolicy:
    return text_format.Parse(text, VersionPolicy())


def _manager(base, policy: str = "") -> ModelManager:
    return ModelManager("kdd", base, poll_interval=0, version_policy=_policy(policy))


def _states(manager) -> dict[int, str]:
    return {v: State.Name(s.state) for v, s in manager.version_states().items()}


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
    (tmp_path / "4" / "broken").unlink()  # the copy completes: 4 serves, 3 unloads
    manager.poll()
    assert manager.available_versions == [4]
    assert _states(manager) == {1: "END", 2: "END", 3: "END", 4: "AVAILABLE"}
