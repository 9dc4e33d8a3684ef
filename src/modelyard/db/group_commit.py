"""Group commit: the short writes that reach the event loop together are committed together.

On SQLite (`WriteGroups`, behind `Database.inline_write`) they go in one transaction, each in a savepoint of its own,
and each caller is answered after the COMMIT. On PostgreSQL (`StatementGroups`) the writes of one kind that are one
statement each (modelyard.db.writes.Guarded) go in as one statement for all of them.

On SQLite a commit costs far more than the rows it writes: each page a transaction changed goes to the WAL, and a
model's create changes a page of the models table, of each of its indexes, and of the events table and its indexes.
Measured on the bench machine (bench/RESULTS.md), a create's two inserts took 42 µs and its commit about 200 µs; in
groups of 8 a create cost 106 µs in all, since creates made together change the same last pages of each index.

What a caller is told is what is stored: its work's result once the COMMIT is done, its own error if its work
failed (its savepoint rolled back, the others unaffected), or the COMMIT's error if the transaction did not commit.
A caller waits no longer than the writes already queued ahead of it: its group runs at the next turn of the loop, or
as soon as the loop's earlier writers are done."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import sqlite3
import weakref
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, Generic, TypeVar

from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, StatementError

from modelyard.db.reads import AsyncReader, AsyncReads
from modelyard.db.writer_lock import WriteTurnBusy
from modelyard.db.writes import DriverTransaction

T = TypeVar("T")
ItemT = TypeVar("ItemT")  # what a caller gives a group
ResultT = TypeVar("ResultT")  # what it gets back
Work = Callable[[DriverTransaction], Any]

# Writes per transaction at most: one group's callers wait for all of its work and its commit.
GROUP_LIMIT = 64


class _Member:
    __slots__ = ("future", "work")

    def __init__(self, work: Work, future: asyncio.Future[Any]) -> None:
        self.work = work
        self.future = future


# A member, its work's result, and the error its work raised (None if it raised none).
_Outcome = tuple[_Member, Any, Exception | None]


class WriteGroups:
    """The groups of inline writes of each event loop. `turn` is the process's turn on the writer lock for one
    transaction on the loop (Database.write_turn); `connection` the driver connection kept for these writes, whose
    busy timeout is 0."""

    def __init__(
        self,
        turn: Callable[[], AbstractAsyncContextManager[bool]],
        connection: Callable[[], sqlite3.Connection],
        dialect: Dialect,
    ) -> None:
        self._turn = turn
        self._connection = connection
        self._dialect = dialect
        # The group that is still taking members, per loop; it closes when its turn comes.
        self._forming: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, list[_Member]] = weakref.WeakKeyDictionary()
        self._tasks: set[asyncio.Task[None]] = set()  # referenced until done (the loop keeps only weak references)

    async def run(self, work: Callable[[DriverTransaction], T]) -> T:
        """`work` (synchronous; it must not await) in the next group's transaction; its result once committed."""
        loop = asyncio.get_running_loop()
        members = self._forming.get(loop)
        if members is None or len(members) >= GROUP_LIMIT:
            members = self._forming[loop] = []
            task = loop.create_task(self._commit(loop, members))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        future: asyncio.Future[T] = loop.create_future()
        members.append(_Member(work, future))
        return await future

    async def _commit(self, loop: asyncio.AbstractEventLoop, members: list[_Member]) -> None:
        try:
            async with self._turn():
                self._close(loop, members)
                self._run([m for m in members if not m.future.done()])  # a caller that went away is left out
        except BaseException as exc:  # the turn never came (503 DATABASE_BUSY), or the loop is closing
            self._close(loop, members)
            for member in members:
                _fail(member, exc, shared=True)
            if not isinstance(exc, Exception):
                raise

    def _close(self, loop: asyncio.AbstractEventLoop, members: list[_Member]) -> None:
        if self._forming.get(loop) is members:
            del self._forming[loop]

    def _run(self, members: list[_Member]) -> None:
        if not members:
            return
        connection = self._connection()
        try:
            connection.execute("BEGIN IMMEDIATE")  # its busy timeout is 0: never waits on the loop
        except sqlite3.Error as exc:
            busy = isinstance(exc, sqlite3.OperationalError) and exc.sqlite_errorcode == sqlite3.SQLITE_BUSY
            refused: Exception = WriteTurnBusy(str(exc)) if busy else self._error("BEGIN IMMEDIATE", exc)
            for member in members:
                _fail(member, refused, shared=True)
            return
        outcomes: list[_Outcome] = []
        try:
            self._apply(connection, members, outcomes)
            connection.execute("COMMIT")
        except BaseException as exc:
            connection.rollback()
            failure = self._error("COMMIT", exc) if isinstance(exc, sqlite3.Error) else exc
            for member, _result, own in outcomes:
                if own is not None:
                    _fail(member, own)
            for member in members:
                _fail(member, failure, shared=True)  # the work of each that had none of its own is not stored
            if not isinstance(exc, Exception):
                raise
            return
        for member, result, own in outcomes:
            if own is not None:
                _fail(member, own)
            else:
                member.future.set_result(result)

    def _apply(self, connection: sqlite3.Connection, members: list[_Member], outcomes: list[_Outcome]) -> None:
        """Each member's work, in a savepoint of its own when there are several, its outcome added to `outcomes`.
        Raises what must roll back the whole transaction: the error of a member alone, or one after which SQLite
        rolled it all back itself (a full disk, an I/O error)."""
        transaction = DriverTransaction(connection, self._dialect)
        savepoints = len(members) > 1
        for member in members:
            if savepoints:
                connection.execute("SAVEPOINT inline_write")
            try:
                result = member.work(transaction)
            except Exception as exc:
                outcomes.append((member, None, exc))
                if not savepoints or not connection.in_transaction:
                    raise
                connection.execute("ROLLBACK TO inline_write")
                connection.execute("RELEASE inline_write")
                continue
            if savepoints:
                connection.execute("RELEASE inline_write")
            outcomes.append((member, result, None))

    def _error(self, sql: str, exc: sqlite3.Error) -> StatementError:
        return DBAPIError.instance(sql, (), exc, sqlite3.Error, dialect=self._dialect)


