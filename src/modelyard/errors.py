"""Domain errors and the one error body every non-2xx answer uses (DESIGN.md section 4).

Services raise `ModelyardError` subclasses; they carry their HTTP status, so services stay free of HTTP
while every router (ours and the future compatibility routers) answers the same way.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class ErrorItem(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ErrorBody(BaseModel):
    """The body of every error answer."""

    error_code: str
    error_msg: str
    solution_msg: str = ""
    detail: Any = None


# The error answers every route documents (OpenAPI), all in the one shape above. They name ErrorBody's schema rather
# than the model: FastAPI would build a TypeAdapter per status and route from a model (656 of them, 0.1-0.25 s of
# every start), for the OpenAPI document only; `modelyard.app` adds ErrorBody to its components instead.
_ERROR_CONTENT = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"description": desc, "content": _ERROR_CONTENT}
    for code, desc in {
        400: "Bad request",
        401: "Missing or invalid token",
        403: "Not allowed",
        404: "Not found",
        409: "Conflict",
        412: "If-Match mismatch",
        413: "Too large",
        422: "Validation error",
    }.items()
}


class ModelyardError(Exception):
    status_code = 500
    error_code = "INTERNAL_ERROR"
    solution_msg = ""

    def __init__(
        self,
        error_msg: str,
        *,
        error_code: str | None = None,
        solution_msg: str | None = None,
        detail: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(error_msg)
        self.error_msg = error_msg
        if error_code is not None:
            self.error_code = error_code
        if solution_msg is not None:
            self.solution_msg = solution_msg
        self.detail = detail
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {
            "error_code": self.error_code,
            "error_msg": self.error_msg,
            "solution_msg": self.solution_msg,
            "detail": self.detail,
        }


class BadRequest(ModelyardError):
    status_code = 400
    error_code = "BAD_REQUEST"


class Unauthorized(ModelyardError):
    status_code = 401
    error_code = "UNAUTHORIZED"
    solution_msg = "Send a valid API token in 'Authorization: Bearer <token>', 'X-Auth-Token' or 'x-api-key'"

    def __init__(self, error_msg: str, **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(error_msg, **kwargs)


class Forbidden(ModelyardError):
    status_code = 403
    error_code = "FORBIDDEN"


class NotFound(ModelyardError):
    status_code = 404
    error_code = "NOT_FOUND"


class MethodNotAllowed(ModelyardError):
    status_code = 405
    error_code = "METHOD_NOT_ALLOWED"


class Conflict(ModelyardError):
    status_code = 409
    error_code = "CONFLICT"


class PreconditionFailed(ModelyardError):
    status_code = 412
    error_code = "PRECONDITION_FAILED"
    solution_msg = "GET the resource again and retry with its current ETag"


class PayloadTooLarge(ModelyardError):
    status_code = 413
    error_code = "PAYLOAD_TOO_LARGE"


class RangeNotSatisfiable(ModelyardError):
    status_code = 416
    error_code = "RANGE_NOT_SATISFIABLE"


class ValidationFailed(ModelyardError):
    """A body or query that fails validation; `detail` is a list of {loc, msg, type}."""

    status_code = 422
    error_code = "VALIDATION_ERROR"
    solution_msg = "Fix the fields listed in 'detail' and retry"


class ServiceUnavailable(ModelyardError):
    status_code = 503
    error_code = "SERVICE_UNAVAILABLE"


def validation_error(loc: list[str | int], msg: str, type_: str = "value_error") -> ValidationFailed:
    """A 422 about one field, in the same shape as FastAPI's own validation errors."""
    return ValidationFailed(
        f"Invalid request: {'.'.join(str(p) for p in loc)}: {msg}",
        detail=[{"loc": loc, "msg": msg, "type": type_}],
    )
