"""SQLite's writers inside one process queue on a lock (modelyard.db.engine): every way a write transaction ends
must hand the lock on, or every later writer of the process would wait for ever."""

from __future__ import annotations

import asyncio
import fcntl
import os
import sqlite3
import threading
import time
from collections.abc import Callable

import pytest
import sqlalchemy as sa
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool

from modelyard.db import engine, group_commit, writes
from modelyard.db.engine import Database
from modelyard.db.writer_lock import WriteTurnBusy
from modelyard.errors import ServiceUnavailable
from modelyard.kit.routing import DbSession, api_router, inline_write
from modelyard.workspace.tables import Workspace
from tests.fixtures.app import MakeUser, error_shape


@pytest.fixture
def sqlite_db(db: Database) -> Database:
    if not db.is_sqlite:
        pytest.skip("the writer lock is SQLite's")
    return db


def _next_writer_gets_through(db: Database) -> None:
    """Another thread's write transaction starts and commits (it would hang on a leaked lock)."""
    done = threading.Event()

    def write() -> None:
        with db.session(write=True) as session:
            session.add(Workspace(name="after", description="", created_by="t", updated_by="t"))
            session.commit()
        done.set()

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    assert done.wait(10), "a later writer is stuck: the writer lock was not released"


def _commit(db: Database) -> None:
    with db.session(write=True) as session:
        session.add(Workspace(name="first", description="", created_by="t", updated_by="t"))
        session.commit()


def _rollback_after_error(db: Database) -> None:
    _commit(db)
    with db.session(write=True) as session:
        session.add(Workspace(name="first", description="", created_by="t", updated_by="t"))
        with pytest.raises(IntegrityError):
            session.flush()
        session.rollback()


def _close_without_commit(db: Database) -> None:
    session = db.session(write=True)
    session.execute(sa.select(Workspace.id))  # BEGIN IMMEDIATE: the lock is taken
    session.close()


def _invalidate(db: Database) -> None:
    session = db.session(write=True)
    session.connection().invalidate()
    session.close()


@pytest.mark.parametrize("end", [_commit, _rollback_after_error, _close_without_commit, _invalidate])
def test_every_end_of_a_write_releases_the_lock(sqlite_db: Database, end: Callable[[Database], None]) -> None:
    end(sqlite_db)
    _next_writer_gets_through(sqlite_db)
    with sqlite_db.session(write=False) as session:
        assert session.scalar(sa.select(sa.func.count()).where(Workspace.name == "after")) == 1


def test_writers_wait_for_each_other_instead_of_failing(sqlite_db: Database) -> None:
    errors: list[BaseException] = []

    def write(i: int) -> None:
        try:
            with sqlite_db.session(write=True) as session:
                count = session.scalar(sa.select(sa.func.count()).select_from(Workspace)) or 0
                session.add(Workspace(name=f"w{i}-{count}", description="", created_by="t", updated_by="t"))
                session.commit()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    with sqlite_db.session(write=False) as session:
        names = session.scalars(sa.select(Workspace.name)).all()
    # Each writer saw the ones before it: the counts 0..15 each appear once, so no two overlapped.
    assert sorted(int(n.split("-")[1]) for n in names) == list(range(16))


def test_a_writer_that_waits_too_long_gets_503_and_changes_nothing(
    sqlite_db: Database, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine, "SQLITE_BUSY_TIMEOUT_MS", 200)
    holder = sqlite_db.session(write=True)
    holder.execute(sa.select(Workspace.id))  # holds the writer lock
    try:
        r = client.post("/v1/workspaces", json={"name": "late"})
    finally:
        holder.close()
    assert r.status_code == 503
    assert error_shape(r)["error_code"] == "DATABASE_BUSY"
    assert r.headers["Retry-After"] == "1"
    assert client.get("/v1/workspaces/late").status_code == 404
    assert client.post("/v1/workspaces", json={"name": "late"}).status_code == 201


