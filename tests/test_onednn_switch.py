"""Importing memae_tf before TensorFlow turns TensorFlow's oneDNN kernels on.

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
