"""Uniqueness decided by the database: one `INSERT ... ON CONFLICT DO NOTHING RETURNING`, and a row that did not go
in becomes the domain's 409 (STYLE habit 3: never check-then-insert). A row that a unique constraint refuses aborts
nothing, on PostgreSQL either, so no savepoint is needed; another constraint's refusal (a foreign key to a row
deleted meanwhile) ends the transaction on PostgreSQL, as the 409 ends the request anyway."""

from __future__ import annotations

from functools import cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from modelyard.db import writes
from modelyard.db.base import Base
from modelyard.errors import ModelyardError


@cache
def _statement(table: sa.Table, dialect: str) -> Any:
    insert = postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
    return insert.on_conflict_do_nothing().returning(*table.c)


def insert_unique(session: Session, obj: Base, conflict: ModelyardError) -> None:
    """Insert `obj`'s row now and make `obj` persistent in `session`; raise `conflict` if a unique constraint refuses
    it (or any other constraint: the database's word, whichever it is).

    The row goes in as one Core statement rather than through the ORM's unit of work: flushing one new object costs
    a create several times what the statement does (0.5-1 ms of CPU on the 2-core bench machine, with the savepoint
    this used to need). Columns left unset get their declared defaults, the row comes back through RETURNING, and
    the object is then attached as if it had been loaded, so later changes to it flush as UPDATEs as usual."""
    session.flush()  # Rows this one may refer to go in first, as the unit of work would order them.
    mapper = sa.inspect(type(obj))
    given = sa.inspect(obj).dict
    values = {prop.columns[0].key: given[prop.key] for prop in mapper.column_attrs if prop.key in given}
    statement = _statement(mapper.local_table, session.get_bind().dialect.name)
    try:
        row = session.execute(statement, values).first()
    except IntegrityError as exc:
        raise conflict from exc
    if row is None:
        raise conflict
    stored = row._mapping
    for prop in mapper.column_attrs:
        set_committed_value(obj, prop.key, stored[prop.columns[0]])
    make_transient_to_detached(obj)
    session.add(obj)


def insert_row_unique(
    target: Session | writes.DriverTransaction, statement: writes.Insert, row: writes.Row, conflict: ModelyardError
) -> None:
    """Insert `row` with a prebuilt insert that skips conflicts (modelyard.db.writes); raise `conflict` if a unique
    constraint refused it (or any other constraint, as `insert_unique` does)."""
    assert statement.skip_conflicts
    try:
        inserted = writes.insert(target, statement, [row])
    except IntegrityError as exc:
        raise conflict from exc
    if inserted == 0:
        raise conflict
