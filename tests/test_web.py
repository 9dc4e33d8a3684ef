"""The web UI at /ui: sign-in with an API token, the session cookie and its CSRF token, pages over real data made
through the API, the same access rules as the API (404 for non-members, 403 below editor), the two form writes,
keyset paging, HTML error pages under /ui only, and the UI's security headers."""

from __future__ import annotations

import html
import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from modelyard.config import Settings
from modelyard.db.engine import Database
from modelyard.job.worker import Worker
from modelyard.web import router as web_router
from tests.fixtures.app import MakeUser, error_shape
from tests.fixtures.databases import count_rows
from tests.test_adapters import ADAPTERS, add, base_model, drain, upload_dir
from tests.test_model_templates import template_body

WS = "/v1/workspaces/default"
ROOT = Path(__file__).resolve().parent.parent
XSS = '<script>alert("x")</script>'

Browser = Callable[..., TestClient]


@pytest.fixture
def worker(db: Database, settings: Settings) -> Worker:
    return Worker(db, settings, name="test")


def _field(page: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert found is not None, f"no field {name} in page"
    return html.unescape(found.group(1))


def sign_in(browser: TestClient, token: str, next_path: str | None = None) -> httpx.Response:
    form_page = browser.get("/ui/login", params={"next": next_path} if next_path else None)
    assert form_page.status_code == 200
    return browser.post(
        "/ui/login",
        data={
            "token": token,
            "next": _field(form_page.text, "next"),
            "login_nonce": _field(form_page.text, "login_nonce"),
        },
    )


def token_of(user_client: TestClient) -> str:
    return str(user_client.headers["Authorization"]).removeprefix("Bearer ")


@pytest.fixture
def browse(app: FastAPI) -> Iterator[Browser]:
    """browse(token) -> a browser (its own cookie jar, no Authorization header) signed in with `token`;
    browse() -> one signed in as nobody."""
    opened: list[TestClient] = []

    def make(token: str | None = None, base_url: str = "http://testserver") -> TestClient:
        browser = TestClient(app, raise_server_exceptions=False, follow_redirects=False, base_url=base_url)
        opened.append(browser)
        if token is not None:
            r = sign_in(browser, token)
            assert r.status_code == 303, r.text
        return browser

    yield make
    for browser in opened:
        browser.close()


def csrf_of(page: str) -> str:
    return _field(page, "csrf_token")


def assert_ui_headers(r: httpx.Response) -> None:
    csp = r.headers["content-security-policy"]
    assert "default-src 'none'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "script-src" not in csp  # no script is allowed at all (default-src 'none')
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"


# -- sign-in, sessions, redirects --------------------------------------------------------------------------------------


def test_login_page_is_open_and_secured(browse: Browser) -> None:
    r = browse().get("/ui/login")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert '<form method="post" action="/ui/login">' in r.text
    assert 'name="token"' in r.text
    assert_ui_headers(r)
    assert r.headers["cache-control"] == "no-store"
    cookie = r.headers["set-cookie"]
    assert cookie.startswith("modelyard_login=")
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Path=/ui" in cookie


def test_sign_in_sets_a_strict_http_only_session_cookie(browse: Browser, admin_token: str) -> None:
    browser = browse()
    r = sign_in(browser, admin_token)
    assert r.status_code == 303
    assert r.headers["location"] == "/ui"
    session_cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith("modelyard_session="))
    assert "HttpOnly" in session_cookie
    assert "SameSite=strict" in session_cookie
    assert "Path=/ui" in session_cookie
    assert "Secure" not in session_cookie  # plain http (the test server); see the https case below
    assert admin_token in session_cookie
    home = browser.get("/ui")
    assert home.status_code == 200
    assert '<a href="/ui/workspaces/default">default</a>' in home.text
    assert "admin" in home.text
    assert_ui_headers(home)
    assert home.headers["cache-control"] == "no-store"


def test_session_cookie_is_secure_over_https(browse: Browser, admin_token: str) -> None:
    browser = browse(base_url="https://testserver")
    r = sign_in(browser, admin_token)
    assert r.status_code == 303
    session_cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith("modelyard_session="))
    assert "Secure" in session_cookie
    assert browser.get("/ui").status_code == 200


