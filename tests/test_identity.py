"""Users, tokens and /v1/me."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient

from modelyard.db.engine import Database
from tests.fixtures.app import MakeUser, error_shape


def test_me(client: TestClient) -> None:
    me = client.get("/v1/me").json()
    assert me["name"] == "admin"
    assert me["is_admin"] is True
    assert me["memberships"] == [{"workspace": "default", "role": "admin"}]


def test_user_crud(client: TestClient) -> None:
    r = client.post("/v1/users", json={"name": "frank", "display_name": "Frank"})
    assert r.status_code == 201
    assert r.json()["is_admin"] is False
    assert client.post("/v1/users", json={"name": "frank"}).status_code == 409
    etag = client.get("/v1/users/frank").headers["etag"]
    r = client.patch("/v1/users/frank", json={"display_name": "Frank F."}, headers={"If-Match": etag})
    assert r.status_code == 200
    assert r.json()["display_name"] == "Frank F."
    assert (
        client.patch("/v1/users/frank", json={"display_name": "stale"}, headers={"If-Match": etag}).status_code == 412
    )
    names = [u["name"] for u in client.get("/v1/users", params={"sort": "name"}).json()["data"]]
    assert names == ["admin", "frank"]
    assert [u["name"] for u in client.get("/v1/users", params={"name_prefix": "fr"}).json()["data"]] == ["frank"]
    assert client.delete("/v1/users/frank").status_code == 204
    r = client.get("/v1/users/frank")
    assert r.status_code == 404
    assert error_shape(r)["error_code"] == "USER_NOT_FOUND"


def test_deleting_user_revokes_tokens_and_memberships(client: TestClient, make_user: MakeUser) -> None:
    gina = make_user("gina", workspaces={"default": "editor"})
    assert gina.get("/v1/me").status_code == 200
    assert client.delete("/v1/users/gina").status_code == 204
    assert gina.get("/v1/me").status_code == 401
    members = [m["user"] for m in client.get("/v1/workspaces/default/members").json()["data"]]
    assert members == ["admin"]


def test_last_server_admin_is_protected(client: TestClient) -> None:
    r = client.delete("/v1/users/admin")
    assert r.status_code == 409
    assert error_shape(r)["error_code"] == "LAST_ADMIN"
    assert client.patch("/v1/users/admin", json={"is_admin": False}).status_code == 409
    assert client.get("/v1/me").json()["is_admin"] is True


def test_tokens(client: TestClient, make_user: MakeUser, db: Database) -> None:
    hana = make_user("hana")
    created = hana.post("/v1/tokens", json={"name": "laptop"})
    assert created.status_code == 201
    body = created.json()
    assert body["user"] == "hana"
    assert body["token"].startswith("myd_")
    assert body["token_prefix"] == body["token"][:12]
    # The secret is shown once: lists carry only the prefix, and the database only a hash.
    listed = hana.get("/v1/tokens").json()["data"]
    assert {t["name"] for t in listed} == {"hana-token", "laptop"}
    assert all("token" not in t for t in listed)
    with db.engine.connect() as conn:
        stored = [row[0] for row in conn.exec_driver_sql("SELECT token_hash FROM api_tokens")]
    assert body["token"] not in stored
    assert all(len(h) == 64 for h in stored)
    # Admins see everyone's tokens, users only their own.
    assert len(client.get("/v1/tokens").json()["data"]) == 3
    assert len(client.get("/v1/tokens", params={"user": "hana"}).json()["data"]) == 2
    assert hana.get("/v1/tokens", params={"user": "admin"}).status_code == 403
    # Another user's token is not found for hana.
    admin_token_id = next(t["id"] for t in client.get("/v1/tokens", params={"user": "admin"}).json()["data"])
    assert hana.delete(f"/v1/tokens/{admin_token_id}").status_code == 404
    assert hana.delete(f"/v1/tokens/{body['id']}").status_code == 204


def test_token_expiry_must_be_future_and_aware(client: TestClient) -> None:
    past = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    r = client.post("/v1/tokens", json={"name": "old", "expires_at": past})
    assert r.status_code == 422
    assert error_shape(r)["detail"][0]["loc"] == ["body", "expires_at"]
    naive = client.post("/v1/tokens", json={"name": "naive", "expires_at": "2030-01-01T00:00:00"})
    assert naive.status_code == 422
    good = client.post("/v1/tokens", json={"name": "good", "expires_at": "2030-01-01T00:00:00Z"})
    assert good.status_code == 201
    assert good.json()["expires_at"] == "2030-01-01T00:00:00Z"


def test_deleting_the_only_admin_of_a_workspace_is_refused(client: TestClient, make_user: MakeUser) -> None:
    lena = make_user("lena")
    lena.post("/v1/workspaces", json={"name": "lenas"})
    r = client.delete("/v1/users/lena")
    assert r.status_code == 409
    body = error_shape(r)
    assert body["error_code"] == "LAST_WORKSPACE_ADMIN"
    assert body["detail"] == {"workspaces": ["lenas"]}
    client.post("/v1/workspaces/lenas/members", json={"user": "admin", "role": "admin"})
    assert client.delete("/v1/users/lena").status_code == 204


def test_patch_with_null_is_422(client: TestClient) -> None:
    client.post("/v1/users", json={"name": "nora", "display_name": "Nora"})
    r = client.patch("/v1/users/nora", json={"display_name": None})
    assert r.status_code == 422
    assert "may not be null" in error_shape(r)["error_msg"]
    assert client.get("/v1/users/nora").json()["display_name"] == "Nora"
    assert client.patch("/v1/workspaces/default", json={"description": None}).status_code == 422
