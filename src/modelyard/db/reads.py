"""Prebuilt reads for the paths that fleets poll: a Core SELECT compiled once per dialect and run straight on the
driver's cursor, each column converted by SQLAlchemy's own result processor for its type (UTC datetimes, JSON,
booleans), so rows come back exactly as the ORM would give them without its per-execution work.

Measured on GET of a model (bench/RESULTS.md): the same lookup costs about 315 µs through an ORM session, 150 µs as
Core on a connection and 30-40 µs this way; most of the difference is statement setup and the transaction events
around it, not SQL. Only statements whose shape never changes belong here (no expanding IN lists); everything else
goes through the session."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.sql.compiler import SQLCompiler

Row = dict[str, Any]


_REQUIRED = object()


@dataclass(frozen=True)
class _Bind:
    name: str
    default: Any  # the statement's own value (a literal), or _REQUIRED
    process: Callable[[Any], Any] | None


@dataclass(frozen=True)
class Prepared:
    sql: str
    positional: bool  # qmark/format parameter styles take a list in `binds` order, named styles a dict
    binds: tuple[_Bind, ...]
    keys: tuple[str, ...]
    processors: tuple[Callable[[Any], Any] | None, ...]

    def arguments(self, params: dict[str, Any]) -> Any:
        values = []
        for bind in self.binds:
            value = params.get(bind.name, bind.default)
            if value is _REQUIRED:
                raise KeyError(f"No value for the parameter {bind.name!r}")
            values.append(bind.process(value) if bind.process is not None else value)
        if self.positional:
            return values
        return {bind.name: value for bind, value in zip(self.binds, values, strict=True)}


class Read:
    """A SELECT of fixed shape with bound parameters; each selected column's label is its key in the row dicts."""

    def __init__(self, stmt: sa.Select[*tuple[Any, ...]]) -> None:
        # Checked here, not by compiling (which costs milliseconds per statement at import, i.e. at cold start).
        for bind in sa.sql.visitors.iterate(stmt):
            if isinstance(bind, sa.BindParameter) and bind.expanding:
                raise ValueError(f"{bind.key!r} is an expanding parameter: a Read must have a fixed shape")
        self.stmt = stmt
        self._prepared: dict[str, Prepared] = {}

    def prepared(self, dialect: Dialect) -> Prepared:
        found = self._prepared.get(dialect.name)
        if found is None:
            found = prepare(
                self.stmt, dialect, list(self.stmt.selected_columns), tuple(self.stmt.selected_columns.keys())
            )
            self._prepared[dialect.name] = found
        return found


def prepare(
    stmt: sa.ClauseElement,
    dialect: Dialect,
    columns: list[sa.ColumnElement[Any]] | None = None,
    keys: tuple[str, ...] = (),
    *,
    column_keys: list[str] | None = None,
) -> Prepared:
    """`stmt` compiled for `dialect`: its SQL, its parameters with their bind processors, and for the `columns` it
    returns (named `keys`) their result processors. `column_keys`: the columns an INSERT gives values for."""
    compiled = cast(SQLCompiler, stmt.compile(dialect=dialect, column_keys=column_keys))
    names = list(compiled.positiontup) if compiled.positiontup is not None else list(compiled.binds)
    binds = []
    for name in names:
        bind = compiled.binds[name]
        default = _REQUIRED if bind.required or bind.callable is not None else bind.value
        binds.append(_Bind(name, default, bind.type.dialect_impl(dialect).bind_processor(dialect)))
    return Prepared(
        sql=compiled.string,
        positional=compiled.positiontup is not None,
        binds=tuple(binds),
        keys=keys,
        processors=tuple(c.type.dialect_impl(dialect).result_processor(dialect, None) for c in columns or ()),
    )


