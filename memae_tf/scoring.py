"""Deprecated alias of `memae_tf.scoring_graph` (the traced scoring graph); removed in 0.2."""

from memae_tf._deprecation import warn_moved
from memae_tf.scoring_graph import (  # noqa: F401
    ERRORS,
    ScoringGraph,
    check_error,
    flag_non_finite,
    reconstruction_outputs,
)

warn_moved(__name__, "memae_tf.scoring_graph")
