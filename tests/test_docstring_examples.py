"""Every example in the package's docstrings runs and prints what it shows.

Users copy these examples (they are the API reference's "Example" sections), so
each module's doctests run here as `python -m doctest` would run them, in the
module's namespace; `# doctest: +SKIP` marks the few that need a server, a
cluster or downloaded data.
"""

import doctest
import importlib
import pkgutil
from pathlib import Path

import pytest

import memae_tf

PACKAGE = Path(memae_tf.__file__).parent


def _modules_with_examples() -> list[str]:
    names = []
    for info in pkgutil.walk_packages([str(PACKAGE)], "memae_tf."):
        relative = Path(*info.name.split(".")[1:])
        path = PACKAGE / relative / "__init__.py" if info.ispkg else PACKAGE / f"{relative}.py"
        if path.exists() and ">>>" in path.read_text(encoding="utf-8"):
            names.append(info.name)
    return sorted(names)


MODULES = _modules_with_examples()


def test_the_package_has_examples_to_run():
    # The search above finds the modules (a broken search would pass every case below),
    # and their examples run: MemoryLayer's prints the layer's output shape.
    assert {"memae_tf.layers.memory", "memae_tf.detector", "memae_tf.serving.server"} <= set(
        MODULES)
    results = doctest.testmod(importlib.import_module("memae_tf.layers.memory"))
    assert results.attempted >= 5 and results.failed == 0


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run_as_shown(name, capsys):
    # Modules whose examples are all skipped (a live server) attempt none.
    results = doctest.testmod(importlib.import_module(name), report=True)
    assert results.failed == 0, capsys.readouterr().out