@pytest.mark.parametrize(
    ("token", "message"), [("myd_not-a-real-token", "Invalid API token"), ("", "Enter an API token.")]
)
def test_bad_token_re_renders_the_form_with_401(browse: Browser, token: str, message: str) -> None:
    browser = browse()
    r = sign_in(browser, token)
    assert r.status_code == 401
    assert message in r.text
    assert 'name="token"' in r.text
    assert not any(c.startswith("modelyard_session=") for c in r.headers.get_list("set-cookie"))
    assert browser.get("/ui").status_code == 303


def test_sign_in_form_from_elsewhere_is_refused(browse: Browser, admin_token: str) -> None:
    """A cross-site post of the sign-in form carries no login cookie (SameSite=Strict): no session comes of it."""
    browser = browse()
    r = browser.post("/ui/login", data={"token": admin_token, "next": "/ui", "login_nonce": "guessed"})
    assert r.status_code == 403
    assert "did not come from this site" in r.text
    assert not any(c.startswith("modelyard_session=") for c in r.headers.get_list("set-cookie"))
    assert browser.get("/ui").status_code == 303


def test_pages_without_a_session_redirect_to_login_and_back(browse: Browser, admin_token: str) -> None:
    browser = browse()
    r = browser.get("/ui/workspaces/default/models", params={"name_prefix": "a"})
    assert r.status_code == 303
    assert r.headers["location"] == "/ui/login?next=%2Fui%2Fworkspaces%2Fdefault%2Fmodels%3Fname_prefix%3Da"
    form_page = browser.get(r.headers["location"])
    assert _field(form_page.text, "next") == "/ui/workspaces/default/models?name_prefix=a"
    signed = browser.post(
        "/ui/login",
        data={
            "token": admin_token,
            "next": _field(form_page.text, "next"),
            "login_nonce": _field(form_page.text, "login_nonce"),
        },
    )
    assert signed.status_code == 303
    assert signed.headers["location"] == "/ui/workspaces/default/models?name_prefix=a"
    assert browser.get(signed.headers["location"]).status_code == 200
    # A garbled cookie, or one holding no valid token, is no session either.
    for cookie in ("garbage", "nonce.myd_wrong", "nonce." + "x" * 2000):
        assert browse().get("/ui", headers={"Cookie": f"modelyard_session={cookie}"}).status_code == 303


@pytest.mark.parametrize(
    "next_path",
    [
        "https://evil.example/ui",
        "//evil.example/ui",
        "/\\evil.example",
        "\\\\evil.example",
        "/ui/../../evil",
        "/ui/%2e%2e/%2e%2e/evil",
        "/uix",
        "javascript:alert(1)",
        "/ui/login",
        "/ui\r\nLocation: https://evil.example",
    ],
)
def test_next_outside_the_ui_is_refused(browse: Browser, admin_token: str, next_path: str) -> None:
    browser = browse()
    r = sign_in(browser, admin_token, next_path)
    assert r.status_code == 303
    assert r.headers["location"] == "/ui"


def test_logout_needs_the_csrf_token_and_ends_the_session(browse: Browser, admin_token: str) -> None:
    browser = browse(admin_token)
    home = browser.get("/ui")
    refused = browser.post("/ui/logout", data={})
    assert refused.status_code == 403
    assert "CSRF_TOKEN_INVALID" in refused.text
    assert browser.get("/ui").status_code == 200
    r = browser.post("/ui/logout", data={"csrf_token": csrf_of(home.text)})
    assert r.status_code == 303
    assert r.headers["location"] == "/ui/login"
    cleared = r.headers["set-cookie"]
    assert cleared.startswith('modelyard_session=""') or cleared.startswith("modelyard_session=;")
    assert "Max-Age=0" in cleared
    assert browser.get("/ui").status_code == 303


def test_revoked_token_loses_access_at_once(client: TestClient, browse: Browser) -> None:
    created = client.post("/v1/tokens", json={"name": "browser"}).json()
    browser = browse(created["token"])
    assert browser.get("/ui").status_code == 200
    assert browser.get("/ui/workspaces/default").status_code == 200
    assert client.delete(f"/v1/tokens/{created['id']}").status_code == 204
    r = browser.get("/ui/workspaces/default")
    assert r.status_code == 303
    assert r.headers["location"].startswith("/ui/login?next=")


