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


# -- a caller's role in a workspace, kept beside their token ------------------------------------------------------


def _user_id(db: Database, name: str) -> str:
    with db.engine.connect() as conn:
        return str(conn.execute(sa.text("SELECT id FROM users WHERE name = :n"), {"n": name}).scalar_one())


def test_a_role_is_looked_up_once_then_kept(app: FastAPI, db: Database, make_user: MakeUser) -> None:
    """Kept, not read again: a membership deleted behind every in-process hook's back (as by hand in the database)
    leaves the kept role in use, until the cache is told."""
    cache = _cache(app)
    bob = make_user("bob", workspaces={"default": "editor"})
    assert bob.get("/v1/workspaces/default/models").status_code == 200
    bob_id = _user_id(db, "bob")
    kept = cache.role(bob_id, "default")
    assert kept is not None
    assert kept.role == "editor"
    assert kept.workspace["name"] == "default"
    with db.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM memberships WHERE user_id = :u"), {"u": bob_id})
    assert bob.get("/v1/workspaces/default/models").status_code == 200
    cache.invalidate([bob_id])
    r = bob.get("/v1/workspaces/default/models")
    assert r.status_code == 404
    assert error_shape(r)["error_code"] == "WORKSPACE_NOT_FOUND"


def test_a_removed_member_loses_access_at_once_even_when_kept(
    app: FastAPI, client: TestClient, db: Database, make_user: MakeUser
) -> None:
    cache = _cache(app)
    bob = make_user("bob", workspaces={"default": "viewer"})
    assert bob.get("/v1/workspaces/default/models").status_code == 200
    assert cache.role(_user_id(db, "bob"), "default") is not None
    assert client.delete("/v1/workspaces/default/members/bob").status_code == 204
    r = bob.get("/v1/workspaces/default/models")
    assert r.status_code == 404
    assert error_shape(r)["error_code"] == "WORKSPACE_NOT_FOUND"


def test_a_changed_role_applies_at_once_both_ways(client: TestClient, make_user: MakeUser) -> None:
    bob = make_user("bob", workspaces={"default": "editor"})
    assert bob.post("/v1/workspaces/default/models", json={"name": "m1"}).status_code == 201
    assert client.put("/v1/workspaces/default/members/bob", json={"role": "viewer"}).status_code == 200
    r = bob.post("/v1/workspaces/default/models", json={"name": "m2"})
    assert r.status_code == 403
    assert error_shape(r)["error_code"] == "INSUFFICIENT_ROLE"
    assert client.put("/v1/workspaces/default/members/bob", json={"role": "editor"}).status_code == 200
    assert bob.post("/v1/workspaces/default/models", json={"name": "m2"}).status_code == 201


def test_a_new_member_gets_in_at_once(client: TestClient, make_user: MakeUser) -> None:
    """A refusal is never kept: a non-member's 404 turns into access the moment they are added."""
    bob = make_user("bob")
    assert bob.get("/v1/workspaces/default/models").status_code == 404
    assert client.post("/v1/workspaces/default/members", json={"user": "bob", "role": "viewer"}).status_code == 201
    assert bob.get("/v1/workspaces/default/models").status_code == 200


def test_a_failed_membership_change_leaves_kept_roles_alone(app: FastAPI, client: TestClient, db: Database) -> None:
    cache = _cache(app)
    assert client.get("/v1/workspaces/default/models").status_code == 200
    admin_id = _user_id(db, "admin")
    assert cache.role(admin_id, "default") is not None
    r = client.put("/v1/workspaces/default/members/admin", json={"role": "viewer"})  # the last admin: refused
    assert r.status_code == 409
    assert cache.role(admin_id, "default") is not None


def test_a_workspace_deleted_and_made_again_is_the_new_one(app: FastAPI, client: TestClient, db: Database) -> None:
    cache = _cache(app)
    assert client.post("/v1/workspaces", json={"name": "team"}).status_code == 201
    assert client.post("/v1/workspaces/team/models", json={"name": "old"}).status_code == 201
    old_id = cache.role(_user_id(db, "admin"), "team")
    assert old_id is not None
    assert client.delete("/v1/workspaces/team", params={"cascade": "true"}).status_code == 204
    assert cache.role(_user_id(db, "admin"), "team") is None
    assert client.get("/v1/workspaces/team/models").status_code == 404
    assert client.post("/v1/workspaces", json={"name": "team"}).status_code == 201
    assert client.post("/v1/workspaces/team/models", json={"name": "new"}).status_code == 201
    names = [m["name"] for m in client.get("/v1/workspaces/team/models").json()["data"]]
    assert names == ["new"]


