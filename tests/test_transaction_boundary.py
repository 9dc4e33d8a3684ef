"""The request boundary (modelyard.kit.routing). A write whose endpoint is a plain function commits in the endpoint's
thread when it returns a success, before its answer is even serialised, so that on SQLite the one write lock is
not held across the hand-back to the event loop; an error answer commits nothing; with an `Idempotency-Key` the
commit still follows the response, which the key's record stores with the change. And where database calls run:
on the event loop, in a read thread, or in the general pool."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient
from pydantic import BaseModel, model_serializer

from modelyard.db.engine import Database
from modelyard.kit import routing
from modelyard.kit.routing import DbSession, api_router
from modelyard.workspace.tables import Workspace


def _visible(db: Database, name: str) -> bool:
    """Whether another connection sees workspace `name`: whether its transaction has committed."""
    with db.session(write=False) as session:
        return session.scalar(sa.select(sa.func.count()).where(Workspace.name == name)) == 1


class _Seen(BaseModel):
    """An answer whose serialisation (on the event loop, after the endpoint returned) records what another
    connection saw at that moment."""

    name: str

    @model_serializer
    def _serialise(self) -> dict[str, object]:
        return {"name": self.name, "committed_when_serialised": SEEN[self.name]()}


SEEN: dict[str, Callable[[], bool]] = {}


@pytest.fixture
def routes(app: FastAPI, db: Database) -> None:
    router = api_router("/v1/test-boundary")

    def add(session: DbSession, name: str) -> None:
        session.add(Workspace(name=name, description="", created_by="t", updated_by="t"))
        session.flush()
        SEEN[name] = lambda: _visible(db, name)

    @router.post("/answer", response_model=_Seen)
    def answer(session: DbSession, name: str) -> _Seen:
        add(session, name)
        return _Seen(name=name)

    @router.post("/refuse")
    def refuse(session: DbSession, name: str, request: Request) -> JSONResponse:
        add(session, name)
        return JSONResponse({"error_msg": "no"}, status_code=409)

    app.router.routes.extend(router.routes)


@pytest.mark.usefixtures("routes")
def test_a_write_commits_when_its_endpoint_returns(client: TestClient, db: Database) -> None:
    r = client.post("/v1/test-boundary/answer", params={"name": "early"})
    assert r.status_code == 200, r.text
    assert r.json() == {"name": "early", "committed_when_serialised": True}
    assert _visible(db, "early")


@pytest.mark.usefixtures("routes")
def test_an_error_answer_commits_nothing(client: TestClient, db: Database) -> None:
    r = client.post("/v1/test-boundary/refuse", params={"name": "refused"})
    assert r.status_code == 409
    assert not _visible(db, "refused")
    # The boundary rolled the request's transaction back: on SQLite the writer lock is free again.
    assert client.post("/v1/test-boundary/answer", params={"name": "after"}).status_code == 200


@pytest.mark.usefixtures("routes")
def test_with_an_idempotency_key_the_commit_follows_the_answer(client: TestClient, db: Database) -> None:
    """The key's record holds the answer, and commits with the change: one transaction, after serialisation."""
    headers = {"Idempotency-Key": "boundary-1"}
    first = client.post("/v1/test-boundary/answer", params={"name": "keyed"}, headers=headers)
    assert first.status_code == 200, first.text
    assert first.json() == {"name": "keyed", "committed_when_serialised": False}
    assert _visible(db, "keyed")
    again = client.post("/v1/test-boundary/answer", params={"name": "keyed"}, headers=headers)
    assert again.status_code == 200
    assert again.json() == first.json()


def _peak_concurrency(app: FastAPI, method: str, dispatch: Callable[..., Any], calls: int = 8) -> int:
    """How many of `calls` concurrent database calls (each 50 ms long) `dispatch` ran at once for a `method`."""
    request = Request({"type": "http", "method": method, "app": app, "headers": [], "path": "/", "query_string": b""})
    lock = threading.Lock()
    running = peak = 0

    def call() -> None:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.05)
        with lock:
            running -= 1

    async def all_at_once() -> None:
        await asyncio.gather(*(dispatch(request, call) for _ in range(calls)))

    asyncio.run(all_at_once())
    return peak


def test_reads_on_postgresql_take_turns_on_a_few_threads(
    app: FastAPI, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL, reads queue for the process's READ_THREADS instead of each waking a thread of the general
    pool (where 32 concurrent GETs fought over the GIL); writes keep the general pool, so a write waiting on a row
    lock holds up no read. On SQLite, reads run on the event loop, one at a time."""
    monkeypatch.setattr(routing, "READ_THREADS", 2)
    if db.is_sqlite:
        assert _peak_concurrency(app, "GET", routing.run_read) == 1
        assert _peak_concurrency(app, "GET", routing.run_db) == 1
        return
    assert _peak_concurrency(app, "GET", routing.run_read) == 2
    assert _peak_concurrency(app, "POST", routing.run_read) == 2  # a write's access check is a prebuilt read
    assert _peak_concurrency(app, "GET", routing.run_db) == 2
    assert _peak_concurrency(app, "POST", routing.run_db) == 8


def test_a_read_session_sees_one_snapshot(db: Database) -> None:
    """A request's read session sees the database as of its first read, on both databases: a change committed
    between two of its reads does not show in the second (PostgreSQL's READ COMMITTED would show it)."""
    with db.session(write=True) as writer:
        writer.add(Workspace(name="snap", description="before", created_by="t", updated_by="t"))
        writer.commit()
    with db.session(write=False) as reader:
        first = reader.scalar(sa.select(Workspace.description).where(Workspace.name == "snap"))
        with db.session(write=True) as writer:
            writer.execute(sa.update(Workspace).where(Workspace.name == "snap").values(description="after"))
            writer.commit()
        again = reader.execute(sa.select(Workspace.description).where(Workspace.name == "snap")).scalar_one()
    assert (first, again) == ("before", "before")
    with db.session(write=False) as later:
        assert later.scalar(sa.select(Workspace.description).where(Workspace.name == "snap")) == "after"
