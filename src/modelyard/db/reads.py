"""Prebuilt reads for the paths that fleets poll: a Core SELECT compiled once per dialect and run straight on the
driver's cursor, each column converted by SQLAlchemy's own result processor for its type (UTC datetimes, JSON,
booleans), so rows come back exactly as the ORM would give them without its per-execution work.

Measured on GET of a model (bench/RESULTS.md): the same lookup costs about 315 µs through an ORM session, 150 µs as
Core on a connection and 30-40 µs this way; most of the difference is statement setup and the transaction events
around it, not SQL. Only statements whose shape never changes belong here (no expanding IN lists); everything else
goes through the session."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
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

    def rows(self, fetched: list[Any]) -> list[Row]:
        """The driver's rows as dicts by key, each value through its column's result processor."""
        keys, processors = self.keys, self.processors
        return [
            dict(zip(keys, [p(v) if p is not None else v for p, v in zip(processors, row, strict=True)], strict=True))
            for row in fetched
        ]


class Read:
    """A SELECT of fixed shape with bound parameters; each selected column's label is its key in the row dicts."""

    def __init__(self, stmt: sa.Select[*tuple[Any, ...]] | sa.CompoundSelect[*tuple[Any, ...]]) -> None:
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
        self.dialect = dialect
        self._lease = lease

    def all(self, read: Read, **params: Any) -> list[Row]:
        prepared = read.prepared(self.dialect)
        arguments = prepared.arguments(params)
        try:
            self._cursor.execute(prepared.sql, arguments)
        except Exception as exc:
            if self._lease is None or not self._lease.dropped(exc, self._cursor):
                raise
            self._cursor = self._lease.reconnect(exc)
            self._cursor.execute(prepared.sql, arguments)
        return prepared.rows(self._cursor.fetchall())

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


# Connections per event loop for AsyncReads: as many as the read threads they replace (kit.routing.READ_THREADS).
ASYNC_READ_CONNECTIONS = 8


class AsyncReader:
    """The reads of one request from the event loop on PostgreSQL: each statement on its own in autocommit, on one
    of psycopg's asyncio connections; a statement that meets a dropped connection runs again once on a new one."""

    def __init__(self, reads: AsyncReads, connection: Any) -> None:
        self._reads = reads
        self.connection = connection
        self.dialect = reads.dialect
        self._replaced = False

    async def all(self, read: Read, **params: Any) -> list[Row]:
        prepared = read.prepared(self.dialect)
        arguments = prepared.arguments(params)
        try:
            cursor = await self.connection.execute(prepared.sql, arguments)
        except self._reads.errors as exc:
            dropped = self.connection.closed or self.connection.broken
            if not dropped or self._replaced:
                raise sa.exc.DBAPIError.instance(
                    prepared.sql,
                    arguments,
                    exc,
                    self._reads.errors,
                    connection_invalidated=dropped,
                    dialect=self.dialect,
                ) from exc
            await self._reads.dropped()
            self._replaced = True
            self.connection = await self._reads.connect()
            cursor = await self.connection.execute(prepared.sql, arguments)
        return prepared.rows(await cursor.fetchall())

    async def first(self, read: Read, **params: Any) -> Row | None:
        rows = await self.all(read, **params)
        return rows[0] if rows else None

    async def change(self, prepared: Prepared, params: dict[str, Any]) -> list[Row]:
        """One statement that changes rows (modelyard.db.writes.Guarded), its own transaction in autocommit; the
        rows it returns. Never run again: a statement that met a dropped connection may have committed, so the
        error goes to the caller (a 503 DATABASE_UNAVAILABLE, as for a session). `AsyncReads.writing` pings a
        connection that sat idle first, so a server restarted meanwhile costs no failed write."""
        arguments = prepared.arguments(params)
        try:
            cursor = await self.connection.execute(prepared.sql, arguments)
            values = await cursor.fetchall()
        except self._reads.errors as exc:
            dropped = self.connection.closed or self.connection.broken
            if dropped:
                await self._reads.dropped()
            raise sa.exc.DBAPIError.instance(
                prepared.sql, arguments, exc, self._reads.errors, connection_invalidated=dropped, dialect=self.dialect
            ) from exc
        return prepared.rows(values)


