"""Answers of polled lists kept while the database is unchanged: the change token (modelyard.db.changes) on both
databases, the cache's own rules, and the model list served from it, never older than the database."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient

from modelyard.app import create_app
from modelyard.config import Settings
from modelyard.db.changes import ChangeWatch
from modelyard.db.engine import Database
from modelyard.kit.answer_cache import Answer, AnswerCache
from modelyard.workspace.tables import Workspace

MODELS = "/v1/workspaces/default/models"


def _token(db: Database) -> str | None:
    with db.session(write=False) as session:
        return db.changes.token(session)


def _commit_elsewhere(db: Database, statement: str) -> None:
    """Commit `statement` through a connection that is not SQLAlchemy's: a writer the server knows nothing about
    (an operator's psql or sqlite3 shell; on SQLite another process, on PostgreSQL as if another machine)."""
    if db.is_sqlite:
        path = sa.engine.make_url(db.url).database
        script = "import sqlite3, sys\nc = sqlite3.connect(sys.argv[1])\nc.execute(sys.argv[2])\nc.commit()\n"
        subprocess.run([sys.executable, "-c", script, str(path), statement], check=True)
    else:
        import psycopg

        with psycopg.connect(db.url.replace("postgresql+psycopg://", "postgresql://", 1), autocommit=True) as conn:
            conn.execute(statement)  # type: ignore[arg-type]


# -- the change token ----------------------------------------------------------------------------------------------


def test_token_stays_while_only_reads_happen(db: Database) -> None:
    if not db.is_sqlite:
        pytest.skip("PostgreSQL's token also moves with writes to the cluster's other databases (other test runs)")
    first = _token(db)
    assert first is not None
    with db.session(write=False) as session:
        session.execute(sa.text("SELECT count(*) FROM models")).scalar_one()
    with db.engine.connect() as conn:
        conn.execute(sa.text("SELECT count(*) FROM workspaces")).scalar_one()
    assert _token(db) == first


def test_token_changes_with_every_commit_of_any_connection(db: Database) -> None:
    before = _token(db)
    with db.session(write=True) as session:
        session.add(Workspace(name="token-test"))
        session.commit()
    after_session = _token(db)
    assert after_session != before
    _commit_elsewhere(db, "UPDATE workspaces SET description = 'changed elsewhere'")
    assert _token(db) != after_session


def test_the_token_read_on_the_event_loop_is_the_sessions(db: Database) -> None:
    reads = db.async_reads
    if reads is None:
        pytest.skip("PostgreSQL only: SQLite's token is read on the loop as it is")

    async def token() -> str:
        async with reads.reading() as reader:
            return await db.changes.token_async(reader)

    async def run() -> None:
        # Equal while nothing commits in between (other test processes may write to the cluster: try a few times).
        equal = [await token() == _token(db) for _ in range(20)]
        assert any(equal)
        before = await token()
        with db.session(write=True) as session:
            session.add(Workspace(name="async-token-test"))
            session.commit()
        assert await token() != before
        await reads.close()

    asyncio.run(run())


def test_no_token_for_a_session_that_has_already_read(db: Database) -> None:
    # Its snapshot may predate the token, so an answer built in it could be older than the token says.
    with db.session(write=False) as session:
        session.execute(sa.text("SELECT 1")).scalar_one()
        assert db.changes.token(session) is None


def test_no_token_for_in_memory_sqlite() -> None:
    engine = sa.create_engine("sqlite://")
    try:
        assert ChangeWatch(engine).enabled is False
    finally:
        engine.dispose()


def test_sqlite_token_sees_other_processes(tmp_path: Path) -> None:
    path = f"{tmp_path}/other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE t (x INTEGER)")
    db = Database(f"sqlite:///{path}")
    try:
        before = _token(db)
        subprocess.run(
            [
                sys.executable,
                "-c",
                f"import sqlite3; c = sqlite3.connect({path!r}); c.execute('INSERT INTO t VALUES (1)'); c.commit()",
            ],
            check=True,
        )
        assert _token(db) != before
    finally:
        db.dispose()


# -- the cache -----------------------------------------------------------------------------------------------------


def test_cache_answers_only_under_the_token_it_was_given() -> None:
    cache = AnswerCache(1024)
    cache.put("a", "t1", Answer.of(b"one"))
    assert cache.get("a", "t1") == Answer.of(b"one")
    assert cache.get("a", "t2") is None
    assert cache.get("a", None) is None
    cache.put("b", "t2", Answer.of(b"two"))  # a new token: what was kept under t1 is gone
    assert cache.get("a", "t1") is None
    assert cache.get("b", "t2") == Answer.of(b"two")
    cache.put("c", None, Answer.of(b"no token, not kept"))
    assert cache.get("c", "t2") is None


