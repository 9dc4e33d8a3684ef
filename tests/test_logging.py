"""One log line per request, with request id, user, route, status and duration; JSON when asked."""

from __future__ import annotations

import io
import json
import logging
import os
import re

from fastapi.testclient import TestClient

from modelyard.observability import configure_logging, new_request_id


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


def test_request_ids_are_unique_and_differ_in_a_forked_process() -> None:
    ids = {new_request_id() for _ in range(10_000)}
    assert len(ids) == 10_000
    assert all(re.fullmatch(r"[0-9a-f]{16}", i) for i in ids)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next ids, for the parent to compare with its own
        os.write(write, " ".join(new_request_id() for _ in range(3)).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = os.read(read, 1000).decode().split()
    os.close(read)
    assert len(child) == 3
    assert not set(child) & {new_request_id() for _ in range(3)}
