"""Griffe extension: the package's doctests render as Python console blocks.

The docstrings follow Keras' layout, where an `Example:` line is followed by a
blank line and unindented `>>>` lines. Markdown would read `>>>` as nested block
quotes and `[...]` outputs as links, so each run of doctest lines (prompts,
continuations and the expected output up to the next blank line) is fenced as
```` ```pycon ````. Only the rendering changes; the docstrings stay as they are.
"""

from __future__ import annotations

from typing import Any

import griffe


def fence_doctests(text: str) -> str:
    """`text` with every doctest run wrapped in a ```` ```pycon ```` fence."""
    out: list[str] = []
    indent: str | None = None  # the open fence's indentation, None outside a fence
    for line in text.splitlines():
        if indent is None and line.lstrip().startswith(">>>"):
            indent = line[: len(line) - len(line.lstrip())]
            out.append(indent + "```pycon")
        elif indent is not None and not line.strip():
            out.append(indent + "```")
            indent = None
        out.append(line)
    if indent is not None:
        out.append(indent + "```")
    return "\n".join(out)


class FenceDoctests(griffe.Extension):
    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None and ">>>" in obj.docstring.value:
            obj.docstring.value = fence_doctests(obj.docstring.value)