_VERSION = {"config": {"llm_model_config": {"base_model_type": "TINY_LLAMA", "model_path": "default/files"}}}


@pytest.mark.parametrize(
    ("path", "missing", "body", "missing_code"),
    [
        ("/v1/workspaces/default/models", "/v1/workspaces/nope/models", {"name": "m2"}, "WORKSPACE_NOT_FOUND"),
        (
            "/v1/workspaces/default/models/m/versions",
            "/v1/workspaces/default/models/absent/versions",
            _VERSION,
            "MODEL_NOT_FOUND",
        ),
    ],
    ids=["a model", "a version"],
)
def test_access_checks_do_not_wait_for_the_writer_lock(
    sqlite_db: Database,
    client: TestClient,
    make_user: MakeUser,
    monkeypatch: pytest.MonkeyPatch,
    path: str,
    missing: str,
    body: dict[str, object],
    missing_code: str,
) -> None:
    """A create is refused by its workspace's or model's check (404, 403) without queueing for the write lock: the
    check is a prebuilt read outside the write transaction, which starts at the request's first change."""
    monkeypatch.setattr(engine, "SQLITE_BUSY_TIMEOUT_MS", 30_000)
    assert client.post("/v1/workspaces/default/models", json={"name": "m"}).status_code == 201
    viewer = make_user("viewer", workspaces={"default": "viewer"})
    holder = sqlite_db.session(write=True)
    holder.execute(sa.select(Workspace.id))  # holds the writer lock
    try:
        started = time.monotonic()
        refused = viewer.post(path, json=body)
        absent = client.post(missing, json=body)
        waited = time.monotonic() - started
    finally:
        holder.close()
    assert (refused.status_code, error_shape(refused)["error_code"]) == (403, "INSUFFICIENT_ROLE")
    assert (absent.status_code, error_shape(absent)["error_code"]) == (404, missing_code)
    assert waited < 20  # would be 2 x 30 s had the checks queued for the lock
    assert client.post(path, json=body).status_code == 201


def _other_process_could_write(db: Database) -> bool:
    """Whether another process would get the writers' file lock now: a second open file description of the lock
    file conflicts with the first one as another process's would, even inside this process."""
    assert db.writers is not None
    fd = os.open(db.writers.path, os.O_RDWR | os.O_CREAT, 0o600)  # as another process would open it
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)  # Closing the descriptor also drops a lock it got.
    return True


def test_a_write_transaction_holds_the_lock_other_processes_wait_on(sqlite_db: Database) -> None:
    """`serve --workers N` and `modelyard worker` queue on a file lock beside the database, held from BEGIN
    IMMEDIATE to the end of the transaction; reads never take it."""
    with sqlite_db.session(write=False) as reader:
        reader.execute(sa.select(Workspace.id))
        assert _other_process_could_write(sqlite_db)
    writer = sqlite_db.session(write=True)
    writer.execute(sa.select(Workspace.id))  # BEGIN IMMEDIATE
    try:
        assert not _other_process_could_write(sqlite_db)
    finally:
        writer.close()
    assert _other_process_could_write(sqlite_db)


def test_a_writer_waits_for_another_process_then_goes_first(sqlite_db: Database) -> None:
    """Another process's writer (a second Database on the same file: its own lock file descriptor) holds the file
    lock: this process's writer waits for it instead of failing, and writes once it is released."""
    other = Database(sqlite_db.url)
    holder = other.session(write=True)
    holder.execute(sa.select(Workspace.id))
    done = threading.Event()

    def write() -> None:
        _commit(sqlite_db)
        done.set()

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    try:
        assert not done.wait(0.5), "the writer did not wait for the other process's transaction"
    finally:
        holder.close()
        other.dispose()
    assert done.wait(10), "the writer is stuck after the other process's transaction ended"
    with sqlite_db.session(write=False) as session:
        assert session.scalar(sa.select(sa.func.count()).where(Workspace.name == "first")) == 1


