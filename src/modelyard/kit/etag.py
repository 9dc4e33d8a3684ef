"""ETags of single resources and the `If-Match` check. The ETag derives from the row's id and its
`version` column, which SQLAlchemy also uses for optimistic locking, so an update racing another one between
the check and the write fails instead of overwriting it."""

from __future__ import annotations

import hashlib
from typing import Protocol

from modelyard.errors import PreconditionFailed


class Versioned(Protocol):
    id: str
    version: int


def etag_of(obj: Versioned) -> str:
    return etag_for(obj.id, obj.version)


def etag_for(resource_id: str, version: int) -> str:
    digest = hashlib.sha256(f"{resource_id}:{version}".encode()).hexdigest()[:20]
    return f'"{digest}"'


def header_matches(header: str, current: str | None) -> bool:
    """Whether an `If-Match` / `If-None-Match` value names `current` (an existing resource's ETag) or `*`."""
    if current is None:
        return False
    candidates = [tag.strip().removeprefix("W/") for tag in header.split(",")]
    return "*" in candidates or current in candidates


def check_if_match(if_match: str | None, obj: Versioned) -> None:
    """Raise 412 when `If-Match` is given and names none of the resource's current ETag (or `*`)."""
    if if_match is None:
        return
    current = etag_of(obj)
    if header_matches(if_match, current):
        return
    raise PreconditionFailed(
        f"If-Match {if_match.strip()} does not match the current ETag {current}: "
        "the resource changed since you read it",
        detail={"etag": current},
    )
