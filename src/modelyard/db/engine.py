"""Engines and sessions. SQLite gets its pragmas on every connection and takes the write lock up front
(`BEGIN IMMEDIATE`) for write transactions, after its turn on the writer lock (modelyard.db.writer_lock), so
concurrent writers queue instead of failing on a lock upgrade or sleeping in SQLite's busy handler; PostgreSQL goes
through psycopg 3 with a connection pool, whose connections are pinged before use when they may have gone stale
(`StaleConnections`)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
import weakref
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractContextManager, asynccontextmanager, contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar, cast

import orjson
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from modelyard.db.changes import ChangeWatch
from modelyard.db.checkpoints import WRITER_CHECKPOINT_PAGES
from modelyard.db.connections import kept_connection
from modelyard.db.group_commit import WriteGroups
from modelyard.db.reads import AsyncReads, Reader, reading
from modelyard.db.urls import sqlite_file
from modelyard.db.writer_lock import WriterLock, WriteTurnBusy
from modelyard.db.writes import DriverTransaction
from modelyard.errors import ServiceUnavailable

T = TypeVar("T")

SQLITE_BUSY_TIMEOUT_MS = 30_000
SQLITE_POOL_SIZE = 64
_HOLDS_WRITE_LOCK = "modelyard_holds_write_lock"
# A pooled PostgreSQL connection that has been idle longer than this is pinged before use (StaleConnections).
PING_AFTER_IDLE_SECONDS = 1.0
_CHECKED_IN = "modelyard_checked_in"


def _configure_sqlite(engine: Engine, writers: WriterLock) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" hook below issue BEGIN itself, so we choose DEFERRED or IMMEDIATE.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        # Checkpoints are a server thread's work (modelyard.db.checkpoints); a writer runs one only past this size.
        cursor.execute(f"PRAGMA wal_autocheckpoint={WRITER_CHECKPOINT_PAGES}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        if not conn.get_execution_options().get("modelyard_write", False):
            _on_driver(conn, "BEGIN")
            return
        turn = _WRITE_TURN.get()
        if turn is not None:
            _begin_on_turn(conn, turn, writers)
            return
        if not writers.acquire(timeout=SQLITE_BUSY_TIMEOUT_MS / 1000):
            raise _database_busy()
        conn.info[_HOLDS_WRITE_LOCK] = True
        try:
            _on_driver(conn, "BEGIN IMMEDIATE")
        except BaseException:
            conn.info.pop(_HOLDS_WRITE_LOCK, None)
            writers.release()
            raise

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        # The transaction has ended (committed, or rolled back by the pool's reset) once the connection is back.
        if record.info.pop(_HOLDS_WRITE_LOCK, False):
            writers.release()

    # A connection that is thrown away instead of returned (closed, or invalidated after an error, which closes it)
    # must not take the lock with it: every later writer of the process would wait for ever.
    @event.listens_for(engine, "close")
    def _on_close(_dbapi_connection: Any, record: Any) -> None:
        if record.info.pop(_HOLDS_WRITE_LOCK, False):
            writers.release()


def _database_busy() -> ServiceUnavailable:
    waited = SQLITE_BUSY_TIMEOUT_MS / 1000
    return ServiceUnavailable(
        f"The database is busy: other writes have held it for {waited:g} s",
        error_code="DATABASE_BUSY",
        solution_msg="Retry in a moment; if it lasts, look for a long-running write in the server's log",
        headers={"Retry-After": "1"},
    )


class _Turn:
    """A request's turn on the writer lock, for one write transaction on the event loop (`Database.write_turn`)."""

    def __init__(self) -> None:
        self.used = False


# The turn of the inline write running in this context, if any (set by Database.write_turn).
_WRITE_TURN: ContextVar[_Turn | None] = ContextVar("modelyard_write_turn", default=None)
# How long an inline writer tries the lock held by another process at each turn of the event loop, before it waits a
# millisecond between tries. With two processes and 16 concurrent creates on the bench machine, 5 ms of such tries
# made 1,058 -> 1,313 creates/s against three tries and then millisecond waits.
_SPIN_SECONDS = 0.005


