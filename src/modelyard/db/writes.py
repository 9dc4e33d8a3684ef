"""Prebuilt inserts for the writes that clients repeat by the thousand (creating models, recording events): an
INSERT of every column compiled once per dialect and run on the driver's cursor of the request session's connection,
in its transaction, with SQLAlchemy's own bind processors for each column's type (UTC datetimes, JSON).

The row is built in Python from the given values and the columns' declared defaults, so the caller holds the whole
row without reading it back, and builds its answer from it. Measured on creating a model (bench/RESULTS.md): an ORM
object inserted through the session, or an ORM-enabled INSERT, costs several times the statement itself, in object
construction, attribute events and per-execution statement setup; on SQLite that time is spent holding the write
lock. Everything that is not a plain insert of a new row goes through the session."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session

from modelyard.db.reads import Prepared, Row, prepare

__all__ = ["Insert", "Row", "insert"]


class Insert:
    """An INSERT of one row of `table` with every column bound, except an integer primary key the database numbers
    itself. `skip_conflicts`: a row that a unique constraint refuses is skipped (`ON CONFLICT DO NOTHING`), which
    `insert` reports as 0 rows inserted: uniqueness decided by the database, never check-then-insert."""

    def __init__(self, table: sa.FromClause, *, skip_conflicts: bool = False) -> None:
        if not isinstance(table, sa.Table):
            raise TypeError(f"An Insert needs a table, not {table!r}")
        self.table = table
        self.skip_conflicts = skip_conflicts
        numbered = table.autoincrement_column
        self._columns = [c for c in table.c if c is not numbered]
        self._keys = frozenset(c.key for c in self._columns)
        # Each column's value when none is given: its declared default (called, if it is a function), or NULL.
        self._fills: list[tuple[str, Callable[[], Any]]] = []
        for column in self._columns:
            default = column.default
            if isinstance(default, sa.ColumnDefault) and default.is_callable:
                self._fills.append((column.key, _caller(default)))
            elif isinstance(default, sa.ColumnDefault) and default.is_scalar:
                self._fills.append((column.key, _constant(default.arg)))
            elif column.nullable:
                self._fills.append((column.key, _constant(None)))
        self._required = frozenset(c.key for c in self._columns) - {key for key, _ in self._fills}
        self._prepared: dict[str, Prepared] = {}

    def row(self, values: Row) -> Row:
        """`values` completed with every other column's default: the row as it will be stored."""
        unknown = values.keys() - self._keys
        if unknown:
            raise KeyError(f"{self.table.name} has no column {sorted(unknown)}")
        missing = self._required - values.keys()
        if missing:
            raise KeyError(f"No value for {self.table.name}.{sorted(missing)}")
        row = dict(values)
        for key, fill in self._fills:
            if key not in row:
                row[key] = fill()
        return row

    def prepared(self, dialect: Dialect) -> Prepared:
        found = self._prepared.get(dialect.name)
        if found is None:
            stmt: Any
            if self.skip_conflicts and dialect.name == "postgresql":
                stmt = postgresql.insert(self.table).inline().on_conflict_do_nothing()
            elif self.skip_conflicts and dialect.name == "sqlite":
                stmt = sqlite.insert(self.table).inline().on_conflict_do_nothing()
            elif self.skip_conflicts:
                raise NotImplementedError(f"ON CONFLICT DO NOTHING on {dialect.name}")
            else:
                stmt = sa.insert(self.table).inline()
            found = prepare(stmt, dialect, column_keys=[c.key for c in self._columns])
            # None is SQL NULL in every column, JSON ones included (whose processor would write the JSON 'null'), as
            # the ORM stores a column it was given no value for.
            binds = tuple(replace(b, process=_keeping_null(b.process)) if b.process else b for b in found.binds)
            found = replace(found, binds=binds)
            self._prepared[dialect.name] = found
        return found


def _caller(default: sa.ColumnDefault) -> Callable[[], Any]:
    # SQLAlchemy wraps a default function in one that takes the execution context, which these defaults ignore.
    call = default.arg
    return lambda: call(None)


def _keeping_null(process: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda value: None if value is None else process(value)


def _constant(value: Any) -> Callable[[], Any]:
    return lambda: value


def insert(session: Session, statement: Insert, rows: list[Row]) -> int:
    """Insert `rows` (built by `statement.row`) in the session's transaction, beginning it if it has not begun (on
    SQLite a write session's begin takes the write lock); the number of rows inserted. Objects the session holds
    that are not yet in the database go in first, as the unit of work would order them."""
    if not rows:
        return 0
    session.flush()
    connection = session.connection()
    dialect = connection.dialect
    prepared = statement.prepared(dialect)
    arguments = [prepared.arguments(row) for row in rows]
    cursor = connection.connection.cursor()
    try:
        if len(arguments) == 1:
            cursor.execute(prepared.sql, arguments[0])
        else:
            cursor.executemany(prepared.sql, arguments)
        count: int = cursor.rowcount
    except dialect.loaded_dbapi.Error as exc:
        # The same exception the session would raise (an IntegrityError for a constraint), with the statement; a
        # lost connection is thrown away, as SQLAlchemy does when one of its own executions finds it gone.
        dropped = dialect.is_disconnect(exc, connection.connection.dbapi_connection, cursor)
        if dropped:
            connection.invalidate(exc)
        raise sa.exc.DBAPIError.instance(
            prepared.sql, arguments, exc, dialect.loaded_dbapi.Error, connection_invalidated=dropped, dialect=dialect
        ) from exc
    finally:
        cursor.close()
    return count
