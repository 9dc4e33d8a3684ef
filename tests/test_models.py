"""Models and versions: the Huawei flows, asynchronous validation by the worker, the current version, the spec from
real config.json files, and every bad input of the seeds."""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import json
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient

from modelyard.auth import Principal
from modelyard.config import Settings
from modelyard.db.base import utcnow
from modelyard.db.engine import Database
from modelyard.errors import NotFound
from modelyard.job.tables import Job
from modelyard.job.worker import Worker
from modelyard.model import endpoints, repository, service
from modelyard.workspace.tables import Role
from tests.fixtures.app import MakeUser, both_ways, error_shape, plain_reads
from tests.fixtures.databases import count_rows
from tests.fixtures.models import config, config_bytes, numel, safetensors_bytes, tiny_llama_tensors

WS = "/v1/workspaces/default"
MODELS = f"{WS}/models"


@pytest.fixture
def settings(tmp_path: Path, db: Database) -> Settings:
    (tmp_path / "local").mkdir()
    return Settings(
        home=tmp_path / "home",
        database_url=db.url,
        worker=False,
        job_backoff_seconds=0.0,
        allowed_local_roots=[tmp_path / "local"],
    )  # type: ignore[arg-type]


@pytest.fixture
def worker(db: Database, settings: Settings) -> Worker:
    return Worker(db, settings, name="test")


def drain(worker: Worker) -> None:
    while worker.run_once():
        pass


def upload(client: TestClient, fileset: str, files: dict[str, bytes], ws: str = "default") -> None:
    r = client.post(f"/v1/workspaces/{ws}/filesets", json={"name": fileset, "purpose": "model"})
    assert r.status_code == 201, r.text
    for path, data in files.items():
        assert client.put(f"/v1/workspaces/{ws}/filesets/{fileset}/-/{path}", content=data).status_code == 201


def llama_files() -> dict[str, bytes]:
    return {
        "config.json": config_bytes("llama-3.2-1b"),
        "model.safetensors": safetensors_bytes(tiny_llama_tensors()),
        "tokenizer.json": b'{"version": "1.0"}',
    }


def version_body(path: str, name: str | None = "v1", base: str = "LLAMA_3_2_1B", local: bool = False) -> dict:
    key = "local_model_path" if local else "model_path"
    body: dict = {"config": {"llm_model_config": {"base_model_type": base, key: path}}}
    if name is not None:
        body["name"] = name
    return body