class Reader:
    """The reads of one request on one pooled driver connection, in one snapshot (SQLite), or one statement at a
    time in autocommit (PostgreSQL), where a statement that meets a dropped connection runs again once on a new one
    (`_Lease.reconnect`)."""

    def __init__(self, cursor: Any, dialect: Dialect, lease: _Lease | None = None) -> None:
        self._cursor = cursor
        self._dialect = dialect
        self._lease = lease

    def all(self, read: Read, **params: Any) -> list[Row]:
        prepared = read.prepared(self._dialect)
        arguments = prepared.arguments(params)
        try:
            self._cursor.execute(prepared.sql, arguments)
        except Exception as exc:
            if self._lease is None or not self._lease.dropped(exc, self._cursor):
                raise
            self._cursor = self._lease.reconnect(exc)
            self._cursor.execute(prepared.sql, arguments)
        keys, processors = prepared.keys, prepared.processors
        return [
            dict(zip(keys, [p(v) if p is not None else v for p, v in zip(processors, row, strict=True)], strict=True))
            for row in self._cursor.fetchall()
        ]

    def first(self, read: Read, **params: Any) -> Row | None:
        rows = self.all(read, **params)
        return rows[0] if rows else None


class _Lease:
    """A pooled PostgreSQL connection in autocommit for prebuilt reads, replaced once if it turns out dropped."""

    def __init__(self, engine: Engine, on_disconnect: Callable[[], None] | None) -> None:
        self._engine = engine
        self._on_disconnect = on_disconnect
        self.replaced = False
        self.connection: PoolProxiedConnection | None = None
        self.cursor = self._checkout()

    def _checkout(self) -> Any:
        connection = self._engine.raw_connection()
        try:
            connection.dbapi_connection.autocommit = True  # type: ignore[union-attr]
            cursor = connection.cursor()
        except BaseException:
            connection.close()
            raise
        self.connection = connection
        return cursor

    def dropped(self, exc: Exception, cursor: Any) -> bool:
        """Whether `exc` says the connection was lost (and this lease has not been replaced yet): the statement
        did not complete, and in autocommit nothing else was pending, so it may simply run again."""
        dialect = self._engine.dialect
        return (
            not self.replaced
            and self.connection is not None
            and isinstance(exc, dialect.loaded_dbapi.Error)
            and dialect.is_disconnect(exc, self.connection.dbapi_connection, cursor)
        )

    def reconnect(self, exc: Exception) -> Any:
        """Throw the dropped connection away and return a cursor on another. Every connection returned before
        now is pinged at its next checkout (modelyard.db.engine.StaleConnections), so the pool does not hand over
        another dead one."""
        assert self.connection is not None
        if self._on_disconnect is not None:
            self._on_disconnect()
        dropped, self.connection = self.connection, None
        dropped.invalidate(exc)
        self.replaced = True
        self.cursor = self._checkout()
        return self.cursor

    def close(self) -> None:
        if self.connection is None:
            return
        driver = self.connection.dbapi_connection
        try:
            self.cursor.close()
            if driver is not None and not driver.closed:
                driver.autocommit = False
        finally:
            self.connection.close()


@contextmanager
def reading(engine: Engine, on_disconnect: Callable[[], None] | None = None) -> Iterator[Reader]:
    """A Reader on a connection from the engine's pool. On SQLite the reads share one deferred transaction (a
    snapshot; WAL readers never wait). On PostgreSQL they run in autocommit, each statement its own snapshot,
    which spares the BEGIN and ROLLBACK round trips a transaction would cost, and lets a statement that met a
    dropped connection run again on another: `on_disconnect` is called when one is found."""
    if engine.dialect.name != "sqlite":
        lease = _Lease(engine, on_disconnect)
        try:
            yield Reader(lease.cursor, engine.dialect, lease)
        finally:
            lease.close()
        return
    connection = engine.raw_connection()
    try:
        cursor = connection.cursor()
        cursor.execute("BEGIN")
        try:
            yield Reader(cursor, engine.dialect)
        finally:
            cursor.execute("COMMIT")
            cursor.close()
    finally:
        connection.close()
