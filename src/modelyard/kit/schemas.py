"""The base of every request and response schema, and the field types the API shares."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, TypeVar

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


S = TypeVar("S", bound=BaseModel)


def read_model(schema: type[S], obj: object, **extra: Any) -> S:
    """Build an answer schema from an ORM object's attributes plus fields the object does not carry."""
    values = {name: getattr(obj, name) for name in schema.model_fields if name not in extra and hasattr(obj, name)}
    return schema.model_validate({**values, **extra})
