"""The exceptions the SDK raises. Every one derives from `ModelyardError`::

    ModelyardError              base: anything the SDK raises on purpose
    +-- TransportError          no answer: connection refused, DNS failure, timeout, broken connection, ...
    +-- BadRequestError         400  a well-formed request that refers to something unusable
    +-- AuthenticationError     401  no token, an unknown token, or an expired token
    +-- PermissionDeniedError   403  the caller's role does not allow this
    +-- NotFoundError           404  no such resource, or one the caller may not see
    +-- ConflictError           409  duplicate name, resource in use, concurrent modification
    +-- PreconditionFailedError 412  `If-Match` named an ETag that is no longer current
    +-- PayloadTooLargeError    413  the body is larger than the server accepts
    +-- ValidationError         422  the body or query failed validation; `detail` lists {loc, msg, type}
    +-- ServerError             5xx  the server failed; report `request_id` to its operator
    +-- ChecksumMismatchError        bytes transferred do not match the sha256 the server listed or answered
    +-- UnsafePathError              a remote file path that would land outside the local download directory
    +-- WaitTimeoutError             a wait for a model version ended before the version was READY or FAILED;
                                     also a builtin `TimeoutError`

An answer with any other non-2xx status (405, 415, ...) raises `ModelyardError` itself. `ChecksumMismatchError` and
`UnsafePathError` are the SDK's own checks of file transfers, and `WaitTimeoutError` its own limit on a wait, all
three with `status_code` None. Errors that come from an answer carry the server's error body (`error_code`,
`error_msg`, `solution_msg`, `detail`), the HTTP `status_code` and the `request_id` from the `X-Request-ID` header;
`TransportError` has `status_code` None and `error_code` "TRANSPORT_ERROR", and chains the httpx exception as its
`__cause__`.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AuthenticationError",
    "BadRequestError",
    "ChecksumMismatchError",
    "ConflictError",
    "ModelyardError",
    "NotFoundError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "PreconditionFailedError",
    "ServerError",
    "TransportError",
    "UnsafePathError",
    "ValidationError",
    "WaitTimeoutError",
]


class ModelyardError(Exception):
    """Base of every SDK error; see the module docstring for the hierarchy."""

    def __init__(
        self,
        error_msg: str,
        *,
        status_code: int | None = None,
        error_code: str = "ERROR",
        solution_msg: str = "",
        detail: Any = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(error_msg)
        self.error_msg = error_msg
        self.status_code = status_code
        self.error_code = error_code
        self.solution_msg = solution_msg
        self.detail = detail
        self.request_id = request_id

    def __str__(self) -> str:
        text = f"{self.error_code}: {self.error_msg}"
        if self.status_code is not None:
            text += f" (HTTP {self.status_code}"
            text += f", request id {self.request_id})" if self.request_id else ")"
        return text

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status_code={self.status_code!r}, error_code={self.error_code!r}, "
            f"error_msg={self.error_msg!r})"
        )


class TransportError(ModelyardError):
    """The request got no answer (connection refused, timeout, ...); the httpx exception is `__cause__`."""


class BadRequestError(ModelyardError):
    """400."""


class AuthenticationError(ModelyardError):
    """401."""


class PermissionDeniedError(ModelyardError):
    """403."""


class NotFoundError(ModelyardError):
    """404."""


class ConflictError(ModelyardError):
    """409."""


class PreconditionFailedError(ModelyardError):
    """412."""


class PayloadTooLargeError(ModelyardError):
    """413."""


class ValidationError(ModelyardError):
    """422."""


class ServerError(ModelyardError):
    """5xx."""


class ChecksumMismatchError(ModelyardError):
    """A transferred file's bytes do not match its sha256 (error_code CHECKSUM_MISMATCH): the file changed during
    the transfer, or the bytes were damaged. Nothing is left at the destination of a failed download."""


class UnsafePathError(ModelyardError):
    """A remote file path that is absolute, contains '..', or would land outside the local directory
    (error_code UNSAFE_PATH); nothing was downloaded."""


class WaitTimeoutError(ModelyardError, TimeoutError):
    """`versions.wait()` gave up after its `timeout` (error_code WAIT_TIMEOUT); `version` is the last answer, still
    CREATING. Nothing changed on the server: the version may still become READY or FAILED later."""

    def __init__(self, error_msg: str, *, version: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(error_msg, **kwargs)
        self.version = version


BY_STATUS: dict[int, type[ModelyardError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    412: PreconditionFailedError,
    413: PayloadTooLargeError,
    422: ValidationError,
}


def error_class(status_code: int) -> type[ModelyardError]:
    if status_code >= 500:
        return ServerError
    return BY_STATUS.get(status_code, ModelyardError)
