"""The base of every request and response schema, and the field types the API shares."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

NAME_PATTERN = r"^[\w\-.]+$"

Name = Annotated[
    str,
    StringConstraints(min_length=1, max_length=255, pattern=NAME_PATTERN),
    Field(description="1 to 255 letters, digits, '_', '-' or '.'", examples=["my-name"]),
]
Description = Annotated[str, Field(max_length=1000, description="Free text, at most 1000 characters")]


class Schema(BaseModel):
    """Requests refuse unknown fields; responses are built from ORM objects."""

    model_config = ConfigDict(extra="forbid", from_attributes=True, populate_by_name=True)


class Timestamps(Schema):
    created_at: datetime
    updated_at: datetime
