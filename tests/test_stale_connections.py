"""Pooled PostgreSQL connections that drop while they sit in the pool (a restarted server, a firewall or
`idle_session_timeout` closing a quiet connection): idle ones are pinged before use, prebuilt reads run again on a
new connection, and a session that meets one fails once, with 503 DATABASE_UNAVAILABLE, not a 500.

The connections are dropped for real, with `pg_terminate_backend`, and only this test's own: each test's database
object names its connections (`application_name`), so the suite's shared pool is left alone."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable, Iterator

import psycopg
import pytest
import sqlalchemy as sa
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient

from modelyard.db import writes
from modelyard.db.engine import Database
from modelyard.db.reads import AsyncReader, AsyncReads, Read, Row
from modelyard.event import service as events
from modelyard.model import repository as models
from modelyard.model.tables import Model
from modelyard.workspace.tables import Workspace
from tests.fixtures.databases import pg_admin_url

_BY_NAME = Read(sa.select(Workspace.name.label("name")).where(Workspace.name == sa.bindparam("name")))
_NEVER = 3600.0  # seconds: no connection in these tests sits idle that long, so none is pinged for being idle


class Tagged:
    """A Database on the test's PostgreSQL database whose connections carry a name of their own."""

    def __init__(self, url: str, ping_after_idle_seconds: float, pool_size: int = 1) -> None:
        self.tag = f"stale-{secrets.token_hex(4)}"
        self.db = Database(
            f"{url}?application_name={self.tag}", pool_size=pool_size, ping_after_idle_seconds=ping_after_idle_seconds
        )

    def backends(self) -> set[int]:
        return {pid for pid, _state in self._activity()}

    def states(self) -> set[str]:
        return {state for _pid, state in self._activity()}

    def _activity(self) -> list[tuple[int, str]]:
        """The process id and state of each of this database object's connections, as PostgreSQL sees them."""
        with psycopg.connect(pg_admin_url(), autocommit=True) as conn:
            rows = conn.execute("SELECT pid, state FROM pg_stat_activity WHERE application_name = %s", (self.tag,))
            return [(row[0], row[1]) for row in rows]

    def drop_connections(self) -> int:
        """Terminate every connection of this database object, as a server restart would; wait until they are
        gone. The number dropped."""
        pids = self.backends()
        assert pids, "nothing to drop: the test must have pooled a connection first"
        with psycopg.connect(pg_admin_url(), autocommit=True) as conn:
            for pid in pids:
                conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
        deadline = time.monotonic() + 10
        while self.backends() & pids:
            assert time.monotonic() < deadline, "the terminated backends did not exit"
            time.sleep(0.02)
        return len(pids)


@pytest.fixture
def tagged(database_url: str, db: Database) -> Iterator[Callable[..., Tagged]]:
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only: an SQLite connection is a file handle, which does not drop")
    made: list[Tagged] = []

    def make(ping_after_idle_seconds: float, pool_size: int = 1) -> Tagged:
        made.append(Tagged(database_url, ping_after_idle_seconds, pool_size))
        return made[-1]

    yield make
    for t in made:
        t.db.dispose()


def _workspace(db: Database, name: str) -> None:
    with db.session(write=True) as session:
        session.add(Workspace(name=name))
        session.commit()


def _async_reads(t: Tagged, workspace: str | None = "kept") -> AsyncReads:
    """`t`'s asyncio connections (PostgreSQL), after making `workspace` if one is named."""
    if workspace is not None:
        _workspace(t.db, workspace)
    reads = t.db.async_reads
    assert reads is not None
    return reads


def test_a_prebuilt_read_runs_again_on_a_new_connection(tagged: Callable[..., Tagged]) -> None:
    t = tagged(_NEVER)
    _workspace(t.db, "kept")
    with t.db.reading() as reader:
        assert reader.first(_BY_NAME, name="kept") == {"name": "kept"}
    before = t.backends()
    assert t.drop_connections() == 1
    with t.db.reading() as reader:  # the pooled connection is dead, and not pinged: the statement meets it
        assert reader.first(_BY_NAME, name="kept") == {"name": "kept"}
        assert reader.all(_BY_NAME, name="absent") == []  # the reader goes on, on its new connection
    assert t.backends().isdisjoint(before)
    assert t.db.engine.pool.checkedout() == 0