def test_cache_keeps_within_its_budget() -> None:
    cache = AnswerCache(100)
    cache.put("a", "t", Answer.of(b"x" * 20))
    cache.put("b", "t", Answer.of(b"x" * 20))
    assert cache.get("a", "t") is not None  # a is now the most recently used
    cache.put("c", "t", Answer.of(b"x" * 20))
    cache.put("d", "t", Answer.of(b"x" * 20))
    cache.put("e", "t", Answer.of(b"x" * 20))  # 100 bytes: all fit
    cache.put("f", "t", Answer.of(b"x" * 20))  # over: the least recently used (b) goes
    assert cache.get("b", "t") is None
    assert cache.get("a", "t") is not None
    cache.put("big", "t", Answer.of(b"x" * 26))  # more than a quarter of the budget: never kept
    assert cache.get("big", "t") is None


def test_a_cache_of_zero_bytes_is_off() -> None:
    cache = AnswerCache(0)
    cache.put("a", "t", Answer.of(b"x"))
    assert cache.enabled is False
    assert cache.get("a", "t") is None


# -- the model list ------------------------------------------------------------------------------------------------


def test_model_list_is_served_again_until_the_database_changes(client: TestClient, app: FastAPI, db: Database) -> None:
    cache: AnswerCache = app.state.ctx.answers
    client.post(MODELS, json={"name": "m1", "description": "first"}).raise_for_status()
    fresh = client.get(MODELS, params={"page_size": 10})
    assert fresh.status_code == 200
    hits = cache.hits
    again = client.get(MODELS, params={"page_size": 10})
    # On PostgreSQL the token also moves with writes to the cluster's other databases (other test processes').
    assert cache.hits == hits + 1 or not db.is_sqlite
    assert again.content == fresh.content
    assert again.headers["content-type"] == "application/json"
    # Pollers that send the ETag back get a 304 without the body while nothing changed.
    etag = fresh.headers["etag"]
    assert again.headers["etag"] == etag
    unchanged = client.get(MODELS, params={"page_size": 10}, headers={"If-None-Match": etag})
    assert unchanged.status_code == 304
    assert unchanged.content == b""
    assert unchanged.headers["etag"] == etag
    # Another query is another entry.
    assert client.get(MODELS, params={"page_size": 10, "name_prefix": "zz"}).json()["data"] == []
    # A write through the API shows at once.
    client.patch(f"{MODELS}/m1", json={"description": "second"}).raise_for_status()
    changed = client.get(MODELS, params={"page_size": 10}, headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["etag"] != etag
    assert [m["description"] for m in changed.json()["data"]] == ["second"]
    # So does a write the server did not make.
    _commit_elsewhere(db, "UPDATE models SET description = 'third'")
    assert [m["description"] for m in client.get(MODELS, params={"page_size": 10}).json()["data"]] == ["third"]
    # Operators see the cache at work.
    metrics = client.get("/metrics").text
    hits, misses, _size = cache.stats()
    assert f"modelyard_list_cache_hits_total {float(hits)}" in metrics
    assert f"modelyard_list_cache_misses_total {float(misses)}" in metrics
    assert hits >= 1 or not db.is_sqlite
    # A cached answer is what a fresh one would be.
    kept = client.get(MODELS, params={"page_size": 10})
    cache.clear()
    assert client.get(MODELS, params={"page_size": 10}).content == kept.content


def test_model_list_without_the_cache(settings: Settings, db: Database, admin_token: str) -> None:
    app = create_app(settings.model_copy(update={"list_cache_mb": 0}), db=db, start_worker=False)
    with TestClient(app, headers={"Authorization": f"Bearer {admin_token}"}) as client:
        client.post(MODELS, json={"name": "m1"}).raise_for_status()
        for _ in range(3):
            assert [m["name"] for m in client.get(MODELS).json()["data"]] == ["m1"]
        cache: AnswerCache = app.state.ctx.answers
        assert (cache.hits, cache.misses) == (0, 0)


def test_a_broken_sqlite_token_connection_means_no_cache_not_an_error(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path}/broken.db")
    try:
        assert _token(db) is not None
        db.changes._sqlite.close()  # as if the connection had died under us
        assert _token(db) is None  # this request reads without the cache
        assert _token(db) is not None  # the next one has a new connection
    finally:
        db.dispose()


def test_every_get_with_an_etag_is_conditional(client: TestClient) -> None:
    client.post(MODELS, json={"name": "m1"}).raise_for_status()
    for path in (f"{MODELS}/m1", "/v1/workspaces/default"):
        first = client.get(path)
        etag = first.headers["etag"]
        unchanged = client.get(path, headers={"If-None-Match": etag})
        assert unchanged.status_code == 304, path
        assert unchanged.content == b""
        assert unchanged.headers["etag"] == etag
        assert client.get(path, headers={"If-None-Match": f'"other", W/{etag}'}).status_code == 304
        assert client.get(path, headers={"If-None-Match": "*"}).status_code == 304
        assert client.get(path, headers={"If-None-Match": '"other"'}).status_code == 200
    model_etag = client.get(f"{MODELS}/m1").headers["etag"]
    client.patch(f"{MODELS}/m1", json={"description": "new"}).raise_for_status()
    changed = client.get(f"{MODELS}/m1", headers={"If-None-Match": model_etag})
    assert changed.status_code == 200
    assert changed.json()["description"] == "new"
    assert client.get(f"{MODELS}/nope", headers={"If-None-Match": "*"}).status_code == 404
