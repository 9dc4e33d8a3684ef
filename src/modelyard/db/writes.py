"""Prebuilt inserts for the writes that clients repeat by the thousand (creating models, recording events): an
INSERT of every column compiled once per dialect and run on the driver's cursor of the request session's connection,
in its transaction, with SQLAlchemy's own bind processors for each column's type (UTC datetimes, JSON).

The row is built in Python from the given values and the columns' declared defaults, so the caller holds the whole
row without reading it back, and builds its answer from it. Measured on creating a model (bench/RESULTS.md): an ORM
object inserted through the session, or an ORM-enabled INSERT, costs several times the statement itself, in object
construction, attribute events and per-execution statement setup; on SQLite that time is spent holding the write
lock. Everything that is not a plain insert of a new row goes through the session.

On PostgreSQL, new rows and the rows that go with them (their labels, their events) can go in as one statement
(`Guarded`), awaited on the event loop in autocommit: one round trip instead of a transaction's four or more, and one
for all the creates that arrive together (modelyard.db.group_commit.StatementGroups)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session

from modelyard.db.reads import AsyncReader, Prepared, Row, prepare

__all__ = ["DriverTransaction", "Guarded", "Insert", "Returning", "Row", "insert", "returning"]


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
        # The conversions of TypeDecorator columns (UTCDateTime), for rows given as JSON (`as_json`).
        self._converters: list[tuple[str, Callable[[Any], Any]]] = [
            (c.key, _converter(c.type)) for c in self._columns if isinstance(c.type, sa.TypeDecorator)
        ]
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

    @property
    def keys(self) -> list[str]:
        """The keys of the columns it gives values for, in order."""
        return [c.key for c in self._columns]

    def unnested(self, prefix: str) -> sa.TableValuedAlias:
        """Rows of this table given as one JSON parameter (named `prefix` + "rows": an array of objects by column
        key, which `as_json` gives), unnested by `jsonb_to_recordset` into a table named after `prefix`. Its text
        columns are unbounded: the INSERT's assignment to a VARCHAR(n) column refuses a value too long for it, as a
        plain INSERT does. (One JSON text costs the driver a few microseconds; an array parameter per column cost it
        about 90 µs per statement, in the detection of each list's element type.)"""
        param = sa.cast(sa.bindparam(prefix + "rows", type_=sa.Text), postgresql.JSONB)
        columns = [sa.column(c.key, sa.Text() if isinstance(c.type, sa.String) else c.type) for c in self._columns]
        return (
            sa.func.jsonb_to_recordset(param)
            .table_valued(*columns)
            .render_derived(with_types=True)
            .alias(prefix.rstrip("_"))
        )

    def as_json(self, rows: list[Row], prefix: str) -> Row:
        """`rows` (built by `row`) as the parameter of `unnested(prefix)`; each value through its column type's own
        conversion first (a naive datetime is refused, an aware one stored in UTC)."""
        converted = rows
        if self._converters:
            converted = [dict(row) for row in rows]
            for row in converted:
                for key, convert in self._converters:
                    row[key] = convert(row[key])
        return {prefix + "rows": orjson.dumps(converted).decode()}

    def joined_to(self, rows: sa.TableValuedAlias, head: sa.CTE, on: sa.ColumnElement[bool]) -> sa.Insert:
        """INSERT ... SELECT of the unnested `rows` (see `unnested`) that join a row of `head` by `on`."""
        return sa.insert(self.table).from_select(self.keys, sa.select(*rows.c).join_from(rows, head, on))


class Guarded:
    """On PostgreSQL, new rows and the rows that go with each in one statement (data-modifying CTEs), however many:
    each table's rows come as one JSON parameter, unnested (`Insert.unnested`), so the statement's text
    is the same for one row as for sixty-four and PostgreSQL plans it once. `first` inserts the new rows, skipping
    each that a unique constraint refuses, and returns their `key` column; `then(head, rows)` gives the inserts of
    the other rows, each from its table's unnested rows (`rows[prefix]`, for each prefix of `parts`) joined to `head`
    (`Insert.joined_to`), so that none goes in with a new row that was refused. In autocommit the statement is its
    own transaction.

    Measured on creating models on PostgreSQL (bench/RESULTS.md): a transaction of two inserts in a worker thread
    cost four round trips and the thread hand-off, and about 1.5x the CPU of one statement on the event loop; the
    creates that arrive together (db.group_commit.StatementGroups) cost less again as one statement."""

    HEAD = "head_"

    def __init__(
        self,
        first: Insert,
        key: str,
        parts: dict[str, Insert],
        then: Callable[[sa.CTE, dict[str, sa.TableValuedAlias]], Sequence[sa.Insert]],
    ) -> None:
        self.first = first
        self.key = key
        self.parts = {self.HEAD: first, **parts}
        self.then = then
        self._prepared: dict[str, Prepared] = {}

    def prepared(self, dialect: Dialect) -> Prepared:
        found = self._prepared.get(dialect.name)
        if found is None:
            if dialect.name != "postgresql":
                raise NotImplementedError(f"Inserts in one statement on {dialect.name}")
            table = self.first.table
            new = self.first.unnested(self.HEAD)
            head = (
                postgresql.insert(table)
                .from_select(self.first.keys, sa.select(*new.c))
                .on_conflict_do_nothing()
                .returning(table.c[self.key])
                .cte("head")
            )
            rows = {prefix: insert.unnested(prefix) for prefix, insert in self.parts.items() if prefix != self.HEAD}
            others = [insert.cte(f"then_{i}") for i, insert in enumerate(self.then(head, rows))]
            inserted = head.c[self.key].label("inserted")
            stmt = sa.select(inserted).add_cte(*others)
            found = prepare(stmt, dialect, [inserted], ("inserted",))
            self._prepared[dialect.name] = found
        return found

    def params(self, rows: dict[str, list[Row]]) -> Row:
        """The statement's parameters for the rows of each part (by prefix; `HEAD` for the new rows)."""
        params: Row = {}
        for prefix, insert in self.parts.items():
            params.update(insert.as_json(rows.get(prefix, []), prefix))
        return params

    async def run(self, writer: AsyncReader, rows: dict[str, list[Row]]) -> set[Any]:
        """Run the statement (`writer` from Database.async_reads.writing()) for `rows` (by part's prefix); the keys
        of the new rows that went in."""
        inserted = await writer.change(self.prepared(writer.dialect), self.params(rows))
        return {row["inserted"] for row in inserted}


def _null_as_null(prepared: Prepared) -> Prepared:
    """None is SQL NULL in every column, JSON ones included (whose processor would write the JSON 'null'), as the ORM
    stores a column it was given no value for."""
    binds = tuple(replace(b, process=_keeping_null(b.process)) if b.process else b for b in prepared.binds)
    return replace(prepared, binds=binds)


def _converter(type_: sa.TypeDecorator[Any]) -> Callable[[Any], Any]:
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    return lambda value: type_.process_bind_param(value, dialect)


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