def test_create_model_with_version_becomes_ready(client: TestClient, worker: Worker) -> None:
    upload(client, "llama-files", llama_files())
    r = client.post(
        MODELS,
        json={
            "name": "llama",
            "model_type": "CHAT_COMPLETION",
            "description": "Llama 3.2 1B",
            "labels": {"team": "nlp"},
            "version": version_body("default/llama-files"),
        },
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["workspace"] == "default"
    assert body["current_version"] is None
    assert body["new_version"]["status"] == "CREATING"
    assert body["new_version"]["model"] == "default/llama"
    assert body["new_version"]["config"]["llm_model_config"]["base_model_type"] == "LLAMA_3_2_1B"
    # The create answer is built without the response schema's round trip: it says what GET says, with the new
    # version as GET of the version says it, and the ETag that If-Match accepts.
    created = dict(body)
    new_version, coercions = created.pop("new_version"), created.pop("coercions")
    got = client.get(f"{MODELS}/llama")
    assert created == got.json()
    assert r.headers["etag"] == got.headers["etag"]
    assert new_version == client.get(f"{MODELS}/llama/versions/v1").json()
    assert coercions == []

    drain(worker)
    model = client.get(f"{MODELS}/llama").json()
    assert model["current_version"]["name"] == "v1"
    assert model["current_version"]["status"] == "READY"
    assert model["current_version_id"] == body["new_version"]["id"]
    spec = model["spec"]
    assert spec["architecture"] == "LlamaForCausalLM"
    assert spec["family"] == "llama"
    assert (spec["hidden_size"], spec["num_layers"], spec["num_attention_heads"], spec["num_kv_heads"]) == (
        2048,
        16,
        32,
        8,
    )
    assert spec["num_parameters"] == numel(tiny_llama_tensors())
    assert spec["dtype"] == "bfloat16"

    version = client.get(f"{MODELS}/llama/versions/v1").json()
    assert version["status"] == "READY"
    assert version["is_current"] is True
    assert version["file_count"] == 3
    manifest = client.get(f"{MODELS}/llama/versions/v1/files").json()["data"]
    assert [f["path"] for f in manifest] == ["config.json", "model.safetensors", "tokenizer.json"]
    fileset = client.get(f"{WS}/filesets/llama-files").json()
    assert version["digest"] == fileset["digest"]  # same files, same manifest, same digest
    actions = [e["action"] for e in client.get(f"{WS}/events", params={"sort": "at"}).json()["data"]]
    assert actions[-4:] == ["model.created", "model_version.created", "model_version.ready", "model.updated"]


def test_huawei_put_with_version(client: TestClient, worker: Worker) -> None:
    """The seed's UpdateModelDefinition example: PUT with a `version` answers the model and the new version."""
    upload(client, "qwen-v1", {"config.json": config_bytes("qwen2.5-0.5b")})
    upload(client, "qwen-v2", {"config.json": config_bytes("qwen2.5-0.5b"), "README.md": b"v2"})
    client.post(MODELS, json={"name": "qwen-ft", "version": version_body("default/qwen-v1", base="QWEN_2_72B")})
    drain(worker)
    r = client.put(
        f"{MODELS}/qwen-ft",
        json={
            "version": {
                "name": "v2",
                "config": {
                    "llm_model_config": {"base_model_type": "QWEN_2_72B", "model_path": "fileset://default/qwen-v2"}
                },
            }
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["name"] == "qwen-ft"
    assert body["current_version"]["name"] == "v1"
    assert body["new_version"]["name"] == "v2"
    assert body["new_version"]["status"] == "CREATING"
    drain(worker)
    versions = client.get(f"{MODELS}/qwen-ft/versions", params={"sort": "name"}).json()
    assert versions["pagination"]["total_results"] == 2
    assert [v["status"] for v in versions["data"]] == ["READY", "READY"]
    # v2 is READY but v1 stays current until asked.
    assert client.get(f"{MODELS}/qwen-ft").json()["current_version"]["name"] == "v1"
    v2 = versions["data"][1]["id"]
    r = client.put(f"{MODELS}/qwen-ft", json={"current_version_id": v2, "description": "now v2"})
    assert r.status_code == 200
    assert r.json()["current_version"]["name"] == "v2"
    assert r.json()["description"] == "now v2"
    assert r.json()["new_version"] is None
    replaced = r.json()
    del replaced["new_version"], replaced["coercions"]
    got = client.get(f"{MODELS}/qwen-ft")
    assert replaced == got.json()  # the PUT answer says what GET says
    assert r.headers["etag"] == got.headers["etag"]
    # Rename, as Huawei's PUT allows.
    assert client.put(f"{MODELS}/qwen-ft", json={"name": "qwen-renamed"}).json()["name"] == "qwen-renamed"
    assert client.get(f"{MODELS}/qwen-ft").status_code == 404


def test_missing_path_fails_with_message_naming_it(client: TestClient, worker: Worker, tmp_path: Path) -> None:
    client.post(MODELS, json={"name": "m"})
    cases = {
        "a": version_body("default/no-such-fileset", name="a"),
        "b": version_body(str(tmp_path / "local" / "nothing-here"), name="b", local=True),
        "c": version_body("fileset://default/empty-set", name="c"),
    }
    client.post(f"{WS}/filesets", json={"name": "empty-set"})
    for body in cases.values():
        assert client.post(f"{MODELS}/m/versions", json=body).status_code == 201
    drain(worker)
    versions = {v["name"]: v for v in client.get(f"{MODELS}/m/versions").json()["data"]}
    assert versions["a"]["status"] == "FAILED"
    assert "default/no-such-fileset" in versions["a"]["status_message"]
    assert "must exist" in versions["a"]["status_message"]
    assert versions["b"]["status"] == "FAILED"
    assert str(tmp_path / "local" / "nothing-here") in versions["b"]["status_message"]
    assert versions["c"]["status"] == "FAILED"
    assert "empty" in versions["c"]["status_message"]
    assert client.get(f"{MODELS}/m").json()["current_version"] is None


def test_only_a_ready_version_can_be_current(client: TestClient, worker: Worker) -> None:
    upload(client, "good", {"config.json": config_bytes("mistral-7b-v0.1")})
    client.post(MODELS, json={"name": "m", "version": version_body("default/good")})
    drain(worker)
    failed = client.post(f"{MODELS}/m/versions", json=version_body("default/missing", name="broken")).json()
    drain(worker)
    creating = client.post(f"{MODELS}/m/versions", json=version_body("default/good", name="pending")).json()
    before = client.get(f"{MODELS}/m").json()["current_version_id"]
    for version in (failed, creating):
        r = client.put(f"{MODELS}/m", json={"current_version_id": version["id"]})
        assert r.status_code == 409
        body = error_shape(r)
        assert body["error_code"] == "VERSION_NOT_READY"
        assert "If the version failed, it cannot be updated to the current version" in body["error_msg"]
    assert client.get(f"{MODELS}/m").json()["current_version_id"] == before
    client.post(MODELS, json={"name": "other", "version": version_body("default/good")})
    drain(worker)
    other_version = client.get(f"{MODELS}/other").json()["current_version_id"]
    r = client.put(f"{MODELS}/m", json={"current_version_id": other_version})
    assert r.status_code == 409
    assert error_shape(r)["error_code"] == "VERSION_NOT_OF_MODEL"


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [
        (
            "llama-3.2-1b",
            {
                "architecture": "LlamaForCausalLM",
                "family": "llama",
                "num_layers": 16,
                "hidden_size": 2048,
                "num_attention_heads": 32,
                "num_kv_heads": 8,
                "head_dim": 64,
                "intermediate_size": 8192,
                "vocab_size": 128256,
                "max_position_embeddings": 131072,
            },
        ),
        (
            "qwen2.5-0.5b",
            {
                "architecture": "Qwen2ForCausalLM",
                "family": "qwen2",
                "num_layers": 24,
                "hidden_size": 896,
                "num_attention_heads": 14,
                "num_kv_heads": 2,
                "head_dim": 64,
                "intermediate_size": 4864,
                "vocab_size": 151936,
                "max_position_embeddings": 32768,
            },
        ),
        (
            "mistral-7b-v0.1",
            {
                "architecture": "MistralForCausalLM",
                "family": "mistral",
                "num_layers": 32,
                "hidden_size": 4096,
                "num_attention_heads": 32,
                "num_kv_heads": 8,
                "head_dim": 128,
                "intermediate_size": 14336,
                "vocab_size": 32000,
                "max_position_embeddings": 32768,
            },
        ),
        (
            "gemma-3-1b-it",
            {
                "family": "gemma3_text",
                "num_layers": 26,
                "hidden_size": 1152,
                "num_attention_heads": 4,
                "num_kv_heads": 1,
                "head_dim": 256,
                "intermediate_size": 6912,
                "vocab_size": 262144,
            },
        ),
    ],
)
def test_spec_of_real_configs(client: TestClient, worker: Worker, fixture: str, expected: dict) -> None:
    tensors = tiny_llama_tensors(hidden=32, layers=1, vocab=16, dtype="F16")
    upload(client, "files", {"config.json": config_bytes(fixture), "model.safetensors": safetensors_bytes(tensors)})
    client.post(MODELS, json={"name": "m", "version": version_body("default/files")})
    drain(worker)
    spec = client.get(f"{MODELS}/m").json()["spec"]
    assert spec is not None, client.get(f"{MODELS}/m/versions/v1").json()
    for key, value in expected.items():
        assert spec[key] == value, (fixture, key, spec[key], value)
    assert spec["num_parameters"] == numel(tensors)
    assert spec["dtype"] == "float16"
    assert config(fixture)  # the fixture is real JSON


def test_sharded_safetensors_are_counted(client: TestClient, worker: Worker) -> None:
    a = {"model.embed_tokens.weight": ("BF16", [100, 8])}
    b = {"lm_head.weight": ("BF16", [100, 8]), "model.norm.weight": ("F32", [8])}
    index = {
        "metadata": {"total_size": 0},
        "weight_map": {
            "model.embed_tokens.weight": "model-00001-of-00002.safetensors",
            "lm_head.weight": "model-00002-of-00002.safetensors",
            "model.norm.weight": "model-00002-of-00002.safetensors",
        },
    }
    upload(
        client,
        "sharded",
        {
            "config.json": config_bytes("llama-3.2-1b"),
            "model-00001-of-00002.safetensors": safetensors_bytes(a),
            "model-00002-of-00002.safetensors": safetensors_bytes(b),
            "model.safetensors.index.json": json.dumps(index).encode(),
        },
    )
    client.post(MODELS, json={"name": "m", "version": version_body("default/sharded")})
    drain(worker)
    assert client.get(f"{MODELS}/m").json()["spec"]["num_parameters"] == 1608


def test_broken_files_fail_with_a_reason(client: TestClient, worker: Worker) -> None:
    upload(client, "bad-config", {"config.json": b"{not json"})
    upload(client, "bad-weights", {"model.safetensors": b"\xff" * 64})
    client.post(MODELS, json={"name": "m"})
    client.post(f"{MODELS}/m/versions", json=version_body("default/bad-config", name="a"))
    client.post(f"{MODELS}/m/versions", json=version_body("default/bad-weights", name="b"))
    drain(worker)
    versions = {v["name"]: v for v in client.get(f"{MODELS}/m/versions").json()["data"]}
    assert versions["a"]["status"] == "FAILED"
    assert "config.json" in versions["a"]["status_message"]
    assert versions["b"]["status"] == "FAILED"
    assert "model.safetensors" in versions["b"]["status_message"]


def test_local_model_path(client: TestClient, worker: Worker, tmp_path: Path) -> None:
    model_dir = tmp_path / "local" / "llama"
    model_dir.mkdir()
    for name, data in llama_files().items():
        (model_dir / name).write_bytes(data)
    (model_dir / ".cache").mkdir()
    (model_dir / ".cache" / "junk").write_bytes(b"ignored")
    client.post(MODELS, json={"name": "m", "version": version_body(str(model_dir), local=True)})
    drain(worker)
    version = client.get(f"{MODELS}/m/versions/v1").json()
    assert version["status"] == "READY", version["status_message"]
    assert version["file_count"] == 3
    assert version["config"]["llm_model_config"]["local_model_path"] == str(model_dir)
    # Outside the allowed roots: refused at once, naming the setting.
    r = client.post(f"{MODELS}/m/versions", json=version_body("/etc", name="etc", local=True))
    assert r.status_code == 400
    body = error_shape(r)
    assert body["error_code"] == "LOCAL_PATH_NOT_ALLOWED"
    assert "MODELYARD_ALLOWED_LOCAL_ROOTS" in body["error_msg"]
    escape = str(tmp_path / "local" / ".." / "home")
    assert client.post(f"{MODELS}/m/versions", json=version_body(escape, name="esc", local=True)).status_code == 400


def test_s3_model_path(
    client: TestClient, worker: Worker, s3_endpoint: str, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3

    s3 = boto3.client("s3", endpoint_url=s3_endpoint)
    s3.create_bucket(Bucket="models-bucket")
    for name, data in llama_files().items():
        s3.put_object(Bucket="models-bucket", Key=f"llama/3.2/{name}", Body=data)
    worker.settings = settings.model_copy(update={"s3_endpoint_url": s3_endpoint})
    client.post(MODELS, json={"name": "m", "version": version_body("s3://models-bucket/llama/3.2")})
    client.post(f"{MODELS}/m/versions", json=version_body("s3://models-bucket/nothing", name="v2"))
    drain(worker)
    versions = {v["name"]: v for v in client.get(f"{MODELS}/m/versions").json()["data"]}
    assert versions["v1"]["status"] == "READY", versions["v1"]["status_message"]
    assert versions["v1"]["spec"]["hidden_size"] == 2048
    assert versions["v2"]["status"] == "FAILED"
    assert "s3://models-bucket/nothing" in versions["v2"]["status_message"]


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        (version_body("default/x", name="v" * 65), ["body", "name"]),
        (version_body("default/x", name="a/b"), ["body", "name"]),
        (version_body("default/x", name=" padded"), ["body", "name"]),
        ({**version_body("default/x"), "description": "d" * 1025}, ["body", "description"]),
        (version_body("default/x", base="qwen 2 72b"), ["body", "config", "llm_model_config", "base_model_type"]),
        (version_body("default/x", base="7B_MODEL"), ["body", "config", "llm_model_config", "base_model_type"]),
        (version_body("obs://bucket/path/"), ["body", "config", "llm_model_config", "model_path"]),
        (version_body("http://example.com/model"), ["body", "config", "llm_model_config", "model_path"]),
        (version_body("s3://Bad_Bucket/x"), ["body", "config", "llm_model_config", "model_path"]),
        (version_body("hf://only-org"), ["body", "config", "llm_model_config", "model_path"]),
        (version_body("a/b/c"), ["body", "config", "llm_model_config", "model_path"]),
        (version_body("fileset://default/fs/../../etc"), ["body", "config", "llm_model_config", "model_path"]),
        (
            {"name": "v1", "config": {"llm_model_config": {"base_model_type": "X"}}},
            ["body", "config", "llm_model_config"],
        ),
        (
            {
                "name": "v1",
                "config": {
                    "llm_model_config": {"base_model_type": "X", "model_path": "default/a", "local_model_path": "/tmp"}
                },
            },
            ["body", "config", "llm_model_config"],
        ),
        ({"name": "v1"}, ["body", "config"]),
    ],
)
def test_bad_version_inputs(client: TestClient, body: dict, loc: list[str]) -> None:
    client.post(MODELS, json={"name": "m"})
    r = client.post(f"{MODELS}/m/versions", json=body)
    assert r.status_code == 422, r.text
    detail = error_shape(r)["detail"]
    assert detail[0]["loc"][: len(loc)] == loc, detail
    assert client.get(f"{MODELS}/m/versions").json()["data"] == []


def test_chinese_and_spaces_in_version_names(client: TestClient) -> None:
    client.post(MODELS, json={"name": "m"})
    r = client.post(f"{MODELS}/m/versions", json=version_body("default/x", name="模型 v1.0_x-y"))
    assert r.status_code == 201
    assert client.get(f"{MODELS}/m/versions/模型 v1.0_x-y").json()["name"] == "模型 v1.0_x-y"


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"name": "m" * 256}, ["body", "name"]),
        ({"name": "a b"}, ["body", "name"]),
        ({"name": "m", "description": "d" * 1025}, ["body", "description"]),
        ({"name": "m", "model_type": "IMAGE"}, ["body", "model_type"]),
        ({"name": "m", "visibility": "SECRET"}, ["body", "visibility"]),
        ({"name": "m", "labels": {"bad key": "x"}}, ["body", "labels"]),
        ({"name": "m", "type": "LLM_MODEL"}, ["body", "type"]),
    ],
)
def test_bad_model_inputs(client: TestClient, body: dict, loc: list[str]) -> None:
    r = client.post(MODELS, json=body)
    assert r.status_code == 422, r.text
    assert error_shape(r)["detail"][0]["loc"][: len(loc)] == loc


