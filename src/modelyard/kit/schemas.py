"""The base of every request and response schema, and the field types the API shares."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator

NAME_PATTERN = r"^[\w\-.]+$"


def _not_dots(value: str) -> str:
    # '.' and '..' match the pattern but would be path segments that URLs normalise away.
    if value in (".", ".."):
        raise ValueError("Name may not be '.' or '..'")
    return value


Name = Annotated[
    str,
    StringConstraints(min_length=1, max_length=255, pattern=NAME_PATTERN),
    AfterValidator(_not_dots),
    Field(description="1 to 255 letters, digits, '_', '-' or '.' (not '.' or '..')", examples=["my-name"]),
]
Description = Annotated[str, Field(max_length=1000, description="Free text, at most 1000 characters")]


class Schema(BaseModel):
    """Requests refuse unknown fields; responses are built from ORM objects."""

    model_config = ConfigDict(extra="forbid", from_attributes=True, populate_by_name=True)


class UpdateSchema(Schema):
    """A PATCH body: fields left out stay as they are; an explicit null is refused, not ignored."""

    @model_validator(mode="before")
    @classmethod
    def _no_nulls(cls, data: Any) -> Any:
        if isinstance(data, dict):
            nulls = [key for key, value in data.items() if value is None and key in cls.model_fields]
            if nulls:
                raise ValueError(f"{', '.join(nulls)} may not be null; leave a field out to keep it")
        return data


class Timestamps(Schema):
    created_at: datetime
    updated_at: datetime


S = TypeVar("S", bound=BaseModel)


def read_model(schema: type[S], obj: object, **extra: Any) -> S:
    """Build an answer schema from an ORM object's attributes plus fields the object does not carry."""
    values = {name: getattr(obj, name) for name in schema.model_fields if name not in extra and hasattr(obj, name)}
    return schema.model_validate({**values, **extra})