# -- inline writes: a short write endpoint runs on the event loop with its turn on the lock (Database.write_turn) --


def _begin_write(db: Database) -> sa.orm.Session:
    session = db.session(write=True)
    session.execute(sa.select(Workspace.id))  # BEGIN IMMEDIATE
    return session


def test_an_inline_write_holds_its_turn_from_begin_to_commit(sqlite_db: Database) -> None:
    async def write() -> None:
        async with sqlite_db.write_turn() as turn:
            assert turn
            assert not _other_process_could_write(sqlite_db)  # taken before the transaction begins
            session = _begin_write(sqlite_db)
            session.add(Workspace(name="inline", description="", created_by="t", updated_by="t"))
            session.commit()  # the connection goes back, and the lock with it
            assert _other_process_could_write(sqlite_db)
            session.close()

    asyncio.run(write())
    _next_writer_gets_through(sqlite_db)
    with sqlite_db.session(write=False) as session:
        assert set(session.scalars(sa.select(Workspace.name))) == {"inline", "after"}


def test_a_turn_left_unused_is_given_back(sqlite_db: Database) -> None:
    async def nothing() -> None:
        async with sqlite_db.write_turn() as turn:
            assert turn

    asyncio.run(nothing())
    assert _other_process_could_write(sqlite_db)
    _next_writer_gets_through(sqlite_db)


def test_one_write_transaction_per_turn(sqlite_db: Database) -> None:
    """A second transaction would have to wait for the lock on the event loop: refused, and the lock is free."""

    async def twice() -> None:
        async with sqlite_db.write_turn():
            _commit(sqlite_db)
            with pytest.raises(RuntimeError, match="second write transaction"):
                _begin_write(sqlite_db).close()

    asyncio.run(twice())
    _next_writer_gets_through(sqlite_db)


def _holders() -> list[Callable[[Database], Callable[[], None]]]:
    def thread_of_this_process(db: Database) -> Callable[[], None]:
        return _begin_write(db).close

    def another_process(db: Database) -> Callable[[], None]:
        other = Database(db.url)  # its own lock file descriptor: another process to flock
        session = _begin_write(other)

        def end() -> None:
            session.close()
            other.dispose()

        return end

    return [thread_of_this_process, another_process]


@pytest.mark.parametrize("hold", _holders(), ids=["a thread of this process", "another process"])
def test_the_turn_is_waited_for_without_blocking_the_loop(
    sqlite_db: Database, hold: Callable[[Database], Callable[[], None]]
) -> None:
    release = hold(sqlite_db)
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    async def main() -> float:
        ticker = asyncio.create_task(tick())
        asyncio.get_running_loop().call_later(0.3, release)  # the holder commits 0.3 s from now
        started = time.monotonic()
        async with sqlite_db.write_turn() as turn:
            waited = time.monotonic() - started
            assert turn
            _commit(sqlite_db)
        ticker.cancel()
        return waited

    waited = asyncio.run(main())
    assert waited >= 0.25
    assert ticks >= 10  # the loop went on meanwhile (30 ticks of 10 ms, on an idle machine)
    with sqlite_db.session(write=False) as session:
        assert session.scalar(sa.select(sa.func.count()).where(Workspace.name == "first")) == 1


def test_waiting_too_long_for_the_turn_is_a_503(sqlite_db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "SQLITE_BUSY_TIMEOUT_MS", 200)
    holder = _begin_write(sqlite_db)

    async def late() -> None:
        async with sqlite_db.write_turn():
            raise AssertionError("the turn came while the holder held the lock")

    try:
        with pytest.raises(ServiceUnavailable) as busy:
            asyncio.run(late())
    finally:
        holder.close()
    assert busy.value.error_code == "DATABASE_BUSY"
    _next_writer_gets_through(sqlite_db)


def _outside_writer(db: Database) -> sqlite3.Connection:
    """A writer that does not take turns (a `sqlite3` shell): it holds SQLite's own write lock."""
    path = db.url.removeprefix("sqlite:///")
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    return conn


