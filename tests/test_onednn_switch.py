"""Importing memae_tf before TensorFlow turns TensorFlow's oneDNN kernels on;
imported after, the first detector says so when they are off.

The switch is in `memae_tf/__init__.py`. Each case runs in a fresh interpreter:
TensorFlow reads `TF_ENABLE_ONEDNN_OPTS` once, when it is imported, and this
test process imported it long ago.
"""

import os
import subprocess
import sys

import pytest


def _fresh_python(code: str, **env: str) -> list[str]:
    environment = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    environment.update(env, TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run([sys.executable, "-c", code], env=environment, capture_output=True,
                          text=True, check=True, timeout=300)
    return done.stdout.split()


@pytest.mark.slow
def test_importing_memae_tf_first_turns_tensorflows_onednn_kernels_on():
    printed = _fresh_python(
        "import os, memae_tf, tensorflow\n"
        "from tensorflow.python.util import _pywrap_util_port\n"
        "print(os.environ['TF_ENABLE_ONEDNN_OPTS'], _pywrap_util_port.IsMklEnabled())")
    assert printed == ["1", "True"]


def test_a_value_the_user_set_is_kept():
    printed = _fresh_python("import os, memae_tf; print(os.environ['TF_ENABLE_ONEDNN_OPTS'])",
                            TF_ENABLE_ONEDNN_OPTS="0")
    assert printed == ["0"]


def test_nothing_is_set_when_tensorflow_was_imported_first():
    # Too late to take effect, so the variable must not claim it did. A stand-in
    # module: the switch looks only at sys.modules.
    printed = _fresh_python(
        "import os, sys, types\n"
        "sys.modules['tensorflow'] = types.ModuleType('tensorflow')\n"
        "import memae_tf\n"
        "print(os.environ.get('TF_ENABLE_ONEDNN_OPTS', 'unset'))")
    assert printed == ["unset"]


@pytest.fixture
def hint_state(monkeypatch):
    """A process that has not warned yet, with `TF_ENABLE_ONEDNN_OPTS` unset."""
    from memae_tf import detector

    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS", raising=False)
    monkeypatch.setattr(detector, "_ONEDNN_HINT_GIVEN", [])
    return detector


def _new_detectors(detector, count: int) -> list:
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(count):
            detector.MemAE.from_preset("kdd", input_shape=(4,), units=(3, 2), num_items=5)
    return [w for w in caught if issubclass(w.category, detector.OneDNNOffWarning)]


def test_a_detector_warns_once_a_process_when_onednn_is_off_and_nobody_chose_it(
        hint_state, monkeypatch):
    monkeypatch.setattr(hint_state, "_onednn_enabled", lambda: False)
    warned = _new_detectors(hint_state, 3)
    assert len(warned) == 1
    message = str(warned[0].message)
    assert "import memae_tf before tensorflow" in message
    assert "TF_ENABLE_ONEDNN_OPTS=1" in message


@pytest.mark.parametrize("setting, enabled",
                         [("0", False), ("1", False), (None, True), (None, None)])
def test_no_warning_when_the_user_chose_or_onednn_is_on(hint_state, monkeypatch, setting, enabled):
    # A value the user set is their choice (0 keeps Eigen's kernels on purpose);
    # None: a TensorFlow build that cannot say.
    if setting is not None:
        monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", setting)
    monkeypatch.setattr(hint_state, "_onednn_enabled", lambda: enabled)
    assert _new_detectors(hint_state, 2) == []


_WARNED_WITH_TENSORFLOW_FIRST = (
    "import warnings, tensorflow\n"
    "from tensorflow.python.util import _pywrap_util_port\n"
    "from memae_tf.detector import MemAE, OneDNNOffWarning\n"
    "with warnings.catch_warnings(record=True) as caught:\n"
    "    warnings.simplefilter('always')\n"
    "    MemAE.from_preset('kdd', input_shape=(4,), units=(3, 2), num_items=5)\n"
    "warned = sum(issubclass(w.category, OneDNNOffWarning) for w in caught)\n"
    "print(_pywrap_util_port.IsMklEnabled(), warned)")


@pytest.mark.slow
def test_tensorflow_imported_first_warns_exactly_when_its_onednn_kernels_are_off():
    # The real case, end to end: whether the warning comes follows TensorFlow's
    # own report of its kernels on this CPU (off by default on AVX2-only CPUs,
    # on with AVX-512 VNNI or newer), not the switch's bookkeeping.
    assert _fresh_python(_WARNED_WITH_TENSORFLOW_FIRST) in (["True", "0"], ["False", "1"])


@pytest.mark.slow
def test_tensorflow_imported_first_with_its_kernels_off_warns_on_any_cpu():
    # TensorFlow imported with its oneDNN kernels off (the AVX2 default, forced
    # here with the variable, which is then unset as on an AVX2 machine).
    code = ("import os\nos.environ['TF_ENABLE_ONEDNN_OPTS'] = '0'\nimport tensorflow\n"
            "del os.environ['TF_ENABLE_ONEDNN_OPTS']\n" + _WARNED_WITH_TENSORFLOW_FIRST)
    assert _fresh_python(code) == ["False", "1"]
