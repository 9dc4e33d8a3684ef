"""The documentation is checked: every setting is in README.md, and every ```http example of docs/api.md runs
against a fresh server with the answer it shows."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from modelyard.config import Settings

ROOT = Path(__file__).resolve().parent.parent


def test_every_setting_is_documented_in_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    for name in Settings.model_fields:
        assert f"`MODELYARD_{name.upper()}`" in readme, name


def _examples(text: str) -> list[tuple[str, str, dict[str, str], str, int, str]]:
    examples = []
    for block in re.findall(r"```http\n(.*?)```", text, flags=re.S):
        request, _, response = block.partition("\nHTTP/1.1 ")
        head, _, body = request.partition("\n\n")
        lines = head.strip().splitlines()
        method, target = lines[0].split(" ", 1)
        headers = dict(line.split(": ", 1) for line in lines[1:])
        status_line, _, response_body = response.partition("\n")
        examples.append((method, target, headers, body.strip(), int(status_line.split()[0]), response_body.strip()))
    return examples


def _shown_fields(response_body: str) -> dict[str, Any]:
    """The fields an example answer shows with concrete values (those left out are written as ...)."""
    shown = {}
    for key, value in re.findall(r'"(\w+)": ("[^"]*"|true|false|null|-?\d+(?:\.\d+)?)', response_body):
        if "..." not in value:
            shown[key] = json.loads(value)
    return shown


def _flatten(value: Any, into: dict[str, list[Any]]) -> dict[str, list[Any]]:
    if isinstance(value, dict):
        for k, v in value.items():
            into.setdefault(k, []).append(v)
            _flatten(v, into)
    elif isinstance(value, list):
        for v in value:
            _flatten(v, into)
    return into


def test_api_examples_run(client: TestClient) -> None:
    examples = _examples((ROOT / "docs" / "api.md").read_text())
    assert len(examples) >= 10
    for method, target, headers, body, status, response_body in examples:
        r = client.request(method, target, headers=headers, content=body.encode() if body else None)
        assert r.status_code == status, (method, target, r.text)
        actual = _flatten(r.json(), {})
        for key, value in _shown_fields(response_body).items():
            assert value in actual.get(key, []), (method, target, key, value, r.text)