class _Item(Generic[ItemT, ResultT]):
    __slots__ = ("future", "item")

    def __init__(self, item: ItemT, future: asyncio.Future[ResultT]) -> None:
        self.item = item
        self.future = future


_Queue = list[_Item[ItemT, ResultT]]  # the items waiting for a loop's next statement


class StatementGroups(Generic[ItemT, ResultT]):
    """PostgreSQL: the writes of one kind that reach an event loop together, run as one statement by `run` (which
    takes a writer from Database.async_reads and the items, and returns each item's result in order), in autocommit.

    At most one statement of the kind is in flight per loop and database: the items that arrive while it runs form
    the next group, so groups grow with the load and a lone write goes at once. Measured on creating models at
    16 connections (bench/RESULTS.md): PostgreSQL's planning, commit and WAL flush, and the driver's work, once per
    group instead of once per create.

    What a caller is told is what is stored. A statement that fails as a whole for one item's sake (a value its
    column refuses, a reference gone) stored nothing, so each item of the group runs again alone and gets its own
    result or error. A statement whose connection was lost may have committed, and never runs again: each caller
    gets the error (a 503). A caller that went away before its group ran is left out."""

    def __init__(
        self, run: Callable[[AsyncReader, list[ItemT]], Awaitable[list[ResultT]]], limit: int = GROUP_LIMIT
    ) -> None:
        self._run = run
        self._limit = limit
        # The items waiting for each loop's next statement, per AsyncReads (one per Database).
        self._waiting: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[AsyncReads, _Queue[ItemT, ResultT]]
        ] = weakref.WeakKeyDictionary()
        self._tasks: set[asyncio.Task[None]] = set()

    async def run(self, reads: AsyncReads, item: ItemT) -> ResultT:
        """`item` written with the others of its group; its result once the statement has committed."""
        loop = asyncio.get_running_loop()
        queues = self._waiting.setdefault(loop, {})
        queue = queues.get(reads)
        if queue is None:
            queue = queues[reads] = []
            task = loop.create_task(self._drain(reads, queues, queue))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        future: asyncio.Future[ResultT] = loop.create_future()
        queue.append(_Item(item, future))
        return await future

    async def _drain(
        self, reads: AsyncReads, queues: dict[AsyncReads, _Queue[ItemT, ResultT]], queue: _Queue[ItemT, ResultT]
    ) -> None:
        try:
            while queue:
                group = [i for i in queue[: self._limit] if not i.future.done()]  # a caller that went away: left out
                del queue[: self._limit]
                if group:
                    await self._write(reads, group)
        except BaseException as exc:  # the loop is closing
            for waiting in queue:
                _fail(waiting, exc, shared=True)
            raise
        finally:
            del queues[reads]

    async def _write(self, reads: AsyncReads, group: list[_Item[ItemT, ResultT]]) -> None:
        try:
            async with reads.writing() as writer:
                results = await self._run(writer, [i.item for i in group])
        except DBAPIError as exc:
            if len(group) > 1 and not exc.connection_invalidated:
                for alone in group:  # nothing of the statement was stored: each on its own, for its own answer
                    await self._write(reads, [alone])
                return
            for failed in group:
                _fail(failed, exc, shared=True)
            return
        except BaseException as exc:
            for failed in group:
                _fail(failed, exc, shared=True)
            if not isinstance(exc, Exception):
                raise
            return
        for done, result in zip(group, results, strict=True):
            if not done.future.done():
                done.future.set_result(result)


def _fail(member: _Member | _Item[Any, Any], exc: BaseException, *, shared: bool = False) -> None:
    """`exc` raised to `member`'s caller (unless it has its answer already); one `shared` by several callers is
    copied for each, so that their tracebacks do not pile up on one object."""
    if member.future.done():
        return
    if isinstance(exc, asyncio.CancelledError):
        member.future.cancel()
        return
    if shared:
        with contextlib.suppress(Exception):  # one that cannot be copied is raised as it is
            exc = copy.copy(exc)
    member.future.set_exception(exc)
