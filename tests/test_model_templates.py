"""Model templates (SGP): the seed's cycle with SGP's fields and defaults, the acceptance cases of the SGP digest,
models made from templates with their creation parameters, request bindings, the launch configuration and its
placeholders, and the rules that keep templates in use."""

from __future__ import annotations

import concurrent.futures
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from jsonschema import Draft202012Validator

from modelyard.model_template import params
from tests.fixtures.app import MakeUser, error_shape

WS = "/v1/workspaces/default"
TEMPLATES = f"{WS}/model-templates"
MODELS = f"{WS}/models"

WEIGHTS_SCHEMA = {
    "parameters": [
        {"name": "model_weights_uri", "type": "str", "description": "Where the weights are", "required": True},
        {"name": "max_len", "type": "int", "description": "Context length", "required": False},
    ]
}


def template_body(name: str = "t", **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": name,
        "endpoint_type": "SYNC",
        "model_type": "COMPLETION",
        "vendor_configuration": {"bundle_config": {"registry": "r", "image": "i", "tag": "1"}},
    }
    body.update(overrides)
    return body


def bundle(**fields: Any) -> dict[str, Any]:
    return {"bundle_config": {"registry": "r", "image": "i", "tag": "1", **fields}}


def create(client: TestClient, ws: str = "default", **body: Any) -> dict[str, Any]:
    r = client.post(f"/v1/workspaces/{ws}/model-templates", json=template_body(**body))
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


def detail_locs(response: Any) -> list[list[Any]]:
    return [item["loc"] for item in error_shape(response)["detail"]]


# -- templates ---------------------------------------------------------------------------------------------------


def test_seed_cycle_with_sgp_fields_and_defaults(client: TestClient) -> None:
    """Create -> list -> get -> delete, with every default SGP fills (acceptance cases 1, 2, 16, 18)."""
    r = client.post(TEMPLATES, json=template_body())
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["id"].startswith("mtpl-")
    assert body["workspace"] == "default"
    assert body["created_by"] == "admin"
    assert body["created_at"]
    assert (body["endpoint_type"], body["model_type"], body["endpoint_protocol"]) == ("SYNC", "COMPLETION", None)
    assert body["vendor_configuration"] == {
        "vendor": "LAUNCH",
        "bundle_config": {
            "registry": "r",
            "image": "i",
            "tag": "1",
            "command": None,
            "env": None,
            "streaming_command": None,
            "readiness_initial_delay_seconds": 120,
            "healthcheck_route": "/readyz",
            "predict_route": "/predict",
            "streaming_predict_route": "/generate_streaming",
        },
        "endpoint_config": None,
        "fine_tuning_job_bundle_config": None,
    }
    assert body["model_creation_parameters_schema"] is None
    assert body["model_request_parameters_schema"] is None

    r = client.post(
        TEMPLATES,
        json=template_body(
            "with-endpoint",
            endpoint_protocol="VLLM",
            vendor_configuration={
                **bundle(),
                "endpoint_config": {},
                "fine_tuning_job_bundle_config": {"registry": "r", "image": "ft", "tag": "2", "resources": {}},
            },
        ),
    )
    assert r.status_code == 201, r.text
    vendor = r.json()["vendor_configuration"]
    assert r.json()["endpoint_protocol"] == "VLLM"
    assert vendor["endpoint_config"] == {
        "cpus": 3,
        "memory": "8Gi",
        "storage": "16Gi",
        "gpus": 0,
        "gpu_type": None,
        "min_workers": 0,
        "max_workers": 1,
        "per_worker": 10,
        "endpoint_type": "ASYNC",
        "high_priority": False,
    }
    assert vendor["fine_tuning_job_bundle_config"] == {
        "registry": "r",
        "image": "ft",
        "tag": "2",
        "command": None,
        "env": None,
        "mount_location": "/workspace/launch_specific/config.json",
        "training_dataset_schema_type": None,
        "resources": {"cpus": 3, "memory": "8Gi", "storage": "16Gi", "gpus": 0, "gpu_type": None},
    }

    listing = client.get(TEMPLATES, params={"sort": "name"}).json()
    assert [t["name"] for t in listing["data"]] == ["t", "with-endpoint"]
    assert listing["pagination"]["total_results"] == 2

    r = client.get(f"{TEMPLATES}/t")
    assert r.status_code == 200
    assert r.headers["etag"]
    assert r.json() == body

    assert client.delete(f"{TEMPLATES}/t").status_code == 204
    r = client.get(f"{TEMPLATES}/t")
    assert r.status_code == 404
    assert error_shape(r)["error_code"] == "MODEL_TEMPLATE_NOT_FOUND"
    events = client.get(f"{WS}/events", params={"resource_kind": "model_template", "sort": "at"}).json()["data"]
    assert [(e["action"], e["resource"]["name"]) for e in events] == [
        ("model_template.created", "t"),
        ("model_template.created", "with-endpoint"),
        ("model_template.deleted", "t"),
    ]