def test_an_inline_write_does_not_wait_for_a_writer_outside_the_turns(sqlite_db: Database) -> None:
    outside = _outside_writer(sqlite_db)

    async def write() -> None:
        async with sqlite_db.write_turn() as turn:
            assert turn
            session = sqlite_db.session(write=True)
            started = time.monotonic()
            with pytest.raises(WriteTurnBusy):
                session.connection()
            assert time.monotonic() - started < 5  # not SQLite's 30 s busy timeout
            session.close()

    try:
        asyncio.run(write())
        assert _other_process_could_write(sqlite_db)  # the turn was given back
    finally:
        outside.rollback()
        outside.close()
    _next_writer_gets_through(sqlite_db)


def _writer_of_this_process(db: Database) -> Callable[[], None]:
    return _begin_write(db).close


def _writer_outside_the_turns(db: Database) -> Callable[[], None]:
    outside = _outside_writer(db)

    def end() -> None:
        outside.rollback()
        outside.close()

    return end


@pytest.mark.parametrize(
    "hold", [_writer_of_this_process, _writer_outside_the_turns], ids=["a writer of this process", "a sqlite3 shell"]
)
def test_the_loop_answers_while_a_create_waits(
    sqlite_db: Database, client: TestClient, hold: Callable[[Database], Callable[[], None]]
) -> None:
    """A create waits for a writer of this process (for its turn, on the loop), or for one that takes no turns (in
    a worker thread, in SQLite's busy handler, as any writer does); meanwhile the loop answers other requests, and
    the create lands once the other writer is done."""
    assert client.get("/v1/workspaces/default/models").status_code == 200  # the caller's token is cached
    release = hold(sqlite_db)
    answers: list[int] = []
    thread = threading.Thread(
        target=lambda: answers.append(client.post("/v1/workspaces/default/models", json={"name": "m"}).status_code)
    )
    thread.start()
    try:
        thread.join(0.5)
        assert thread.is_alive(), "the create did not wait for the other writer"
        started = time.monotonic()
        assert client.get("/v1/workspaces/default/models/absent").status_code == 404
        assert time.monotonic() - started < 5
    finally:
        release()
    thread.join(20)
    assert answers == [201]
    assert client.get("/v1/workspaces/default/models/m").status_code == 200


