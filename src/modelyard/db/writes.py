"""Prebuilt inserts for the writes that clients repeat by the thousand (creating models, recording events): an
INSERT of every column compiled once per dialect and run on the driver's cursor of the request session's connection,
in its transaction, with SQLAlchemy's own bind processors for each column's type (UTC datetimes, JSON).

The row is built in Python from the given values and the columns' declared defaults, so the caller holds the whole
row without reading it back, and builds its answer from it. Measured on creating a model (bench/RESULTS.md): an ORM
object inserted through the session, or an ORM-enabled INSERT, costs several times the statement itself, in object
construction, attribute events and per-execution statement setup; on SQLite that time is spent holding the write
lock. Everything that is not a plain insert of a new row goes through the session.

On PostgreSQL, a new row and the rows that go with it (its labels, its event) can go in as one statement
(`Guarded`), awaited on the event loop in autocommit: one round trip instead of a transaction's four or more."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session

from modelyard.db.reads import AsyncReader, Prepared, Row, prepare

__all__ = ["DriverTransaction", "Guarded", "Insert", "Returning", "Row", "insert", "prefixed", "returning"]


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
            found = _null_as_null(prepare(stmt, dialect, column_keys=[c.key for c in self._columns]))
            self._prepared[dialect.name] = found
        return found

    def bound(self, prefix: str) -> dict[str, sa.BindParameter[Any]]:
        """Each column's value as a parameter named `prefix` + its key (`prefixed` gives them), for a statement
        made of several inserts."""
        return {c.key: sa.bindparam(prefix + c.key, type_=c.type) for c in self._columns}

    def selected_from(self, source: sa.FromClause, prefix: str) -> sa.Insert:
        """INSERT ... SELECT of the row (parameters named as by `bound`) once for each row of `source`: none when
        `source` is empty. psycopg's dialect types each parameter (`%(x)s::VARCHAR`), so a value too long for its
        column fails as in a plain INSERT (an explicit CAST to VARCHAR(n) would cut it short instead)."""
        values = self.bound(prefix).values()
        return sa.insert(self.table).from_select([c.key for c in self._columns], sa.select(*values).select_from(source))


def prefixed(row: Row, prefix: str) -> Row:
    """`row`'s values as the parameters of `Insert.bound(prefix)`."""
    return {prefix + key: value for key, value in row.items()}


class Guarded:
    """On PostgreSQL, a new row and the rows that go with it in one statement (data-modifying CTEs): `first` inserts
    it, skipping a conflict on a unique constraint, and returns its `key` column; `then(head)` gives the inserts of
    the other rows, each an INSERT ... SELECT from `head` (`Insert.selected_from`), so that none of them goes in when
    the first row was refused. In autocommit the statement is its own transaction.

    The first row's parameters are named `head_` + its column keys (`prefixed(row, Guarded.HEAD)`).
    Measured on creating a model on PostgreSQL (bench/RESULTS.md): a transaction of two inserts in a worker thread
    cost four round trips and the thread hand-off, and about 1.5x the CPU of this one statement on the event loop."""

    HEAD = "head_"

    def __init__(self, first: Insert, key: str, then: Callable[[sa.CTE], Sequence[sa.Insert]]) -> None:
        self.first = first
        self.key = key
        self.then = then
        self._prepared: dict[str, Prepared] = {}

    def prepared(self, dialect: Dialect) -> Prepared:
        found = self._prepared.get(dialect.name)
        if found is None:
            if dialect.name != "postgresql":
                raise NotImplementedError(f"Inserts in one statement on {dialect.name}")
            table = self.first.table
            head = (
                postgresql.insert(table)
                .values(self.first.bound(self.HEAD))
                .on_conflict_do_nothing()
                .returning(table.c[self.key])
                .cte("head")
            )
            others = [insert.cte(f"then_{i}") for i, insert in enumerate(self.then(head))]
            inserted = sa.func.count().label("inserted")
            stmt = sa.select(inserted).select_from(head).add_cte(*others)
            found = _null_as_null(prepare(stmt, dialect, [inserted], ("inserted",)))
            self._prepared[dialect.name] = found
        return found

    async def run(self, writer: AsyncReader, params: Row) -> bool:
        """Run the statement (`writer` from Database.async_reads.writing()); whether the first row went in."""
        rows = await writer.change(self.prepared(writer.dialect), params)
        return bool(rows[0]["inserted"])


