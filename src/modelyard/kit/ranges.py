"""HTTP `Range: bytes=...` for downloads (RFC 9110 section 14): one range is honoured; several ranges, or a header
that does not parse, are ignored (the whole body is sent), as the RFC allows; a range past the end is a 416."""

from __future__ import annotations

import re

from modelyard.errors import RangeNotSatisfiable

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(first, last) byte positions, inclusive; None for the whole body."""
    if not header:
        return None
    match = _RANGE.match(header.strip().replace(" ", ""))
    if match is None:
        return None
    first_s, last_s = match.groups()
    if not first_s and not last_s:
        return None
    if not first_s:
        suffix = int(last_s)
        if suffix == 0 or size == 0:
            raise _unsatisfiable(size)
        return max(0, size - suffix), size - 1
    first = int(first_s)
    if last_s and int(last_s) < first:
        return None  # syntactically invalid: ignored
    if first >= size:
        raise _unsatisfiable(size)
    last = int(last_s) if last_s else size - 1
    return first, min(last, size - 1)


def _unsatisfiable(size: int) -> RangeNotSatisfiable:
    return RangeNotSatisfiable(
        f"The requested range is not satisfiable: the file has {size} bytes",
        solution_msg="Ask for a range that starts before the end of the file",
        headers={"Content-Range": f"bytes */{size}"},
    )