def test_a_read_on_the_event_loop_runs_again_on_a_new_connection(tagged: Callable[..., Tagged]) -> None:
    t = tagged(_NEVER)
    reads = _async_reads(t)

    async def run() -> None:
        async with reads.reading() as reader:
            assert await reader.first(_BY_NAME, name="kept") == {"name": "kept"}
        t.drop_connections()  # the kept asyncio connection, and the engine's pooled one
        async with reads.reading() as reader:  # the kept connection is dead: the statement meets it
            assert await reader.first(_BY_NAME, name="kept") == {"name": "kept"}
            assert await reader.all(_BY_NAME, name="absent") == []  # the reader goes on, on its new connection
        # A second drop in the same read is an error in the one shape: a 503, as for a session.
        async with reads.reading() as reader:
            t.drop_connections()
            await reader.first(_BY_NAME, name="kept")
            t.drop_connections()
            with pytest.raises(sa.exc.DBAPIError) as failed:
                await reader.first(_BY_NAME, name="kept")
            assert failed.value.connection_invalidated
        await reads.close()

    asyncio.run(run())


def test_a_read_interrupted_on_the_event_loop_leaves_nothing_running(tagged: Callable[..., Tagged]) -> None:
    t = tagged(_NEVER)
    reads = _async_reads(t, workspace=None)
    sleep = Read(sa.select(sa.func.pg_sleep(sa.bindparam("seconds")).label("slept")))

    async def run() -> None:
        async def slow() -> None:
            async with reads.reading() as reader:
                await reader.all(sleep, seconds=5)

        with pytest.raises(TimeoutError):
            await asyncio.wait_for(slow(), 0.2)  # a request cancelled while its statement runs
        # The connection was closed, or kept with its statement cancelled: nothing runs on it any more.
        assert t.states() <= {"idle"}
        async with reads.reading() as reader:
            assert len(await reader.all(sleep, seconds=0)) == 1
        await reads.close()

    asyncio.run(run())
    assert t.backends() == set()  # closed by close(), as at the end of the app's lifespan


def test_a_read_that_met_a_dropped_connection_has_the_others_pinged(tagged: Callable[..., Tagged]) -> None:
    t = tagged(_NEVER, pool_size=2)
    _workspace(t.db, "kept")
    with t.db.engine.connect(), t.db.engine.connect():  # two connections in the pool
        pass
    assert t.drop_connections() == 2
    with t.db.reading() as reader:
        assert reader.first(_BY_NAME, name="kept") is not None
    # The session's checkout gets the other dead connection, returned before the drop was seen: it is pinged,
    # found dead, and replaced, where without the ping the session's first statement would fail.
    with t.db.session(write=False) as session:
        assert session.scalar(sa.select(Workspace.name).where(Workspace.name == "kept")) == "kept"


def test_an_idle_connection_is_pinged_before_a_session_uses_it(tagged: Callable[..., Tagged]) -> None:
    t = tagged(ping_after_idle_seconds=0.0)
    _workspace(t.db, "kept")
    t.drop_connections()
    with t.db.session(write=False) as session:
        assert session.scalar(sa.select(Workspace.name).where(Workspace.name == "kept")) == "kept"


def test_a_session_that_meets_a_dropped_connection_fails_once(tagged: Callable[..., Tagged]) -> None:
    t = tagged(_NEVER)
    _workspace(t.db, "kept")
    t.drop_connections()
    with t.db.session(write=False) as session, pytest.raises(sa.exc.DBAPIError) as failed:
        session.scalar(sa.select(Workspace.name))
    assert failed.value.connection_invalidated
    with t.db.session(write=False) as session:  # SQLAlchemy threw the pool's connections away
        assert session.scalar(sa.select(Workspace.name).where(Workspace.name == "kept")) == "kept"