@pytest.mark.parametrize(
    ("change", "loc"),
    [
        ({"name": None}, ["body", "name"]),  # case 3
        ({"endpoint_type": "REALTIME"}, ["body", "endpoint_type"]),  # case 5
        ({"model_type": "IMAGE"}, ["body", "model_type"]),  # case 6
        ({"model_type": "BUNDLE"}, ["body", "model_type"]),
        (
            {"vendor_configuration": {"bundle_config": {"registry": "r", "image": "i"}}},
            ["body", "vendor_configuration", "bundle_config", "tag"],
        ),  # case 7
        ({"vendor_configuration": {**bundle(), "vendor": "OPENAI"}}, ["body", "vendor_configuration", "vendor"]),
        (
            {"vendor_configuration": {**bundle(), "endpoint_config": {"gpu_type": "nvidia-rtx-4090"}}},
            ["body", "vendor_configuration", "endpoint_config", "gpu_type"],
        ),  # case 9
        (
            {
                "model_creation_parameters_schema": {
                    "parameters": [{"name": "w", "type": "string", "description": "d", "required": True}]
                }
            },
            ["body", "model_creation_parameters_schema", "parameters", 0, "type"],
        ),  # case 10
        (
            {"model_request_parameters_schema": {"parameters": [{"name": "w", "type": "str", "required": True}]}},
            ["body", "model_request_parameters_schema", "parameters", 0, "description"],
        ),  # case 11
        ({"endpoint_protocol": "TGI"}, ["body", "endpoint_protocol"]),  # case 12
        ({"account_id": "acc_1"}, ["body", "account_id"]),
    ],
)
def test_template_body_is_validated(client: TestClient, change: dict[str, Any], loc: list[Any]) -> None:
    body = template_body()
    body.update(change)
    body = {k: v for k, v in body.items() if v is not None}
    r = client.post(TEMPLATES, json=body)
    assert r.status_code == 422, r.text
    assert loc in detail_locs(r)
    assert client.get(TEMPLATES).json()["data"] == []


@pytest.mark.parametrize("memory", ["8Gi", "512Mi", "16G", "1.5", "1e3", "500m", ".5Gi"])
def test_kubernetes_quantities_accepted(client: TestClient, memory: str) -> None:
    vendor = {**bundle(), "endpoint_config": {"memory": memory, "cpus": "500m", "storage": "100Gi"}}
    r = client.post(TEMPLATES, json=template_body(vendor_configuration=vendor))
    assert r.status_code == 201, r.text
    assert r.json()["vendor_configuration"]["endpoint_config"]["memory"] == memory
    assert r.json()["vendor_configuration"]["endpoint_config"]["cpus"] == "500m"


@pytest.mark.parametrize(
    ("endpoint_config", "field"),
    [
        ({"memory": "8GB"}, "memory"),
        ({"memory": "-1Gi"}, "memory"),
        ({"storage": "lots"}, "storage"),
        ({"memory": 8}, "memory"),
        ({"cpus": "3 cores"}, "cpus"),
        ({"cpus": -1}, "cpus"),
        ({"gpus": -1}, "gpus"),
        ({"per_worker": 0}, "per_worker"),
        ({"min_workers": 2, "max_workers": 1}, None),
    ],
)
def test_endpoint_config_rules(client: TestClient, endpoint_config: dict[str, Any], field: str | None) -> None:
    vendor = {**bundle(), "endpoint_config": endpoint_config}
    r = client.post(TEMPLATES, json=template_body(vendor_configuration=vendor))
    assert r.status_code == 422, r.text
    locs = detail_locs(r)
    base = ["body", "vendor_configuration", "endpoint_config"]
    if field is None:
        assert base in locs
        assert "min_workers (2) must not exceed max_workers (1)" in r.json()["detail"][0]["msg"]
    else:
        assert any(loc[: len(base) + 1] == [*base, field] for loc in locs), locs


def test_bundle_env_names_and_routes(client: TestClient) -> None:
    r = client.post(TEMPLATES, json=template_body(vendor_configuration=bundle(env={"MY-VAR": "x"})))
    assert r.status_code == 422
    assert ["body", "vendor_configuration", "bundle_config", "env"] in detail_locs(r)
    r = client.post(TEMPLATES, json=template_body(vendor_configuration=bundle(predict_route="predict")))
    assert r.status_code == 422
    assert ["body", "vendor_configuration", "bundle_config", "predict_route"] in detail_locs(r)


def test_parameter_schema_errors_are_all_listed(client: TestClient) -> None:
    body = template_body(
        model_creation_parameters_schema={
            "parameters": [
                {"name": "a", "type": "str", "description": "", "required": True},
                {"name": "a", "type": "int", "description": "", "required": False},
            ]
        },
        model_request_parameters_schema={
            "parameters": [{"name": "bad-name", "type": "str", "description": "", "required": True}]
        },
    )
    r = client.post(TEMPLATES, json=body)
    assert r.status_code == 422
    error = error_shape(r)
    assert error["error_code"] == "INVALID_MODEL_TEMPLATE"
    assert detail_locs(r) == [
        ["body", "model_creation_parameters_schema", "parameters", 1, "name"],
        ["body", "model_request_parameters_schema", "parameters", 0, "name"],
    ]
    assert "Duplicate parameter name 'a'" in error["detail"][0]["msg"]


