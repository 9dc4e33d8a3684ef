"""The Python SDK against the real app: in-process through TestClient, and over real HTTP through live_server."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

import modelyard.client
from modelyard.client import (
    AuthenticationError,
    BadRequestError,
    Client,
    ConflictError,
    ModelyardError,
    NotFoundError,
    PermissionDeniedError,
    PreconditionFailedError,
    ServerError,
    TransportError,
    ValidationError,
)
from modelyard.client._http import error_from_response
from modelyard.config import Settings

DOCS = Path(__file__).resolve().parents[1] / "docs"


@pytest.fixture(autouse=True)
def _no_ambient_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The developer's own MODELYARD_URL, MODELYARD_TOKEN and ~/.modelyard must not leak into these tests."""
    monkeypatch.delenv("MODELYARD_URL", raising=False)
    monkeypatch.delenv("MODELYARD_TOKEN", raising=False)
    monkeypatch.setenv("MODELYARD_HOME", str(tmp_path / "no-home"))


@pytest.fixture
def sdk(app: FastAPI, admin_token: str) -> Iterator[Client]:
    with (
        TestClient(app, raise_server_exceptions=False) as http,
        Client(base_url="http://testserver", token=admin_token, http_client=http) as client,
    ):
        yield client


def sdk_as(app: FastAPI, sdk: Client, user: str, workspaces: dict[str, str] | None = None) -> Client:
    """A new user (with memberships), and a client acting as them."""
    sdk.users.create(user)
    secret = sdk.tokens.create(f"{user}-token", user=user)["token"]
    for ws, role in (workspaces or {}).items():
        sdk.members.add(ws, user, role)
    return Client(token=secret, http_client=TestClient(app, raise_server_exceptions=False))


# --- surface ---------------------------------------------------------------------------------------------------


def test_public_surface() -> None:
    assert sorted(modelyard.client.__all__) == [
        "Adapters",
        "AuthenticationError",
        "BadRequestError",
        "ChecksumMismatchError",
        "Client",
        "ConflictError",
        "Datasets",
        "DownloadSummary",
        "Events",
        "Filesets",
        "FineTuningJobs",
        "Members",
        "ModelTemplates",
        "ModelVersions",
        "Models",
        "ModelyardError",
        "NotFoundError",
        "Page",
        "Pager",
        "PayloadTooLargeError",
        "PermissionDeniedError",
        "PreconditionFailedError",
        "Prompts",
        "RemoteFile",
        "Resource",
        "ServerError",
        "Tokens",
        "TransferEvent",
        "TransportError",
        "UnsafePathError",
        "UploadSummary",
        "Users",
        "ValidationError",
        "WaitTimeoutError",
        "Workspaces",
    ]
    for name in modelyard.client.__all__:
        assert getattr(modelyard.client, name).__module__.startswith("modelyard.client")
    public = {n for n in vars(modelyard.client) if not n.startswith("_")}
    assert public - set(modelyard.client.__all__) <= {"errors"}, "every public name is in __all__"
    for name in modelyard.client.__all__:
        if name.endswith("Error"):
            assert issubclass(getattr(modelyard.client, name), ModelyardError)


def test_error_hierarchy_is_documented_in_one_docstring() -> None:
    doc = modelyard.client.errors.__doc__ or ""
    for name in modelyard.client.errors.__all__:
        assert name in doc