class AsyncReads:
    """Prebuilt reads on PostgreSQL awaited on the event loop, on psycopg's asyncio connections (made as the
    engine's own, with its type adapters), a few per event loop, in autocommit; and the writes that are one
    statement (`writing`).

    In a worker thread, a GET of a model spent more in the hand-off to the thread and back (the two threads'
    contention for the GIL) than in its statement (bench/RESULTS.md). Connections are kept per event loop (an
    asyncio connection belongs to the loop that made it); one that is broken, or whose statement was interrupted,
    is closed instead of kept."""

    def __init__(
        self,
        engine: Engine,
        *,
        size: int = ASYNC_READ_CONNECTIONS,
        on_disconnect: Callable[[], None] | None = None,
        ping_after_idle_seconds: float = 1.0,
    ) -> None:
        import psycopg

        self.dialect = engine.dialect
        self.errors = psycopg.Error
        self._idle_status = psycopg.pq.TransactionStatus.IDLE
        self._connect = psycopg.AsyncConnection.connect
        self._args, self._kwargs = engine.dialect.create_connect_args(engine.url)
        self._size = size
        self._on_disconnect = on_disconnect
        self._ping_after = ping_after_idle_seconds
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopConnections] = (
            weakref.WeakKeyDictionary()
        )

    async def connect(self) -> Any:
        try:
            return await self._connect(*self._args, **self._kwargs, autocommit=True)
        except self.errors as exc:
            raise sa.exc.DBAPIError.instance(
                None, None, exc, self.errors, connection_invalidated=True, dialect=self.dialect
            ) from exc

    async def dropped(self) -> None:
        """A connection was found dropped (the server restarted, or ended it): the others kept for this loop may be
        too, and are closed; the engine's pool is told (`on_disconnect`)."""
        if self._on_disconnect is not None:
            self._on_disconnect()
        await _close_idle(self._loops.get(asyncio.get_running_loop()))

    def reading(self) -> AbstractAsyncContextManager[AsyncReader]:
        return self._lease(ping_idle=False)

    def writing(self) -> AbstractAsyncContextManager[AsyncReader]:
        """As `reading`, for a statement that changes rows (`AsyncReader.change`), which never runs twice: a kept
        connection that sat idle over `ping_after_idle_seconds` is pinged first, as the engine's pool does
        (modelyard.db.engine.StaleConnections), and replaced if it was dropped meanwhile."""
        return self._lease(ping_idle=True)

    @asynccontextmanager
    async def _lease(self, *, ping_idle: bool) -> AsyncIterator[AsyncReader]:
        loop = asyncio.get_running_loop()
        connections = self._loops.get(loop)
        if connections is None:
            connections = self._loops[loop] = _LoopConnections(asyncio.Semaphore(self._size), [])
            # A loop that ends without close() (a test client's, one per request) cannot await the closing of its
            # connections any more: libpq closes them when the loop is gone.
            weakref.finalize(loop, _finish, connections.idle)
        async with connections.slots:
            reader = AsyncReader(self, await self._take(connections, ping_idle, loop.time()))
            try:
                yield reader
            finally:
                connection = reader.connection
                # Kept only if idle: a statement interrupted (the request cancelled) may still be running on it.
                if not connection.closed and connection.info.transaction_status == self._idle_status:
                    connections.idle.append(_Kept(connection, loop.time()))
                else:
                    await connection.close()

    async def _take(self, connections: _LoopConnections, ping_idle: bool, now: float) -> Any:
        if not connections.idle:
            return await self.connect()
        kept = connections.idle.pop()
        if not ping_idle or now - kept.since <= self._ping_after:
            return kept.connection
        try:
            await kept.connection.execute("SELECT 1")
            return kept.connection
        except self.errors as exc:
            if not (kept.connection.closed or kept.connection.broken):
                await kept.connection.close()
                raise sa.exc.DBAPIError.instance("SELECT 1", (), exc, self.errors, dialect=self.dialect) from exc
            await self.dropped()
            return await self.connect()

    async def close(self) -> None:
        """Close the kept connections of the running event loop (at the end of the app's lifespan)."""
        await _close_idle(self._loops.pop(asyncio.get_running_loop(), None))


async def _close_idle(connections: _LoopConnections | None) -> None:
    idle = list(connections.idle) if connections is not None else []
    if connections is not None:
        connections.idle.clear()
    for kept in idle:
        await kept.connection.close()


def _finish(idle: list[_Kept]) -> None:
    for kept in idle:
        kept.connection.pgconn.finish()


@dataclass
class _Kept:
    connection: Any
    since: float  # the event loop's clock when it was put back


@dataclass
class _LoopConnections:
    slots: asyncio.Semaphore
    idle: list[_Kept]