def test_a_write_that_meets_a_dropped_connection_is_invalidated(tagged: Callable[..., Tagged]) -> None:
    t = tagged(_NEVER)
    _workspace(t.db, "kept")
    statement = writes.Insert(Workspace.__table__)  # type: ignore[arg-type]
    with t.db.session(write=True) as session:
        session.scalar(sa.select(Workspace.name))  # the transaction's connection is checked out, alive
        t.drop_connections()
        with pytest.raises(sa.exc.DBAPIError) as failed:
            writes.insert(session, statement, [statement.row({"name": "lost"})])
        assert failed.value.connection_invalidated
        session.rollback()
    with t.db.session(write=False) as session:
        assert session.scalars(sa.select(Workspace.name).order_by(Workspace.name)).all() == ["kept"]


def _new_model(t: Tagged, name: str) -> tuple[Row, Row]:
    """A model's row and its event, for a workspace "kept" that `_workspace` made."""
    with t.db.reading() as reader:
        workspace_id = reader.all(Read(sa.select(Workspace.id.label("id"))))[0]["id"]
    row = models.new_model_row({"workspace_id": workspace_id, "name": name})
    event = events.new_row(actor="a", action="model.created", kind="model", name=name, resource_id=row["id"])
    return row, event


def _model_names(t: Tagged) -> list[str]:
    with t.db.session(write=False) as session:
        return list(session.scalars(sa.select(Model.name).order_by(Model.name)))


async def _insert(writer: AsyncReader, model: tuple[Row, Row]) -> bool:
    return await models.insert_models_async(writer, [model]) == {model[0]["id"]}


@pytest.mark.parametrize("ping_after", [0.0, _NEVER], ids=["idle-pinged", "not-pinged"])
def test_a_write_on_the_event_loop_is_never_run_twice(tagged: Callable[..., Tagged], ping_after: float) -> None:
    """A one-statement write (modelyard.db.writes.Guarded) may have committed when its connection drops, so it is
    not run again: the caller gets the 503's error. A kept connection that sat idle is pinged first, so a server
    restarted meanwhile costs no failed write."""
    t = tagged(ping_after)
    reads = _async_reads(t)

    async def run() -> None:
        async with reads.writing() as writer:
            assert await _insert(writer, _new_model(t, "first"))
        t.drop_connections()  # the kept asyncio connection among them
        async with reads.writing() as writer:
            if ping_after == _NEVER:
                with pytest.raises(sa.exc.DBAPIError) as failed:
                    await _insert(writer, _new_model(t, "lost"))
                assert failed.value.connection_invalidated
            else:
                assert await _insert(writer, _new_model(t, "after-restart"))
        async with reads.writing() as writer:  # on a new connection
            assert await _insert(writer, _new_model(t, "next"))
        await reads.close()

    asyncio.run(run())
    survivor = "after-restart" if ping_after == 0.0 else None
    assert _model_names(t) == sorted(n for n in ("first", "next", survivor) if n)


def _raising(app: FastAPI, error: Exception) -> TestClient:
    router = APIRouter()

    @router.get("/test/database-error")
    def fail() -> None:
        raise error

    app.include_router(router)
    return TestClient(app, raise_server_exceptions=False)


def test_a_lost_connection_is_a_503_in_the_error_shape(app: FastAPI) -> None:
    lost = sa.exc.OperationalError(
        "SELECT 1", {}, Exception("server closed the connection unexpectedly"), connection_invalidated=True
    )
    response = _raising(app, lost).get("/test/database-error")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    body = response.json()
    assert body["error_code"] == "DATABASE_UNAVAILABLE"
    assert set(body) == {"error_code", "error_msg", "solution_msg", "detail"}
    assert "closed the connection" not in body["error_msg"]  # the driver's text stays in the server's log


def test_another_database_error_stays_a_500(app: FastAPI) -> None:
    fault = sa.exc.ProgrammingError("SELECT nope", {}, Exception("syntax error"))
    response = _raising(app, fault).get("/test/database-error")
    assert response.status_code == 500
    assert response.json()["error_code"] == "INTERNAL_ERROR"
    assert "syntax" not in response.text
