"""Every error answer has the one body of DESIGN.md section 4: FastAPI's own 404/405/422, our domain errors,
body limits, and unhandled exceptions (500 with no stack trace, and a request id)."""

from __future__ import annotations

import logging

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from modelyard.config import Settings
from modelyard.db.engine import Database
from tests.fixtures.app import error_shape
from tests.fixtures.databases import count_rows


def test_unknown_route_is_404_in_shape(client: TestClient) -> None:
    r = client.get("/v1/nothing-here")
    assert r.status_code == 404
    assert error_shape(r)["error_code"] == "NOT_FOUND"


def test_wrong_method_is_405_in_shape(client: TestClient) -> None:
    r = client.put("/v1/workspaces")
    assert r.status_code == 405
    assert error_shape(r)["error_code"] == "METHOD_NOT_ALLOWED"


def test_malformed_json_is_422(client: TestClient, db: Database) -> None:
    before = count_rows(db, "workspaces")
    r = client.post("/v1/workspaces", content=b'{"name": "x",', headers={"content-type": "application/json"})
    assert r.status_code == 422
    body = error_shape(r)
    assert body["detail"][0]["type"] == "json_invalid"
    assert count_rows(db, "workspaces") == before


def test_malformed_json_says_why(client: TestClient) -> None:
    r = client.post("/v1/workspaces", content=b'{"name": "x",', headers={"content-type": "application/json"})
    assert r.status_code == 422
    message = error_shape(r)["detail"][0]["msg"]
    assert message.startswith("JSON decode error: Expecting property name"), message


_MODELS = "/v1/workspaces/default/models"