def test_expired_token_loses_access(client: TestClient, browse: Browser) -> None:
    soon = datetime.now(UTC) + timedelta(seconds=1)
    created = client.post("/v1/tokens", json={"name": "short", "expires_at": soon.isoformat()}).json()
    browser = browse(created["token"])
    assert browser.get("/ui").status_code == 200
    time.sleep(max(0.0, (soon - datetime.now(UTC)).total_seconds()) + 0.05)
    assert browser.get("/ui").status_code == 303
    again = sign_in(browse(), created["token"])
    assert again.status_code == 401
    assert "API token &#39;short&#39; has expired" in again.text


# -- pages -------------------------------------------------------------------------------------------------------------


@pytest.fixture
def registry(client: TestClient, worker: Worker) -> dict[str, Any]:
    """A workspace with a READY base model, a LoRA adapter on it with lineage, a template and a model whose
    display name and labels are markup."""
    base_model(client, worker, "tiny-llama", "tiny-llama")
    upload_dir(client, "lora-llama", ADAPTERS / "lora-llama")
    client.post(f"{WS}/datasets", json={"name": "tickets", "source": {"type": "huggingface", "ref": "org/tickets"}})
    job = client.post(
        f"{WS}/fine-tuning-jobs",
        json={"name": "job-1", "base_model": "tiny-llama", "dataset": "tickets", "dataset_fraction": 0.5},
    )
    assert job.status_code == 201, job.text
    r = add(
        client,
        "tiny-llama",
        {"name": "support-lora", "fileset": "lora-llama", "finetuning_type": "lora", "fine_tuning_job": "job-1"},
    )
    assert r.status_code == 201, r.text
    schema = {"parameters": [{"name": "weights_uri", "type": "str", "description": "Weights", "required": True}]}
    r = client.post(
        f"{WS}/model-templates",
        json=template_body("vllm-template", description=XSS, model_creation_parameters_schema=schema),
    )
    assert r.status_code == 201, r.text
    r = client.post(
        f"{WS}/models",
        json={"name": "tricky", "display_name": XSS, "description": XSS, "labels": {"team": XSS}},
    )
    assert r.status_code == 201, r.text
    assert client.patch(WS, json={"description": XSS}).status_code == 200
    return {"adapter": r.json()}


def assert_escaped(page: str) -> None:
    assert "<script>" not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page


def test_workspace_page_shows_every_kind(browse: Browser, admin_token: str, registry: dict[str, Any]) -> None:
    r = browse(admin_token).get("/ui/workspaces/default")
    assert r.status_code == 200
    page = r.text
    assert '<a href="/ui/workspaces/default/models/tiny-llama">tiny-llama</a>' in page
    assert '<a href="/ui/workspaces/default/models/tricky">tricky</a>' in page
    assert '<a href="/ui/workspaces/default/adapters/support-lora">support-lora</a>' in page
    assert '<a href="/ui/workspaces/default/filesets/lora-llama">lora-llama</a>' in page
    assert '<a href="/ui/workspaces/default/model-templates/vllm-template">vllm-template</a>' in page
    assert "job-1" in page
    assert "tickets" in page
    assert "adapter.created" in page  # recent events
    assert_escaped(page)


def test_model_page_shows_fields_versions_and_adapters(
    browse: Browser, admin_token: str, registry: dict[str, Any]
) -> None:
    browser = browse(admin_token)
    page = browser.get("/ui/workspaces/default/models/tiny-llama").text
    assert "READY" in page
    assert '<span class="badge">current</span>' in page
    assert '<a href="/ui/workspaces/default/filesets/tiny-llama-files">default/tiny-llama-files</a>' in page
    assert '<a href="/ui/workspaces/default/adapters/support-lora">support-lora</a>' in page
    assert "num_layers" in page  # the spec read from config.json
    tricky = browser.get("/ui/workspaces/default/models/tricky")
    assert tricky.status_code == 200
    assert_escaped(tricky.text)
    assert "team: &lt;script&gt;" in tricky.text