def test_json_schema_parameter_schemas(client: TestClient) -> None:
    # The schema itself is checked against the Draft 2020-12 meta-schema.
    r = client.post(
        TEMPLATES,
        json=template_body(
            model_creation_parameters_schema={"type": "object", "properties": {"n": {"type": "integr"}}}
        ),
    )
    assert r.status_code == 422
    assert detail_locs(r)[0][:4] == ["body", "model_creation_parameters_schema", "properties", "n"]
    for bad, where in [
        ({"type": "array"}, "type"),
        ({"type": "object", "properties": {"a-b": {"type": "string"}}}, "properties"),
        ({"type": "object", "$schema": "http://json-schema.org/draft-07/schema#"}, "$schema"),
        ({"type": "object", "properties": {"x": {"$ref": "https://example.com/s.json"}}}, "properties"),
    ]:
        r = client.post(TEMPLATES, json=template_body(model_creation_parameters_schema=bad))
        assert r.status_code == 422, bad
        assert detail_locs(r)[0][2] == where, r.json()

    schema = {
        "type": "object",
        "properties": {
            "quantization": {"type": "string", "enum": ["none", "awq", "gptq"], "default": "none"},
            "tensor_parallel": {"type": "integer", "minimum": 1, "maximum": 8},
            "revision": {"type": "string", "pattern": "^[0-9a-f]{7,40}$"},
            "trust_remote_code": {"type": "boolean"},
        },
        "required": ["tensor_parallel"],
    }
    created = create(client, model_creation_parameters_schema=schema)
    assert created["model_creation_parameters_schema"] == schema
    r = client.post(
        MODELS,
        json={
            "name": "m",
            "model_template": "t",
            "model_creation_parameters": {"tensor_parallel": "4", "trust_remote_code": "true"},
        },
    )
    assert r.status_code == 201, r.text
    assert r.json()["model_creation_parameters"] == {
        "tensor_parallel": 4,
        "trust_remote_code": True,
        "quantization": "none",
    }
    assert [(c["loc"][-1], c["input"], c["value"], c["type"]) for c in r.json()["coercions"]] == [
        ("tensor_parallel", "4", 4, "integer"),
        ("trust_remote_code", "true", True, "boolean"),
    ]
    r = client.post(
        MODELS,
        json={
            "name": "m2",
            "model_template": "t",
            "model_creation_parameters": {"tensor_parallel": 16, "quantization": "fp4", "revision": "main", "x": 1},
        },
    )
    assert r.status_code == 422
    assert error_shape(r)["error_code"] == "INVALID_MODEL_CREATION_PARAMETERS"
    assert sorted(loc[-1] for loc in detail_locs(r)) == ["quantization", "revision", "tensor_parallel", "x"]
    by_name = {item["loc"][-1]: item for item in r.json()["detail"]}
    assert by_name["x"]["type"] == "extra_forbidden"
    assert by_name["quantization"]["type"] == "json_schema_enum"
    assert by_name["tensor_parallel"]["type"] == "json_schema_maximum"


def test_patch_changes_the_description_only(client: TestClient) -> None:
    create(client)
    etag = client.get(f"{TEMPLATES}/t").headers["etag"]
    r = client.patch(f"{TEMPLATES}/t", json={"description": "Serves Llama with vLLM"}, headers={"If-Match": etag})
    assert r.status_code == 200, r.text
    assert r.json()["description"] == "Serves Llama with vLLM"
    assert r.headers["etag"] != etag
    r = client.patch(f"{TEMPLATES}/t", json={"description": "again"}, headers={"If-Match": etag})
    assert r.status_code == 412
    error_shape(r)

    r = client.patch(f"{TEMPLATES}/t", json={"description": "x", "endpoint_type": "ASYNC", "vendor_configuration": {}})
    assert r.status_code == 422
    error = error_shape(r)
    assert error["error_code"] == "MODEL_TEMPLATE_IMMUTABLE"
    assert "immutable" in error["error_msg"]
    assert "endpoint_type" in error["error_msg"]
    assert detail_locs(r) == [["body", "endpoint_type"], ["body", "vendor_configuration"]]
    r = client.patch(f"{TEMPLATES}/t", json={"colour": "red"})
    assert r.status_code == 422
    assert error_shape(r)["detail"][0]["type"] == "extra_forbidden"
    r = client.patch(f"{TEMPLATES}/t", json={"description": None})
    assert r.status_code == 422
    assert client.get(f"{TEMPLATES}/t").json()["description"] == "Serves Llama with vLLM"
    actions = [
        e["action"] for e in client.get(f"{WS}/events", params={"resource_kind": "model_template"}).json()["data"]
    ]
    assert actions == ["model_template.updated", "model_template.created"]
    assert client.patch(f"{TEMPLATES}/nope", json={"description": "x"}).status_code == 404


def test_duplicate_name_is_a_conflict(client: TestClient) -> None:
    create(client)
    r = client.post(TEMPLATES, json=template_body())
    assert r.status_code == 409
    assert error_shape(r)["error_code"] == "MODEL_TEMPLATE_ALREADY_EXISTS"


def test_lists_paginate_sort_and_filter(client: TestClient) -> None:
    """Acceptance cases 13 and 14 in this API's list conventions."""
    create(client, name="a", model_type="EMBEDDING", endpoint_type="ASYNC")
    create(client, name="b")
    create(client, name="c")
    r = client.get(TEMPLATES, params={"page_size": 2, "page": 2, "sort": "name"})
    assert [t["name"] for t in r.json()["data"]] == ["c"]
    assert r.json()["pagination"] == {
        "page": 2,
        "page_size": 2,
        "current_page_size": 1,
        "total_pages": 2,
        "total_results": 3,
        "total_results_exact": True,
    }
    first = client.get(TEMPLATES, params={"page_size": 2, "sort": "-name"}).json()
    rest = client.get(TEMPLATES, params={"page_size": 2, "sort": "-name", "page_token": first["next_page_token"]})
    assert [t["name"] for t in first["data"] + rest.json()["data"]] == ["c", "b", "a"]
    assert [t["name"] for t in client.get(TEMPLATES, params={"model_type": "EMBEDDING"}).json()["data"]] == ["a"]
    assert len(client.get(TEMPLATES, params={"endpoint_type": "SYNC"}).json()["data"]) == 2
    assert [t["name"] for t in client.get(TEMPLATES, params={"name_prefix": "b"}).json()["data"]] == ["b"]
    for bad in ({"page": 0}, {"page_size": 0}, {"page_size": 1001}, {"sort": "model_type"}):
        assert client.get(TEMPLATES, params=bad).status_code == 422, bad
    r = client.get(TEMPLATES, params={"account_id": "acc_1"})
    assert r.status_code == 400
    assert error_shape(r)["error_code"] == "UNKNOWN_QUERY_PARAMETER"