def test_duplicate_model_is_409(client: TestClient) -> None:
    assert client.post(MODELS, json={"name": "dup"}).status_code == 201
    r = client.post(MODELS, json={"name": "dup"})
    assert r.status_code == 409
    assert error_shape(r)["error_code"] == "MODEL_ALREADY_EXISTS"
    assert client.post(f"{MODELS}/dup/versions", json=version_body("default/x", name="v1")).status_code == 201
    r = client.post(f"{MODELS}/dup/versions", json=version_body("default/x", name="v1"))
    assert r.status_code == 409
    assert error_shape(r)["error_code"] == "VERSION_ALREADY_EXISTS"


def test_list_filters_and_patch(client: TestClient) -> None:
    client.post(
        MODELS, json={"name": "llama-chat", "model_type": "CHAT_COMPLETION", "labels": {"team": "nlp", "tier": "1"}}
    )
    client.post(MODELS, json={"name": "llama-embed", "model_type": "EMBEDDING", "labels": {"team": "search"}})
    client.post(MODELS, json={"name": "qwen", "visibility": "PUBLIC", "labels": {"team": "nlp"}})

    def names(**params: object) -> list[str]:
        r = client.get(MODELS, params={"sort": "name", **params})
        assert r.status_code == 200, r.text
        return [m["name"] for m in r.json()["data"]]

    assert names(name_prefix="llama") == ["llama-chat", "llama-embed"]
    assert names(model_type="EMBEDDING") == ["llama-embed"]
    assert names(visibility="PUBLIC") == ["qwen"]
    assert names(label="team:nlp") == ["llama-chat", "qwen"]
    assert names(label=["team:nlp", "tier:1"]) == ["llama-chat"]
    assert names(label="team:none") == []
    assert client.get(MODELS, params={"label": "team"}).status_code == 422
    assert client.get(MODELS, params={"colour": "red"}).status_code == 400

    etag = client.get(f"{MODELS}/qwen").headers["etag"]
    r = client.patch(
        f"{MODELS}/qwen", json={"labels": {"team": "search"}, "display_name": "Qwen"}, headers={"If-Match": etag}
    )
    assert r.status_code == 200
    assert r.json()["labels"] == {"team": "search"}
    assert names(label="team:nlp") == ["llama-chat"]
    assert client.patch(f"{MODELS}/qwen", json={"display_name": "x"}, headers={"If-Match": etag}).status_code == 412
    assert client.patch(f"{MODELS}/qwen", json={"name": "renamed"}).status_code == 422