def test_lists_show_what_the_api_lists(browse: Browser, admin_token: str, registry: dict[str, Any]) -> None:
    browser = browse(admin_token)
    models = browser.get("/ui/workspaces/default/models").text
    assert models.index(">tiny-llama</a>") < models.index(">tricky</a>")  # by name
    assert_escaped(models)
    filtered = browser.get("/ui/workspaces/default/models", params={"name_prefix": "tri"}).text
    assert ">tricky</a>" in filtered
    assert ">tiny-llama</a>" not in filtered
    adapters = browser.get("/ui/workspaces/default/adapters").text
    assert ">support-lora</a>" in adapters
    assert "default/tiny-llama" in adapters
    assert (
        browser.get("/ui/workspaces/default/adapters", params={"enabled": "false"}).text.count(">support-lora</a>") == 0
    )
    filesets = browser.get("/ui/workspaces/default/filesets").text
    assert ">lora-llama</a>" in filesets
    assert ">tiny-llama-files</a>" in filesets
    templates = browser.get("/ui/workspaces/default/model-templates").text
    assert ">vllm-template</a>" in templates
    assert_escaped(templates)


def test_adapter_page_shows_compatibility_and_lineage(
    browse: Browser, admin_token: str, registry: dict[str, Any]
) -> None:
    r = browse(admin_token).get("/ui/workspaces/default/adapters/support-lora")
    assert r.status_code == 200
    page = r.text
    assert '<a href="/ui/workspaces/default/models/tiny-llama">default/tiny-llama</a> @ v1' in page
    assert '<a href="/ui/workspaces/default/filesets/lora-llama">default/lora-llama</a>' in page
    assert '<span class="status status-compatible">compatible</span>' in page
    for check in ("peft_type", "rank", "target_modules", "tensor_shapes"):
        assert f"<code>{check}</code>" in page
    assert "fraction 0.5" in page  # the dataset split of its fine-tuning job
    assert "fine tuning job <strong>job-1</strong>" in page
    assert "dataset <strong>tickets</strong>" in page
    assert "Disable this adapter" in page
    assert "&#34;r&#34;: 8" in page or "&#34;rank&#34;: 8" in page  # lora_config as formatted JSON


def test_fileset_page_lists_files_with_digests(
    browse: Browser, admin_token: str, client: TestClient, registry: dict[str, Any]
) -> None:
    files = client.get(f"{WS}/filesets/lora-llama/files").json()["data"]
    page = browse(admin_token).get("/ui/workspaces/default/filesets/lora-llama").text
    for file in files:
        assert f"<code>{file['path']}</code>" in page
        assert file["sha256"] in page
    assert client.get(f"{WS}/filesets/lora-llama").json()["digest"] in page


def test_template_page_shows_schemas_as_json(browse: Browser, admin_token: str, registry: dict[str, Any]) -> None:
    page = browse(admin_token).get("/ui/workspaces/default/model-templates/vllm-template").text
    assert '<pre class="json">' in page
    assert "&#34;name&#34;: &#34;weights_uri&#34;" in page
    assert "&#34;registry&#34;: &#34;r&#34;" in page
    assert_escaped(page)


def test_events_page_pages_and_filters(browse: Browser, admin_token: str, registry: dict[str, Any]) -> None:
    browser = browse(admin_token)
    page = browser.get("/ui/workspaces/default/events").text
    assert "<code>adapter.created</code>" in page
    assert "<code>model.created</code>" in page
    only = browser.get("/ui/workspaces/default/events", params={"action": "adapter.created"}).text
    assert "<code>adapter.created</code>" in only
    assert "<code>model.created</code>" not in only


def test_non_member_gets_404_pages(client: TestClient, make_user: MakeUser, browse: Browser) -> None:
    client.post("/v1/workspaces", json={"name": "secret"})
    client.post("/v1/workspaces/secret/models", json={"name": "hidden"})
    outsider = browse(token_of(make_user("oscar")))
    home = outsider.get("/ui").text
    assert "/ui/workspaces/secret" not in home
    for path in ("/ui/workspaces/secret", "/ui/workspaces/secret/models", "/ui/workspaces/secret/models/hidden"):
        r = outsider.get(path)
        assert r.status_code == 404, path
        assert r.headers["content-type"].startswith("text/html")
        assert "Workspace &#39;secret&#39; not found" in r.text
        assert "WORKSPACE_NOT_FOUND" in r.text
        assert_ui_headers(r)
    # The same page as for a workspace that does not exist.
    missing = outsider.get("/ui/workspaces/no-such-ws")
    assert missing.status_code == 404
    assert missing.text.replace("no-such-ws", "secret") == outsider.get("/ui/workspaces/secret").text


# -- writes ------------------------------------------------------------------------------------------------------------


def _adapter(client: TestClient) -> dict[str, Any]:
    return dict(client.get(f"{WS}/adapters/support-lora").json())


