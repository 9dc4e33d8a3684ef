"""JSON request bodies whose numbers survive the round trip: NaN, Infinity, a number too large for a double, and an
integer outside 64 bits are refused (422 `json_invalid`), instead of being changed on the way in or out.

Python's `json.loads` (FastAPI's parser) accepts `NaN`, `Infinity` and `1e999`, which are not JSON (RFC 8259); they
came back as `null`. orjson, which writes every answer and reads the fast paths' bodies, reads an integer beyond 64
bits as a float, so `123456789012345678901234567890` came back as `1.2345678901234568e+29`. What the server accepts
is what it can store and give back exactly, on SQLite (whose JSON functions read 64-bit integers) and PostgreSQL
alike."""

from __future__ import annotations

import json
import math
import re
from typing import Any

INT_MIN = -(2**63)
INT_MAX = 2**64 - 1  # the largest integer orjson writes

# A run of digits long enough to be an integer that orjson would read as a float (-2^63 has 19 digits).
_LONG_DIGITS = re.compile(rb"\d{19,}")


class _Refused(ValueError):
    def __init__(self, literal: str, reason: str) -> None:
        super().__init__(reason)
        self.literal = literal
        self.reason = reason


def _constant(literal: str) -> Any:
    raise _Refused(literal, f"{literal} is not a JSON number: send a finite number, or null")


def _integer(literal: str) -> int:
    value = int(literal)
    if not INT_MIN <= value <= INT_MAX:
        reason = f"Integer out of range: JSON integers must lie between {INT_MIN} and {INT_MAX} (send it as a string)"
        raise _Refused(literal, reason)
    return value


def _float(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):
        raise _Refused(literal, "Number out of range: it is too large for a 64-bit float (send it as a string)")
    return value


def loads(body: bytes) -> Any:
    """`body` parsed as `json.loads` would (json.JSONDecodeError for what it refuses), and refused the same way, at
    the number's position, for a number that would not come back as it was sent."""
    try:
        return json.loads(body, parse_constant=_constant, parse_int=_integer, parse_float=_float)
    except _Refused as exc:
        text = body.decode("utf-8", "replace")
        raise json.JSONDecodeError(exc.reason, text, max(text.find(exc.literal), 0)) from None


def may_lose_precision(body: bytes) -> bool:
    """Whether `body` may hold an integer that orjson would read as a float: one that `loads` must decide on."""
    return _LONG_DIGITS.search(body) is not None
