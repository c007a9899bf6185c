"""TensorFlow's thread pools from TF Serving's parallelism flags.

TF Serving passes `--tensorflow_intra_op_parallelism`,
`--tensorflow_inter_op_parallelism` and `--tensorflow_session_parallelism` to
the session config of every model (tensorflow_serving/model_servers/server.cc,
`Server::BuildAndStart`); 0 leaves a pool auto-configured (one thread per
schedulable CPU). This server runs every model in one TensorFlow runtime, so the
pools are set once for the process.
"""

from __future__ import annotations

import logging

import tensorflow as tf

from memae_tf.serving.errors import invalid_argument
from memae_tf.serving.flags import ModelServerOptions

logger = logging.getLogger(__name__)


def thread_pools(options: ModelServerOptions) -> tuple[int, int]:
    """The (intra-op, inter-op) thread counts TF Serving derives from the flags.

    As server.cc does: setting all three flags is refused; either of the intra-
    and inter-op flags, when positive, sets both pools from those two flags (the
    session flag is then ignored); otherwise `--tensorflow_session_parallelism`
    sets both. 0 means auto-configured.

    Args:
        options: The server's flags.

    Returns:
        `(intra_op_threads, inter_op_threads)`.

    Raises:
        ServingError: INVALID_ARGUMENT, with TF Serving's message, when all
            three flags are positive.

    Example:

    >>> thread_pools(ModelServerOptions(tensorflow_intra_op_parallelism=2))
    (2, 0)
    >>> thread_pools(ModelServerOptions(tensorflow_session_parallelism=4))
    (4, 4)
    """
    intra = options.tensorflow_intra_op_parallelism
    inter = options.tensorflow_inter_op_parallelism
    session = options.tensorflow_session_parallelism
    if intra > 0 and inter > 0 and session > 0:
        raise invalid_argument(
            "Either configure server_options.tensorflow_session_parallelism or "
            "(server_options.tensorflow_intra_op_parallelism, "
            "server_options.tensorflow_inter_op_parallelism) separately. You cannot "
            "configure all."
        )
    if intra > 0 or inter > 0:
        return intra, inter
    return session, session


def apply_thread_pools(intra: int, inter: int) -> None:
    """Sizes TensorFlow's op thread pools for this process (0 or less: auto-configured).

    TensorFlow fixes its pools when its runtime starts; a server started in a
    process that has run TensorFlow already (a notebook, a test) keeps the
    pools it has, and a warning says so. `memae model-server` starts a fresh
    process, where the flags always take effect.

    Args:
        intra: Threads per op (`--tensorflow_intra_op_parallelism`).
        inter: Ops run at once (`--tensorflow_inter_op_parallelism`).
    """
    settings = (
        ("intra", max(intra, 0), tf.config.threading.get_intra_op_parallelism_threads,
         tf.config.threading.set_intra_op_parallelism_threads),
        ("inter", max(inter, 0), tf.config.threading.get_inter_op_parallelism_threads,
         tf.config.threading.set_inter_op_parallelism_threads),
    )
    for name, wanted, get, set_ in settings:
        if wanted == 0 or get() == wanted:
            continue
        try:
            set_(wanted)
        except RuntimeError:
            logger.warning(
                "--tensorflow_%s_op_parallelism=%d cannot take effect: TensorFlow's runtime "
                "already started in this process with %s-op threads %s (0: auto-configured). "
                "Start the server in a fresh process (memae model-server) to size it.",
                name, wanted, name, get())