def test_editor_disables_and_enables_an_adapter(
    client: TestClient, make_user: MakeUser, browse: Browser, registry: dict[str, Any]
) -> None:
    editor = browse(token_of(make_user("eddie", workspaces={"default": "editor"})))
    page = editor.get("/ui/workspaces/default/adapters/support-lora").text
    r = editor.post(
        "/ui/workspaces/default/adapters/support-lora/enabled",
        data={"csrf_token": csrf_of(page), "etag": _field(page, "etag"), "enabled": _field(page, "enabled")},
    )
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/ui/workspaces/default/adapters/support-lora?done=disabled"
    assert _adapter(client)["enabled"] is False
    events = client.get(f"{WS}/events", params={"action": "adapter.disabled"}).json()["data"]
    assert [(e["actor"], e["resource"]["name"]) for e in events] == [("eddie", "support-lora")]
    page = editor.get(r.headers["location"]).text
    assert "The adapter was disabled." in page
    assert "Enable this adapter" in page
    r = editor.post(
        "/ui/workspaces/default/adapters/support-lora/enabled",
        data={"csrf_token": csrf_of(page), "etag": _field(page, "etag"), "enabled": "true"},
    )
    assert r.status_code == 303
    assert _adapter(client)["enabled"] is True


def test_viewer_cannot_disable_an_adapter(
    client: TestClient, make_user: MakeUser, browse: Browser, registry: dict[str, Any], db: Database
) -> None:
    viewer = browse(token_of(make_user("vera", workspaces={"default": "viewer"})))
    page = viewer.get("/ui/workspaces/default/adapters/support-lora").text
    assert "Disable this adapter" not in page
    events_before = count_rows(db, "events")
    r = viewer.post(
        "/ui/workspaces/default/adapters/support-lora/enabled", data={"csrf_token": csrf_of(page), "enabled": "false"}
    )
    assert r.status_code == 403
    assert r.headers["content-type"].startswith("text/html")
    assert "INSUFFICIENT_ROLE" in r.text
    assert "Your role in workspace &#39;default&#39; is viewer; this needs editor" in r.text
    assert _adapter(client)["enabled"] is True
    assert count_rows(db, "events") == events_before


@pytest.mark.parametrize("csrf", [None, "", "0" * 64])
def test_missing_or_wrong_csrf_token_is_403_and_changes_nothing(
    client: TestClient, browse: Browser, admin_token: str, registry: dict[str, Any], db: Database, csrf: str | None
) -> None:
    browser = browse(admin_token)
    browser.get("/ui/workspaces/default/adapters/support-lora")
    events_before = count_rows(db, "events")
    data = {"enabled": "false"} | ({"csrf_token": csrf} if csrf is not None else {})
    r = browser.post("/ui/workspaces/default/adapters/support-lora/enabled", data=data)
    assert r.status_code == 403
    assert "CSRF_TOKEN_INVALID" in r.text
    assert_ui_headers(r)
    assert _adapter(client)["enabled"] is True
    assert count_rows(db, "events") == events_before


def test_csrf_token_of_another_session_is_refused(
    client: TestClient, browse: Browser, admin_token: str, registry: dict[str, Any]
) -> None:
    first, second = browse(admin_token), browse(admin_token)
    other = csrf_of(first.get("/ui").text)
    assert other != csrf_of(second.get("/ui").text)  # a new one at each sign-in
    r = second.post(
        "/ui/workspaces/default/adapters/support-lora/enabled", data={"csrf_token": other, "enabled": "false"}
    )
    assert r.status_code == 403
    assert _adapter(client)["enabled"] is True


def test_a_stale_page_is_412(client: TestClient, browse: Browser, admin_token: str, registry: dict[str, Any]) -> None:
    browser = browse(admin_token)
    page = browser.get("/ui/workspaces/default/adapters/support-lora").text
    assert client.patch(f"{WS}/adapters/support-lora", json={"description": "changed"}).status_code == 200
    r = browser.post(
        "/ui/workspaces/default/adapters/support-lora/enabled",
        data={"csrf_token": csrf_of(page), "etag": _field(page, "etag"), "enabled": "false"},
    )
    assert r.status_code == 412
    assert "Changed meanwhile" in r.text
    assert _adapter(client)["enabled"] is True