def test_list_across_the_callers_workspaces(client: TestClient, make_user: MakeUser) -> None:
    """SGP: templates of every account the user is associated with (case 15)."""
    for ws in ("team-a", "team-b", "team-c"):
        assert client.post("/v1/workspaces", json={"name": ws}).status_code == 201
        create(client, ws=ws, name=f"{ws}-tpl")
    member = make_user("maria", workspaces={"team-a": "viewer", "team-b": "editor"})
    r = member.get("/v1/model-templates", params={"sort": "name"})
    assert r.status_code == 200
    assert [(t["workspace"], t["name"]) for t in r.json()["data"]] == [
        ("team-a", "team-a-tpl"),
        ("team-b", "team-b-tpl"),
    ]
    assert r.json()["pagination"]["total_results"] == 2
    only_a = member.get("/v1/model-templates", params={"workspace": "team-a"}).json()["data"]
    assert [t["name"] for t in only_a] == ["team-a-tpl"]
    assert member.get("/v1/model-templates", params={"workspace": "team-c"}).json()["data"] == []
    page = member.get("/v1/model-templates", params={"page_size": 1, "sort": "name"}).json()
    after = member.get(
        "/v1/model-templates", params={"page_size": 1, "sort": "name", "page_token": page["next_page_token"]}
    )
    assert [t["name"] for t in page["data"] + after.json()["data"]] == ["team-a-tpl", "team-b-tpl"]
    # Server admins see every workspace's templates.
    assert client.get("/v1/model-templates").json()["pagination"]["total_results"] == 3
    # Per workspace, the usual membership rules.
    assert member.get("/v1/workspaces/team-c/model-templates").status_code == 404
    r = member.post("/v1/workspaces/team-a/model-templates", json=template_body("mine"))
    assert r.status_code == 403
    assert error_shape(r)["error_code"] == "INSUFFICIENT_ROLE"
    assert member.post("/v1/workspaces/team-b/model-templates", json=template_body("mine")).status_code == 201
    assert member.delete("/v1/workspaces/team-a/model-templates/team-a-tpl").status_code == 403


def test_workspace_with_templates_needs_cascade(client: TestClient) -> None:
    client.post("/v1/workspaces", json={"name": "scratch"})
    create(client, ws="scratch")
    r = client.delete("/v1/workspaces/scratch")
    assert r.status_code == 409
    assert error_shape(r)["detail"] == {"resources": {"model_templates": 1}}
    assert client.delete("/v1/workspaces/scratch", params={"cascade": "true"}).status_code == 204


# -- models made from templates ----------------------------------------------------------------------------------


def test_model_from_template_with_creation_parameters(client: TestClient) -> None:
    """Acceptance cases 20 to 24."""
    create(client, model_type="CHAT_COMPLETION", model_creation_parameters_schema=WEIGHTS_SCHEMA)
    r = client.post(
        MODELS,
        json={"name": "m", "model_template": "t", "model_creation_parameters": {"model_weights_uri": "s3://x"}},
    )
    assert r.status_code == 201, r.text
    model = r.json()
    assert model["model_type"] == "CHAT_COMPLETION"  # from the template
    assert model["model_template"] == "default/t"
    assert model["model_template_id"] == client.get(f"{TEMPLATES}/t").json()["id"]
    assert model["model_creation_parameters"] == {"model_weights_uri": "s3://x"}  # optional max_len absent (23)
    assert model["coercions"] == []
    got = client.get(f"{MODELS}/m").json()
    assert (got["model_template"], got["model_creation_parameters"]) == ("default/t", {"model_weights_uri": "s3://x"})
    event = client.get(f"{WS}/events", params={"action": "model.created"}).json()["data"][0]
    assert event["changes"]["model_template"] == "default/t"

    # A coercible string is read as the declared type, and the answer says so (24).
    r = client.post(
        MODELS,
        json={
            "name": "m2",
            "model_template": "default/t",
            "model_creation_parameters": {"model_weights_uri": "s3://y", "max_len": "4096"},
        },
    )
    assert r.status_code == 201, r.text
    assert r.json()["model_creation_parameters"] == {"model_weights_uri": "s3://y", "max_len": 4096}
    assert r.json()["coercions"] == [
        {"loc": ["body", "model_creation_parameters", "max_len"], "input": "4096", "value": 4096, "type": "int"}
    ]

    cases: list[tuple[dict[str, Any], list[tuple[str, str]]]] = [
        ({}, [("model_weights_uri", "missing")]),  # 21
        ({"model_weights_uri": "s3://x", "foo": 1}, [("foo", "extra_forbidden")]),  # 22
        ({"model_weights_uri": "s3://x", "max_len": "many"}, [("max_len", "int_parsing")]),
        ({"model_weights_uri": "s3://x", "max_len": 1.5}, [("max_len", "int_from_float")]),
        ({"model_weights_uri": True}, [("model_weights_uri", "string_type")]),
        (
            {"max_len": [1], "foo": 1},
            [("model_weights_uri", "missing"), ("max_len", "int_type"), ("foo", "extra_forbidden")],
        ),
    ]
    for parameters, expected in cases:
        r = client.post(MODELS, json={"name": "bad", "model_template": "t", "model_creation_parameters": parameters})
        assert r.status_code == 422, (parameters, r.text)
        error = error_shape(r)
        assert error["error_code"] == "INVALID_MODEL_CREATION_PARAMETERS"
        assert [(item["loc"], item["type"]) for item in error["detail"]] == [
            (["body", "model_creation_parameters", name], kind) for name, kind in expected
        ]
    assert client.get(f"{MODELS}/bad").status_code == 404


