"""Workspaces API: create, list, get, patch, delete, and the rules around them."""

from __future__ import annotations

import concurrent.futures

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from modelyard.db.base import new_id, utcnow
from modelyard.db.engine import Database
from modelyard.kit import pagination
from modelyard.workspace import service
from modelyard.workspace.tables import Membership, Workspace
from tests.fixtures.app import MakeUser, error_shape


def test_create_get_list(client: TestClient) -> None:
    r = client.post("/v1/workspaces", json={"name": "research", "description": "R&D"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["name"] == "research"
    assert body["description"] == "R&D"
    assert body["created_by"] == "admin"
    assert body["role"] == "admin"
    assert body["id"].startswith("ws-")
    assert body["created_at"].endswith("Z")
    assert r.headers["etag"]

    r = client.get("/v1/workspaces/research")
    assert r.status_code == 200
    assert r.json()["id"] == body["id"]
    names = [w["name"] for w in client.get("/v1/workspaces", params={"sort": "name"}).json()["data"]]
    assert names == ["default", "research"]


def test_duplicate_name_is_409(client: TestClient) -> None:
    assert client.post("/v1/workspaces", json={"name": "dup"}).status_code == 201
    r = client.post("/v1/workspaces", json={"name": "dup"})
    assert r.status_code == 409
    assert error_shape(r)["error_code"] == "WORKSPACE_ALREADY_EXISTS"


def test_list_shows_only_member_workspaces(client: TestClient, make_user: MakeUser) -> None:
    client.post("/v1/workspaces", json={"name": "a"})
    client.post("/v1/workspaces", json={"name": "b"})
    alice = make_user("alice", workspaces={"a": "viewer"})
    listed = alice.get("/v1/workspaces").json()
    assert [w["name"] for w in listed["data"]] == ["a"]
    assert listed["data"][0]["role"] == "viewer"
    assert listed["pagination"]["total_results"] == 1
    admin_names = {w["name"] for w in client.get("/v1/workspaces").json()["data"]}
    assert admin_names == {"default", "a", "b"}


def test_member_creates_workspace_and_becomes_admin(make_user: MakeUser) -> None:
    bob = make_user("bob")
    r = bob.post("/v1/workspaces", json={"name": "bobs"})
    assert r.status_code == 201
    assert r.json()["role"] == "admin"
    assert bob.get("/v1/workspaces/bobs/members").json()["data"][0]["user"] == "bob"


def test_patch_description_with_etag(client: TestClient) -> None:
    client.post("/v1/workspaces", json={"name": "w"})
    etag = client.get("/v1/workspaces/w").headers["etag"]
    r = client.patch("/v1/workspaces/w", json={"description": "new"}, headers={"If-Match": etag})
    assert r.status_code == 200
    assert r.json()["description"] == "new"
    assert r.headers["etag"] != etag
    # The old ETag is stale now: 412 and nothing changes.
    r = client.patch("/v1/workspaces/w", json={"description": "lost update"}, headers={"If-Match": etag})
    assert r.status_code == 412
    assert error_shape(r)["error_code"] == "PRECONDITION_FAILED"
    assert client.get("/v1/workspaces/w").json()["description"] == "new"
    # Stale ETag on DELETE: 412 and the workspace stays.
    assert client.delete("/v1/workspaces/w", headers={"If-Match": etag}).status_code == 412
    assert client.get("/v1/workspaces/w").status_code == 200


def test_patch_refuses_other_fields(client: TestClient) -> None:
    client.post("/v1/workspaces", json={"name": "w"})
    r = client.patch("/v1/workspaces/w", json={"name": "renamed"})
    assert r.status_code == 422
    assert error_shape(r)["detail"][0]["loc"] == ["body", "name"]
    assert client.get("/v1/workspaces/w").status_code == 200


def test_delete(client: TestClient) -> None:
    client.post("/v1/workspaces", json={"name": "gone"})
    r = client.delete("/v1/workspaces/gone")
    assert r.status_code == 204
    assert r.content == b""
    r = client.get("/v1/workspaces/gone")
    assert r.status_code == 404
    assert error_shape(r)["error_code"] == "WORKSPACE_NOT_FOUND"


def test_delete_refused_while_it_holds_resources(client: TestClient) -> None:
    client.post("/v1/workspaces", json={"name": "busy"})

    def counter(_session: object, _workspace_id: str) -> dict[str, int]:
        return {"filesets": 2}

    service.register_resource_counter(counter)
    try:
        r = client.delete("/v1/workspaces/busy")
        assert r.status_code == 409
        body = error_shape(r)
        assert body["error_code"] == "WORKSPACE_NOT_EMPTY"
        assert "2 filesets" in body["error_msg"]
        assert client.get("/v1/workspaces/busy").status_code == 200
        assert client.delete("/v1/workspaces/busy", params={"cascade": "true"}).status_code == 204
    finally:
        service.RESOURCE_COUNTERS.remove(counter)
    assert client.get("/v1/workspaces/busy").status_code == 404


def test_viewer_and_editor_cannot_change_workspace(make_user: MakeUser, client: TestClient) -> None:
    client.post("/v1/workspaces", json={"name": "w"})
    viewer = make_user("viewer1", workspaces={"w": "viewer"})
    editor = make_user("editor1", workspaces={"w": "editor"})
    for c in (viewer, editor):
        r = c.patch("/v1/workspaces/w", json={"description": "x"})
        assert r.status_code == 403
        assert error_shape(r)["error_code"] == "INSUFFICIENT_ROLE"
        assert c.delete("/v1/workspaces/w").status_code == 403
    assert client.get("/v1/workspaces/w").json()["description"] == ""


def test_concurrent_creates_of_one_name(live_server: str, admin_token: str) -> None:
    headers = {"Authorization": f"Bearer {admin_token}"}

    def create(_: int) -> int:
        with httpx.Client(base_url=live_server, headers=headers, timeout=30) as c:
            return c.post("/v1/workspaces", json={"name": "race"}).status_code

    for _round in range(3):
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            codes = sorted(pool.map(create, range(2)))
        assert codes == [201, 409]
        with httpx.Client(base_url=live_server, headers=headers) as c:
            assert c.delete("/v1/workspaces/race").status_code == 204


def _bulk_workspaces(db: Database, count: int, user_id: str) -> list[str]:
    now = utcnow()
    rows = [
        {
            "id": new_id("ws"),
            "name": f"ws-{i:05d}",
            "description": "",
            "created_by": "admin",
            "updated_by": "admin",
            "created_at": now,
            "updated_at": now,
            "version": 1,
        }
        for i in range(count)
    ]
    with db.session(write=True) as session:
        session.execute(sa.insert(Workspace), rows)
        session.execute(
            sa.insert(Membership),
            [
                {"workspace_id": r["id"], "user_id": user_id, "role": "viewer", "created_at": now, "updated_at": now}
                for r in rows
            ],
        )
        session.commit()
    return [r["name"] for r in rows]


@pytest.mark.parametrize("sort", ["name", "-name", "created_at", "-created_at"])
def test_page_token_walks_2500_workspaces_once_in_order(db: Database, make_user: MakeUser, sort: str) -> None:
    walker = make_user("walker")
    user_id = walker.get("/v1/me").json()["id"]
    names = _bulk_workspaces(db, 2500, user_id)  # all share one created_at: the id breaks the ties
    seen: list[dict[str, str]] = []
    params: dict[str, str | int] = {"page_size": 333, "sort": sort}
    pages = 0
    while True:
        r = walker.get("/v1/workspaces", params=params)
        assert r.status_code == 200, r.text
        body = r.json()
        pages += 1
        seen.extend(body["data"])
        assert body["pagination"]["total_results"] == 2500
        if not body["next_page_token"]:
            break
        params = {"page_size": 333, "sort": sort, "page_token": body["next_page_token"]}
    assert pages == 8
    assert sorted(w["name"] for w in seen) == names
    assert len({w["id"] for w in seen}) == 2500
    key = "name" if "name" in sort else "id"
    values = [w[key] for w in seen]
    assert values == sorted(values, reverse=sort.startswith("-"))


def test_page_numbers(client: TestClient) -> None:
    for i in range(5):
        client.post("/v1/workspaces", json={"name": f"p{i}"})
    r = client.get("/v1/workspaces", params={"page": 2, "page_size": 2, "sort": "name"}).json()
    assert [w["name"] for w in r["data"]] == ["p1", "p2"]
    assert r["pagination"] == {
        "page": 2,
        "page_size": 2,
        "current_page_size": 2,
        "total_pages": 3,
        "total_results": 6,
        "total_results_exact": True,
    }
    prefixed = client.get("/v1/workspaces", params={"name_prefix": "p", "sort": "-name"}).json()
    assert [w["name"] for w in prefixed["data"]] == ["p4", "p3", "p2", "p1", "p0"]


def test_page_token_refused_with_other_sort_or_filters(client: TestClient) -> None:
    for i in range(3):
        client.post("/v1/workspaces", json={"name": f"t{i}"})
    token = client.get("/v1/workspaces", params={"page_size": 1, "sort": "name"}).json()["next_page_token"]
    r = client.get("/v1/workspaces", params={"page_size": 1, "sort": "-name", "page_token": token})
    assert r.status_code == 400
    assert error_shape(r)["error_code"] == "INVALID_PAGE_TOKEN"
    r = client.get("/v1/workspaces", params={"page_size": 1, "sort": "name", "name_prefix": "t", "page_token": token})
    assert r.status_code == 400
    r = client.get("/v1/workspaces", params={"page_token": "not-a-token!!"})
    assert r.status_code == 400
    assert error_shape(r)["error_code"] == "INVALID_PAGE_TOKEN"


def test_page_token_carries_the_first_count(client: TestClient) -> None:
    for i in range(4):
        client.post("/v1/workspaces", json={"name": f"c{i}"})
    first = client.get("/v1/workspaces", params={"page_size": 2, "sort": "name"}).json()
    assert first["pagination"]["total_results"] == 5
    client.post("/v1/workspaces", json={"name": "c9"})
    second = client.get(
        "/v1/workspaces", params={"page_size": 2, "sort": "name", "page_token": first["next_page_token"]}
    )
    body = second.json()
    assert body["pagination"]["page"] == 2
    assert body["pagination"]["total_results"] == 5  # as of the first page: no count(*) on continuations
    assert [w["name"] for w in body["data"]] == ["c2", "c3"]


def test_counts_stop_at_the_cap_and_the_walk_still_reaches_the_end(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pagination, "COUNT_CAP", 3)
    for i in range(5):
        client.post("/v1/workspaces", json={"name": f"k{i}"})
    first = client.get("/v1/workspaces", params={"page_size": 2, "sort": "name", "name_prefix": "k"}).json()
    assert first["pagination"]["total_results"] == 3
    assert first["pagination"]["total_results_exact"] is False
    assert first["pagination"]["total_pages"] == 2
    seen = [w["name"] for w in first["data"]]
    token = first["next_page_token"]
    while token:
        page = client.get(
            "/v1/workspaces", params={"page_size": 2, "sort": "name", "name_prefix": "k", "page_token": token}
        ).json()
        assert page["pagination"]["total_results_exact"] is False
        seen += [w["name"] for w in page["data"]]
        token = page["next_page_token"]
    assert seen == [f"k{i}" for i in range(5)]
    exact = client.get("/v1/workspaces", params={"page_size": 2, "name_prefix": "k1"}).json()["pagination"]
    assert (exact["total_results"], exact["total_results_exact"]) == (1, True)


def test_a_short_page_is_its_own_count(client: TestClient) -> None:
    for i in range(3):
        client.post("/v1/workspaces", json={"name": f"s{i}"})
    r = client.get("/v1/workspaces", params={"page": 2, "page_size": 2, "name_prefix": "s", "sort": "name"}).json()
    assert [w["name"] for w in r["data"]] == ["s2"]
    assert (r["pagination"]["total_results"], r["pagination"]["total_pages"]) == (3, 2)
    beyond = client.get("/v1/workspaces", params={"page": 5, "page_size": 2, "name_prefix": "s"}).json()
    assert beyond["data"] == []
    assert beyond["pagination"]["total_results"] == 3
