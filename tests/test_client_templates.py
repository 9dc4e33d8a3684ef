"""The SDK's model templates, models made from them, request validation and launch configs, against the real app
(in-process through TestClient) on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from modelyard.client import (
    BadRequestError,
    Client,
    ConflictError,
    ModelTemplates,
    NotFoundError,
    PreconditionFailedError,
    ValidationError,
)


@pytest.fixture(autouse=True)
def _no_ambient_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
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


def vllm_chat(name: str = "vllm-chat", **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": name,
        "endpoint_type": "STREAMING",
        "model_type": "CHAT_COMPLETION",
        "endpoint_protocol": "VLLM",
        "vendor_configuration": {
            "bundle_config": {
                "registry": "registry.example.com",
                "image": "vllm",
                "tag": "0.6.3",
                "command": ["vllm", "serve", "${model_weights_uri}", "--max-model-len", "${max_model_len}"],
                "env": {"HF_HOME": "/cache"},
            },
            "endpoint_config": {"gpus": 1, "gpu_type": "nvidia-ampere-a10"},
        },
        "model_creation_parameters_schema": {
            "parameters": [
                {"name": "model_weights_uri", "type": "str", "description": "Weights", "required": True},
                {"name": "max_model_len", "type": "int", "description": "Context length", "required": False},
            ]
        },
        "model_request_parameters_schema": {
            "parameters": [
                {"name": "lang", "type": "str", "description": "Answer language", "required": True},
                {"name": "n", "type": "int", "description": "How many answers", "required": False},
            ]
        },
    }
    body.update(overrides)
    return body


def test_client_exposes_model_templates(sdk: Client) -> None:
    assert isinstance(sdk.model_templates, ModelTemplates)


def test_create_list_get_update_delete(sdk: Client) -> None:
    created = sdk.model_templates.create("default", vllm_chat(), description="vLLM chat")
    assert created.etag
    assert (created["name"], created["workspace"], created["description"]) == ("vllm-chat", "default", "vLLM chat")
    vendor = created["vendor_configuration"]
    assert vendor["vendor"] == "LAUNCH"
    assert vendor["bundle_config"]["readiness_initial_delay_seconds"] == 120
    assert vendor["endpoint_config"]["memory"] == "8Gi"
    assert vendor["endpoint_config"]["gpus"] == 1

    # keyword arguments alone, or overriding the dict's
    plain = sdk.model_templates.create(
        "default",
        name="plain",
        endpoint_type="SYNC",
        model_type="EMBEDDING",
        vendor_configuration={"bundle_config": {"registry": "r", "image": "i", "tag": "1"}},
    )
    assert plain["model_type"] == "EMBEDDING"
    with pytest.raises(TypeError, match="Unknown model template fields"):
        sdk.model_templates.create("default", vllm_chat("x"), image="nope")

    assert [t["name"] for t in sdk.model_templates.list("default", sort="name")] == ["plain", "vllm-chat"]
    assert [t["name"] for t in sdk.model_templates.list("default", model_type="EMBEDDING")] == ["plain"]
    assert [t["name"] for t in sdk.model_templates.list("default", endpoint_type="STREAMING")] == ["vllm-chat"]

    got = sdk.model_templates.get("default/vllm-chat")
    assert got == sdk.model_templates.get("default", "vllm-chat")
    assert got["id"] == created["id"]

    updated = sdk.model_templates.update("default/vllm-chat", description="new", if_match=got.etag)
    assert updated["description"] == "new"
    with pytest.raises(PreconditionFailedError):
        sdk.model_templates.update("default/vllm-chat", description="lost", if_match=got.etag)

    sdk.model_templates.delete("default/plain")
    with pytest.raises(NotFoundError):
        sdk.model_templates.get("default", "plain")
    with pytest.raises(ValueError, match="workspace/name"):
        sdk.model_templates.get("plain")


def test_invalid_templates_raise_validation_errors_with_every_problem(sdk: Client) -> None:
    undeclared = vllm_chat("undeclared")
    undeclared["vendor_configuration"]["bundle_config"]["command"] = ["serve", "${weights}", "${max_model_len}"]
    with pytest.raises(ValidationError) as caught:
        sdk.model_templates.create("default", undeclared)
    assert caught.value.error_code == "INVALID_MODEL_TEMPLATE"
    assert [tuple(d["loc"]) for d in caught.value.detail] == [
        ("body", "vendor_configuration", "bundle_config", "command", 1)
    ]

    for parameters, loc in (
        ([{"name": "model_weights_uri", "type": "decimal", "description": "", "required": True}], [0, "type"]),
        ([{"name": "x", "type": "int", "description": "", "required": True}] * 2, [1, "name"]),
    ):
        bad_schema = vllm_chat("bad-schema", model_creation_parameters_schema={"parameters": parameters})
        bad_schema["vendor_configuration"]["bundle_config"]["command"] = None
        with pytest.raises(ValidationError) as caught:
            sdk.model_templates.create("default", bad_schema)
        assert caught.value.error_code == "INVALID_MODEL_TEMPLATE"
        assert [d["loc"][:3] for d in caught.value.detail] == [
            ["body", "model_creation_parameters_schema", "parameters"]
        ]
        assert caught.value.detail[0]["loc"][3:] == loc

    sdk.model_templates.create("default", vllm_chat())
    with pytest.raises(ConflictError):
        sdk.model_templates.create("default", vllm_chat())


def test_list_all_spans_the_workspaces_of_the_caller(app: FastAPI, sdk: Client) -> None:
    for ws in ("a", "b", "c"):
        sdk.workspaces.create(ws)
        sdk.model_templates.create(ws, vllm_chat(f"t-{ws}"))
    sdk.users.create("alice")
    secret = sdk.tokens.create("alice-token", user="alice")["token"]
    sdk.members.add("a", "alice", "viewer")
    sdk.members.add("b", "alice", "viewer")
    with TestClient(app, raise_server_exceptions=False) as http, Client(token=secret, http_client=http) as alice:
        seen = sorted((t["workspace"], t["name"]) for t in alice.model_templates.list_all())
        assert seen == [("a", "t-a"), ("b", "t-b")]
        assert [t["name"] for t in alice.model_templates.list_all("b")] == ["t-b"]
        assert [t["name"] for t in alice.model_templates.list_all(name_prefix="t-a")] == ["t-a"]
    everything = sdk.model_templates.list_all(page_size=1)
    assert everything.total_results == 3
    assert sorted(t["workspace"] for t in everything) == ["a", "b", "c"]


def test_models_from_templates(sdk: Client) -> None:
    sdk.model_templates.create("default", vllm_chat())
    model = sdk.models.create(
        "default",
        "llama-chat",
        model_template="vllm-chat",
        model_creation_parameters={"model_weights_uri": "s3://weights/llama", "max_model_len": "8192"},
    )
    assert model["model_type"] == "CHAT_COMPLETION"
    assert model["model_template"] == "default/vllm-chat"
    assert model["model_creation_parameters"] == {"model_weights_uri": "s3://weights/llama", "max_model_len": 8192}
    assert model["coercions"] == [
        {"loc": ["body", "model_creation_parameters", "max_model_len"], "input": "8192", "value": 8192, "type": "int"}
    ]

    with pytest.raises(ValidationError) as caught:
        sdk.models.create(
            "default",
            "bad",
            model_template="default/vllm-chat",
            model_creation_parameters={"max_model_len": "long", "revision": "main"},
        )
    assert caught.value.error_code == "INVALID_MODEL_CREATION_PARAMETERS"
    assert sorted(d["loc"][-1] for d in caught.value.detail) == ["max_model_len", "model_weights_uri", "revision"]
    with pytest.raises(BadRequestError):
        sdk.models.create("default", "nowhere", model_template="no-such-template", model_creation_parameters={})

    config = sdk.models.launch_config("default/llama-chat")
    assert config == sdk.models.launch_config("default", "llama-chat")
    assert config["model"] == "default/llama-chat"
    assert config["model_template"] == "default/vllm-chat"
    bundle = config["vendor_configuration"]["bundle_config"]
    assert bundle["command"] == ["vllm", "serve", "s3://weights/llama", "--max-model-len", "8192"]
    assert bundle["env"] == {"HF_HOME": "/cache", "model_weights_uri": "s3://weights/llama", "max_model_len": "8192"}


def test_validate_request_and_request_schema(sdk: Client) -> None:
    sdk.model_templates.create("default", vllm_chat())
    sdk.models.create(
        "default", "chat", model_template="vllm-chat", model_creation_parameters={"model_weights_uri": "hf://x/y"}
    )
    answer = sdk.models.validate_request("default/chat", {"lang": "en", "n": "2"})
    assert answer["model_request_parameters"] == {"bindings": {"lang": "en", "n": 2}}
    assert [c["loc"][-1] for c in answer["coercions"]] == ["n"]
    assert sdk.models.validate_request("default", "chat", {"lang": "fr"})["model_request_parameters"] == {
        "bindings": {"lang": "fr"}
    }

    with pytest.raises(ValidationError) as caught:
        sdk.models.validate_request("default/chat", {"n": "many", "extra": 1})
    assert caught.value.error_code == "INVALID_MODEL_REQUEST_PARAMETERS"
    locs = sorted(tuple(d["loc"]) for d in caught.value.detail)
    assert locs == [
        ("body", "model_request_parameters", "bindings", "extra"),
        ("body", "model_request_parameters", "bindings", "lang"),
        ("body", "model_request_parameters", "bindings", "n"),
    ]
    with pytest.raises(ValidationError):
        sdk.models.validate_request("default/chat")  # the template declares request parameters
    with pytest.raises(ValueError, match="once"):
        sdk.models.validate_request("default/chat", {"lang": "en"}, {"lang": "en"})  # type: ignore[arg-type]

    schema = sdk.models.request_schema("default/chat")
    assert "model_request_parameters" in schema["required"]
    assert "chat_history" in schema["properties"]


def test_deleting_a_template_in_use_is_a_conflict(sdk: Client) -> None:
    sdk.model_templates.create("default", vllm_chat())
    sdk.models.create(
        "default", "chat", model_template="vllm-chat", model_creation_parameters={"model_weights_uri": "hf://x/y"}
    )
    with pytest.raises(ConflictError) as caught:
        sdk.model_templates.delete("default/vllm-chat")
    assert caught.value.error_code == "MODEL_TEMPLATE_IN_USE"
    assert "default/chat" in caught.value.error_msg
    assert sdk.models.launch_config("default/chat")["model_template"] == "default/vllm-chat"
    sdk.models.delete("default/chat")
    sdk.model_templates.delete("default/vllm-chat")
    assert list(sdk.model_templates.list("default")) == []