def test_post_without_a_session_changes_nothing(client: TestClient, browse: Browser, registry: dict[str, Any]) -> None:
    r = browse().post("/ui/workspaces/default/adapters/support-lora/enabled", data={"enabled": "false"})
    assert r.status_code == 303
    assert r.headers["location"] == "/ui/login"
    assert _adapter(client)["enabled"] is True


def test_make_a_version_current(client: TestClient, worker: Worker, browse: Browser, admin_token: str) -> None:
    base_model(client, worker, "tiny-llama", "tiny-llama")
    r = client.post(
        f"{WS}/models/tiny-llama/versions",
        json={
            "name": "v2",
            "config": {"llm_model_config": {"base_model_type": "TINY", "model_path": "tiny-llama-files"}},
        },
    )
    assert r.status_code == 201, r.text
    drain(worker)
    browser = browse(admin_token)
    page = browser.get("/ui/workspaces/default/models/tiny-llama").text
    assert page.count("Make current") == 1  # v2 only: v1 is current
    assert _field(page, "version_id") == r.json()["id"]
    answer = browser.post(
        "/ui/workspaces/default/models/tiny-llama/current-version",
        data={"csrf_token": csrf_of(page), "etag": _field(page, "etag"), "version_id": _field(page, "version_id")},
    )
    assert answer.status_code == 303, answer.text
    assert client.get(f"{WS}/models/tiny-llama").json()["current_version"]["name"] == "v2"
    page = browser.get(answer.headers["location"]).text
    assert "The current version was changed." in page
    version_page = browser.get("/ui/workspaces/default/models/tiny-llama/versions/v1").text
    assert "Make current" in version_page  # v1 is no longer current
    assert "<code>config.json</code>" in version_page  # its manifest
    assert r.json()["id"] not in version_page
    # The same form again, from the page drawn before the change: the model changed meanwhile.
    stale = browser.post(
        "/ui/workspaces/default/models/tiny-llama/current-version",
        data={"csrf_token": csrf_of(page), "etag": '"stale"', "version_id": r.json()["id"]},
    )
    assert stale.status_code == 412


def test_version_of_another_model_is_409(client: TestClient, worker: Worker, browse: Browser, admin_token: str) -> None:
    base_model(client, worker, "tiny-llama", "tiny-llama")
    other = client.post(f"{WS}/models", json={"name": "other"}).json()
    browser = browse(admin_token)
    page = browser.get("/ui/workspaces/default/models/other").text
    version_id = client.get(f"{WS}/models/tiny-llama").json()["current_version_id"]
    r = browser.post(
        "/ui/workspaces/default/models/other/current-version",
        data={"csrf_token": csrf_of(page), "version_id": version_id},
    )
    assert r.status_code == 409
    assert "VERSION_NOT_OF_MODEL" in r.text
    assert client.get(f"{WS}/models/other").json()["current_version_id"] is other["current_version_id"] is None


# -- paging ------------------------------------------------------------------------------------------------------------


def test_list_pages_follow_the_keyset_next_link(client: TestClient, browse: Browser, admin_token: str) -> None:
    names = [f"model-{i:03d}" for i in range(57)]
    for name in names:
        assert client.post(f"{WS}/models", json={"name": name}).status_code == 201
    browser = browse(admin_token)
    seen: list[str] = []
    r = browser.get("/ui/workspaces/default/models")
    pages = 0
    while True:
        pages += 1
        assert r.status_code == 200, r.text
        seen += re.findall(r'<a href="/ui/workspaces/default/models/(model-\d+)">', r.text)
        link = re.search(r'<a class="next" rel="next" href="([^"]+)">', r.text)
        if link is None:
            break
        target = html.unescape(link.group(1))
        assert "page_token=" in target
        r = browser.get(target)
    assert pages == 2
    assert seen == names  # every model once, in name order
    assert "57 in all" in r.text
    bad = browser.get("/ui/workspaces/default/models", params={"page_token": "not-a-token"})
    assert bad.status_code == 400
    assert "INVALID_PAGE_TOKEN" in bad.text


# -- errors, routes, static files --------------------------------------------------------------------------------------


def test_api_errors_stay_json(client: TestClient, anon: TestClient) -> None:
    for r in (client.get("/v1/nothing-here"), client.get("/v1/workspaces/nope"), anon.get("/v1/workspaces")):
        assert r.headers["content-type"] == "application/json"
        error_shape(r)
        assert "content-security-policy" not in r.headers
    assert client.get("/v1/workspaces/nope").json()["error_code"] == "WORKSPACE_NOT_FOUND"


