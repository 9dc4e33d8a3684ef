"""Header parameters shared by endpoints."""

from __future__ import annotations

from typing import Annotated

from fastapi import Header

IfMatch = Annotated[
    str | None,
    Header(alias="If-Match", description="Only apply the change if the resource's ETag still matches", max_length=1024),
]
