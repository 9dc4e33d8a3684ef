"""`Idempotency-Key` on POST: retries replay the first answer; another body with the same key is a 422."""

from __future__ import annotations

import concurrent.futures
from datetime import timedelta

import httpx
import sqlalchemy as sa
from fastapi.testclient import TestClient

from modelyard.config import Settings
from modelyard.db.base import utcnow
from modelyard.db.engine import Database
from modelyard.job.worker import Worker
from modelyard.kit.tables import IdempotencyKey
from tests.fixtures.app import MakeUser, error_shape
from tests.fixtures.databases import count_rows


def test_retry_replays_first_answer(client: TestClient, db: Database) -> None:
    headers = {"Idempotency-Key": "create-ws-1"}
    first = client.post("/v1/workspaces", json={"name": "idem"}, headers=headers)
    assert first.status_code == 201
    again = client.post("/v1/workspaces", json={"name": "idem"}, headers=headers)
    assert again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert count_rows(db, "workspaces") == 2  # default + idem
    # Without the key the duplicate is a plain conflict.
    assert client.post("/v1/workspaces", json={"name": "idem"}).status_code == 409


def test_same_key_other_body_is_422(client: TestClient) -> None:
    headers = {"Idempotency-Key": "k-2"}
    assert client.post("/v1/workspaces", json={"name": "one"}, headers=headers).status_code == 201
    r = client.post("/v1/workspaces", json={"name": "two"}, headers=headers)
    assert r.status_code == 422
    assert error_shape(r)["error_code"] == "IDEMPOTENCY_KEY_REUSED"
    assert client.get("/v1/workspaces/two").status_code == 404


def test_failed_request_does_not_burn_the_key(client: TestClient) -> None:
    headers = {"Idempotency-Key": "k-3"}
    client.post("/v1/workspaces", json={"name": "taken"})
    assert client.post("/v1/workspaces", json={"name": "taken"}, headers=headers).status_code == 409
    client.delete("/v1/workspaces/taken")
    assert client.post("/v1/workspaces", json={"name": "taken"}, headers=headers).status_code == 201


def test_keys_are_per_user(client: TestClient, make_user: MakeUser) -> None:
    jane = make_user("jane")
    headers = {"Idempotency-Key": "shared"}
    assert client.post("/v1/workspaces", json={"name": "admins"}, headers=headers).status_code == 201
    assert jane.post("/v1/workspaces", json={"name": "janes"}, headers=headers).status_code == 201


def test_bad_key_is_422(client: TestClient) -> None:
    r = client.post("/v1/workspaces", json={"name": "x"}, headers={"Idempotency-Key": "k" * 300})
    assert r.status_code == 422
    assert error_shape(r)["detail"][0]["loc"] == ["header", "Idempotency-Key"]


def test_concurrent_retries_create_once(live_server: str, admin_token: str, db: Database) -> None:
    headers = {"Authorization": f"Bearer {admin_token}", "Idempotency-Key": "race-key"}

    def create(_: int) -> tuple[int, str]:
        with httpx.Client(base_url=live_server, headers=headers, timeout=30) as c:
            r = c.post("/v1/workspaces", json={"name": "raced"})
            return r.status_code, r.json().get("id", "")

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        results = list(pool.map(create, range(4)))
    assert [code for code, _ in results] == [201] * 4
    assert len({ws_id for _, ws_id in results}) == 1
    assert count_rows(db, "workspaces") == 2


def test_expired_keys_are_forgotten(client: TestClient, db: Database, settings: Settings) -> None:
    headers = {"Idempotency-Key": "old-key"}
    assert client.post("/v1/workspaces", json={"name": "first"}, headers=headers).status_code == 201
    with db.engine.begin() as conn:
        conn.execute(sa.update(IdempotencyKey).values(created_at=utcnow() - timedelta(days=2)))
    # Past the TTL the key is new again: another body is accepted, not a 422.
    assert client.post("/v1/workspaces", json={"name": "second"}, headers=headers).status_code == 201
    with db.engine.begin() as conn:
        conn.execute(sa.update(IdempotencyKey).values(created_at=utcnow() - timedelta(days=2)))
    Worker(db, settings).maintain()
    assert count_rows(db, "idempotency_keys") == 0