def test_template_references_and_model_type(client: TestClient, make_user: MakeUser) -> None:
    create(client, model_type="EMBEDDING")
    r = client.post(MODELS, json={"name": "m", "model_template": "t", "model_type": "COMPLETION"})
    assert r.status_code == 422
    assert detail_locs(r) == [["body", "model_type"]]
    assert client.post(MODELS, json={"name": "m", "model_template": "t", "model_type": "EMBEDDING"}).status_code == 201
    r = client.patch(f"{MODELS}/m", json={"model_type": "COMPLETION"})
    assert r.status_code == 422
    assert detail_locs(r) == [["body", "model_type"]]
    assert client.patch(f"{MODELS}/m", json={"model_type": "EMBEDDING", "display_name": "M"}).status_code == 200

    r = client.post(MODELS, json={"name": "x", "model_creation_parameters": {"a": 1}})
    assert r.status_code == 422
    assert detail_locs(r) == [["body", "model_creation_parameters"]]
    r = client.post(MODELS, json={"name": "x", "model_template": "missing"})
    assert r.status_code == 400
    assert error_shape(r)["error_code"] == "MODEL_TEMPLATE_NOT_FOUND"
    r = client.post(MODELS, json={"name": "x", "model_template": "a/b/c"})
    assert r.status_code == 422
    assert detail_locs(r) == [["body", "model_template"]]
    # A model without a template is as before.
    plain = client.post(MODELS, json={"name": "plain"}).json()
    assert (plain["model_type"], plain["model_template"], plain["model_creation_parameters"]) == ("GENERIC", None, None)

    # A template of another workspace: its members may use it, others get 403.
    client.post("/v1/workspaces", json={"name": "shared"})
    create(client, ws="shared", name="base", model_type="RERANKING")
    outsider = make_user("olga", workspaces={"default": "editor"})
    r = outsider.post(MODELS, json={"name": "o", "model_template": "shared/base"})
    assert r.status_code == 403
    assert error_shape(r)["error_code"] == "MODEL_TEMPLATE_NOT_READABLE"
    insider = make_user("ivan", workspaces={"default": "editor", "shared": "viewer"})
    r = insider.post(MODELS, json={"name": "i", "model_template": "shared/base"})
    assert r.status_code == 201, r.text
    assert (r.json()["model_type"], r.json()["model_template"]) == ("RERANKING", "shared/base")


def test_deleting_a_template_in_use_is_refused(client: TestClient) -> None:
    create(
        client,
        model_creation_parameters_schema=WEIGHTS_SCHEMA,
        vendor_configuration=bundle(command=["serve", "${model_weights_uri}"]),
    )
    client.post("/v1/workspaces", json={"name": "other"})
    for ws, name in (("default", "m1"), ("other", "m2")):
        r = client.post(
            f"/v1/workspaces/{ws}/models",
            json={"name": name, "model_template": "default/t", "model_creation_parameters": {"model_weights_uri": "u"}},
        )
        assert r.status_code == 201, r.text
    r = client.delete(f"{TEMPLATES}/t")
    assert r.status_code == 409
    error = error_shape(r)
    assert error["error_code"] == "MODEL_TEMPLATE_IN_USE"
    assert "model 'default/m1'" in error["error_msg"]
    assert "model 'other/m2'" in error["error_msg"]
    assert error["detail"] == {"referenced_by": ["model 'default/m1'", "model 'other/m2'"]}
    # Nothing changed: the template and its models keep working.
    assert client.get(f"{TEMPLATES}/t").status_code == 200
    assert client.get(f"{MODELS}/m1").json()["model_template"] == "default/t"
    r = client.get(f"{MODELS}/m1/launch-config")
    assert r.status_code == 200
    assert r.json()["vendor_configuration"]["bundle_config"]["command"] == ["serve", "u"]
    assert client.delete(f"{MODELS}/m1").status_code == 204
    assert client.delete("/v1/workspaces/other/models/m2").status_code == 204
    assert client.delete(f"{TEMPLATES}/t").status_code == 204


def test_template_gone_with_its_workspace(client: TestClient) -> None:
    client.post("/v1/workspaces", json={"name": "gone"})
    create(client, ws="gone", name="base")
    assert client.post(MODELS, json={"name": "m", "model_template": "gone/base"}).status_code == 201
    assert client.delete("/v1/workspaces/gone", params={"cascade": "true"}).status_code == 204
    model = client.get(f"{MODELS}/m").json()
    assert model["model_template"] == "gone/base"
    r = client.get(f"{MODELS}/m/launch-config")
    assert r.status_code == 409
    assert error_shape(r)["error_code"] == "MODEL_TEMPLATE_GONE"


# -- request parameters ------------------------------------------------------------------------------------------