def test_public_models_are_readable_by_everyone(client: TestClient, make_user: MakeUser) -> None:
    client.post(MODELS, json={"name": "open", "visibility": "PUBLIC"})
    client.post(MODELS, json={"name": "closed"})
    stranger = make_user("sam")
    assert stranger.get(f"{MODELS}/open").status_code == 200
    assert stranger.get(f"{MODELS}/open/versions").status_code == 200
    r = stranger.get(f"{MODELS}/closed")
    assert r.status_code == 404
    assert error_shape(r)["error_code"] == "WORKSPACE_NOT_FOUND"
    assert stranger.patch(f"{MODELS}/open", json={"description": "x"}).status_code == 404
    assert stranger.get(MODELS).status_code == 404
    viewer = make_user("vic", workspaces={"default": "viewer"})
    assert viewer.get(f"{MODELS}/closed").status_code == 200
    assert viewer.post(MODELS, json={"name": "mine"}).status_code == 403
    assert viewer.delete(f"{MODELS}/closed").status_code == 403


def test_cross_workspace_fileset_needs_membership(client: TestClient, make_user: MakeUser) -> None:
    client.post("/v1/workspaces", json={"name": "private-ws"})
    upload(client, "weights", llama_files(), ws="private-ws")
    eve = make_user("eve", workspaces={"default": "editor"})
    eve.post(MODELS, json={"name": "m"})
    r = eve.post(f"{MODELS}/m/versions", json=version_body("private-ws/weights"))
    assert r.status_code == 403
    assert error_shape(r)["error_code"] == "FILESET_NOT_READABLE"


def test_delete_rules(client: TestClient, worker: Worker) -> None:
    upload(client, "files", {"config.json": config_bytes("gpt2")})
    client.post(MODELS, json={"name": "m", "version": version_body("default/files")})
    client.post(f"{MODELS}/m/versions", json=version_body("default/files", name="v2"))
    drain(worker)
    r = client.delete(f"{MODELS}/m/versions/v1")
    assert r.status_code == 409
    assert error_shape(r)["error_code"] == "VERSION_IN_USE"
    assert client.delete(f"{MODELS}/m/versions/v2").status_code == 204
    assert client.get(f"{MODELS}/m/versions/v2").status_code == 404
    # The fileset is in use by v1.
    r = client.delete(f"{WS}/filesets/files")
    assert r.status_code == 409
    assert "model version 'default/m@v1'" in error_shape(r)["error_msg"]
    # The workspace holds a model.
    assert "1 models" in client.delete(WS).json()["error_msg"]
    assert client.delete(f"{MODELS}/m").status_code == 204
    assert client.get(f"{MODELS}/m").status_code == 404
    assert client.delete(f"{WS}/filesets/files").status_code == 204


def test_versions_without_names_are_numbered(client: TestClient, worker: Worker) -> None:
    client.post(MODELS, json={"name": "m"})
    names = [
        client.post(f"{MODELS}/m/versions", json=version_body("default/x", name=None)).json()["name"] for _ in range(3)
    ]
    assert names == ["v1", "v2", "v3"]


def test_twenty_concurrent_versions(
    live_server: str, admin_token: str, client: TestClient, db: Database, settings: Settings
) -> None:
    upload(client, "files", {"config.json": config_bytes("qwen2.5-0.5b")})
    client.post(MODELS, json={"name": "busy"})
    headers = {"Authorization": f"Bearer {admin_token}"}

    def create(i: int) -> tuple[int, str]:
        path = "default/files" if i % 4 else "default/missing"
        with httpx.Client(base_url=live_server, headers=headers, timeout=60) as http:
            r = http.post(f"{MODELS}/busy/versions", json=version_body(path, name=None))
            return r.status_code, r.json().get("name", r.text)

    pool = Worker(db, settings.model_copy(update={"worker_concurrency": 2}), name="pool")
    pool.start()
    try:
        with concurrent.futures.ThreadPoolExecutor(8) as executor:
            results = list(executor.map(create, range(20)))
        assert [code for code, _ in results] == [201] * 20
        assert sorted(int(name[1:]) for _, name in results) == list(range(1, 21))
        deadline = time.monotonic() + 60
        while True:
            statuses = [
                v["status"] for v in client.get(f"{MODELS}/busy/versions", params={"page_size": 50}).json()["data"]
            ]
            if "CREATING" not in statuses or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    finally:
        pool.stop()
    assert sorted(statuses) == ["FAILED"] * 5 + ["READY"] * 15


def test_a_dead_worker_does_not_leave_a_version_creating(client: TestClient, db: Database, settings: Settings) -> None:
    upload(client, "files", {"config.json": config_bytes("gpt2")})
    client.post(MODELS, json={"name": "m", "version": version_body("default/files")})
    client.post(f"{MODELS}/m/versions", json=version_body("default/files", name="last-try"))
    with db.session(write=True) as session:
        jobs = session.query(Job).order_by(Job.created_at).all()
        # The first job's worker died mid-validation: RUNNING with a lapsed lease.
        jobs[0].status, jobs[0].attempts, jobs[0].locked_by, jobs[0].lease_expires_at = "RUNNING", 1, "dead", utcnow()
        # The second one died on its last attempt.
        jobs[1].status, jobs[1].attempts, jobs[1].max_attempts = "RUNNING", 3, 3
        jobs[1].locked_by, jobs[1].lease_expires_at = "dead", utcnow()
        session.commit()
    rescuer = Worker(db, settings, name="rescuer")
    drain(rescuer)
    versions = {v["name"]: v for v in client.get(f"{MODELS}/m/versions").json()["data"]}
    assert versions["v1"]["status"] == "READY"
    assert versions["last-try"]["status"] == "FAILED"
    assert "Validation could not finish" in versions["last-try"]["status_message"]


def test_base_model_types(client: TestClient, worker: Worker, make_user: MakeUser) -> None:
    upload(client, "q", {"config.json": config_bytes("qwen2.5-0.5b")})
    client.post(MODELS, json={"name": "a", "version": version_body("default/q", base="qwen_2_72b")})
    client.post(MODELS, json={"name": "b", "version": version_body("default/q", base="QWEN_2_72B")})
    client.post(MODELS, json={"name": "c", "version": version_body("default/missing", base="GLM_4_9B")})
    drain(worker)
    answer = client.get("/v1/base-model-types").json()
    assert answer["pagination"]["total_results"] == 2
    types = answer["data"]
    assert types == [
        {
            "base_model_type": "GLM_4_9B",
            "versions": 1,
            "ready_versions": 0,
            "architectures": [],
            "families": [],
            "max_position_embeddings": None,
        },
        {
            "base_model_type": "QWEN_2_72B",
            "versions": 2,
            "ready_versions": 2,
            "architectures": ["Qwen2ForCausalLM"],
            "families": ["qwen2"],
            "max_position_embeddings": 32768,
        },
    ]
    assert make_user("nobody").get("/v1/base-model-types").json()["data"] == []


def test_hugging_face_path_is_pinned_to_its_commit(
    client: TestClient, worker: Worker, hub_server: object, hf_endpoint: object
) -> None:
    files = llama_files()
    sha = hub_server.add_repo("meta-llama/Llama-3.2-1B", files)  # type: ignore[attr-defined]
    client.post(MODELS, json={"name": "llama", "version": version_body("hf://meta-llama/Llama-3.2-1B")})
    client.post(f"{MODELS}/llama/versions", json=version_body("hf://meta-llama/no-such-repo", name="v2"))
    client.post(f"{MODELS}/llama/versions", json=version_body("hf://meta-llama/Llama-3.2-1B@no-branch", name="v3"))
    drain(worker)
    # A later push to main does not change what v1 pinned.
    hub_server.add_repo("meta-llama/Llama-3.2-1B", {**files, "config.json": b"{}"})  # type: ignore[attr-defined]
    versions = {v["name"]: v for v in client.get(f"{MODELS}/llama/versions").json()["data"]}
    v1 = versions["v1"]
    assert v1["status"] == "READY", v1["status_message"]
    assert v1["source"]["pinned"] == {"repo_id": "meta-llama/Llama-3.2-1B", "revision": "main", "commit": sha}
    assert v1["spec"]["num_kv_heads"] == 8
    assert v1["spec"]["num_parameters"] == numel(tiny_llama_tensors())
    manifest = {f["path"]: f["sha256"] for f in client.get(f"{MODELS}/llama/versions/v1/files").json()["data"]}
    assert manifest == {path: hashlib.sha256(data).hexdigest() for path, data in files.items()}
    assert versions["v2"]["status"] == "FAILED"
    assert "meta-llama/no-such-repo" in versions["v2"]["status_message"]
    assert versions["v3"]["status"] == "FAILED"
    assert "no-branch" in versions["v3"]["status_message"]