def test_ui_errors_are_html_with_their_status(browse: Browser, admin_token: str) -> None:
    browser = browse(admin_token)
    missing = browser.get("/ui/no-such-page")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("text/html")
    assert "404 · Not found" in missing.text
    assert_ui_headers(missing)
    wrong_method = browser.put("/ui/login")
    assert wrong_method.status_code == 405
    assert wrong_method.headers["content-type"].startswith("text/html")
    assert "allow" in wrong_method.headers
    invalid = browser.get("/ui/workspaces/default/models", params={"model_type": "NOPE"})
    assert invalid.status_code == 422
    assert "query.model_type" in invalid.text
    long_name = browser.get("/ui/workspaces/" + "w" * 300)
    assert long_name.status_code == 422
    assert long_name.headers["content-type"].startswith("text/html")


def test_root_redirects_to_the_ui(anon: TestClient) -> None:
    r = anon.get("/", follow_redirects=False)
    assert r.status_code == 307
    assert r.headers["location"] == "/ui"
    assert anon.get("/ui", follow_redirects=False).headers["location"] == "/ui/login?next=%2Fui"


def test_ui_is_not_in_the_openapi_document(anon: TestClient) -> None:
    paths = anon.get("/openapi.json").json()["paths"]
    assert paths  # the API is there
    assert [p for p in paths if p == "/" or p.startswith("/ui")] == []


def test_static_stylesheet(anon: TestClient) -> None:
    r = anon.get("/ui/static/modelyard.css")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/css")
    assert r.headers["x-content-type-options"] == "nosniff"
    assert ".pager" in r.text
    again = anon.get("/ui/static/modelyard.css", headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304
    missing = anon.get("/ui/static/../../app.py")
    assert missing.status_code == 404
    assert anon.get("/ui/static/nothing.css").status_code == 404


def test_docs_name_every_page() -> None:
    """docs/ui.md's table of pages lists exactly the UI's pages."""
    documented = set(re.findall(r"^\| [^|]+ \| `(/ui[^`]*)` \|", (ROOT / "docs" / "ui.md").read_text(), flags=re.M))
    pages = {
        path
        for route in web_router.routes
        if "GET" in getattr(route, "methods", set())
        and (path := getattr(route, "path", "")).startswith("/ui")
        and path not in ("/ui/login", "/ui/static/{name}")
    }
    assert documented == pages


def test_list_pages_query_the_same_whatever_their_rows(
    client: TestClient, browse: Browser, admin_token: str, db: Database
) -> None:
    """No query per row (N+1) on the pages that list: the statements a page runs do not grow with its rows."""
    import sqlalchemy as sa

    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    client.post(f"{WS}/models", json={"name": "base"})
    browser = browse(admin_token)
    pages = ("/ui", "/ui/workspaces/default", "/ui/workspaces/default/models", "/ui/workspaces/default/adapters")

    def measure() -> dict[str, int]:
        found = {}
        for page in pages:
            statements.clear()
            assert browser.get(page).status_code == 200, page
            found[page] = len(statements)
        return found

    def grow(start: int, stop: int) -> None:
        for i in range(start, stop):
            client.post("/v1/workspaces", json={"name": f"w-{i}"})
            client.post(f"{WS}/models", json={"name": f"m-{i}"})
            add(client, "base", {"name": f"a-{i}", "huggingface_name": "org/name", "finetuning_type": "lora"})

    # Both sizes fill the workspace page's previews (10 rows, counted) and fit in one list page (50, not counted).
    sa.event.listen(db.engine, "before_cursor_execute", count)
    try:
        grow(0, 12)
        few = measure()
        grow(12, 30)
        many = measure()
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", count)
    assert many == few
    assert all(n > 0 for n in few.values())


def test_unexpected_error_is_an_html_500_without_details(
    browse: Browser, admin_token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from modelyard.web import endpoints

    def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("secret detail of a bug")

    browser = browse(admin_token)
    monkeypatch.setattr(endpoints.workspace_service, "list_workspaces", broken)
    r = browser.get("/ui")
    assert r.status_code == 500
    assert r.headers["content-type"].startswith("text/html")
    assert f"request id {r.headers['x-request-id']}" in r.text
    assert "secret detail" not in r.text
    assert "Traceback" not in r.text
    assert_ui_headers(r)