@pytest.mark.parametrize(
    ("number", "reason"),
    [
        (b"NaN", "NaN is not a JSON number"),
        (b"Infinity", "Infinity is not a JSON number"),
        (b"-Infinity", "-Infinity is not a JSON number"),
        (b"1e999", "Number out of range"),
        (str(2**64).encode(), "Integer out of range"),
        (str(-(2**63) - 1).encode(), "Integer out of range"),
        (b"123456789012345678901234567890", "Integer out of range"),
    ],
)
def test_numbers_that_would_not_come_back_as_sent_are_422(
    client: TestClient, db: Database, number: bytes, reason: str
) -> None:
    """Python's JSON parser takes NaN and Infinity, and orjson (which writes the answers) reads an integer beyond
    64 bits as a float: such a number would have been stored or answered changed, so it is refused where it is."""
    body = b'{"name": "m", "base_model_metadata": {"n": ' + number + b"}}"
    r = client.post(_MODELS, content=body, headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    error = error_shape(r)
    assert error["detail"] == [
        {"loc": ["body", body.index(number)], "msg": error["detail"][0]["msg"], "type": "json_invalid"}
    ]
    assert reason in error["error_msg"]
    assert count_rows(db, "models") == 0


def test_numbers_at_the_limits_come_back_exactly(client: TestClient) -> None:
    numbers = {"max": 2**64 - 1, "min": -(2**63), "float": 1.7976931348623157e308, "small": 5e-324, "digits": 123}
    r = client.post(_MODELS, json={"name": "m12345678901234567890", "base_model_metadata": numbers})
    assert r.status_code == 201, r.text
    assert r.json()["base_model_metadata"] == numbers
    got = client.get(f"{_MODELS}/m12345678901234567890").json()["base_model_metadata"]
    assert got == numbers
    assert all(type(got[k]) is type(v) for k, v in numbers.items())


@pytest.mark.parametrize(
    ("payload", "loc", "type_"),
    [
        ({"name": 5}, ["body", "name"], "string_type"),
        ({"name": "x" * 256}, ["body", "name"], "string_too_long"),
        ({"name": ""}, ["body", "name"], "string_too_short"),
        ({"name": "a/b"}, ["body", "name"], "string_pattern_mismatch"),
        ({"name": "ok", "colour": "red"}, ["body", "colour"], "extra_forbidden"),
        ({"name": "ok", "description": "d" * 1001}, ["body", "description"], "string_too_long"),
        ({}, ["body", "name"], "missing"),
        ([1, 2], ["body"], "model_attributes_type"),
    ],
)
def test_bad_bodies_are_422_with_loc(client: TestClient, payload: object, loc: list[str], type_: str) -> None:
    r = client.post("/v1/workspaces", json=payload)
    assert r.status_code == 422, r.text
    body = error_shape(r)
    assert body["error_code"] == "VALIDATION_ERROR"
    assert {"loc": loc, "type": type_} == {k: body["detail"][0][k] for k in ("loc", "type")}
    assert ".".join(loc) in body["error_msg"]
    # The offending input is not echoed back.
    assert "input" not in body["detail"][0]


def test_unknown_query_filter_is_400_listing_valid_ones(client: TestClient) -> None:
    r = client.get("/v1/workspaces", params={"colour": "red"})
    assert r.status_code == 400
    body = error_shape(r)
    assert body["error_code"] == "UNKNOWN_QUERY_PARAMETER"
    assert "colour" in body["error_msg"]
    assert "name_prefix" in body["error_msg"]
    assert body["detail"]["valid"] == ["name_prefix", "page", "page_size", "page_token", "sort"]


@pytest.mark.parametrize(
    ("params", "loc"),
    [
        ({"page_size": 0}, ["query", "page_size"]),
        ({"page_size": 1001}, ["query", "page_size"]),
        ({"page": "two"}, ["query", "page"]),
        ({"sort": "colour"}, ["query", "sort"]),
    ],
)
def test_bad_paging_is_422(client: TestClient, params: dict[str, object], loc: list[str]) -> None:
    r = client.get("/v1/workspaces", params=params)
    assert r.status_code == 422
    assert error_shape(r)["detail"][0]["loc"] == loc


def test_json_body_over_limit_is_413(tmp_path: object, db: Database, admin_token: str) -> None:
    from modelyard.app import create_app

    settings = Settings(home=tmp_path, database_url=db.url, worker=False, max_json_bytes=2048)  # type: ignore[arg-type]
    app = create_app(settings, db=db, start_worker=False)
    with TestClient(app, raise_server_exceptions=False, headers={"Authorization": f"Bearer {admin_token}"}) as c:
        r = c.post("/v1/workspaces", json={"name": "big", "description": "x" * 3000})
        assert r.status_code == 413
        assert error_shape(r)["error_code"] == "BODY_TOO_LARGE"

        # Chunked (no Content-Length) is counted too.
        def chunks() -> object:
            yield b'{"name": "big2", "description": "'
            for _ in range(10):
                yield b"y" * 500
            yield b'"}'

        r = c.post("/v1/workspaces", content=chunks(), headers={"content-type": "application/json"})
        assert r.status_code == 413
        assert c.get("/v1/workspaces/big").status_code == 404
        assert c.get("/v1/workspaces/big2").status_code == 404


def test_unhandled_exception_is_500_without_trace(
    app: FastAPI, client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    def boom() -> None:
        raise RuntimeError("secret internals")

    app.add_api_route("/v1/test-boom", boom)
    with caplog.at_level(logging.ERROR, logger="modelyard"):
        r = client.get("/v1/test-boom", headers={"X-Request-ID": "trace-me-123"})
    assert r.status_code == 500
    body = error_shape(r)
    assert body["error_code"] == "INTERNAL_ERROR"
    assert "secret internals" not in r.text
    assert "Traceback" not in r.text
    assert r.headers["x-request-id"] == "trace-me-123"
    assert "trace-me-123" in body["error_msg"]
    logged = [rec for rec in caplog.records if getattr(rec, "fields", {}).get("request_id") == "trace-me-123"]
    assert any(rec.exc_info for rec in logged)


def test_request_id_is_generated_or_kept(anon: TestClient) -> None:
    generated = anon.get("/healthz").headers["x-request-id"]
    assert len(generated) >= 16
    assert anon.get("/healthz", headers={"X-Request-ID": "abc-1"}).headers["x-request-id"] == "abc-1"
    # A hostile request id is replaced, not echoed.
    hostile = anon.get("/healthz", headers={"X-Request-ID": "a b<script>"}).headers["x-request-id"]
    assert hostile != "a b<script>"


@pytest.mark.parametrize("name", [".", ".."])
def test_dot_names_are_refused(client: TestClient, name: str) -> None:
    r = client.post("/v1/workspaces", json={"name": name})
    assert r.status_code == 422
    assert error_shape(r)["detail"][0]["loc"] == ["body", "name"]
