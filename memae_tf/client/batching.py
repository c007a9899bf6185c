"""The server's batching limit, read from TF Serving's `batching_parameters.txt`."""

from __future__ import annotations

import os
import pathlib

from google.protobuf import text_format

from memae_tf.client.proto import tf_serving_pb2 as pb

# TF Serving's limit when the file leaves max_batch_size unset: the batch scheduler's
# QueueOptions::input_batch_size_limit (tensorflow/core/kernels/batching_util/
# shared_batch_scheduler.h), which bundle_factory_util.cc falls back to.
UNSET_MAX_BATCH_SIZE = 1000


def read_max_batch_size(path: str | os.PathLike) -> int | None:
    """Returns the most rows one request may carry to a server with this batching file.

    Parses the text-format `BatchingParameters` that TF Serving reads with
    `--batching_parameters_file` (TF Serving's field names and numbers) and
    returns its `max_batch_size`: TF Serving refuses a larger request, and
    with `enable_large_batch_splitting` it still bounds one request (the
    batches that run are then `max_execution_batch_size`). Pass the result
    as `MemAEClient(..., max_batch_size=...)`.

    Args:
        path: The `batching_parameters.txt` the server is started with.

    Returns:
        Its `max_batch_size`; 1000 (TF Serving's default) when unset; None (no
        row limit) when negative, which TF Serving takes as an unsigned
        `size_t`, 2**64 plus the value.

    Raises:
        FileNotFoundError: If there is no file at `path`.
        ValueError: If the file is not a valid `BatchingParameters` text
            proto, or its `max_batch_size` is 0 (TF Serving loads no model).

    Example:

    >>> read_max_batch_size("batching_parameters.txt")  # doctest: +SKIP
    64
    """
    path = pathlib.Path(path)
    parameters = pb.BatchingParameters()
    try:
        text_format.Parse(path.read_text(encoding="utf-8"), parameters)
    except text_format.ParseError as error:
        raise ValueError(
            f"Expected {path} to be TF Serving's BatchingParameters in text format, "
            f"e.g. 'max_batch_size {{ value: 64 }}'. Received a parse error: {error}"
        ) from error
    if not parameters.HasField("max_batch_size"):
        return UNSET_MAX_BATCH_SIZE
    size = parameters.max_batch_size.value
    if size == 0:
        # shared_batch_scheduler.h AddQueue: "input_batch_size_limit must be positive".
        raise ValueError(
            f"Expected a max_batch_size other than 0 in {path} (TF Serving loads no model "
            f"with it). Received: max_batch_size={size}"
        )
    # bundle_factory_util.h GetQueueOptions: the Int64Value goes into TensorFlow's size_t
    # input_batch_size_limit, so a negative one is 2**64 + size rows: no limit.
    return None if size < 0 else size
