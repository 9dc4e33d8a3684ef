"""Authentication and authorisation: tokens in three headers, 401 / 403 / 404 in the error shape."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from modelyard.db.engine import Database
from tests.fixtures.app import MakeUser, error_shape
from tests.fixtures.databases import count_rows


def test_open_routes_need_no_token(anon: TestClient) -> None:
    for path in ("/healthz", "/readyz", "/metrics", "/openapi.json", "/docs"):
        assert anon.get(path).status_code == 200, path


def test_no_token_is_401(anon: TestClient) -> None:
    for method, path in [
        ("GET", "/v1/workspaces"),
        ("POST", "/v1/workspaces"),
        ("GET", "/v1/me"),
        ("GET", "/v1/workspaces/default/events"),
    ]:
        r = anon.request(method, path, json={"name": "x"} if method == "POST" else None)
        assert r.status_code == 401, (method, path)
        assert error_shape(r)["error_code"] == "MISSING_TOKEN"
        assert r.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer myd_wrong"},
        {"X-Auth-Token": "myd_wrong"},
        {"x-api-key": "nope"},
        {"Authorization": "Bearer " + "a" * 5000},
        {"Authorization": "Bearer caf\u00e9".encode()},  # type: ignore[dict-item]
    ],
)
def test_wrong_token_is_401(anon: TestClient, headers: dict[str, str]) -> None:
    r = anon.get("/v1/workspaces", headers=headers)
    assert r.status_code == 401
    assert error_shape(r)["error_code"] == "INVALID_TOKEN"


def test_malformed_authorization_header_is_401(anon: TestClient, admin_token: str) -> None:
    r = anon.get("/v1/workspaces", headers={"Authorization": f"Basic {admin_token}"})
    assert r.status_code == 401
    assert error_shape(r)["error_code"] == "INVALID_TOKEN"


@pytest.mark.parametrize("header", ["Authorization", "X-Auth-Token", "x-api-key"])
def test_each_token_header_works(anon: TestClient, admin_token: str, header: str) -> None:
    value = f"Bearer {admin_token}" if header == "Authorization" else admin_token
    r = anon.get("/v1/me", headers={header: value})
    assert r.status_code == 200
    assert r.json()["name"] == "admin"


def test_expired_token_is_401(client: TestClient, anon: TestClient) -> None:
    soon = datetime.now(UTC) + timedelta(seconds=1)
    created = client.post("/v1/tokens", json={"name": "short", "expires_at": soon.isoformat()})
    assert created.status_code == 201
    secret = created.json()["token"]
    assert anon.get("/v1/me", headers={"X-Auth-Token": secret}).status_code == 200
    import time

    time.sleep(max(0.0, (soon - datetime.now(UTC)).total_seconds()) + 0.05)
    r = anon.get("/v1/me", headers={"X-Auth-Token": secret})
    assert r.status_code == 401
    assert error_shape(r)["error_code"] == "TOKEN_EXPIRED"


def test_revoked_token_is_401(client: TestClient, anon: TestClient) -> None:
    created = client.post("/v1/tokens", json={"name": "temp"}).json()
    assert client.delete(f"/v1/tokens/{created['id']}").status_code == 204
    assert anon.get("/v1/me", headers={"X-Auth-Token": created["token"]}).status_code == 401


def test_viewer_writes_are_403_and_change_nothing(client: TestClient, make_user: MakeUser, db: Database) -> None:
    client.post("/v1/workspaces", json={"name": "w"})
    viewer = make_user("vera", workspaces={"w": "viewer"})
    assert viewer.get("/v1/workspaces/w").status_code == 200
    assert viewer.get("/v1/workspaces/w/members").status_code == 200
    assert viewer.get("/v1/workspaces/w/events").status_code == 200
    members_before = count_rows(db, "memberships")
    for method, path, body in [
        ("PATCH", "/v1/workspaces/w", {"description": "x"}),
        ("DELETE", "/v1/workspaces/w", None),
        ("POST", "/v1/workspaces/w/members", {"user": "vera", "role": "admin"}),
        ("PUT", "/v1/workspaces/w/members/vera", {"role": "admin"}),
        ("DELETE", "/v1/workspaces/w/members/admin", None),
    ]:
        r = viewer.request(method, path, json=body)
        assert r.status_code == 403, (method, path, r.text)
        assert error_shape(r)["error_code"] == "INSUFFICIENT_ROLE"
    assert count_rows(db, "memberships") == members_before


def test_non_member_reads_are_404(client: TestClient, make_user: MakeUser) -> None:
    client.post("/v1/workspaces", json={"name": "secret"})
    outsider = make_user("oscar")
    for path in ("/v1/workspaces/secret", "/v1/workspaces/secret/members", "/v1/workspaces/secret/events"):
        r = outsider.get(path)
        assert r.status_code == 404, path
        assert error_shape(r)["error_code"] == "WORKSPACE_NOT_FOUND"
    # Same answer as for a workspace that does not exist: nothing to probe.
    missing = outsider.get("/v1/workspaces/no-such-ws")
    assert missing.status_code == 404
    assert (
        missing.json()["error_msg"].replace("no-such-ws", "secret")
        == outsider.get("/v1/workspaces/secret").json()["error_msg"]
    )
    assert outsider.patch("/v1/workspaces/secret", json={"description": "x"}).status_code == 404


def test_non_admin_cannot_manage_users(make_user: MakeUser) -> None:
    user = make_user("uma")
    for method, path, body in [
        ("GET", "/v1/users", None),
        ("POST", "/v1/users", {"name": "x"}),
        ("DELETE", "/v1/users/admin", None),
        ("PATCH", "/v1/users/uma", {"is_admin": True}),
        ("POST", "/v1/tokens", {"name": "t", "user": "admin"}),
    ]:
        r = user.request(method, path, json=body)
        assert r.status_code == 403, (method, path)
        assert error_shape(r)["error_code"] == "ADMIN_REQUIRED"
    # But anyone may read themselves and manage their own tokens.
    assert user.get("/v1/users/uma").status_code == 200
    assert user.post("/v1/tokens", json={"name": "mine"}).status_code == 201
