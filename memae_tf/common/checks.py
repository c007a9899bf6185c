"""Argument checks shared by every layer, with one message template each."""

from __future__ import annotations

import numbers


def check_positive_int(name: str, value: object, *, allow_none: bool = False) -> int | None:
    """Returns `value` if it is a positive integer, else raises a ValueError naming it.

    Python and numpy integers are accepted; bools are not (`True` is not a size).

    Args:
        name: The argument's name, quoted in the message.
        value: The value received.
        allow_none: Whether `None` is accepted too (and returned as is).

    Returns:
        `value`, as a Python `int` (or None).

    Raises:
        ValueError: If `value` is not a positive integer (nor None when allowed).

    Example:

    >>> check_positive_int("batch_size", 64)
    64
    >>> check_positive_int("version", None, allow_none=True) is None
    True
    """
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        expected = "None or a positive integer" if allow_none else "a positive integer"
        raise ValueError(
            f"Received an invalid value for `{name}`, expected {expected}. "
            f"Received: {name}={value!r}"
        )
    return int(value)


def check_bool(name: str, value: object) -> bool:
    """Returns `value` if it is True or False, else raises a ValueError naming it.

    Only bools are accepted: `1`, `"false"` and numpy bools are refused, so a
    setting is never true by accident.

    Example:

    >>> check_bool("check_range", False)
    False
    """
    if not isinstance(value, bool):
        raise ValueError(
            f"Received an invalid value for `{name}`, expected True or False. "
            f"Received: {name}={value!r}"
        )
    return value


def check_choice(name: str, value: object, choices: tuple[str, ...]) -> str:
    """Returns `value` if it is one of `choices`, else raises a ValueError naming both.

    Args:
        name: The argument's name, quoted in the message.
        value: The value received.
        choices: The accepted values.

    Returns:
        `value`.

    Raises:
        ValueError: If `value` is not one of `choices`.

    Example:

    >>> check_choice("error", "l1", ("mse", "l1", "ssim"))
    'l1'
    """
    if value not in choices:
        raise ValueError(
            f"Received an invalid value for `{name}`, expected one of {tuple(choices)}. "
            f"Received: {name}={value!r}"
        )
    return value
