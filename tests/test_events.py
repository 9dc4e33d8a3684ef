"""The event log: every change writes an event in its own transaction; listing, filters, paging."""

from __future__ import annotations

from fastapi.testclient import TestClient

from modelyard.db.engine import Database
from tests.fixtures.app import MakeUser, error_shape
from tests.fixtures.databases import count_rows


def test_changes_write_events(client: TestClient, make_user: MakeUser) -> None:
    client.post("/v1/workspaces", json={"name": "audited", "description": "a"})
    client.patch("/v1/workspaces/audited", json={"description": "b"})
    make_user("ivan", workspaces={"audited": "viewer"})
    client.put("/v1/workspaces/audited/members/ivan", json={"role": "editor"})
    client.delete("/v1/workspaces/audited/members/ivan")

    events = client.get("/v1/workspaces/audited/events", params={"sort": "at"}).json()["data"]
    assert [e["action"] for e in events] == [
        "workspace.created",
        "workspace.updated",
        "member.added",
        "member.updated",
        "member.removed",
    ]
    updated = events[1]
    assert updated["actor"] == "admin"
    assert updated["resource"]["kind"] == "workspace"
    assert updated["resource"]["workspace"] == "audited"
    assert updated["resource"]["name"] == "audited"
    assert updated["changes"] == {"description": "b"}
    assert updated["at"].endswith("Z")
    assert events[3]["changes"] == {"role": ["viewer", "editor"]}
    # Default order is newest first.
    newest = client.get("/v1/workspaces/audited/events").json()["data"]
    assert [e["id"] for e in newest] == sorted((e["id"] for e in events), reverse=True)


def test_event_filters_and_paging(client: TestClient) -> None:
    client.post("/v1/workspaces", json={"name": "busy"})
    for i in range(7):
        client.patch("/v1/workspaces/busy", json={"description": f"v{i}"})
    only_updates = client.get("/v1/workspaces/busy/events", params={"action": "workspace.updated"}).json()
    assert only_updates["pagination"]["total_results"] == 7
    assert client.get("/v1/workspaces/busy/events", params={"resource_kind": "member"}).json()["data"] == []
    seen = []
    params: dict[str, object] = {"page_size": 3, "sort": "at"}
    while True:
        page = client.get("/v1/workspaces/busy/events", params=params).json()
        seen += [e["id"] for e in page["data"]]
        if not page["next_page_token"]:
            break
        params = {"page_size": 3, "sort": "at", "page_token": page["next_page_token"]}
    assert len(seen) == 8
    assert seen == sorted(seen)
    first_at = client.get("/v1/workspaces/busy/events", params={"sort": "at"}).json()["data"][-1]["at"]
    since = client.get("/v1/workspaces/busy/events", params={"since": first_at}).json()
    assert since["pagination"]["total_results"] >= 1
    r = client.get("/v1/workspaces/busy/events", params={"since": "yesterday"})
    assert r.status_code == 422
    r = client.get("/v1/workspaces/busy/events", params={"actor": "admin"})
    assert r.status_code == 400
    assert "action" in error_shape(r)["error_msg"]


def test_failed_change_writes_no_event(client: TestClient, db: Database) -> None:
    client.post("/v1/workspaces", json={"name": "once"})
    before = count_rows(db, "events")
    assert client.post("/v1/workspaces", json={"name": "once"}).status_code == 409
    assert (
        client.patch("/v1/workspaces/once", json={"description": "x"}, headers={"If-Match": '"nope"'}).status_code
        == 412
    )
    assert count_rows(db, "events") == before


def test_deleted_workspace_keeps_its_log(client: TestClient, db: Database) -> None:
    client.post("/v1/workspaces", json={"name": "temp"})
    client.delete("/v1/workspaces/temp")
    with db.engine.connect() as conn:
        actions = [r[0] for r in conn.exec_driver_sql("SELECT action FROM events WHERE workspace = 'temp' ORDER BY id")]
    assert actions == ["workspace.created", "workspace.deleted"]


def test_server_events_for_admins(client: TestClient, make_user: MakeUser) -> None:
    kim = make_user("kim")
    client.post("/v1/workspaces", json={"name": "kims"})
    r = client.get("/v1/events", params={"resource_kind": "user"})
    assert r.status_code == 200
    assert [e["resource"]["name"] for e in r.json()["data"]] == ["kim"]
    assert r.json()["data"][0]["resource"]["workspace"] is None
    tokens = client.get("/v1/events", params={"action": "token.created"}).json()["data"]
    assert tokens[0]["changes"] == {"user": "kim"}
    only = client.get("/v1/events", params={"workspace": "kims"}).json()["data"]
    assert [e["action"] for e in only] == ["workspace.created"]
    r = kim.get("/v1/events")
    assert r.status_code == 403
    assert error_shape(r)["error_code"] == "ADMIN_REQUIRED"