def test_request_bindings_are_validated(client: TestClient) -> None:
    """Acceptance case 31, through validate-request."""
    create(
        client,
        model_request_parameters_schema={
            "parameters": [
                {"name": "lang", "type": "str", "description": "Language", "required": True},
                {"name": "top_n", "type": "int", "description": "Results", "required": False},
                {"name": "strict", "type": "bool", "description": "Strict mode", "required": False},
                {"name": "ratio", "type": "float", "description": "Ratio", "required": False},
            ]
        },
    )
    client.post(MODELS, json={"name": "m", "model_template": "t"})
    url = f"{MODELS}/m/validate-request"
    r = client.post(url, json={"model_request_parameters": {"bindings": {"lang": "en"}}})
    assert r.status_code == 200, r.text
    assert r.json() == {"model_request_parameters": {"bindings": {"lang": "en"}}, "coercions": []}
    r = client.post(
        url,
        json={"model_request_parameters": {"bindings": {"lang": "en", "top_n": "5", "strict": "yes", "ratio": 1}}},
    )
    assert r.status_code == 200, r.text
    assert r.json()["model_request_parameters"]["bindings"] == {"lang": "en", "top_n": 5, "strict": True, "ratio": 1.0}
    assert [(c["loc"][-1], c["input"], c["value"], c["type"]) for c in r.json()["coercions"]] == [
        ("top_n", "5", 5, "int"),
        ("strict", "yes", True, "bool"),
    ]
    bindings = ["body", "model_request_parameters", "bindings"]
    cases: list[tuple[dict[str, Any], list[list[Any]]]] = [
        ({}, [["body", "model_request_parameters"]]),
        ({"model_request_parameters": {"bindings": {}}}, [[*bindings, "lang"]]),
        ({"model_request_parameters": {"bindings": {"lang": "en", "x": 1}}}, [[*bindings, "x"]]),
        ({"model_request_parameters": {"bindings": {"lang": 1.5, "top_n": "five", "strict": "maybe"}}}, []),
        (
            {"model_request_parameters": {"lang": "en"}},
            [["body", "model_request_parameters", "bindings"], ["body", "model_request_parameters", "lang"]],
        ),
    ]
    for body, locs in cases:
        r = client.post(url, json=body)
        assert r.status_code == 422, (body, r.text)
        if locs:
            assert detail_locs(r) == locs, r.json()
    r = client.post(
        url, json={"model_request_parameters": {"bindings": {"lang": 1.5, "top_n": "five", "strict": "maybe"}}}
    )
    assert error_shape(r)["error_code"] == "INVALID_MODEL_REQUEST_PARAMETERS"
    # A number is read as the string it spells (SGP's str); a bad int and a bad bool are refused.
    assert detail_locs(r) == [[*bindings, "top_n"], [*bindings, "strict"]]

    schema = client.get(f"{MODELS}/m/request-schema").json()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert set(schema["required"]) == {"prompt", "model_request_parameters"}
    assert schema["properties"]["temperature"]["maximum"] == 2
    wire = schema["properties"]["model_request_parameters"]
    assert wire["required"] == ["bindings"]
    assert wire["properties"]["bindings"]["required"] == ["lang"]
    assert wire["properties"]["bindings"]["properties"]["top_n"]["type"] == "integer"
    assert wire["properties"]["bindings"]["additionalProperties"] is False


def test_models_without_request_parameters(client: TestClient) -> None:
    create(client, model_type="EMBEDDING")
    client.post(MODELS, json={"name": "m", "model_template": "t"})
    client.post(MODELS, json={"name": "plain", "model_type": "RERANKING"})
    for model in ("m", "plain"):
        r = client.post(f"{MODELS}/{model}/validate-request", json={})
        assert r.status_code == 200
        assert r.json()["model_request_parameters"] == {"bindings": {}}
        r = client.post(f"{MODELS}/{model}/validate-request", json={"model_request_parameters": {"bindings": {"a": 1}}})
        assert r.status_code == 422
        assert detail_locs(r) == [["body", "model_request_parameters", "bindings", "a"]]
    schema = client.get(f"{MODELS}/m/request-schema").json()
    assert schema["required"] == ["texts"]
    assert client.get(f"{MODELS}/plain/request-schema").json()["required"] == ["query", "chunks"]
    r = client.get(f"{MODELS}/plain/launch-config")
    assert r.status_code == 409
    assert error_shape(r)["error_code"] == "MODEL_NOT_FROM_TEMPLATE"
    assert client.get(f"{MODELS}/nope/request-schema").status_code == 404


# -- launch configuration ----------------------------------------------------------------------------------------


