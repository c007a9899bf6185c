"""Old module paths kept for one release: each warns once on import and re-exports."""

from __future__ import annotations

import warnings


def warn_moved(old: str, new: str) -> None:
    """Emits the `DeprecationWarning` of a module that moved from `old` to `new`.

    Example:

    >>> warn_moved("memae_tf.scoring", "memae_tf.scoring_graph")  # doctest: +SKIP
    """
    warnings.warn(
        f"`{old}` was renamed to `{new}`; the old name is removed in memae-tf 0.2. "
        f"Import from `{new}`.",
        DeprecationWarning,
        stacklevel=3,
    )
