"""Typed errors of the MemAE client, carrying the gRPC status and the server's message."""

from __future__ import annotations

import grpc


class MemAEClientError(Exception):
    """A call to the model server failed.

    Attributes:
        code: The `grpc.StatusCode` the server (or the channel) answered with.
        details: The server's message.
    """

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(f"{code.name}: {details}")
        self.code = code
        self.details = details


class NotFoundError(MemAEClientError):
    """NOT_FOUND: unknown model name or version (or the version is not loaded yet)."""


class InvalidArgumentError(MemAEClientError):
    """INVALID_ARGUMENT: the inputs do not match the signature (name, dtype or shape)."""


class FailedPreconditionError(MemAEClientError):
    """FAILED_PRECONDITION: e.g. the signature name is not in the model."""


class UnavailableError(MemAEClientError):
    """UNAVAILABLE: the server cannot be reached (retried with backoff first)."""


class DeadlineExceededError(MemAEClientError):
    """DEADLINE_EXCEEDED: the call took longer than its timeout."""


_ERRORS_BY_CODE: dict[grpc.StatusCode, type[MemAEClientError]] = {
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgumentError,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPreconditionError,
    grpc.StatusCode.UNAVAILABLE: UnavailableError,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceededError,
}


def error_from_rpc(error: grpc.RpcError) -> MemAEClientError:
    """Returns the typed client error for a failed gRPC call (sync or asyncio)."""
    code = error.code() if callable(getattr(error, "code", None)) else grpc.StatusCode.UNKNOWN
    details = error.details() if callable(getattr(error, "details", None)) else str(error)
    return _ERRORS_BY_CODE.get(code, MemAEClientError)(code, details or "")