def test_launch_config_renders_placeholders(client: TestClient, make_user: MakeUser) -> None:
    create(
        client,
        name="vllm",
        model_type="CHAT_COMPLETION",
        endpoint_type="STREAMING",
        endpoint_protocol="VLLM",
        model_creation_parameters_schema={
            "parameters": [
                {"name": "model_weights_uri", "type": "str", "description": "Weights", "required": True},
                {"name": "max_model_len", "type": "int", "description": "Context", "required": False},
                {"name": "quantize", "type": "bool", "description": "AWQ", "required": False},
                {"name": "gpu_memory_utilization", "type": "float", "description": "Share", "required": False},
            ]
        },
        vendor_configuration={
            "bundle_config": {
                "registry": "registry.example.com",
                "image": "vllm",
                "tag": "0.6.3",
                "command": [
                    "python",
                    "-m",
                    "vllm.entrypoints.openai.api_server",
                    "--model=${model_weights_uri}",
                    "--max-model-len",
                    "${max_model_len}",
                    "--gpu-memory-utilization=${gpu_memory_utilization}",
                ],
                "streaming_command": ["sh", "-c", "serve ${model_weights_uri} --stream && echo $${HOME} $$ $HOME"],
                "env": {"WEIGHTS": "${model_weights_uri}", "QUANTIZE": "${quantize}", "max_model_len": "fixed"},
            },
            "endpoint_config": {"gpus": 1, "gpu_type": "nvidia-ampere-a10", "min_workers": 1, "max_workers": 4},
        },
    )
    r = client.post(
        MODELS,
        json={
            "name": "llama",
            "model_template": "vllm",
            "model_creation_parameters": {
                "model_weights_uri": "s3://weights/llama",
                "max_model_len": "8192",
                "quantize": False,
                "gpu_memory_utilization": 0.9,
            },
        },
    )
    assert r.status_code == 201, r.text
    viewer = make_user("val", workspaces={"default": "viewer"})
    r = viewer.get(f"{MODELS}/llama/launch-config")
    assert r.status_code == 200, r.text
    assert r.json() == {
        "model": "default/llama",
        "model_template": "default/vllm",
        "model_template_id": client.get(f"{TEMPLATES}/vllm").json()["id"],
        "model_type": "CHAT_COMPLETION",
        "endpoint_type": "STREAMING",
        "endpoint_protocol": "VLLM",
        "model_creation_parameters": {
            "model_weights_uri": "s3://weights/llama",
            "max_model_len": 8192,
            "quantize": False,
            "gpu_memory_utilization": 0.9,
        },
        "vendor_configuration": {
            "vendor": "LAUNCH",
            "bundle_config": {
                "registry": "registry.example.com",
                "image": "vllm",
                "tag": "0.6.3",
                "command": [
                    "python",
                    "-m",
                    "vllm.entrypoints.openai.api_server",
                    "--model=s3://weights/llama",
                    "--max-model-len",
                    "8192",
                    "--gpu-memory-utilization=0.9",
                ],
                "streaming_command": ["sh", "-c", "serve s3://weights/llama --stream && echo ${HOME} $$ $HOME"],
                "env": {
                    "model_weights_uri": "s3://weights/llama",
                    "max_model_len": "fixed",
                    "quantize": "false",
                    "gpu_memory_utilization": "0.9",
                    "WEIGHTS": "s3://weights/llama",
                    "QUANTIZE": "false",
                },
                "readiness_initial_delay_seconds": 120,
                "healthcheck_route": "/readyz",
                "predict_route": "/predict",
                "streaming_predict_route": "/generate_streaming",
            },
            "endpoint_config": {
                "cpus": 3,
                "memory": "8Gi",
                "storage": "16Gi",
                "gpus": 1,
                "gpu_type": "nvidia-ampere-a10",
                "min_workers": 1,
                "max_workers": 4,
                "per_worker": 10,
                "endpoint_type": "ASYNC",
                "high_priority": False,
            },
            "fine_tuning_job_bundle_config": None,
        },
    }

    # Optional parameters left out render as empty strings and are not exported; endpoint_config left out in the
    # template is answered with SGP's defaults.
    create(
        client,
        name="minimal",
        model_creation_parameters_schema=WEIGHTS_SCHEMA,
        vendor_configuration=bundle(command=["run", "--len=${max_len}"]),
    )
    client.post(
        MODELS,
        json={"name": "small", "model_template": "minimal", "model_creation_parameters": {"model_weights_uri": "u"}},
    )
    config = client.get(f"{MODELS}/small/launch-config").json()["vendor_configuration"]
    assert config["bundle_config"]["command"] == ["run", "--len="]
    assert config["bundle_config"]["env"] == {"model_weights_uri": "u"}
    assert config["endpoint_config"]["cpus"] == 3
    assert config["endpoint_config"]["max_workers"] == 1


@pytest.mark.parametrize(
    ("where", "text", "kind"),
    [
        ("command", "--model=${weights}", "unknown_placeholder"),
        ("streaming_command", "${model_weights_uri} ${max_length}", "unknown_placeholder"),
        ("env", "${HOME}", "unknown_placeholder"),
        ("command", "--model=${model_weights_uri", "invalid_placeholder"),
        ("command", "${1st}", "invalid_placeholder"),
        ("command", "${}", "invalid_placeholder"),
    ],
)
def test_unknown_placeholder_is_refused_at_creation(client: TestClient, where: str, text: str, kind: str) -> None:
    value: Any = {"VAR": text} if where == "env" else [text]
    r = client.post(
        TEMPLATES,
        json=template_body(
            model_creation_parameters_schema=WEIGHTS_SCHEMA, vendor_configuration=bundle(**{where: value})
        ),
    )
    assert r.status_code == 422, r.text
    error = error_shape(r)
    assert error["error_code"] == "INVALID_MODEL_TEMPLATE"
    expected = ["body", "vendor_configuration", "bundle_config", where, "VAR" if where == "env" else 0]
    assert [(item["loc"], item["type"]) for item in error["detail"]] == [(expected, kind)]
    assert client.get(TEMPLATES).json()["data"] == []


def test_placeholders_without_a_creation_schema(client: TestClient) -> None:
    r = client.post(TEMPLATES, json=template_body(vendor_configuration=bundle(command=["${x}"])))
    assert r.status_code == 422
    assert "declared: none" in error_shape(r)["detail"][0]["msg"]
    # A literal '${' is written '$${'; '$NAME' without braces is left to the shell.
    r = client.post(TEMPLATES, json=template_body(vendor_configuration=bundle(command=["echo $${HOME} $HOME"])))
    assert r.status_code == 201, r.text