def _null_as_null(prepared: Prepared) -> Prepared:
    """None is SQL NULL in every column, JSON ones included (whose processor would write the JSON 'null'), as the ORM
    stores a column it was given no value for."""
    binds = tuple(replace(b, process=_keeping_null(b.process)) if b.process else b for b in prepared.binds)
    return replace(prepared, binds=binds)


def _caller(default: sa.ColumnDefault) -> Callable[[], Any]:
    # SQLAlchemy wraps a default function in one that takes the execution context, which these defaults ignore.
    call = default.arg
    return lambda: call(None)


def _keeping_null(process: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda value: None if value is None else process(value)


def _constant(value: Any) -> Callable[[], Any]:
    return lambda: value


class DriverTransaction:
    """A write transaction on a driver connection outside any session: on SQLite, an inline write's on the event
    loop (Database.inline_write), begun and ended by its owner. `insert` runs in it as in a session's
    transaction. It spares a create the session's begin, commit and close, and the pool's checkout and return."""

    def __init__(self, connection: Any, dialect: Dialect) -> None:
        self.connection = connection
        self.dialect = dialect


def insert(target: Session | DriverTransaction, statement: Insert, rows: list[Row]) -> int:
    """Insert `rows` (built by `statement.row`) in `target`'s transaction; the number of rows inserted. A session's
    transaction begins if it has not begun (on SQLite a write session's begin takes the write lock), and objects the
    session holds that are not yet in the database go in first, as the unit of work would order them."""
    if not rows:
        return 0
    driver, dialect, invalidate = _driver_of(target)
    prepared = statement.prepared(dialect)
    count, _fetched = _execute(driver, dialect, prepared.sql, [prepared.arguments(row) for row in rows], invalidate)
    return count


class Returning:
    """A prebuilt UPDATE of fixed shape that returns `columns` of the rows it changed (a counter's next value), run
    with `returning` on the driver cursor of a transaction, as `insert` runs an Insert."""

    def __init__(self, stmt: sa.Update, columns: list[sa.ColumnElement[Any]]) -> None:
        self.stmt = stmt.returning(*columns)
        self._columns = columns
        self._prepared: dict[str, Prepared] = {}

    def prepared(self, dialect: Dialect) -> Prepared:
        found = self._prepared.get(dialect.name)
        if found is None:
            keys = tuple(c.key for c in self._columns if c.key is not None)
            found = self._prepared[dialect.name] = prepare(self.stmt, dialect, self._columns, keys)
        return found


def returning(target: Session | DriverTransaction, statement: Returning, params: Row) -> list[Row]:
    """Run `statement` with `params` in `target`'s transaction; the rows it returned, by column key."""
    driver, dialect, invalidate = _driver_of(target)
    prepared = statement.prepared(dialect)
    _count, fetched = _execute(driver, dialect, prepared.sql, [prepared.arguments(params)], invalidate, fetch=True)
    return prepared.rows(fetched)


def _driver_of(target: Session | DriverTransaction) -> tuple[Any, Dialect, Callable[[Exception], None] | None]:
    """The driver connection of `target`'s transaction, its dialect, and what throws the connection away when it
    is found lost (None: a connection of its own, not the pool's)."""
    if isinstance(target, DriverTransaction):
        return target.connection, target.dialect, None
    target.flush()
    connection = target.connection()
    return connection.connection.dbapi_connection, connection.dialect, connection.invalidate


def _execute(
    driver: Any,
    dialect: Dialect,
    sql: str,
    arguments: list[Any],
    invalidate: Callable[[Exception], None] | None,
    *,
    fetch: bool = False,
) -> tuple[int, list[Any]]:
    """`sql` once per set of `arguments` on the driver connection `driver`: the rows changed, and with `fetch` the
    rows returned. `invalidate` throws the connection away when the error says it was lost."""
    cursor = driver.cursor()
    try:
        if len(arguments) == 1:
            cursor.execute(sql, arguments[0])
        else:
            cursor.executemany(sql, arguments)
        fetched = cursor.fetchall() if fetch else []
        count: int = cursor.rowcount
    except dialect.loaded_dbapi.Error as exc:
        # The same exception the session would raise (an IntegrityError for a constraint), with the statement; a
        # lost connection is thrown away, as SQLAlchemy does when one of its own executions finds it gone.
        dropped = invalidate is not None and dialect.is_disconnect(exc, driver, cursor)
        if dropped and invalidate is not None:
            invalidate(exc)
        raise sa.exc.DBAPIError.instance(
            sql, arguments, exc, dialect.loaded_dbapi.Error, connection_invalidated=dropped, dialect=dialect
        ) from exc
    finally:
        cursor.close()
    return count, fetched