def test_a_workspaces_own_answer_is_read_anew(client: TestClient) -> None:
    """GET of a workspace shows more of it than its id and name: never from the kept row."""
    assert client.get("/v1/workspaces/default/models").status_code == 200
    first = client.get("/v1/workspaces/default")
    r = client.patch("/v1/workspaces/default", json={"description": "for the team"})
    assert r.status_code == 200
    again = client.get("/v1/workspaces/default")
    assert again.json()["description"] == "for the team"
    assert again.headers["ETag"] != first.headers["ETag"]


def test_kept_roles_race_invalidation_and_stay_bounded() -> None:
    cache = PrincipalCache(ttl_seconds=60, max_entries=2)
    row = {"id": "ws-1", "name": "default"}
    generation = cache.generation()  # a request starts its read ...
    cache.invalidate(["u1"])  # ... while u1's membership changes
    cache.put_role("u1", "default", row, "viewer", generation)
    assert cache.role("u1", "default") is None
    for user in ("u1", "u2", "u3"):
        cache.put_role(user, "default", row, "viewer", cache.generation())
    assert cache.role("u1", "default") is None  # the oldest went
    cache.invalidate(["u2"])
    assert cache.role("u2", "default") is None
    assert cache.role("u3", "default") is not None
    cache.invalidate(None)
    assert cache.role("u3", "default") is None
    assert PrincipalCache(ttl_seconds=0).role("u3", "default") is None


def test_postgres_other_processes_hear_a_membership_change(
    db: Database, settings: Settings, client: TestClient, make_user: MakeUser
) -> None:
    """A member removed through one server process loses access through another that kept their role, by NOTIFY;
    and a workspace deleted there (NOTIFY for everyone) is gone here too."""
    if db.is_sqlite:
        pytest.skip("PostgreSQL only: one SQLite server process invalidates in-process")
    make_user("bob", workspaces={"default": "viewer"})
    token = client.post("/v1/tokens", json={"name": "bob-2", "user": "bob"}).json()["token"]
    other = create_app(settings, db=db, start_worker=False)
    bob_id = _user_id(db, "bob")
    with TestClient(other, raise_server_exceptions=False, headers={"Authorization": f"Bearer {token}"}) as bob:
        deadline = time.monotonic() + 10
        while _cache(other).role(bob_id, "default") is None:
            assert time.monotonic() < deadline, "the listener never connected"
            assert bob.get("/v1/workspaces/default/models").status_code == 200
            time.sleep(0.05)
        assert client.delete("/v1/workspaces/default/members/bob").status_code == 204
        deadline = time.monotonic() + 5
        while bob.get("/v1/workspaces/default/models").status_code != 404:
            assert time.monotonic() < deadline, "the removal never reached the other process"
            time.sleep(0.05)
        assert client.post("/v1/workspaces", json={"name": "team"}).status_code == 201
        admin_id = _user_id(db, "admin")
        _cache(other).put_role(admin_id, "team", {"id": "ws-gone", "name": "team"}, "admin", _cache(other).generation())
        assert client.delete("/v1/workspaces/team").status_code == 204
        deadline = time.monotonic() + 5
        while _cache(other).role(admin_id, "team") is not None:
            assert time.monotonic() < deadline, "the deletion never reached the other process"
            time.sleep(0.05)


def test_sqlite_other_processes_see_a_membership_change(app: FastAPI, db: Database, make_user: MakeUser) -> None:
    """On SQLite, a membership removed by another process (here: deleted behind every in-process hook's back, and
    the shared revision bumped by a real subprocess, as that process's commit would) is dropped from the roles this
    process kept."""
    if not db.is_sqlite:
        pytest.skip("SQLite only: PostgreSQL processes hear NOTIFY")
    bob = make_user("bob", workspaces={"default": "viewer"})
    bob_id = _user_id(db, "bob")
    shared = _cache(app).shared
    assert shared is not None
    assert bob.get("/v1/workspaces/default/models").status_code == 200
    with db.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM memberships WHERE user_id = :u"), {"u": bob_id})
    assert bob.get("/v1/workspaces/default/models").status_code == 200  # kept: nothing told this process
    bump = f"from modelyard.identity.principals import SharedRevision; SharedRevision({shared.path!r}).bump()"
    subprocess.run([sys.executable, "-c", bump], check=True)
    assert bob.get("/v1/workspaces/default/models").status_code == 404
