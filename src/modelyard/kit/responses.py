"""Answers serialised once: the hot read paths build plain dicts and return them as JSON bytes, instead of letting
FastAPI validate the answer against its schema again and encode it through jsonable_encoder. The endpoint still
declares its schema (`response_model`) for the OpenAPI document, and tests check the two agree."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

# Datetimes as Pydantic writes them: UTC with a 'Z', microseconds only when there are any.
_OPTIONS = orjson.OPT_UTC_Z


def json_bytes(answer: Any) -> bytes:
    return orjson.dumps(answer, option=_OPTIONS)


class JSONBytes(Response):
    media_type = "application/json"

    def __init__(self, answer: Any, *, status_code: int = 200, headers: dict[str, str] | None = None) -> None:
        super().__init__(json_bytes(answer), status_code=status_code, headers=headers)