def test_an_inline_write_whose_transaction_began_earlier_goes_to_a_thread(
    sqlite_db: Database, app: FastAPI, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A dependency that already began the request's write transaction holds the lock: the endpoint must not wait
    for a turn (it would wait for its own request until the busy timeout's 503)."""
    monkeypatch.setattr(engine, "SQLITE_BUSY_TIMEOUT_MS", 2000)
    router = api_router("/test")

    async def begins(session: DbSession) -> None:
        await run_in_threadpool(session.execute, sa.select(Workspace.id))  # BEGIN IMMEDIATE: the lock is taken

    @router.post("/inline-after-begin", dependencies=[Depends(begins)])
    @inline_write
    def write(session: DbSession) -> dict[str, bool]:
        session.add(Workspace(name="late", description="", created_by="t", updated_by="t"))
        return {"ok": True}

    app.router.routes.extend(router.routes)  # as modelyard.api adds its routers
    started = time.monotonic()
    assert client.post("/test/inline-after-begin").status_code == 200
    assert time.monotonic() - started < 1.5
    with sqlite_db.session(write=False) as session:
        assert session.scalar(sa.select(sa.func.count()).where(Workspace.name == "late")) == 1


# -- inline writes: writes on the event loop without the session, committed in groups (Database.inline_write) --------

_NEW_WORKSPACE = writes.Insert(Workspace.__table__)  # type: ignore[arg-type]


def _new_workspace(name: str) -> writes.Row:
    return _NEW_WORKSPACE.row({"name": name, "description": "", "created_by": "t", "updated_by": "t"})


def _insert(*names: str) -> Callable[[writes.DriverTransaction], int]:
    """An inline write of workspaces named `names`, one statement each (a repeated name fails on the second)."""

    def work(transaction: writes.DriverTransaction) -> int:
        return sum(writes.insert(transaction, _NEW_WORKSPACE, [_new_workspace(name)]) for name in names)

    return work


def _workspace_names(db: Database) -> set[str]:
    with db.session(write=False) as session:
        return set(session.scalars(sa.select(Workspace.name)))


def _transactions(db: Database) -> list[str]:
    """The BEGINs and COMMITs the inline writes' connection runs from now on."""
    seen: list[str] = []
    db._inline_connection().set_trace_callback(
        lambda sql: seen.append(sql) if sql.startswith(("BEGIN", "COMMIT")) else None
    )
    return seen


def test_an_inline_write_commits_in_its_turn_and_gives_the_lock_back(sqlite_db: Database) -> None:
    def work(transaction: writes.DriverTransaction) -> str:
        assert writes.insert(transaction, _NEW_WORKSPACE, [_new_workspace("inline")]) == 1
        assert not _other_process_could_write(sqlite_db)  # held from BEGIN to COMMIT
        assert "inline" not in _workspace_names(sqlite_db)  # not committed yet: readers do not see it
        return "done"

    async def write() -> None:
        assert await sqlite_db.inline_write(work) == "done"
        assert _other_process_could_write(sqlite_db)
        assert "inline" in _workspace_names(sqlite_db)

    asyncio.run(write())
    _next_writer_gets_through(sqlite_db)


def test_an_inline_write_that_raises_stores_nothing(sqlite_db: Database) -> None:
    """An error in the work rolls back what it inserted; a constraint's error is SQLAlchemy's IntegrityError, as in
    a session."""
    with pytest.raises(IntegrityError):
        asyncio.run(sqlite_db.inline_write(_insert("half", "half")))  # the name is unique
    assert "half" not in _workspace_names(sqlite_db)
    assert _other_process_could_write(sqlite_db)
    _next_writer_gets_through(sqlite_db)
    assert asyncio.run(sqlite_db.inline_write(_insert("half"))) == 1  # the kept connection is not left in one
    assert "half" in _workspace_names(sqlite_db)


def test_inline_writes_that_come_together_share_one_commit(sqlite_db: Database) -> None:
    transactions = _transactions(sqlite_db)

    async def together() -> list[int]:
        return await asyncio.gather(*(sqlite_db.inline_write(_insert(f"w{i}")) for i in range(10)))

    assert asyncio.run(together()) == [1] * 10
    assert transactions == ["BEGIN IMMEDIATE", "COMMIT"]
    assert {f"w{i}" for i in range(10)} <= _workspace_names(sqlite_db)


def test_a_group_holds_at_most_its_limit(sqlite_db: Database) -> None:
    transactions = _transactions(sqlite_db)
    count = group_commit.GROUP_LIMIT + 1

    async def together() -> list[int]:
        return await asyncio.gather(*(sqlite_db.inline_write(_insert(f"w{i}")) for i in range(count)))

    assert asyncio.run(together()) == [1] * count
    assert transactions == ["BEGIN IMMEDIATE", "COMMIT"] * 2


def test_one_write_that_fails_in_a_group_loses_only_its_own_work(sqlite_db: Database) -> None:
    """Its savepoint is rolled back, with the row it had inserted before its error; the others commit."""

    async def together() -> list[int | BaseException]:
        return await asyncio.gather(
            sqlite_db.inline_write(_insert("a")),
            sqlite_db.inline_write(_insert("b", "b")),
            sqlite_db.inline_write(_insert("c")),
            return_exceptions=True,
        )

    first, failed, last = asyncio.run(together())
    assert (first, last) == (1, 1)
    assert isinstance(failed, IntegrityError)
    names = _workspace_names(sqlite_db)
    assert {"a", "c"} <= names
    assert "b" not in names
    _next_writer_gets_through(sqlite_db)


def test_a_group_whose_commit_fails_stores_nothing_and_tells_each_write(sqlite_db: Database) -> None:
    """A foreign key checked at COMMIT (deferred) fails the whole transaction: no caller is told it was stored."""

    def orphan(transaction: writes.DriverTransaction) -> int:
        transaction.connection.execute("PRAGMA defer_foreign_keys=ON")  # for this transaction only
        transaction.connection.execute(
            "INSERT INTO memberships (workspace_id, user_id, role, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
            ("no-such-workspace", "no-such-user", "viewer", "2026-01-01 00:00:00", "2026-01-01 00:00:00"),
        )
        return 1

    async def together() -> list[int | BaseException]:
        return await asyncio.gather(
            sqlite_db.inline_write(_insert("x")),
            sqlite_db.inline_write(orphan),
            sqlite_db.inline_write(_insert("y")),
            return_exceptions=True,
        )

    outcomes = asyncio.run(together())
    assert all(isinstance(o, IntegrityError) and "FOREIGN KEY" in str(o) for o in outcomes), outcomes
    assert len({id(o) for o in outcomes}) == 3  # each caller its own copy of the error
    assert not {"x", "y"} & _workspace_names(sqlite_db)
    assert _other_process_could_write(sqlite_db)
    assert asyncio.run(sqlite_db.inline_write(_insert("x"))) == 1


def test_a_write_whose_caller_went_away_before_its_group_ran_is_left_out(sqlite_db: Database) -> None:
    async def write() -> None:
        gone = asyncio.ensure_future(sqlite_db.inline_write(_insert("gone")))
        kept = asyncio.ensure_future(sqlite_db.inline_write(_insert("kept")))
        await asyncio.sleep(0)  # both joined the group, which has not run yet
        gone.cancel()
        assert await kept == 1
        with pytest.raises(asyncio.CancelledError):
            await gone

    asyncio.run(write())
    names = _workspace_names(sqlite_db)
    assert "kept" in names
    assert "gone" not in names


def test_an_inline_write_gives_way_to_a_writer_outside_the_turns(sqlite_db: Database) -> None:
    """A `sqlite3` shell holding SQLite's lock: WriteTurnBusy at once, not after SQLite's busy timeout, with nothing
    done, and the turn given back; the connections of the pool still wait for the lock as long as they always did."""
    outside = _outside_writer(sqlite_db)

    async def together() -> list[int | BaseException]:
        return await asyncio.gather(
            *(sqlite_db.inline_write(_insert(f"w{i}")) for i in range(2)), return_exceptions=True
        )

    try:
        started = time.monotonic()
        assert all(isinstance(o, WriteTurnBusy) for o in asyncio.run(together()))
        assert time.monotonic() - started < 5
        assert _other_process_could_write(sqlite_db)
        with sqlite_db.engine.connect() as connection:
            timeout = connection.exec_driver_sql("PRAGMA busy_timeout").scalar()
        assert timeout == engine.SQLITE_BUSY_TIMEOUT_MS
    finally:
        outside.rollback()
        outside.close()
    _next_writer_gets_through(sqlite_db)
    assert not {"w0", "w1"} & _workspace_names(sqlite_db)


def test_an_inline_write_after_dispose_opens_its_connection_again(sqlite_db: Database) -> None:
    asyncio.run(sqlite_db.inline_write(_insert("before")))
    sqlite_db.dispose()
    asyncio.run(sqlite_db.inline_write(_insert("after-dispose")))
    assert {"before", "after-dispose"} <= _workspace_names(sqlite_db)


def test_inline_writes_are_sqlites(db: Database) -> None:
    if db.is_sqlite:
        pytest.skip("PostgreSQL's writes are single statements (modelyard.db.writes.Guarded)")

    def work(_transaction: writes.DriverTransaction) -> None:
        raise AssertionError("ran")

    with pytest.raises(RuntimeError, match="SQLite's"):
        asyncio.run(db.inline_write(work))