def test_imports_nothing_from_the_server_side() -> None:
    code = (
        "import sys, modelyard.client; "
        "print(sorted(m for m in sys.modules if m.startswith('modelyard'))); "
        "print(sorted(m for m in ('fastapi', 'sqlalchemy', 'pydantic', 'starlette', 'typer') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    modules_line, heavy_line = out.strip().splitlines()
    modules = eval(modules_line)  # our own print of a list of str
    assert all(m == "modelyard" or m == "modelyard.client" or m.startswith("modelyard.client.") for m in modules)
    assert "modelyard.client" in modules
    assert eval(heavy_line) == []


# --- workspaces -------------------------------------------------------------------------------------------------


def test_workspace_lifecycle(sdk: Client) -> None:
    created = sdk.workspaces.create("research", description="R&D")
    assert isinstance(created, dict)
    assert created["name"] == "research"
    assert created["role"] == "admin"
    assert created.etag
    json.dumps(created)  # a plain dict of JSON values

    got = sdk.workspaces.get("research")
    assert got["id"] == created["id"]
    assert got.etag == created.etag

    updated = sdk.workspaces.update("research", description="new", if_match=got.etag)
    assert updated["description"] == "new"
    assert updated.etag != got.etag
    with pytest.raises(PreconditionFailedError) as stale:
        sdk.workspaces.update("research", description="lost", if_match=got.etag)
    assert stale.value.status_code == 412
    assert stale.value.error_code == "PRECONDITION_FAILED"
    assert stale.value.detail == {"etag": updated.etag}
    with pytest.raises(PreconditionFailedError):
        sdk.workspaces.delete("research", if_match=got.etag)

    assert sdk.workspaces.update("research")["description"] == "new"  # nothing named, nothing changed
    sdk.workspaces.delete("research", cascade=True, if_match=sdk.workspaces.get("research").etag)
    with pytest.raises(NotFoundError) as missing:
        sdk.workspaces.get("research")
    err = missing.value
    assert err.status_code == 404
    assert err.error_code == "WORKSPACE_NOT_FOUND"
    assert "research" in err.error_msg
    assert err.solution_msg
    assert err.request_id
    assert str(err).startswith("WORKSPACE_NOT_FOUND: ")
    assert isinstance(err, ModelyardError)


def test_unicode_and_dotted_names_round_trip(sdk: Client) -> None:
    for name in ("modèle-1", "v1.2", "a_b"):
        sdk.workspaces.create(name)
        assert sdk.workspaces.get(name)["name"] == name
        sdk.workspaces.delete(name)


def test_duplicate_is_conflict(sdk: Client) -> None:
    sdk.workspaces.create("dup")
    with pytest.raises(ConflictError) as exc:
        sdk.workspaces.create("dup")
    assert exc.value.status_code == 409
    assert exc.value.error_code == "WORKSPACE_ALREADY_EXISTS"


def test_validation_error_carries_detail(sdk: Client) -> None:
    with pytest.raises(ValidationError) as exc:
        sdk.workspaces.create("bad name!")
    assert exc.value.status_code == 422
    assert exc.value.error_code == "VALIDATION_ERROR"
    assert exc.value.detail[0]["loc"] == ["body", "name"]


def test_unknown_filter_is_bad_request(sdk: Client) -> None:
    with pytest.raises(BadRequestError) as exc:
        list(sdk.workspaces.list(colour="blue"))
    assert exc.value.error_code == "UNKNOWN_QUERY_PARAMETER"
    assert "name_prefix" in exc.value.detail["valid"]


# --- lists ------------------------------------------------------------------------------------------------------


def test_pager_walks_every_page_with_page_tokens(app: FastAPI, admin_token: str) -> None:
    seen: list[httpx.URL] = []
    with TestClient(app) as http:
        http.event_hooks = {"request": [lambda request: seen.append(request.url)]}
        client = Client(token=admin_token, http_client=http)
        names = [f"ws-{i:02d}" for i in range(25)]
        for name in names:
            client.workspaces.create(name)
        seen.clear()

        pager = client.workspaces.list(sort="name", page_size=10)
        assert seen == []  # lazy: nothing is sent before the first item is asked for
        listed = [w["name"] for w in pager]
        assert listed == sorted([*names, "default"])
        assert len(seen) == 3
        assert "page_token" not in seen[0].params
        for url in seen[1:]:
            assert url.params["page_token"]
            assert url.params["sort"] == "name"
            assert url.params["page_size"] == "10"
        assert list(pager) == []  # an iterator: exhausted once walked

        pages = list(client.workspaces.list(sort="-name", page_size=10).pages())
        assert [len(p.data) for p in pages] == [10, 10, 6]
        assert pages[-1].next_page_token is None
        assert pages[0].pagination["total_results"] == 26
        assert [w["name"] for p in pages for w in p.data] == sorted([*names, "default"], reverse=True)

        filtered = client.workspaces.list(name_prefix="ws-1", page_size=3)
        assert filtered.total_results == 10
        assert sorted(w["name"] for w in filtered) == [f"ws-1{i}" for i in range(10)]


def test_page_size_out_of_range_is_the_servers_422(sdk: Client) -> None:
    pager = sdk.workspaces.list(page_size=0)  # nothing sent yet
    with pytest.raises(ValidationError) as exc:
        next(pager)
    assert exc.value.detail[0]["loc"] == ["query", "page_size"]


# --- idempotency ------------------------------------------------------------------------------------------------


def test_idempotency_key_replays_the_first_answer(sdk: Client) -> None:
    first = sdk.workspaces.create("once", idempotency_key="key-1")
    again = sdk.workspaces.create("once", idempotency_key="key-1")
    assert again == first
    assert len([w for w in sdk.workspaces.list() if w["name"] == "once"]) == 1
    with pytest.raises(ConflictError):
        sdk.workspaces.create("once")  # without the key it is a new request
    with pytest.raises(ValidationError) as reused:
        sdk.workspaces.create("other", idempotency_key="key-1")
    assert reused.value.error_code == "IDEMPOTENCY_KEY_REUSED"

    user = sdk.users.create("ida", idempotency_key="key-2")
    assert sdk.users.create("ida", idempotency_key="key-2")["id"] == user["id"]
    member = sdk.members.add("once", "ida", "viewer", idempotency_key="key-3")
    assert sdk.members.add("once", "ida", "viewer", idempotency_key="key-3") == member
    token = sdk.tokens.create("t", user="ida", idempotency_key="key-4")
    assert sdk.tokens.create("t", user="ida", idempotency_key="key-4")["id"] == token["id"]


# --- members, users, tokens, events, me -------------------------------------------------------------------------


def test_members(sdk: Client) -> None:
    sdk.workspaces.create("team")
    sdk.users.create("alice", display_name="Alice")
    added = sdk.members.add("team", "alice", "viewer")
    assert added["user"] == "alice"
    assert added["role"] == "viewer"
    assert added["display_name"] == "Alice"
    assert {m["user"]: m["role"] for m in sdk.members.list("team")} == {"admin": "admin", "alice": "viewer"}
    assert [m["user"] for m in sdk.members.list("team", role="viewer")] == ["alice"]
    assert sdk.members.set_role("team", "alice", "editor")["role"] == "editor"
    with pytest.raises(ConflictError) as dup:
        sdk.members.add("team", "alice", "viewer")
    assert dup.value.error_code == "MEMBER_ALREADY_EXISTS"
    with pytest.raises(BadRequestError) as unknown:
        sdk.members.add("team", "nobody", "viewer")
    assert unknown.value.error_code == "USER_NOT_FOUND"
    with pytest.raises(ValidationError):
        sdk.members.add("team", "alice", "owner")
    with pytest.raises(ConflictError) as last:
        sdk.members.remove("team", "admin")
    assert last.value.error_code == "LAST_WORKSPACE_ADMIN"
    sdk.members.remove("team", "alice")
    with pytest.raises(NotFoundError) as gone:
        sdk.members.set_role("team", "alice", "viewer")
    assert gone.value.error_code == "MEMBER_NOT_FOUND"


def test_users(sdk: Client) -> None:
    created = sdk.users.create("bob", display_name="Bob", is_admin=False)
    assert created["name"] == "bob"
    assert created["is_admin"] is False
    got = sdk.users.get("bob")
    assert got.etag
    updated = sdk.users.update("bob", display_name="Robert", if_match=got.etag)
    assert updated["display_name"] == "Robert"
    assert sdk.users.update("bob", is_admin=True)["is_admin"] is True
    assert {u["name"] for u in sdk.users.list()} == {"admin", "bob"}
    assert [u["name"] for u in sdk.users.list(name_prefix="b")] == ["bob"]
    assert [u["name"] for u in sdk.users.list(is_admin=True, sort="name")] == ["admin", "bob"]
    assert sdk.users.update("bob", is_admin=False)["is_admin"] is False
    assert [u["name"] for u in sdk.users.list(is_admin=False)] == ["bob"]
    with pytest.raises(ConflictError) as last:
        sdk.users.delete("admin")
    assert last.value.error_code == "LAST_ADMIN"
    sdk.users.delete("bob")
    with pytest.raises(NotFoundError) as gone:
        sdk.users.get("bob")
    assert gone.value.error_code == "USER_NOT_FOUND"


def test_tokens(app: FastAPI, sdk: Client) -> None:
    sdk.users.create("carol")
    expires = datetime.now(UTC) + timedelta(days=30)
    created = sdk.tokens.create("laptop", user="carol", expires_at=expires)
    assert created["user"] == "carol"
    assert created["token"].startswith(created["token_prefix"])
    assert abs(datetime.fromisoformat(created["expires_at"]) - expires) < timedelta(seconds=1)

    with Client(token=created["token"], http_client=TestClient(app)) as carol:
        assert carol.me()["name"] == "carol"
        mine = list(carol.tokens.list())
        assert [t["id"] for t in mine] == [created["id"]]
        assert "token" not in mine[0]  # the secret is never listed
        own = carol.tokens.create("second")  # anyone may create their own tokens
        assert own["user"] == "carol"
        with pytest.raises(PermissionDeniedError) as denied:
            carol.tokens.create("for-admin", user="admin")
        assert denied.value.error_code == "ADMIN_REQUIRED"

        assert {t["name"] for t in sdk.tokens.list(user="carol")} == {"laptop", "second"}
        assert len(list(sdk.tokens.list())) == 3  # the admin's own token too
        sdk.tokens.revoke(created["id"])
        with pytest.raises(AuthenticationError) as revoked:
            carol.me()
        assert revoked.value.status_code == 401
        assert revoked.value.error_code == "INVALID_TOKEN"
    with pytest.raises(NotFoundError) as twice:
        sdk.tokens.revoke(created["id"])
    assert twice.value.error_code == "TOKEN_NOT_FOUND"
    with pytest.raises(ValidationError):
        sdk.tokens.create("past", expires_at=datetime.now(UTC) - timedelta(days=1))
    accepted = sdk.tokens.create("as-text", expires_at="2099-01-01T00:00:00Z")
    assert accepted["expires_at"].startswith("2099-01-01T00:00:00")


def test_events(sdk: Client) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    sdk.workspaces.create("audited")
    sdk.users.create("dave")
    sdk.members.add("audited", "dave", "viewer")
    sdk.workspaces.update("audited", description="changed")
    events = list(sdk.events.list("audited"))
    assert [e["action"] for e in events] == ["workspace.updated", "member.added", "workspace.created"]
    assert events[1]["resource"] == {
        "kind": "member",
        "workspace": "audited",
        "name": "dave",
        "id": events[1]["resource"]["id"],
    }
    assert [e["action"] for e in sdk.events.list("audited", action="member.added")] == ["member.added"]
    assert len(list(sdk.events.list("audited", resource_kind="workspace"))) == 2
    assert len(list(sdk.events.list("audited", since=before))) == 3
    assert list(sdk.events.list("audited", since=datetime.now(UTC) + timedelta(hours=1))) == []
    oldest_first = [e["action"] for e in sdk.events.list("audited", sort="at", page_size=1)]
    assert oldest_first == ["workspace.created", "member.added", "workspace.updated"]


def test_me(sdk: Client) -> None:
    me = sdk.me()
    assert me["name"] == "admin"
    assert me["is_admin"] is True
    assert me["memberships"] == [{"workspace": "default", "role": "admin"}]


# --- errors by role ---------------------------------------------------------------------------------------------


def test_forbidden_and_hidden_workspaces(app: FastAPI, sdk: Client) -> None:
    sdk.workspaces.create("shared")
    sdk.workspaces.create("secret")
    with sdk_as(app, sdk, "eve", {"shared": "viewer"}) as eve:
        assert [w["name"] for w in eve.workspaces.list()] == ["shared"]
        with pytest.raises(PermissionDeniedError) as denied:
            eve.workspaces.update("shared", description="x")
        assert denied.value.status_code == 403
        assert denied.value.error_code == "INSUFFICIENT_ROLE"
        with pytest.raises(NotFoundError):
            eve.workspaces.get("secret")  # not a member: 404, it cannot probe what exists
        with pytest.raises(PermissionDeniedError) as not_admin:
            list(eve.users.list())
        assert not_admin.value.error_code == "ADMIN_REQUIRED"


def test_bad_and_missing_token(app: FastAPI) -> None:
    with Client(token="myd_not-a-real-token", http_client=TestClient(app)) as bad:
        with pytest.raises(AuthenticationError) as exc:
            bad.me()
        assert exc.value.error_code == "INVALID_TOKEN"
        assert exc.value.solution_msg
    with Client(http_client=TestClient(app)) as anonymous, pytest.raises(AuthenticationError) as missing:
        list(anonymous.workspaces.list())
    assert missing.value.error_code == "MISSING_TOKEN"


# --- configuration and transport --------------------------------------------------------------------------------


def test_token_from_environment(app: FastAPI, admin_token: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELYARD_TOKEN", admin_token)
    with Client(http_client=TestClient(app)) as client:
        assert client.me()["name"] == "admin"


def test_token_from_admin_token_file(
    app: FastAPI, admin_token: str, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert settings.admin_token_path.read_text().strip() == admin_token
    monkeypatch.setenv("MODELYARD_HOME", str(settings.home))
    with Client(http_client=TestClient(app)) as client:
        assert client.me()["name"] == "admin"


def test_injected_client_keeps_its_own_auth_header(app: FastAPI, admin_token: str) -> None:
    headers = {"Authorization": f"Bearer {admin_token}"}
    with TestClient(app, headers=headers) as http:
        assert Client(http_client=http).me()["name"] == "admin"
        # An explicit token wins over the injected client's header.
        with pytest.raises(AuthenticationError):
            Client(token="myd_wrong", http_client=http).me()


def test_over_real_http(live_server: str, admin_token: str) -> None:
    with Client(base_url=live_server, token=admin_token) as client:
        assert client.base_url == live_server
        client.workspaces.create("remote")
        assert client.workspaces.get("remote")["name"] == "remote"
        assert client.workspaces.list(page_size=1).total_results == 2
        with pytest.raises(NotFoundError):
            client.workspaces.get("nowhere")


def test_url_and_token_from_environment(live_server: str, admin_token: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELYARD_URL", live_server + "/")
    monkeypatch.setenv("MODELYARD_TOKEN", admin_token)
    with Client() as client:
        assert client.base_url == live_server
        assert client.me()["name"] == "admin"


def test_injected_client_with_base_url_uses_only_the_path(live_server: str, admin_token: str) -> None:
    with httpx.Client(base_url=live_server) as http:
        client = Client(base_url="http://elsewhere.invalid", token=admin_token, http_client=http)
        assert client.me()["name"] == "admin"
    with httpx.Client() as http:  # no base URL of its own: ours is used whole
        assert Client(base_url=live_server, token=admin_token, http_client=http).me()["name"] == "admin"


def test_transport_error() -> None:
    with Client(base_url="http://127.0.0.1:9", token="x", timeout=5) as client, pytest.raises(TransportError) as exc:
        client.me()
    err = exc.value
    assert err.status_code is None
    assert err.error_code == "TRANSPORT_ERROR"
    assert isinstance(err.__cause__, httpx.TransportError)
    assert "127.0.0.1:9" in err.error_msg


def test_error_answers_that_are_not_ours() -> None:
    """A proxy or another server in front may answer without the error body; the SDK still raises by status."""
    request = httpx.Request("GET", "http://proxy/v1/me")
    html = httpx.Response(502, text="<html>Bad gateway</html>", request=request, headers={"x-request-id": "r1"})
    err = error_from_response(html)
    assert isinstance(err, ServerError)
    assert err.error_code == "HTTP_502"
    assert err.error_msg == "<html>Bad gateway</html>"
    assert err.request_id == "r1"
    empty = error_from_response(httpx.Response(413, request=request))
    assert type(empty).__name__ == "PayloadTooLargeError"
    assert empty.error_code == "HTTP_413"
    assert empty.error_msg == httpx.codes.get_reason_phrase(413)
    other = error_from_response(httpx.Response(405, json={"error_code": "METHOD_NOT_ALLOWED"}, request=request))
    assert type(other) is ModelyardError
    assert other.error_code == "METHOD_NOT_ALLOWED"
    assert other.error_msg == "Method Not Allowed"


# --- docs -------------------------------------------------------------------------------------------------------


def test_sdk_guide_examples_run(
    app: FastAPI, live_server: str, admin_token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every ```python block of docs/sdk.md runs, in order, in one namespace, against a fresh server; a `test_*`
    function a block defines is then called with the app and the admin token."""
    text = (DOCS / "sdk.md").read_text()
    blocks = re.findall(r"^```python\n(.*?)^```", text, flags=re.DOTALL | re.MULTILINE)
    assert len(blocks) >= 5
    monkeypatch.setenv("MODELYARD_URL", live_server)
    monkeypatch.setenv("MODELYARD_TOKEN", admin_token)
    namespace: dict[str, object] = {"__name__": "sdk_guide"}
    for block in blocks:
        exec(compile(block, "docs/sdk.md", "exec"), namespace)  # our own docs
    tests = [f for name, f in namespace.items() if name.startswith("test_") and callable(f)]
    assert tests
    for test in tests:
        test(app, admin_token)