# -- the parameter rules themselves ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sgp_type", "given", "value", "coerced"),
    [
        ("int", "5", 5, True),
        ("int", " -7 ", -7, True),
        ("int", 5.0, 5, True),
        ("int", 5, 5, False),
        ("float", "1.5", 1.5, True),
        ("float", 2, 2.0, False),
        ("float", "2", 2.0, True),
        ("bool", "true", True, True),
        ("bool", "OFF", False, True),
        ("bool", 1, True, True),
        ("bool", False, False, False),
        ("str", 5, "5", True),
        ("str", 1.5, "1.5", True),
        ("str", "x", "x", False),
    ],
)
def test_sgp_coercions(sgp_type: str, given: Any, value: Any, coerced: bool) -> None:
    spec, errors = params.parse_schema(
        {"parameters": [{"name": "p", "type": sgp_type, "description": "", "required": True}]}, []
    )
    assert errors == []
    checked = params.check_values(spec, {"p": given}, ["p"])
    assert checked.errors == []
    assert checked.values == {"p": value}
    assert type(checked.values["p"]) is type(value)
    assert bool(checked.coercions) is coerced


@pytest.mark.parametrize(
    ("sgp_type", "given"),
    [
        ("int", True),
        ("int", "5.5"),
        ("int", 5.5),
        ("int", "nan"),
        ("float", "inf"),
        ("float", True),
        ("float", "1_000"),
        ("bool", 2),
        ("bool", "maybe"),
        ("str", True),
        ("str", {"a": 1}),
        ("str", ["a"]),
    ],
)
def test_sgp_refusals(sgp_type: str, given: Any) -> None:
    spec, _ = params.parse_schema(
        {"parameters": [{"name": "p", "type": sgp_type, "description": "", "required": True}]}, []
    )
    checked = params.check_values(spec, {"p": given}, ["x"])
    assert [e["loc"] for e in checked.errors] == [["x", "p"]]


def test_request_schema_validates_real_requests(client: TestClient) -> None:
    """The answer of request-schema is itself a Draft 2020-12 schema, and a template's JSON Schema with local
    references still resolves inside it."""
    request_schema = {
        "type": "object",
        "$defs": {"lang": {"type": "string", "enum": ["en", "de"]}},
        "properties": {"lang": {"$ref": "#/$defs/lang"}, "top_k": {"type": "integer", "minimum": 1}},
        "required": ["lang"],
    }
    create(client, model_type="CHAT_COMPLETION", model_request_parameters_schema=request_schema)
    client.post(MODELS, json={"name": "m", "model_template": "t"})
    schema = client.get(f"{MODELS}/m/request-schema").json()
    Draft202012Validator.check_schema(schema)
    validator = Draft202012Validator(schema)
    good = {
        "prompt": "hi",
        "chat_history": [{"role": "user", "content": "hello"}],
        "model_request_parameters": {"bindings": {"lang": "en", "top_k": 3}},
    }
    assert list(validator.iter_errors(good)) == []
    bad_binding = {**good, "model_request_parameters": {"bindings": {"lang": "fr"}}}
    assert [list(e.absolute_path) for e in validator.iter_errors(bad_binding)] == [
        ["model_request_parameters", "bindings", "lang"]
    ]
    assert not validator.is_valid({"prompt": "hi", "chat_history": []})  # model_request_parameters is required
    assert not validator.is_valid({**good, "temperature": 2.5})  # case 32
    assert not validator.is_valid({**good, "stop_sequences": ["a", "b", "c", "d", "e"]})

    r = client.post(f"{MODELS}/m/validate-request", json={"model_request_parameters": {"bindings": {"lang": "fr"}}})
    assert r.status_code == 422
    assert [(i["loc"], i["type"]) for i in error_shape(r)["detail"]] == [
        (["body", "model_request_parameters", "bindings", "lang"], "json_schema_enum")
    ]


def test_deleting_a_template_races_models_made_from_it(live_server: str, admin_token: str, client: TestClient) -> None:
    """Concurrent requests on a real server: a template is either deleted before any model is made from it (and
    later ones get 400), or the deletion sees the models and is refused. Never a model on a deleted template."""
    headers = {"Authorization": f"Bearer {admin_token}"}

    def request(call: tuple[str, str, str]) -> tuple[str, int]:
        method, path, name = call
        with httpx.Client(base_url=live_server, headers=headers, timeout=60) as http:
            body = {"name": name, "model_template": "default/" + name.split("-")[0]}
            r = http.request(method, path, json=body if method == "POST" else None)
            return name, r.status_code

    for round_ in range(4):
        template = f"race{round_}"
        create(client, name=template)
        calls = [("POST", MODELS, f"{template}-m{i}") for i in range(6)]
        calls.insert(round_ + 1, ("DELETE", f"{TEMPLATES}/{template}", template))
        with concurrent.futures.ThreadPoolExecutor(len(calls)) as executor:
            results = dict(executor.map(request, calls))
        deleted = results.pop(template)
        assert deleted in (204, 409), deleted
        assert set(results.values()) <= {201, 400}, results
        made = sorted(name for name, code in results.items() if code == 201)
        if deleted == 204:
            assert made == []
            assert client.get(f"{TEMPLATES}/{template}").status_code == 404
        else:
            assert made
            for name in made:
                assert client.get(f"{MODELS}/{name}/launch-config").status_code == 200
