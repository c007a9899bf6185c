"""The error a request can end in, carrying TF Serving's gRPC status code."""

from __future__ import annotations

import grpc


class ServingError(Exception):
    """A request failed with a gRPC status code and a message for the caller.

    Args:
        code: The `grpc.StatusCode` to answer with (REST maps it to HTTP).
        message: What went wrong, saying what was expected where it helps.
    """

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def not_found(message: str) -> ServingError:
    """Returns a NOT_FOUND `ServingError`."""
    return ServingError(grpc.StatusCode.NOT_FOUND, message)


def invalid_argument(message: str) -> ServingError:
    """Returns an INVALID_ARGUMENT `ServingError`."""
    return ServingError(grpc.StatusCode.INVALID_ARGUMENT, message)
