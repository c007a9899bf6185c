"""Package attributes imported on first use (PEP 562 module `__getattr__`).

A package whose `__init__` imports all of its modules makes every import of one
of them pay for all the others (TensorFlow among them). With `lazy_exports`, a
package lists its public names and the module of each, and imports that module
only when the name is first read.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from importlib import import_module
from typing import Any


def lazy_exports(
    package: str, exports: Mapping[str, Sequence[str]]
) -> tuple[Callable[[str], Any], list[str]]:
    """Returns a package's `__getattr__` and `__all__` for names imported on first use.

    Args:
        package: The package's `__name__`.
        exports: Module (absolute, or relative to `package` when it starts with a
            dot) → the public names it defines.

    Returns:
        `(__getattr__, __all__)`, to assign in the package's `__init__`.

    Example:

    >>> __getattr__, __all__ = lazy_exports(__name__, {".mnist": ["load_mnist"]})  # doctest: +SKIP
    """
    modules = {
        name: package + module if module.startswith(".") else module
        for module, names in exports.items()
        for name in names
    }

    def __getattr__(name: str) -> Any:  # noqa: N807 (the module hook's name)
        if name not in modules:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(modules[name]), name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__, sorted(modules)
