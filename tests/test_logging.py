"""One log line per request, with request id, user, route, status and duration; JSON when asked."""

from __future__ import annotations

import io
import json
import logging

from fastapi.testclient import TestClient

from modelyard.observability import configure_logging


def test_json_access_log(client: TestClient) -> None:
    configure_logging("INFO", "json")
    stream = io.StringIO()
    logger = logging.getLogger("modelyard")
    logger.handlers[0].setStream(stream)  # type: ignore[attr-defined]
    try:
        client.get("/v1/workspaces/default", headers={"X-Request-ID": "log-test-1"})
    finally:
        logger.handlers.clear()
        logger.propagate = True
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    access = [entry for entry in lines if entry["logger"] == "modelyard.access"]
    assert len(access) == 1
    entry = access[0]
    assert entry["request_id"] == "log-test-1"
    assert entry["user"] == "admin"
    assert entry["route"] == "/v1/workspaces/{ws}"
    assert entry["status"] == 200
    assert entry["duration_ms"] > 0
    assert entry["message"] == "GET /v1/workspaces/default 200"
