"""The token cache (modelyard.identity.principals): a cached token stops working the moment it is revoked or its
user changes, in this process and in every other server process: through LISTEN/NOTIFY on PostgreSQL, through a
shared revision file on SQLite."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient

from modelyard.app import create_app
from modelyard.auth import Principal, hash_token
from modelyard.config import Settings
from modelyard.db.engine import Database
from modelyard.identity.principals import CHANNEL, PrincipalCache, SharedRevision, shared_revision
from tests.fixtures.app import MakeUser, error_shape


def _cache(app: FastAPI) -> PrincipalCache:
    """The app's token cache, once it answers: on PostgreSQL it stays off until its listener has connected (it
    could not hear revocations before), which takes a moment after the app starts."""
    cache: PrincipalCache = app.state.ctx.principals
    deadline = time.monotonic() + 10
    while cache.ttl > 0 and not cache.enabled:
        assert time.monotonic() < deadline, "the cache's listener never connected"
        time.sleep(0.02)
    return cache


def test_a_token_is_looked_up_once_then_answered_from_the_cache(
    app: FastAPI, client: TestClient, admin_token: str
) -> None:
    cache = _cache(app)
    assert client.get("/v1/me").status_code == 200
    assert cache.get(hash_token(admin_token)) is not None


def test_a_revoked_token_stops_at_once_even_when_cached(app: FastAPI, client: TestClient, anon: TestClient) -> None:
    cache = _cache(app)
    created = client.post("/v1/tokens", json={"name": "temp"}).json()
    headers = {"Authorization": f"Bearer {created['token']}"}
    assert anon.get("/v1/me", headers=headers).status_code == 200
    assert cache.get(hash_token(created["token"])) is not None
    assert client.delete(f"/v1/tokens/{created['id']}").status_code == 204
    r = anon.get("/v1/me", headers=headers)
    assert r.status_code == 401
    assert error_shape(r)["error_code"] == "INVALID_TOKEN"


def test_a_demoted_admin_loses_admin_rights_at_once(client: TestClient, make_user: MakeUser) -> None:
    bob = make_user("bob", is_admin=True)
    assert bob.get("/v1/users").status_code == 200
    assert client.patch("/v1/users/bob", json={"is_admin": False}).status_code == 200
    r = bob.get("/v1/users")
    assert r.status_code == 403
    assert error_shape(r)["error_code"] == "ADMIN_REQUIRED"


def test_a_deleted_users_cached_token_is_refused(client: TestClient, make_user: MakeUser) -> None:
    carol = make_user("carol")
    assert carol.get("/v1/me").status_code == 200
    assert client.delete("/v1/users/carol").status_code == 204
    assert carol.get("/v1/me").status_code == 401


def test_a_failed_revocation_leaves_the_cache_alone(app: FastAPI, client: TestClient) -> None:
    cache = _cache(app)
    assert client.get("/v1/me").status_code == 200
    before = len(cache)
    assert client.delete("/v1/tokens/tok-does-not-exist").status_code == 404
    assert len(cache) == before > 0


def test_a_lookup_that_raced_an_invalidation_is_not_stored() -> None:
    cache = PrincipalCache(ttl_seconds=60)
    principal = Principal(user_id="u1", name="u", is_admin=False)
    generation = cache.generation()  # a request starts its database lookup ...
    cache.invalidate(["u1"])  # ... while the user's token is revoked
    cache.put("h", principal, None, generation)
    assert cache.get("h") is None
    cache.put("h", principal, None, cache.generation())
    assert cache.get("h") == principal


def test_entries_expire_and_the_cache_stays_bounded() -> None:
    cache = PrincipalCache(ttl_seconds=0.05, max_entries=3)
    for i in range(5):
        cache.put(f"h{i}", Principal(user_id=f"u{i}", name=f"u{i}", is_admin=False), None, cache.generation())
    assert len(cache) == 3
    assert cache.get("h0") is None
    assert cache.get("h4") is not None
    time.sleep(0.06)
    assert cache.get("h4") is None


def test_a_zero_ttl_disables_the_cache() -> None:
    cache = PrincipalCache(ttl_seconds=0)
    cache.put("h", Principal(user_id="u", name="u", is_admin=False), None, cache.generation())
    assert cache.get("h") is None


def test_postgres_other_processes_hear_a_revocation(db: Database, settings: Settings, admin_token: str) -> None:
    """Another server process (here: a second app with its own cache and listener) caches the token; a revocation
    it does not see in-process reaches it through NOTIFY."""
    if db.is_sqlite:
        pytest.skip("PostgreSQL only: one SQLite server process invalidates in-process")
    other = create_app(settings, db=db, start_worker=False)
    headers = {"Authorization": f"Bearer {admin_token}"}
    token_hash = hash_token(admin_token)
    with TestClient(other, raise_server_exceptions=False, headers=headers) as c:
        deadline = time.monotonic() + 10
        while _cache(other).get(token_hash) is None:  # the listener connects, then the lookup is cached
            assert time.monotonic() < deadline, "the listener never connected"
            assert c.get("/v1/me").status_code == 200
            time.sleep(0.05)
        # Revoke behind every in-process hook's back, as another process would, and notify as it would.
        with db.engine.begin() as conn:
            user_id = conn.execute(
                sa.text("SELECT user_id FROM api_tokens WHERE token_hash = :h"), {"h": token_hash}
            ).scalar_one()
            conn.execute(sa.text("DELETE FROM api_tokens WHERE token_hash = :h"), {"h": token_hash})
            conn.execute(sa.select(sa.func.pg_notify(CHANNEL, user_id)))
        deadline = time.monotonic() + 5
        while c.get("/v1/me").status_code != 401:
            assert time.monotonic() < deadline, "the revocation never reached the other process"
            time.sleep(0.05)


def test_sqlite_other_processes_see_a_revocation(db: Database, settings: Settings, admin_token: str) -> None:
    """Several server processes on one SQLite file share a revision counter beside it: a revocation committed by
    another process (here: a real subprocess bumping the counter after deleting the token behind every in-process
    hook's back) empties this process's cache on its next lookup."""
    if not db.is_sqlite:
        pytest.skip("SQLite only: PostgreSQL processes hear NOTIFY")
    app = create_app(settings, db=db, start_worker=False)
    shared = _cache(app).shared
    assert shared is not None
    assert shared.path == db.engine.url.database + "-principals"  # type: ignore[operator]
    headers = {"Authorization": f"Bearer {admin_token}"}
    token_hash = hash_token(admin_token)
    with TestClient(app, raise_server_exceptions=False, headers=headers) as c:
        assert c.get("/v1/me").status_code == 200
        assert _cache(app).get(token_hash) is not None
        with db.engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM api_tokens WHERE token_hash = :h"), {"h": token_hash})
        assert c.get("/v1/me").status_code == 200  # still cached: nothing told this process
        bump = f"from modelyard.identity.principals import SharedRevision; SharedRevision({shared.path!r}).bump()"
        subprocess.run([sys.executable, "-c", bump], check=True)
        assert c.get("/v1/me").status_code == 401


def test_shared_revision_survives_reopening_and_counts(tmp_path: Path) -> None:
    path = str(tmp_path / "db-principals")
    first = SharedRevision(path)
    second = SharedRevision(path)  # another mapping of the same file, as another process has
    assert first.read() == second.read() == 0
    for _ in range(3):
        second.bump()
    assert first.read() == 3
    first.close()
    second.close()
    assert SharedRevision(path).read() == 3
    assert shared_revision("sqlite://") is None
    assert shared_revision("postgresql+psycopg://postgres@127.0.0.1/test") is None
