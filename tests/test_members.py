"""Workspace members: add, change role, remove, list; the last admin is protected."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.fixtures.app import MakeUser, error_shape


def test_member_lifecycle(client: TestClient, make_user: MakeUser) -> None:
    client.post("/v1/workspaces", json={"name": "team"})
    carol = make_user("carol")
    assert carol.get("/v1/workspaces/team").status_code == 404

    r = client.post("/v1/workspaces/team/members", json={"user": "carol", "role": "viewer"})
    assert r.status_code == 201
    assert r.json()["role"] == "viewer"
    assert carol.get("/v1/workspaces/team").json()["role"] == "viewer"

    r = client.post("/v1/workspaces/team/members", json={"user": "carol", "role": "editor"})
    assert r.status_code == 409
    assert error_shape(r)["error_code"] == "MEMBER_ALREADY_EXISTS"

    r = client.put("/v1/workspaces/team/members/carol", json={"role": "admin"})
    assert r.status_code == 200
    assert r.json()["role"] == "admin"
    # Now carol administers the workspace herself.
    assert carol.patch("/v1/workspaces/team", json={"description": "carol's"}).status_code == 200

    listed = client.get("/v1/workspaces/team/members").json()
    assert {(m["user"], m["role"]) for m in listed["data"]} == {("admin", "admin"), ("carol", "admin")}
    assert client.get("/v1/workspaces/team/members", params={"role": "viewer"}).json()["data"] == []

    assert client.delete("/v1/workspaces/team/members/carol").status_code == 204
    assert carol.get("/v1/workspaces/team").status_code == 404
    r = client.delete("/v1/workspaces/team/members/carol")
    assert r.status_code == 404
    assert error_shape(r)["error_code"] == "MEMBER_NOT_FOUND"


def test_adding_unknown_user_is_400(client: TestClient) -> None:
    r = client.post("/v1/workspaces/default/members", json={"user": "ghost", "role": "viewer"})
    assert r.status_code == 400
    assert error_shape(r)["error_code"] == "USER_NOT_FOUND"


def test_bad_role_is_422(client: TestClient, make_user: MakeUser) -> None:
    make_user("dave")
    r = client.post("/v1/workspaces/default/members", json={"user": "dave", "role": "owner"})
    assert r.status_code == 422
    assert error_shape(r)["detail"][0]["loc"] == ["body", "role"]


def test_last_admin_cannot_leave_or_be_demoted(make_user: MakeUser) -> None:
    erin = make_user("erin")
    erin.post("/v1/workspaces", json={"name": "solo"})
    r = erin.put("/v1/workspaces/solo/members/erin", json={"role": "viewer"})
    assert r.status_code == 409
    assert error_shape(r)["error_code"] == "LAST_WORKSPACE_ADMIN"
    assert erin.delete("/v1/workspaces/solo/members/erin").status_code == 409
    assert erin.get("/v1/workspaces/solo").json()["role"] == "admin"