def test_unnamed_versions_take_the_next_free_number(client: TestClient) -> None:
    client.post(MODELS, json={"name": "m"})
    names = []
    for name in (None, "broken", "v2", None, None):
        r = client.post(f"{MODELS}/m/versions", json=version_body("default/x", name=name))
        assert r.status_code == 201, r.text
        names.append(r.json()["name"])
    assert names == ["v1", "broken", "v2", "v3", "v4"]


def test_get_of_a_model_opens_no_session(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """The path fleets poll answers from prebuilt reads: once the caller's token is cached it opens no ORM session
    (the request boundary opens one on first use only), while a change still opens and commits one."""
    assert client.post(MODELS, json={"name": "polled"}).status_code == 201
    assert client.get(f"{MODELS}/polled").status_code == 200  # the token is cached now
    database = client.app.state.ctx.db  # type: ignore[attr-defined]
    opened: list[bool] = []
    real = database.session

    def counting(*, write: bool) -> object:
        opened.append(write)
        return real(write=write)

    monkeypatch.setattr(database, "session", counting)
    for _ in range(3):
        assert client.get(f"{MODELS}/polled").status_code == 200
    assert opened == []
    assert client.patch(f"{MODELS}/polled", json={"description": "d"}).status_code == 200
    assert opened == [True]
    assert client.get(f"{MODELS}/polled").json()["description"] == "d"


def test_answers_after_an_unnamed_version_say_what_get_says(client: TestClient) -> None:
    """Numbering an unnamed version moves the model's counter in its row (and its ETag): the answer of the create or
    PUT that made it is read after that, and matches GET, ETag included."""
    unnamed = version_body("default/x", name=None)
    requests = [
        ("POST", MODELS, {"name": "counted", "version": unnamed}),
        ("PUT", f"{MODELS}/counted", {"description": "d", "version": unnamed}),
    ]
    etag = ""
    for number, (method, url, body) in enumerate(requests, start=1):
        r = client.request(method, url, json=body)
        assert r.status_code in (200, 201), r.text
        answer = r.json()
        assert answer.pop("new_version")["name"] == f"v{number}"
        del answer["coercions"]
        got = client.get(f"{MODELS}/counted")
        assert r.headers["etag"] == got.headers["etag"]
        assert answer == got.json()
        etag = r.headers["etag"]
    # The ETag the caller holds is current: a PATCH with it passes.
    assert client.patch(f"{MODELS}/counted", json={"display_name": "c"}, headers={"If-Match": etag}).status_code == 200


def test_an_unnamed_version_of_a_model_deleted_meanwhile_is_a_404(client: TestClient, db: Database) -> None:
    """The model is gone between the access check and the version's number (another request deleted it): a clear
    404, not a server error, and nothing written."""
    assert client.post(MODELS, json={"name": "doomed"}).status_code == 201
    admin = Principal(user_id="-", name="admin", is_admin=True)
    with db.session(write=False) as session:
        access = service.model_access(session, admin, "default", "doomed", Role.EDITOR)
    assert client.delete(f"{MODELS}/doomed").status_code == 204
    with db.session(write=True) as session:
        with pytest.raises(NotFound, match="Model 'doomed' not found"):
            service.create_version(session, access, version_body("default/x", name=None), [])
        session.rollback()
    assert count_rows(db, "model_versions") == 0


def _paths_taken(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Which of the service's two ways of creating a model runs from now on: "session" or "without session"."""
    taken: list[str] = []
    on_session, without_session = service.create_model, service.create_model_without_session

    def through_session(*args: Any, **kwargs: Any) -> Any:
        taken.append("session")
        return on_session(*args, **kwargs)

    async def lean(*args: Any, **kwargs: Any) -> Any:
        row = await without_session(*args, **kwargs)
        taken.append("without session" if row is not None else "declined")
        return row

    monkeypatch.setattr(service, "create_model", through_session)
    monkeypatch.setattr(service, "create_model_without_session", lean)
    return taken


def test_a_plain_create_goes_without_the_session(
    client: TestClient, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A model without a template or a version goes in without the ORM session, on the event loop (its row, labels
    and event: one statement on PostgreSQL, an inline transaction on SQLite); what it stores and answers is what the
    session path would."""
    taken = _paths_taken(monkeypatch)
    labels = {"team": "search", "stage": "dev"}
    r = client.post(MODELS, json={"name": "one", "labels": labels, "description": "d", "visibility": "PUBLIC"})
    assert r.status_code == 201, r.text
    assert taken == ["without session"]
    created = r.json()
    assert (created["new_version"], created["coercions"]) == (None, [])
    got = client.get(f"{MODELS}/one")
    assert {k: v for k, v in created.items() if k not in ("new_version", "coercions")} == got.json()
    assert r.headers["etag"] == got.headers["etag"]
    found = client.get(MODELS, params={"label": "stage:dev"}).json()["data"]
    assert [m["name"] for m in found] == ["one"]
    events = client.get(f"{WS}/events", params={"action": "model.created"}).json()["data"]
    assert [(e["resource"]["name"], e["changes"]) for e in events] == [
        ("one", {"model_type": "GENERIC", "visibility": "PUBLIC"})
    ]

    # A second model of that name: 409, and nothing of it stored (no label, no event).
    again = client.post(MODELS, json={"name": "one", "labels": {"team": "other"}})
    assert again.status_code == 409
    assert error_shape(again)["error_code"] == "MODEL_ALREADY_EXISTS"
    assert count_rows(db, "models") == 1
    assert count_rows(db, "model_labels") == 2
    assert len(client.get(f"{WS}/events", params={"action": "model.created"}).json()["data"]) == 1
    assert client.get(f"{MODELS}/one").json()["labels"] == labels


def test_concurrent_creates_each_get_their_own_answer(live_server: str, admin_token: str, db: Database) -> None:
    """Creates that arrive together over real connections (on SQLite they commit in groups): each is told what
    happened to it, a repeated name 409 alone, and what was answered 201 is stored with its event."""
    names = [f"c{i}" for i in range(12)] + ["c3", "c7"]

    async def create_all() -> list[httpx.Response]:
        headers = {"Authorization": f"Bearer {admin_token}"}
        async with httpx.AsyncClient(base_url=live_server, headers=headers, timeout=30) as http:
            return await asyncio.gather(*(http.post(MODELS, json={"name": name}) for name in names))

    answers = asyncio.run(create_all())
    statuses = [r.status_code for r in answers]
    assert statuses.count(201) == 12, [r.text for r in answers]
    assert statuses.count(409) == 2
    assert {r.json()["name"] for r in answers if r.status_code == 201} == set(names)
    assert all(error_shape(r)["error_code"] == "MODEL_ALREADY_EXISTS" for r in answers if r.status_code == 409)
    assert count_rows(db, "models") == 12
    with httpx.Client(base_url=live_server, headers={"Authorization": f"Bearer {admin_token}"}) as http:
        events = http.get(f"{WS}/events", params={"action": "model.created", "page_size": 100}).json()["data"]
    assert sorted(e["resource"]["name"] for e in events) == sorted(set(names))


def test_a_create_that_needs_the_session_takes_its_path(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """A first version, a template (read and checked in the session), or an Idempotency-Key (whose record commits
    with the change) goes through the session."""
    upload(client, "files", llama_files())
    template = {
        "name": "tpl",
        "endpoint_type": "SYNC",
        "model_type": "COMPLETION",
        "vendor_configuration": {"bundle_config": {"registry": "r", "image": "i", "tag": "1"}},
    }
    assert client.post(f"{WS}/model-templates", json=template).status_code == 201
    taken = _paths_taken(monkeypatch)
    r = client.post(MODELS, json={"name": "versioned", "version": version_body("files")})
    assert r.status_code == 201, r.text
    assert r.json()["new_version"]["name"] == "v1"
    templated = client.post(MODELS, json={"name": "templated", "model_template": "tpl"})
    assert templated.status_code == 201, templated.text
    keyed = client.post(MODELS, json={"name": "keyed"}, headers={"Idempotency-Key": "create-keyed-1"})
    assert keyed.status_code == 201
    assert taken == ["session", "declined", "session", "session"]  # the template's model: seen, declined
    replay = client.post(MODELS, json={"name": "keyed"}, headers={"Idempotency-Key": "create-keyed-1"})
    assert (replay.status_code, replay.json()["id"]) == (201, keyed.json()["id"])


# -- fast paths (kit.routing.fast_path): GET of a model and a plain create answer from the request itself ----------

_VOLATILE = ("id", "name", "created_at", "updated_at")


def _taken_fast(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The fast paths that got as far as their parameters."""
    taken: list[str] = []
    given = endpoints.path_params

    def counting(request: Any, *names: str) -> tuple[str, ...] | None:
        taken.append("/".join(names))
        return given(request, *names)

    monkeypatch.setattr(endpoints, "path_params", counting)
    return taken


def test_a_get_of_a_model_answers_the_same_either_way(
    client: TestClient, make_user: MakeUser, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert client.post(MODELS, json={"name": "seen", "labels": {"a": "b"}}).status_code == 201
    stranger = make_user("stranger")
    etag = client.get(f"{MODELS}/seen").headers["etag"]
    taken = _taken_fast(monkeypatch)
    cases: list[tuple[TestClient, str, dict[str, str]]] = [
        (client, f"{MODELS}/seen", {}),
        (client, f"{MODELS}/seen", {"If-None-Match": etag}),
        (client, f"{MODELS}/absent", {}),
        (client, f"{MODELS}/{'n' * 256}", {}),  # longer than a name may be: FastAPI's 422
        (client, "/v1/workspaces/nowhere/models/seen", {}),
        (stranger, f"{MODELS}/seen", {}),  # not a member of a private model's workspace
        (client, f"{MODELS}/seen", {"Authorization": "Bearer not-a-token"}),
    ]
    for caller, path, headers in cases:
        fast, full = both_ways(monkeypatch, lambda _way, c=caller, p=path, h=headers: c.get(p, headers=h))
        assert (fast.status_code, fast.content) == (full.status_code, full.content), path
        assert fast.headers.get("etag") == full.headers.get("etag")
    assert [r.status_code for r in (client.get(f"{MODELS}/seen"), stranger.get(f"{MODELS}/seen"))] == [200, 404]
    assert "ws/model" in taken


def test_a_create_answers_the_same_either_way(
    client: TestClient, db: Database, make_user: MakeUser, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same status and body with or without the fast path (but for the new model's id, name and times), and the same
    rows stored; what the fast path does not take (invalid fields, another content type, JSON that orjson refuses,
    an Idempotency-Key) is FastAPI's and the session's, as before."""
    viewer = make_user("viewer", workspaces={"default": "viewer"})
    assert client.post(MODELS, json={"name": "taken"}).status_code == 201
    taken = _taken_fast(monkeypatch)

    def volatile_free(r: httpx.Response) -> Any:
        body = r.json()
        if isinstance(body, dict) and r.status_code == 201:
            return {k: v for k, v in body.items() if k not in _VOLATILE}
        return body

    plain = {"description": "d", "labels": {"team": "a"}, "visibility": "PUBLIC", "model_card": {"x": [1, 2.5]}}
    json_headers = {"Content-Type": "application/json"}
    cases: list[tuple[str, Any]] = [
        ("plain", lambda way: client.post(MODELS, json={"name": f"plain-{way}", **plain})),
        (
            "charset",
            lambda way: client.post(
                MODELS,
                content=json.dumps({"name": f"cs-{way}"}),
                headers={"Content-Type": "application/json; charset=utf-8"},
            ),
        ),
        ("taken", lambda _way: client.post(MODELS, json={"name": "taken"})),
        ("invalid", lambda way: client.post(MODELS, json={"name": f"bad-{way}", "visibility": "NOPE"})),
        ("no name", lambda _way: client.post(MODELS, json={"labels": {}})),
        ("not json", lambda way: client.post(MODELS, content=f"name={way}", headers={"Content-Type": "text/plain"})),
        ("broken json", lambda _way: client.post(MODELS, content=b'{"name": ', headers=json_headers)),
        (
            "nan",
            lambda way: client.post(
                MODELS, content=f'{{"name": "nan-{way}", "model_card": {{"f": NaN}}}}', headers=json_headers
            ),
        ),
        ("a list", lambda _way: client.post(MODELS, json=[{"name": "listed"}])),
        ("viewer", lambda way: viewer.post(MODELS, json={"name": f"viewed-{way}"})),
        ("no workspace", lambda way: client.post("/v1/workspaces/nowhere/models", json={"name": f"n-{way}"})),
        (
            "keyed",
            lambda way: client.post(MODELS, json={"name": f"keyed-{way}"}, headers={"Idempotency-Key": f"k-{way}"}),
        ),
    ]
    for label, send in cases:
        fast, full = both_ways(monkeypatch, send)
        assert fast.status_code == full.status_code, (label, fast.text, full.text)
        assert volatile_free(fast) == volatile_free(full), label
    assert taken.count("ws") == len(cases)  # every create was offered to the fast path first
    for way in ("fast", "full"):
        got = client.get(f"{MODELS}/plain-{way}").json()
        assert (got["labels"], got["visibility"], got["model_card"]) == ({"team": "a"}, "PUBLIC", {"x": [1, 2.5]})
    events = client.get(f"{WS}/events", params={"action": "model.created", "page_size": 100}).json()["data"]
    created = {e["resource"]["name"] for e in events}
    assert {"plain-fast", "plain-full", "cs-fast", "cs-full", "keyed-fast", "keyed-full"} <= created
    assert not created & {"bad-fast", "bad-full", "viewed-fast", "viewed-full", "n-fast", "n-full"}
    assert count_rows(db, "model_labels") == 2


def test_a_version_create_answers_the_same_either_way(
    client: TestClient, db: Database, make_user: MakeUser, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A version of a fileset goes in without the session (service.create_version_without_session): the same status
    and body with or without the fast path (but for the version's id, name and times), the same rows,
    and the model's ETag moves the same way; what it does not take (a local path, a fileset of another workspace for
    a non-admin, an Idempotency-Key, invalid fields) is the session's, as before."""
    assert client.post(MODELS, json={"name": "m"}).status_code == 201
    assert client.post("/v1/workspaces", json={"name": "other"}).status_code == 201
    editor = make_user("editor", workspaces={"default": "editor"})
    viewer = make_user("viewer", workspaces={"default": "viewer"})
    assert client.post(f"{MODELS}/m/versions", json=version_body("default/files", name="taken")).status_code == 201
    taken = _taken_fast(monkeypatch)
    inline: list[str] = []  # the names of the versions that went in without the session
    lean = service.create_version_without_session

    async def spied(*args: Any) -> Any:
        row = await lean(*args)
        if row is not None:
            inline.append(row["name"])
        return row

    monkeypatch.setattr(service, "create_version_without_session", spied)
    versions = f"{MODELS}/m/versions"

    def volatile_free(r: httpx.Response) -> Any:
        body = r.json()
        if r.status_code == 201:
            assert r.headers["etag"]
            return {k: v for k, v in body.items() if k not in _VOLATILE}
        return body

    def model_etag() -> str:
        return str(client.get(f"{MODELS}/m").headers["etag"])

    cases: list[tuple[str, Any]] = [
        ("numbered", lambda _way: client.post(versions, json=version_body("default/files", name=None))),
        ("named", lambda way: client.post(versions, json=version_body("default/files", name=f"n-{way}"))),
        ("by an editor", lambda _way: editor.post(versions, json=version_body("files", name=None))),
        ("taken", lambda _way: client.post(versions, json=version_body("default/files", name="taken"))),
        ("admin, other workspace", lambda _way: client.post(versions, json=version_body("other/f", name=None))),
        ("editor, other workspace", lambda _way: editor.post(versions, json=version_body("other/f", name=None))),
        ("bad path", lambda _way: client.post(versions, json=version_body("a/b/c/d", name=None))),
        ("local path", lambda _way: client.post(versions, json=version_body(str(tmp_path), name=None, local=True))),
        ("viewer", lambda _way: viewer.post(versions, json=version_body("default/files", name=None))),
        ("no model", lambda _way: client.post(f"{MODELS}/none/versions", json=version_body("default/f"))),
        ("invalid", lambda _way: client.post(versions, json={"config": {}})),
        (
            "keyed",
            lambda way: client.post(
                versions, json=version_body("default/files", name=f"k-{way}"), headers={"Idempotency-Key": way}
            ),
        ),
    ]
    for label, send in cases:
        before = model_etag()
        offered = len(taken)
        fast, full = both_ways(monkeypatch, send)
        assert taken[offered:] == ["ws/model"], label  # offered to the fast path first (and only the fast way)
        assert fast.status_code == full.status_code, (label, fast.text, full.text)
        assert volatile_free(fast) == volatile_free(full), label
        if label in ("numbered", "by an editor", "admin, other workspace"):
            assert before != model_etag()  # the counter's update moved the model's version, either way
    listed = client.get(versions, params={"page_size": 100}).json()["data"]
    names = sorted(v["name"] for v in listed)
    assert names == sorted(["taken", "v1", "v2", "v3", "v4", "v5", "v6", "n-fast", "n-full", "k-fast", "k-full"])
    assert count_rows(db, "jobs") == len(names)
    # The fast way took the plain cases: the first numbered one, the named, the editor's, the admin's.
    assert inline == ["v1", "n-fast", "v3", "v5"]
    events = client.get(f"{WS}/events", params={"action": "model_version.created", "page_size": 100}).json()["data"]
    assert sorted(e["resource"]["name"] for e in events) == sorted(f"m@{n}" for n in names)


def test_concurrent_versions_of_one_model_get_their_own_numbers(
    live_server: str, admin_token: str, db: Database
) -> None:
    """These go in together (on SQLite in groups, each in a savepoint; on PostgreSQL the numbers of a group taken
    from the counter at once, then its versions in one statement): each still gets its own vN, and a name that is
    taken fails alone."""
    headers = {"Authorization": f"Bearer {admin_token}"}
    with httpx.Client(base_url=live_server, headers=headers) as http:
        assert http.post(MODELS, json={"name": "busy"}).status_code == 201
    bodies = [version_body("default/files", name=None) for _ in range(12)] + [version_body("default/files", "x")] * 2

    async def create_all() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=live_server, headers=headers, timeout=30) as http:
            return await asyncio.gather(*(http.post(f"{MODELS}/busy/versions", json=b) for b in bodies))

    answers = asyncio.run(create_all())
    assert sorted(r.status_code for r in answers) == [201] * 13 + [409], [r.text for r in answers]
    created = sorted(r.json()["name"] for r in answers if r.status_code == 201)
    assert created == sorted([f"v{i}" for i in range(1, 13)] + ["x"])
    assert [error_shape(r)["error_code"] for r in answers if r.status_code == 409] == ["VERSION_ALREADY_EXISTS"]
    assert count_rows(db, "model_versions") == 13
    assert count_rows(db, "jobs") == 13


def test_versions_of_several_models_at_once_are_numbered_per_model(
    live_server: str, admin_token: str, db: Database
) -> None:
    """Versions of three models created together: each model's own v1, v2, ...; a vN named so by hand is skipped by
    the counter, not taken twice."""
    headers = {"Authorization": f"Bearer {admin_token}"}
    with httpx.Client(base_url=live_server, headers=headers) as http:
        for name in ("a", "b", "c"):
            assert http.post(MODELS, json={"name": name}).status_code == 201
        assert http.post(f"{MODELS}/b/versions", json=version_body("default/files", "v2")).status_code == 201
    targets = ["a", "b", "c"] * 4

    async def create_all() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=live_server, headers=headers, timeout=30) as http:
            body = version_body("default/files", name=None)
            return await asyncio.gather(*(http.post(f"{MODELS}/{m}/versions", json=body) for m in targets))

    answers = asyncio.run(create_all())
    assert [r.status_code for r in answers] == [201] * 12, [r.text for r in answers]
    made: dict[str, list[str]] = {}
    for model, r in zip(targets, answers, strict=True):
        assert r.json()["model"] == f"default/{model}"
        made.setdefault(model, []).append(r.json()["name"])
    assert sorted(made["a"]) == sorted(made["c"]) == ["v1", "v2", "v3", "v4"]
    assert sorted(made["b"]) == ["v1", "v3", "v4", "v5"]  # v2 was named so by hand
    assert count_rows(db, "model_versions") == 13
    assert count_rows(db, "jobs") == 13
    with httpx.Client(base_url=live_server, headers=headers) as http:
        events = http.get(f"{WS}/events", params={"action": "model_version.created", "page_size": 100}).json()["data"]
    assert sorted(e["resource"]["name"] for e in events) == sorted(
        [f"{m}@{n}" for m, names in made.items() for n in names] + ["b@v2"]
    )


def test_the_counters_of_a_group_of_versions_are_locked_in_the_order_of_the_models_ids(
    client: TestClient, db: Database
) -> None:
    """PostgreSQL: the statement that takes the numbers of a group of versions locks its models' rows in the order of
    their ids, whatever the order of the group. Two groups of two server processes that share models then never
    wait for each other in a cycle (a deadlock, which PostgreSQL breaks only after a second, by failing one).

    Six models; another transaction holds the row of the fourth (by id); a group asks for all six, the highest id
    first. It must wait at the fourth having locked only the three below it: the two above are free meanwhile."""
    if db.is_sqlite:
        pytest.skip("PostgreSQL only: SQLite's writers take turns")
    ids = sorted(client.post(MODELS, json={"name": f"locked{i}"}).json()["id"] for i in range(6))
    url = db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    reads = db.async_reads
    assert reads is not None
    with psycopg.connect(url) as holder, psycopg.connect(url, autocommit=True) as probe:
        holder.execute("SELECT id FROM models WHERE id = %s FOR NO KEY UPDATE", [ids[3]])

        async def reserve() -> dict[str, int]:
            async with reads.writing() as writer:
                taken = await repository.reserve_version_numbers_async(writer, {i: 1 for i in reversed(ids)})
            await reads.close()
            return taken

        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            group = pool.submit(asyncio.run, reserve())
            try:
                deadline = time.monotonic() + 10
                while not probe.execute("SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock'").fetchall():
                    assert time.monotonic() < deadline, "the group never waited for the held row"
                    time.sleep(0.01)
                with probe.transaction():
                    free = probe.execute(
                        "SELECT id FROM models WHERE id = ANY(%s) FOR NO KEY UPDATE NOWAIT", [ids[4:]]
                    ).fetchall()
                assert sorted(row[0] for row in free) == ids[4:]
            finally:
                holder.rollback()  # the group goes on, whatever the test found
            assert group.result(timeout=10) == dict.fromkeys(ids, 1)


def test_a_versions_validation_locks_its_models_row_only_to_make_it_current(
    client: TestClient, worker: Worker, db: Database
) -> None:
    """The worker locks the model's row only when the version it validated becomes the model's current one (its
    first READY version). Any later validation leaves the row free, so a new version's counter (an UPDATE of that
    row, held to its commit) never waits for a worker's transaction, nor the worker for it. A first version still
    becomes current, moving the model's ETag, with its event."""
    upload(client, "good", {"config.json": config_bytes("mistral-7b-v0.1")})
    created = client.post(MODELS, json={"name": "m", "version": version_body("default/good")}).json()
    etag = client.get(f"{MODELS}/m").headers["etag"]
    drain(worker)
    got = client.get(f"{MODELS}/m")
    assert got.json()["current_version_id"] == created["new_version"]["id"]
    assert got.headers["etag"] != etag
    events = client.get(f"{WS}/events", params={"action": "model.updated"}).json()["data"]
    assert [e["changes"] for e in events] == [{"current_version_id": [None, created["new_version"]["id"]]}]
    assert client.post(f"{MODELS}/m/versions", json=version_body("default/good", name="later")).status_code == 201
    if db.is_sqlite:
        drain(worker)
    else:
        url = db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(url) as holder:
            holder.execute("SELECT id FROM models WHERE id = %s FOR NO KEY UPDATE", [created["id"]])
            with concurrent.futures.ThreadPoolExecutor(1) as pool:
                validation = pool.submit(drain, worker)
                try:
                    validation.result(timeout=10)  # raises TimeoutError if the worker waits for the row
                finally:
                    holder.rollback()
    assert client.get(f"{MODELS}/m/versions/later").json()["status"] == "READY"
    assert client.get(f"{MODELS}/m").json()["current_version_id"] == created["new_version"]["id"]
    assert len(client.get(f"{WS}/events", params={"action": "model.updated"}).json()["data"]) == 1


def test_a_models_delete_locks_its_versions_rows_before_its_own(
    client: TestClient, worker: Worker, db: Database
) -> None:
    """PostgreSQL: a model's delete locks its versions' rows first, then the model's, the order in which a version's
    validation locks them (its version, then the model's row to make it current). While a validation holds a
    version's row, a delete of its model waits without holding the model's row: the two never wait for each other
    in a cycle (a deadlock, which PostgreSQL breaks only after a second, by failing one)."""
    if db.is_sqlite:
        pytest.skip("PostgreSQL only: SQLite's writers take turns")
    upload(client, "good", {"config.json": config_bytes("mistral-7b-v0.1")})
    model = client.post(MODELS, json={"name": "m", "version": version_body("default/good")}).json()
    drain(worker)
    url = db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url) as holder, psycopg.connect(url, autocommit=True) as probe:
        holder.execute("SELECT id FROM model_versions WHERE id = %s FOR NO KEY UPDATE", [model["new_version"]["id"]])
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            delete = pool.submit(client.delete, f"{MODELS}/m")
            try:
                deadline = time.monotonic() + 10
                while not probe.execute("SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock'").fetchall():
                    assert time.monotonic() < deadline, "the delete never waited for the held version"
                    time.sleep(0.01)
                with probe.transaction():
                    free = probe.execute("SELECT id FROM models WHERE id = %s FOR NO KEY UPDATE NOWAIT", [model["id"]])
                    assert free.fetchall() == [(model["id"],)]
            finally:
                holder.rollback()
            assert delete.result(timeout=10).status_code == 204
    assert client.get(f"{MODELS}/m").status_code == 404
    assert count_rows(db, "model_versions") == 0


def test_a_page_of_the_model_list_answers_the_same_either_way(
    client: TestClient, make_user: MakeUser, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every query string gets the same answer with or without the fast path: plain ones (taken by it) and those
    only the dependency knows how to refuse or read (a label filter, a repeated parameter)."""
    for i in range(5):
        labels = {"team": "a" if i % 2 else "b"}
        body = {"name": f"m{i}", "labels": labels, "visibility": "PUBLIC" if i % 2 else "PRIVATE"}
        assert client.post(MODELS, json=body).status_code == 201
    stranger = make_user("stranger")
    first = client.get(MODELS, params={"page_size": 2, "sort": "name"}).json()
    assert first["next_page_token"]
    etag = client.get(MODELS).headers["etag"]
    taken = _taken_fast(monkeypatch)
    plain = plain_reads(monkeypatch, endpoints)
    queries: list[Any] = [
        {},
        {"page_size": 2, "sort": "name"},
        {"page_size": 2, "sort": "name", "page_token": first["next_page_token"]},
        {"page": 2, "page_size": 2, "sort": "-name"},
        {"page_size": 1000},
        {"name_prefix": "m1"},
        {"visibility": "PUBLIC", "sort": "updated_at"},
        {"has_adapters": "false"},
        {"model_type": "GENERIC"},
        {"label": "team:a"},
        [("label", "team:a"), ("label", "team:b")],
        [("page_size", "2"), ("page_size", "3")],
        {"page_size": 0},
        {"page_size": 1001},
        {"page_size": "ten"},
        {"page": "-1"},
        {"page": "\u0661"},  # an Arabic-Indic digit one: not plain digits
        {"sort": "size"},
        {"visibility": "SOMETIMES"},
        {"name_prefix": "n" * 256},
        {"page_token": "not-a-token"},
        {"page_token": first["next_page_token"], "sort": "-name"},  # the token was made for another sort
        {"unknown": "1"},
    ]
    for params in queries:
        fast, full = both_ways(monkeypatch, lambda _way, p=params: client.get(MODELS, params=p))
        assert (fast.status_code, fast.content) == (full.status_code, full.content), params
        assert fast.headers.get("etag") == full.headers.get("etag")
    for caller, headers in ((client, {"If-None-Match": etag}), (stranger, {})):
        fast, full = both_ways(monkeypatch, lambda _way, c=caller, h=headers: c.get(MODELS, headers=h))
        assert (fast.status_code, fast.content) == (full.status_code, full.content)
    assert taken.count("ws") == len(queries) + 2  # every request was offered to the fast path first
    # Read by it: the first nine queries, the two bad page_tokens (which the pagination refuses either way), the
    # conditional GET and the stranger's; not the other eleven nor the unknown parameter.
    assert plain == [True] * 9 + [False] * 11 + [True, True, False] + [True, True]
