"""The declarative base and the column types every table shares."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase

_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id(prefix: str) -> str:
    """An opaque, immutable id: prefix, 48 bits of milliseconds and 80 random bits (ULID layout), so ids sort
    roughly by creation time and index inserts stay local."""
    value = (int(time.time() * 1000) << 80) | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return f"{prefix}-{''.join(reversed(chars))}"


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every database (SQLite stores them naive, in UTC)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    def result_processor(self, dialect: Dialect, coltype: Any) -> Callable[[Any], datetime | None] | None:
        """On SQLite, the stored text read with `datetime.fromisoformat` (SQLAlchemy's own parsing, with a regular
        expression, was a tenth of building a page of 100 models), falling back to SQLAlchemy's for any text it
        does not take; elsewhere as declared."""
        declared = super().result_processor(dialect, coltype)
        if dialect.name != "sqlite" or declared is None:
            return declared
        fallback = declared

        def process(value: Any) -> datetime | None:
            if value is None:
                return None
            try:
                return datetime.fromisoformat(value + "+00:00")  # stored naive, in UTC
            except (TypeError, ValueError):
                return fallback(value)

        return process


JSONType: Any = sa.JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


B = TypeVar("B", bound=Base)


def row_copy(cls: type[B], row: dict[str, Any]) -> B:
    """A transient `cls` holding `row`'s values, for code that reads an ORM object's attributes: built without the
    attribute events a constructor fires (3 µs against 40 µs for a workspace on the bench machine, on every
    workspace-scoped request). A read-only copy: never add it to a session, which would take it for a new row."""
    mapper = sa.inspect(cls)
    if not mapper.configured:  # attributes have no implementation before (the first query configures them)
        sa.orm.configure_mappers()
    obj = cast(B, mapper.class_manager.new_instance())
    obj.__dict__.update(row)
    return obj
