"""Renamed options and arguments: the old spelling still works, with a warning.

`add_deprecated_alias` keeps a command-line option's former spelling as a
hidden alias; `renamed_argument` does the same for a keyword argument.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from typing import Any


class _DeprecatedOption(argparse.Action):
    """Stores like the option it stands for, after a note on stderr and a DeprecationWarning."""

    def __init__(self, option_strings: list[str], dest: str, replacement: str,
                 **kwargs: Any) -> None:
        self.replacement = replacement
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        message = (f"{option_string} is deprecated and will be removed; "
                   f"use {self.replacement}")
        print(f"{parser.prog}: warning: {message}", file=sys.stderr)
        warnings.warn(message, DeprecationWarning, stacklevel=2)
        setattr(namespace, self.dest, values)


def add_deprecated_alias(
    parser: argparse.ArgumentParser, action: argparse.Action, *old: str
) -> None:
    """Adds `old` spellings of an option, hidden from the help, that warn when used.

    A used alias stores its value where the option does (same `dest`, type
    and choices), prints `PROG: warning: OLD is deprecated ...; use NEW` on
    stderr (what a user of the command line sees) and issues a
    `DeprecationWarning` (what a test or a Python caller of `main` sees).

    Args:
        parser: The parser the option belongs to.
        action: What `parser.add_argument(...)` returned for the option.
        *old: The former option strings, e.g. `"--normal-class"`.

    Example:

    >>> parser = argparse.ArgumentParser(prog="memae")
    >>> new = parser.add_argument("--normal-classes", type=int)
    >>> add_deprecated_alias(parser, new, "--normal-class")
    >>> import contextlib, io
    >>> with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
    ...     warnings.simplefilter("ignore")
    ...     parser.parse_args(["--normal-class", "3"]).normal_classes
    3
    """
    if not old:
        raise ValueError("Expected at least one former option string. Received none.")
    parser.add_argument(
        *old, dest=action.dest, action=_DeprecatedOption, replacement=action.option_strings[0],
        type=action.type, choices=action.choices, nargs=action.nargs, metavar=action.metavar,
        default=argparse.SUPPRESS, help=argparse.SUPPRESS,
    )


def renamed_argument(
    old: str, new: str, old_value: Any, new_value: Any, default: Any = None
) -> Any:
    """The value of a keyword argument renamed from `old` to `new`.

    Args:
        old: The former name, e.g. `"max_message_mb"`.
        new: The current name.
        old_value: What was passed under the former name; None when nothing was.
        new_value: What the current name holds (its default when not passed).
        default: The current name's default, to tell whether it was passed.

    Returns:
        `old_value` when given (after a `DeprecationWarning`), else `new_value`.

    Raises:
        ValueError: If both names are given with different values.

    Example:

    >>> renamed_argument("max_message_mb", "max_message_mib", None, 8, default=64)
    8
    """
    if old_value is None:
        return new_value
    warnings.warn(f"`{old}` is deprecated and will be removed; use `{new}`.",
                  DeprecationWarning, stacklevel=3)
    if new_value != default and new_value != old_value:
        raise ValueError(
            f"`{old}` is the deprecated name of `{new}`: pass `{new}` only. "
            f"Received: {new}={new_value!r}, {old}={old_value!r}"
        )
    return old_value