def _on_driver(conn: sa.Connection, sql: str) -> None:
    """`sql` straight on the driver's connection (BEGIN, a PRAGMA): through exec_driver_sql it cost a statement
    execution's full setup, on every transaction. Its errors are SQLAlchemy's, as they would have been."""
    try:
        conn.connection.driver_connection.execute(sql)  # type: ignore[union-attr]
    except sqlite3.Error as exc:
        raise _driver_error(sql, exc, conn.dialect) from exc


def _driver_error(sql: str, exc: sqlite3.Error, dialect: sa.Dialect) -> sa.exc.StatementError:
    return sa.exc.DBAPIError.instance(sql, (), exc, sqlite3.Error, dialect=dialect)


def _begin_on_turn(conn: sa.Connection, turn: _Turn, writers: WriterLock) -> None:
    """BEGIN IMMEDIATE for the write that holds `turn`, without waiting: SQLite's busy handler is off for the one
    statement, so a writer outside the turns makes it fail at once (WriteTurnBusy) instead of stalling the loop."""
    if turn.used:
        # One transaction per turn: a second one would have to wait for the lock, on the event loop.
        raise RuntimeError("An inline write began a second write transaction")
    turn.used = True
    conn.info[_HOLDS_WRITE_LOCK] = True  # released when the connection goes back to the pool, as for any writer
    try:
        _on_driver(conn, "PRAGMA busy_timeout=0")
        try:
            _on_driver(conn, "BEGIN IMMEDIATE")
        finally:
            _on_driver(conn, f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    except BaseException as exc:
        conn.info.pop(_HOLDS_WRITE_LOCK, None)
        writers.release()
        driver_error = getattr(exc, "orig", None)
        if isinstance(driver_error, sqlite3.OperationalError) and driver_error.sqlite_errorcode == sqlite3.SQLITE_BUSY:
            raise WriteTurnBusy(str(driver_error)) from exc
        raise


def _loads(text: str | bytes) -> Any:
    """JSON columns are read with orjson (several times faster than json.loads on every row of a list), falling
    back to the standard library for what orjson refuses but json.dumps may have written (NaN, Infinity)."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def _dumps(value: Any) -> str:
    """JSON columns are written with orjson (a tenth of json.dumps's time for the small objects of a create), or by
    the standard library for what orjson refuses (keys that are not strings, integers beyond 64 bits: the API
    refuses such numbers, kit.json_numbers)."""
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError:
        return json.dumps(value)


def create_engine(url: str, *, pool_size: int = 10, writers: WriterLock | None = None) -> Engine:
    """The engine of `url`; on SQLite its write transactions take turns on `writers` (a lock of their own if None)."""
    if url.startswith("sqlite"):
        # Reads on SQLite run on the event loop (kit.routing.run_db), which must never wait for a connection:
        # the pool keeps enough for the threads and the loop, and opens more (without limit) when it must.
        engine = sa.create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
            pool_size=max(pool_size, SQLITE_POOL_SIZE),
            max_overflow=-1,
            json_serializer=_dumps,
            json_deserializer=_loads,
        )
        _configure_sqlite(engine, writers or WriterLock(None))
        return engine
    return sa.create_engine(
        url, pool_size=pool_size, max_overflow=2 * pool_size, json_serializer=_dumps, json_deserializer=_loads
    )


class StaleConnections:
    """Pings (`SELECT 1`) a pooled PostgreSQL connection at checkout only when it may have gone stale: it sat idle
    in the pool longer than `idle_seconds`, or it was returned before a dropped connection was last seen
    (`suspect_all`). A ping that finds the connection dropped invalidates the whole pool, and the checkout goes on
    with a new connection, as SQLAlchemy's `pool_pre_ping` does.

    `pool_pre_ping` pings at every checkout: a round trip on every request, a sixth of a GET by name's cost on the
    bench machine. Connections in use are returned and taken again within milliseconds; the ones that go stale are
    those left idle (a restarted server, a firewall or `idle_session_timeout` closing quiet connections). What this
    leaves uncovered is a connection dropped less than `idle_seconds` after its last use: prebuilt reads
    (modelyard.db.reads) retry those on a new connection; a session's statement fails once with 503
    DATABASE_UNAVAILABLE, and SQLAlchemy invalidates the pool, as it does for a connection lost mid-transaction."""

    def __init__(self, engine: Engine, idle_seconds: float = PING_AFTER_IDLE_SECONDS) -> None:
        self.idle_seconds = idle_seconds
        self._stale_before = 0.0  # time.monotonic(): connections returned before this are pinged
        self._dialect = engine.dialect
        event.listen(engine, "checkin", self._on_checkin)
        event.listen(engine, "checkout", self._on_checkout)

    def suspect_all(self) -> None:
        """A connection was found dropped: ping every connection returned until now before its next use."""
        self._stale_before = time.monotonic()

    @staticmethod
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info[_CHECKED_IN] = time.monotonic()

    def _on_checkout(self, dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        returned = record.info.get(_CHECKED_IN)
        if returned is None:  # never returned: connected for this checkout
            return
        if returned > self._stale_before and time.monotonic() - returned <= self.idle_seconds:
            return
        try:
            self._dialect.do_ping(dbapi_connection)
        except self._dialect.loaded_dbapi.Error as exc:
            if self._dialect.is_disconnect(exc, dbapi_connection, None):
                raise sa.exc.InvalidatePoolError(f"Ping failed: {exc}") from exc
            raise


class _KeptReader:
    """The connection kept for an event loop's prebuilt reads on SQLite (Database.reading)."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.busy = False


class Database:
    """The engine plus two session factories: one for reads and one for transactions that will write."""

    def __init__(
        self, url: str, *, pool_size: int = 10, ping_after_idle_seconds: float = PING_AFTER_IDLE_SECONDS
    ) -> None:
        self.url = url
        # SQLite's writers take turns (modelyard.db.writer_lock); an in-memory database has no file to lock them on.
        self.writers: WriterLock | None = None
        if sa.make_url(url).get_backend_name() == "sqlite":
            database = sqlite_file(url)
            self.writers = WriterLock(f"{database}-writer.lock" if database else None)
        self.engine = create_engine(url, pool_size=pool_size, writers=self.writers)
        self.dialect = self.engine.dialect.name
        self.stale: StaleConnections | None = None
        # PostgreSQL's prebuilt reads of the hottest GETs and its one-statement writes, awaited on the event loop (None
        # on SQLite, where a read is a call into the library and runs on the loop as it is).
        self.async_reads: AsyncReads | None = None
        if not self.is_sqlite:
            self.stale = StaleConnections(self.engine, ping_after_idle_seconds)
            self.async_reads = AsyncReads(
                self.engine, on_disconnect=self.stale.suspect_all, ping_after_idle_seconds=ping_after_idle_seconds
            )
        write_engine = self.engine.execution_options(modelyard_write=True)
        # A request's reads see one snapshot, as on SQLite (where a read transaction is one): under PostgreSQL's
        # default READ COMMITTED each statement has its own, and a GET that read a model and then its version could
        # show the version READY but the model not yet pointing at it, with the worker's commit between the two.
        read_engine = (
            self.engine if self.is_sqlite else self.engine.execution_options(isolation_level="REPEATABLE READ")
        )
        self._read = sessionmaker(read_engine, expire_on_commit=False, autoflush=True)
        self._write = sessionmaker(write_engine, expire_on_commit=False, autoflush=True)
        self.changes = ChangeWatch(self.engine)
        # The inline writers of each event loop (write_turn) queue here; a loop's lock is dropped with the loop.
        self._inline_writers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )
        self._inline: sqlite3.Connection | None = None  # inline_write's, made at its first use
        self._groups = (
            WriteGroups(self.write_turn, self._inline_connection, self.engine.dialect) if self.writers else None
        )
        # _loop_reading's connection of each event loop, dropped (and closed) with the loop.
        self._loop_readers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _KeptReader] = (
            weakref.WeakKeyDictionary()
        )

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    def session(self, *, write: bool) -> Session:
        return self._write() if write else self._read()

    @asynccontextmanager
    async def write_turn(self) -> AsyncIterator[bool]:
        """On SQLite, this process's turn on the writer lock (True), for one write transaction that then runs to its
        end on the event loop without waiting for anything: its BEGIN IMMEDIATE uses the turn, and the lock goes
        back with the transaction's connection (or at the end of the block if no transaction began). False on
        PostgreSQL, where writes go to threads.

        The turn is waited for without blocking the loop: the loop's writers queue on an asyncio lock, and the one
        at its head tries the writer lock at each turn of the loop (for 5 ms, while another process holds it), then
        every millisecond. Holders of the lock are short transactions (inline writes of this process or another)
        or writers in threads and other processes, some of which may need this loop to finish; the loop never
        waits for them. After SQLite's busy timeout, 503 DATABASE_BUSY, as for a writer in a thread."""
        writers = self.writers
        if writers is None:
            yield False
            return
        loop = asyncio.get_running_loop()
        queue = self._inline_writers.get(loop)
        if queue is None:
            queue = self._inline_writers[loop] = asyncio.Lock()
        async with queue:
            started = loop.time()
            deadline = started + SQLITE_BUSY_TIMEOUT_MS / 1000
            while not writers.try_acquire():
                now = loop.time()
                if now > deadline:
                    raise _database_busy()
                # Another process's writer needs nothing of this one, and is most often another short inline write:
                # try again at the next turn of the loop, for a while. A thread of this process needs the GIL to
                # finish: sleep between tries, which lets it have the GIL.
                spin = not writers.held_in_process() and now - started < _SPIN_SECONDS
                await asyncio.sleep(0 if spin else 0.001)
        turn = _Turn()
        token = _WRITE_TURN.set(turn)
        try:
            yield True
        finally:
            _WRITE_TURN.reset(token)
            if not turn.used:
                writers.release()

    async def inline_write(self, work: Callable[[DriverTransaction], T]) -> T:
        """On SQLite, `work` on the event loop in a write transaction of this process's turn on the writer lock
        (`write_turn`), on a driver connection kept for these writes, outside the session and the pool; its result
        once committed. The inline writes that reach the loop together share the transaction, each in a savepoint
        of its own (modelyard.db.group_commit): one's error rolls back its own work only. WriteTurnBusy, with
        nothing done, if SQLite's lock is held by a writer that takes no turns: the caller then goes the session's
        way, which waits for it.

        For a short write that awaits nothing (a model's create): the session's begin, commit and close, the pool's
        checkout and return, and the two changes of the busy timeout around each BEGIN on a turn were a fifth of its
        cost, and SQLite's commit most of the rest (bench/RESULTS.md)."""
        if self._groups is None:
            raise RuntimeError("Inline writes are SQLite's")
        return await self._groups.run(work)

    def _inline_connection(self) -> sqlite3.Connection:
        if self._inline is None:
            connection = cast(sqlite3.Connection, kept_connection(self.engine))
            connection.execute("PRAGMA busy_timeout=0")
            self._inline = connection
        return self._inline

    def reading(self) -> AbstractContextManager[Reader]:
        """Prebuilt reads (modelyard.db.reads) on a connection of their own, outside any session: on SQLite, on an
        event loop, the connection kept for that loop's reads (`_loop_reading`); otherwise a pooled one."""
        if self.is_sqlite:
            kept = self._loop_reader()
            if kept is not None:
                return self._loop_reading(kept)
        return reading(self.engine, on_disconnect=self.stale.suspect_all if self.stale is not None else None)

    def _loop_reader(self) -> _KeptReader | None:
        """The running event loop's kept reader if it is free (made at its first use); None off a loop, or when a read
        is under way on it already."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return None
        kept = self._loop_readers.get(loop)
        if kept is None:
            kept = self._loop_readers[loop] = _KeptReader(kept_connection(self.engine))
        return None if kept.busy else kept

    @contextmanager
    def _loop_reading(self, kept: _KeptReader) -> Iterator[Reader]:
        """SQLite's prebuilt reads on the event loop, on the connection kept for that loop: the pool's checkout and
        return cost a seventh of a GET of a model (bench/RESULTS.md). A read on the loop awaits nothing inside, so
        one connection per loop serves them all; one that is dropped with its loop is closed with it."""
        kept.busy = True
        cursor = kept.connection.cursor()
        try:
            cursor.execute("BEGIN")
            yield Reader(cursor, self.engine.dialect)
        finally:
            try:
                cursor.execute("COMMIT")
            finally:
                cursor.close()
                kept.busy = False

    def dispose(self) -> None:
        self.changes.close()
        kept, self._loop_readers = list(self._loop_readers.values()), weakref.WeakKeyDictionary()
        for reader in kept:
            reader.connection.close()
        if self._inline is not None:
            self._inline.close()
            self._inline = None
        self.engine.dispose()
        if self.writers is not None:
            self.writers.close()
