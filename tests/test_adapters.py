"""Adapters: NeMo's Add Model Adapter, Cloudera's validation cases 44-56 over HTTP, the compatibility check with
real PEFT adapters, lineage, and the rules between adapters, models, versions and filesets."""

from __future__ import annotations

import concurrent.futures
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from modelyard.adapter import endpoints as adapter_endpoints
from modelyard.config import Settings
from modelyard.db.engine import Database
from modelyard.job.worker import Worker
from tests.fixtures.app import MakeUser, both_ways, error_shape, plain_reads

WS = "/v1/workspaces/default"
ADAPTERS = Path(__file__).parent / "fixtures" / "adapters"


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


def upload_dir(client: TestClient, fileset: str, directory: Path, ws: str = "default") -> None:
    assert client.post(f"/v1/workspaces/{ws}/filesets", json={"name": fileset}).status_code == 201
    for path in sorted(directory.iterdir()):
        r = client.put(f"/v1/workspaces/{ws}/filesets/{fileset}/-/{path.name}", content=path.read_bytes())
        assert r.status_code == 201, r.text


def base_model(client: TestClient, worker: Worker, name: str, base: str, ws: str = "default") -> None:
    upload_dir(client, f"{name}-files", ADAPTERS / "bases" / base, ws=ws)
    r = client.post(
        f"/v1/workspaces/{ws}/models",
        json={
            "name": name,
            "version": {
                "name": "v1",
                "config": {"llm_model_config": {"base_model_type": "TINY", "model_path": f"{ws}/{name}-files"}},
            },
        },
    )
    assert r.status_code == 201, r.text
    drain(worker)
    assert client.get(f"/v1/workspaces/{ws}/models/{name}").json()["current_version"]["status"] == "READY"


@pytest.fixture
def llama(client: TestClient, worker: Worker) -> str:
    base_model(client, worker, "tiny-llama", "tiny-llama")
    upload_dir(client, "lora-llama", ADAPTERS / "lora-llama")
    return "tiny-llama"


def add(client: TestClient, model: str, body: dict, **params: str) -> httpx.Response:
    return client.post(f"{WS}/models/{model}/adapters", json=body, params=params)


def test_add_model_adapter_seed_request(client: TestClient, llama: str) -> None:
    """NeMo's "Add Model Adapter": 201 with the documented fields; the same again is a 409."""
    body = {
        "name": "customer-support-lora",
        "fileset": "default/lora-llama",
        "finetuning_type": "LoRA",
        "description": "Tuned on tickets",
        "lora_config": {"rank": 8, "alpha": 16},
    }
    r = add(client, llama, body)
    assert r.status_code == 201, r.text
    adapter = r.json()
    assert adapter["name"] == "customer-support-lora"
    assert adapter["workspace"] == "default"
    assert adapter["model"] == "default/tiny-llama"
    assert adapter["model_version"] == "v1"
    assert adapter["fileset"] == "default/lora-llama"
    assert adapter["finetuning_type"] == "lora"
    assert adapter["enabled"] is True
    assert adapter["lora_config"]["rank"] == 8
    assert adapter["lora_config"]["alpha"] == 16
    assert adapter["source"] == {"type": "fileset"}
    assert adapter["id"].startswith("adapter-")
    assert adapter["created_at"]
    assert adapter["updated_at"]
    assert adapter["digest"] == client.get(f"{WS}/filesets/lora-llama").json()["digest"]
    compat = adapter["compatibility"]
    assert compat["status"] == "compatible", compat
    assert compat["base_version"] == "v1"
    assert {c["name"] for c in compat["checks"]} >= {
        "peft_type",
        "rank",
        "alpha",
        "target_modules",
        "tensor_shapes",
        "layer_indices",
    }
    assert all(c["ok"] for c in compat["checks"])
    r = add(client, llama, body)
    assert r.status_code == 409
    assert error_shape(r)["error_code"] == "ADAPTER_ALREADY_EXISTS"
    # GET of the model lists its adapters.
    model = client.get(f"{WS}/models/tiny-llama").json()
    assert model["adapters"] == [
        {
            "name": "customer-support-lora",
            "workspace": "default",
            "finetuning_type": "lora",
            "enabled": True,
            "model_version": "v1",
        }
    ]


def test_lora_config_is_filled_from_the_files(client: TestClient, llama: str) -> None:
    r = add(client, llama, {"name": "a", "fileset": "lora-llama", "finetuning_type": "lora"})
    assert r.status_code == 201, r.text
    config = r.json()["lora_config"]
    assert config["rank"] == 8
    assert config["alpha"] == 16
    assert sorted(config["target_modules"]) == ["q_proj", "v_proj"]


# -- Cloudera's validation cases (Part D.3, 44-56) over HTTP ---------------------------------------------------------


def test_cloudera_44_45_list_and_get(client: TestClient, llama: str) -> None:
    for name in ("a1", "a2"):
        assert add(client, llama, {"name": name, "fileset": "lora-llama", "finetuning_type": "lora"}).status_code == 201
    assert len(client.get(f"{WS}/adapters").json()["data"]) == 2
    assert client.get(f"{WS}/adapters/a1").json()["name"] == "a1"
    r = client.get(f"{WS}/adapters/a3")
    assert r.status_code == 404
    assert error_shape(r)["error_msg"] == "Adapter 'a3' not found in workspace 'default'"
    # Under its model too; under another model of the workspace it is not there, and a missing model is named.
    flat = client.get(f"{WS}/adapters/a1")
    nested = client.get(f"{WS}/models/{llama}/adapters/a1")
    assert (nested.status_code, nested.json(), nested.headers["etag"]) == (200, flat.json(), flat.headers["etag"])
    assert client.post(f"{WS}/models", json={"name": "other"}).status_code == 201
    r = client.get(f"{WS}/models/other/adapters/a1")
    assert r.status_code == 404
    assert error_shape(r)["error_code"] == "ADAPTER_NOT_FOUND"
    r = client.get(f"{WS}/models/missing/adapters/a1")
    assert r.status_code == 404
    assert "missing" in error_shape(r)["error_msg"]


def test_cloudera_46_names(client: TestClient, llama: str) -> None:
    assert (
        add(client, llama, {"name": "my-adapter", "fileset": "lora-llama", "finetuning_type": "lora"}).status_code
        == 201
    )
    r = add(client, llama, {"name": "my adapter", "fileset": "lora-llama", "finetuning_type": "lora"})
    assert r.status_code == 422
    assert error_shape(r)["detail"][0]["loc"] == ["body", "name"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"name": "", "fileset": "lora-llama", "finetuning_type": "lora"}, "Field 'name' is required."),
        (
            {"name": "   ", "fileset": "lora-llama", "finetuning_type": "lora"},
            "Field 'name' cannot be an empty string or only spaces.",
        ),
        (
            {"name": "x", "fileset": "  ", "finetuning_type": "lora"},
            "Field 'fileset' cannot be an empty string or only spaces.",
        ),
        ({"name": "x", "finetuning_type": "lora"}, "Give exactly one source"),
        (
            {"name": "x", "fileset": "lora-llama", "location": "/tmp", "finetuning_type": "lora"},
            "Give exactly one source",
        ),
        ({"name": "x", "fileset": "lora-llama"}, "Field required"),
        ({"name": "x", "fileset": "lora-llama", "finetuning_type": "lorax"}, "finetuning_type must be one of"),
        (
            {"name": "x", "fileset": "lora-llama", "finetuning_type": "lora", "lora_config": {"alpha": 16}},
            "Field required",
        ),
        (
            {"name": "x", "fileset": "lora-llama", "finetuning_type": "lora", "lora_config": {"rank": "eight"}},
            "valid integer",
        ),
        ({"name": "x", "huggingface_name": "not a repo", "finetuning_type": "lora"}, "huggingface_name must look like"),
        ({"name": "x", "model_registry": {"uri": "runs:/abc/model"}, "finetuning_type": "lora"}, "uri must look like"),
    ],
)
def test_cloudera_47_48_and_bad_bodies_are_422(client: TestClient, llama: str, body: dict, message: str) -> None:
    r = add(client, llama, body)
    assert r.status_code == 422, r.text
    assert message in error_shape(r)["error_msg"]


def test_cloudera_49_location_must_be_a_directory(client: TestClient, llama: str, tmp_path: Path) -> None:
    missing = tmp_path / "local" / "invalid-dir"
    r = add(client, llama, {"name": "x", "location": str(missing), "finetuning_type": "lora"})
    assert r.status_code == 400
    assert error_shape(r)["error_msg"] == f"Location '{missing}' must be a valid directory."
    r = add(client, llama, {"name": "x", "location": "/etc", "finetuning_type": "lora"})
    assert r.status_code == 400
    assert "MODELYARD_ALLOWED_LOCAL_ROOTS" in error_shape(r)["error_msg"]
    # A real directory under the allowed roots works, and is checked like a fileset.
    directory = tmp_path / "local" / "lora"
    directory.mkdir()
    for path in (ADAPTERS / "lora-llama").iterdir():
        (directory / path.name).write_bytes(path.read_bytes())
    r = add(client, llama, {"name": "local-lora", "location": str(directory), "finetuning_type": "lora"})
    assert r.status_code == 201, r.text
    assert r.json()["location"] == str(directory)
    assert r.json()["compatibility"]["status"] == "compatible"


def test_cloudera_50_unknown_model_is_404(client: TestClient, llama: str) -> None:
    r = client.post(
        f"{WS}/adapters",
        json={"name": "x", "model": "no-such-model", "fileset": "lora-llama", "finetuning_type": "lora"},
    )
    assert r.status_code == 404
    assert error_shape(r)["error_msg"] == "Base model for adapter (model='default/no-such-model') not found"
    r = add(client, "no-such-model", {"name": "x", "fileset": "lora-llama", "finetuning_type": "lora"})
    assert r.status_code == 404


def test_cloudera_51_name_taken_anywhere_in_the_workspace(client: TestClient, worker: Worker, llama: str) -> None:
    base_model(client, worker, "tiny-llama-2", "tiny-llama")
    assert add(client, llama, {"name": "shared", "fileset": "lora-llama", "finetuning_type": "lora"}).status_code == 201
    r = add(client, "tiny-llama-2", {"name": "shared", "fileset": "lora-llama", "finetuning_type": "lora"})
    assert r.status_code == 409
    assert error_shape(r)["error_msg"] == "An adapter with the name 'shared' already exists in workspace 'default'."


def test_cloudera_52_53_unknown_job_and_prompt(client: TestClient, llama: str) -> None:
    body = {"name": "x", "fileset": "lora-llama", "finetuning_type": "lora"}
    r = add(client, llama, {**body, "fine_tuning_job": "non-existent-fine-tuning-job-id"})
    assert r.status_code == 404
    assert error_shape(r)["error_msg"] == (
        "Fine Tuning Job with name 'non-existent-fine-tuning-job-id' does not exist in workspace 'default'."
    )
    r = add(client, llama, {**body, "prompt": "non-existent-prompt-id"})
    assert r.status_code == 404
    assert (
        error_shape(r)["error_msg"]
        == "Prompt with name 'non-existent-prompt-id' does not exist in workspace 'default'."
    )


def test_cloudera_54_remove(client: TestClient, llama: str) -> None:
    for name in ("a1", "a2"):
        add(client, llama, {"name": name, "fileset": "lora-llama", "finetuning_type": "lora"})
    assert client.delete(f"{WS}/adapters/a1").status_code == 204
    assert [a["name"] for a in client.get(f"{WS}/adapters").json()["data"]] == ["a2"]
    # HTTP answers 404 for an unknown adapter (Cloudera's silent no-op is not copied).
    assert client.delete(f"{WS}/adapters/a1").status_code == 404


def test_cloudera_55_56_dataset_split(client: TestClient, llama: str) -> None:
    client.post(f"{WS}/datasets", json={"name": "tickets", "source": {"type": "huggingface", "ref": "org/tickets"}})
    client.post(
        f"{WS}/prompts",
        json={
            "name": "p",
            "dataset": "tickets",
            "prompt_template": "{q}",
            "input_template": "{q}",
            "completion_template": "{a}",
        },
    )
    r = client.post(
        f"{WS}/fine-tuning-jobs",
        json={
            "name": "job-1",
            "base_model": "tiny-llama",
            "dataset": "tickets",
            "prompt": "p",
            "adapter_name": "adapter",
            "dataset_fraction": 0.7,
            "train_test_split": 0.8,
        },
    )
    assert r.status_code == 201, r.text
    add(
        client,
        llama,
        {
            "name": "adapter",
            "fileset": "lora-llama",
            "finetuning_type": "lora",
            "fine_tuning_job": "job-1",
            "prompt": "p",
        },
    )
    add(client, llama, {"name": "adapter2", "fileset": "lora-llama", "finetuning_type": "lora"})
    split = client.get(f"{WS}/adapters/adapter/dataset-split").json()
    assert split["dataset_fraction"] == pytest.approx(0.7, abs=1e-5)
    assert split["train_test_split"] == pytest.approx(0.8, abs=1e-5)
    assert split["fine_tuning_job"] == "job-1"
    assert client.get(f"{WS}/adapters/adapter2/dataset-split").json() == {
        "dataset_fraction": 1.0,
        "train_test_split": 0.9,
        "fine_tuning_job": None,
    }
    graph = client.get(f"{WS}/adapters/adapter/lineage").json()
    kinds = {n["kind"]: n["name"] for n in graph["nodes"]}
    assert kinds == {
        "adapter": "adapter",
        "fine_tuning_job": "job-1",
        "prompt": "p",
        "dataset": "tickets",
        "model_version": "v1",
        "model": "tiny-llama",
    }
    relations = {(e["source"].split(":")[0], e["target"].split(":")[0]) for e in graph["edges"]}
    assert relations == {
        ("dataset", "prompt"),
        ("prompt", "fine_tuning_job"),
        ("fine_tuning_job", "adapter"),
        ("adapter", "model_version"),
        ("model_version", "model"),
    }
    # GET by name (one prebuilt statement) answers exactly what the list (the ORM and refs_of) does, names included.
    got = client.get(f"{WS}/adapters/adapter")
    assert got.status_code == 200
    assert (got.json()["fine_tuning_job"], got.json()["prompt"], got.json()["model_version"]) == ("job-1", "p", "v1")
    listed = {a["name"]: a for a in client.get(f"{WS}/adapters").json()["data"]}
    assert got.json() == listed["adapter"]
    assert client.get(f"{WS}/adapters/adapter2").json() == listed["adapter2"]
    assert client.get(f"{WS}/models/tiny-llama/adapters/adapter").json() == listed["adapter"]


@pytest.mark.parametrize(("fraction", "split"), [(0, 0.9), (1.5, 0.9), (0.5, 0), (0.5, 1.01)])
def test_job_fractions_are_bounded(client: TestClient, llama: str, fraction: float, split: float) -> None:
    r = client.post(
        f"{WS}/fine-tuning-jobs",
        json={"name": "j", "base_model": "tiny-llama", "dataset_fraction": fraction, "train_test_split": split},
    )
    assert r.status_code == 422


# -- filesets --------------------------------------------------------------------------------------------------------


def test_fileset_problems(client: TestClient, llama: str, make_user: MakeUser) -> None:
    r = add(client, llama, {"name": "x", "fileset": "default/nope", "finetuning_type": "lora"})
    assert r.status_code == 400
    assert error_shape(r)["error_msg"] == "Fileset 'default/nope' not found in workspace 'default'"
    client.post(f"{WS}/filesets", json={"name": "empty"})
    r = add(client, llama, {"name": "x", "fileset": "empty", "finetuning_type": "lora"})
    assert r.status_code == 400
    assert error_shape(r)["error_msg"] == "Fileset 'default/empty', exists but is empty"
    r = add(client, llama, {"name": "x", "fileset": "a/b/c", "finetuning_type": "lora"})
    assert r.status_code == 400
    client.post("/v1/workspaces", json={"name": "secret"})
    upload_dir(client, "lora", ADAPTERS / "lora-llama", ws="secret")
    editor = make_user("ed", workspaces={"default": "editor"})
    r = editor.post(
        f"{WS}/models/{llama}/adapters", json={"name": "x", "fileset": "secret/lora", "finetuning_type": "lora"}
    )
    assert r.status_code == 403
    assert error_shape(r)["error_msg"] == "Access denied to fileset 'secret/lora'"
    # The admin can read it: a cross-workspace fileset works.
    assert add(client, llama, {"name": "x", "fileset": "secret/lora", "finetuning_type": "lora"}).status_code == 201
    r = client.delete("/v1/workspaces/secret/filesets/lora")
    assert r.status_code == 409
    assert "adapter 'default/x'" in error_shape(r)["error_msg"]


# -- the compatibility check -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base", "fixture", "finetuning_type"),
    [
        ("tiny-llama", "lora-llama", "lora"),
        ("tiny-qwen2", "lora-qwen2", "lora"),
        ("tiny-gpt2", "lora-gpt2", "lora"),
        ("tiny-llama", "ptuning-llama", "p_tuning"),
        ("tiny-llama", "dora-llama", "dora"),
        ("tiny-llama", "prefix-llama", "prefix_tuning"),
    ],
)
def test_compatible_peft_fixtures_pass(
    client: TestClient, worker: Worker, base: str, fixture: str, finetuning_type: str
) -> None:
    base_model(client, worker, base, base)
    upload_dir(client, fixture, ADAPTERS / fixture)
    r = add(client, base, {"name": fixture, "fileset": fixture, "finetuning_type": finetuning_type})
    assert r.status_code == 201, r.text
    assert r.json()["compatibility"]["status"] == "compatible", r.json()["compatibility"]


@pytest.mark.parametrize(
    ("fixture", "check"),
    [
        ("broken-hidden-size", "tensor_shapes"),
        ("broken-target-module", "target_modules"),
        ("broken-rank", "rank"),
        ("broken-layer-index", "layer_indices"),
    ],
)
def test_broken_fixtures_are_refused_naming_the_check(client: TestClient, llama: str, fixture: str, check: str) -> None:
    upload_dir(client, fixture, ADAPTERS / fixture)
    r = add(client, llama, {"name": fixture, "fileset": fixture, "finetuning_type": "lora"})
    assert r.status_code == 422, r.text
    body = error_shape(r)
    assert body["error_code"] == "ADAPTER_INCOMPATIBLE"
    assert ["compatibility", check] in [d["loc"] for d in body["detail"]]
    assert all(d["type"] == "compatibility" for d in body["detail"])
    assert client.get(f"{WS}/adapters/{fixture}").status_code == 404
    # Stored disabled on request; it cannot be enabled while incompatible.
    r = add(client, llama, {"name": fixture, "fileset": fixture, "finetuning_type": "lora"}, allow_incompatible="true")
    assert r.status_code == 201
    assert r.json()["enabled"] is False
    assert r.json()["compatibility"]["status"] == "incompatible"
    r = client.patch(f"{WS}/adapters/{fixture}", json={"enabled": True})
    assert r.status_code == 409
    assert error_shape(r)["error_code"] == "ADAPTER_INCOMPATIBLE"


def test_type_and_config_disagreements(client: TestClient, llama: str) -> None:
    r = add(client, llama, {"name": "x", "fileset": "lora-llama", "finetuning_type": "p_tuning"})
    assert r.status_code == 422
    assert ["compatibility", "peft_type"] in [d["loc"] for d in error_shape(r)["detail"]]
    r = add(
        client,
        llama,
        {"name": "x", "fileset": "lora-llama", "finetuning_type": "lora", "lora_config": {"rank": 16, "alpha": 16}},
    )
    assert r.status_code == 422
    assert ["compatibility", "rank"] in [d["loc"] for d in error_shape(r)["detail"]]


def test_lora_on_another_architecture_is_refused(client: TestClient, worker: Worker, llama: str) -> None:
    upload_dir(client, "lora-gpt2", ADAPTERS / "lora-gpt2")
    r = add(client, llama, {"name": "x", "fileset": "lora-gpt2", "finetuning_type": "lora"})
    assert r.status_code == 422
    assert error_shape(r)["error_code"] == "ADAPTER_INCOMPATIBLE"


def test_model_without_ready_version_gives_unknown(client: TestClient) -> None:
    client.post(f"{WS}/models", json={"name": "bare"})
    upload_dir(client, "lora-llama", ADAPTERS / "lora-llama")
    r = add(client, "bare", {"name": "x", "fileset": "lora-llama", "finetuning_type": "lora"})
    assert r.status_code == 201, r.text
    assert r.json()["compatibility"]["status"] == "unknown"
    assert r.json()["model_version"] is None
    assert r.json()["enabled"] is True


# -- lifecycle -------------------------------------------------------------------------------------------------------


def test_patch_rules_and_events(client: TestClient, llama: str) -> None:
    add(client, llama, {"name": "a", "fileset": "lora-llama", "finetuning_type": "lora"})
    for field, value in [("name", "b"), ("model", "x"), ("finetuning_type", "dora"), ("lora_config", {"rank": 2})]:
        r = client.patch(f"{WS}/adapters/a", json={field: value})
        assert r.status_code == 422
        assert "cannot be changed" in error_shape(r)["error_msg"]
    etag = client.get(f"{WS}/adapters/a").headers["etag"]
    r = client.patch(f"{WS}/adapters/a", json={"enabled": False}, headers={"If-Match": etag})
    assert r.status_code == 200
    assert r.json()["enabled"] is False
    assert client.patch(f"{WS}/adapters/a", json={"enabled": True}, headers={"If-Match": etag}).status_code == 412
    assert client.patch(f"{WS}/models/{llama}/adapters/a", json={"enabled": True}).json()["enabled"] is True
    actions = [
        e["action"]
        for e in client.get(f"{WS}/events", params={"resource_kind": "adapter", "sort": "at"}).json()["data"]
    ]
    assert actions == ["adapter.created", "adapter.disabled", "adapter.enabled"]
    assert [a["name"] for a in client.get(f"{WS}/adapters", params={"enabled": "false"}).json()["data"]] == []
    assert [
        a["name"]
        for a in client.get(f"{WS}/adapters", params={"model": "tiny-llama", "finetuning_type": "LORA"}).json()["data"]
    ] == ["a"]
    assert (
        client.get(f"{WS}/adapters", params={"fileset": "default/lora-llama"}).json()["pagination"]["total_results"]
        == 1
    )
    assert [m["name"] for m in client.get(f"{WS}/models", params={"has_adapters": "true"}).json()["data"]] == [
        "tiny-llama"
    ]


def test_delete_model_with_adapters(client: TestClient, llama: str) -> None:
    add(client, llama, {"name": "a1", "fileset": "lora-llama", "finetuning_type": "lora"})
    add(client, llama, {"name": "a2", "fileset": "lora-llama", "finetuning_type": "lora"})
    r = client.delete(f"{WS}/models/{llama}")
    assert r.status_code == 409
    body = error_shape(r)
    assert body["error_code"] == "MODEL_IN_USE"
    assert "adapter 'default/a1'" in body["error_msg"]
    assert "adapter 'default/a2'" in body["error_msg"]
    r = client.delete(f"{WS}/models/{llama}/versions/v1")
    assert r.status_code == 409
    assert client.delete(f"{WS}/models/{llama}", params={"cascade": "true"}).status_code == 204
    assert client.get(f"{WS}/adapters").json()["data"] == []
    deleted = client.get(f"{WS}/events", params={"action": "adapter.deleted", "sort": "at"}).json()["data"]
    assert sorted(e["resource"]["name"] for e in deleted) == ["a1", "a2"]
    assert all(e["changes"] == {"cascade_from_model": "default/tiny-llama"} for e in deleted)


def test_concurrent_creates_under_two_models(
    live_server: str, admin_token: str, client: TestClient, worker: Worker, llama: str
) -> None:
    base_model(client, worker, "tiny-llama-2", "tiny-llama")
    headers = {"Authorization": f"Bearer {admin_token}"}

    def create(model: str) -> int:
        with httpx.Client(base_url=live_server, headers=headers, timeout=30) as http:
            return http.post(
                f"{WS}/models/{model}/adapters",
                json={"name": "race", "fileset": "lora-llama", "finetuning_type": "lora"},
            ).status_code

    for _ in range(3):
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            codes = sorted(pool.map(create, [llama, "tiny-llama-2"]))
        assert codes == [201, 409]
        client.delete(f"{WS}/adapters/race")


def test_model_registry_reference_is_stored(client: TestClient, llama: str) -> None:
    r = add(
        client,
        llama,
        {
            "name": "from-mlflow",
            "finetuning_type": "lora",
            "model_registry": {"uri": "models:/support-lora/3", "tracking_uri": "http://mlflow:5000"},
        },
    )
    assert r.status_code == 201, r.text
    assert r.json()["model_registry"] == {"uri": "models:/support-lora/3", "tracking_uri": "http://mlflow:5000"}
    assert r.json()["source"] == {"type": "model_registry"}
    assert r.json()["compatibility"]["status"] == "unknown"


def test_hugging_face_adapter_is_checked_by_the_worker(
    client: TestClient, worker: Worker, llama: str, hub_server: object, hf_endpoint: object
) -> None:
    files = {p.name: p.read_bytes() for p in (ADAPTERS / "lora-llama").iterdir()}
    sha = hub_server.add_repo("acme/support-lora", files)  # type: ignore[attr-defined]
    broken = {p.name: p.read_bytes() for p in (ADAPTERS / "broken-hidden-size").iterdir()}
    hub_server.add_repo("acme/broken-lora", broken)  # type: ignore[attr-defined]
    r = add(client, llama, {"name": "hf", "huggingface_name": "acme/support-lora", "finetuning_type": "lora"})
    assert r.status_code == 201, r.text
    assert r.json()["compatibility"]["status"] == "unknown"
    add(client, llama, {"name": "hf-broken", "huggingface_name": "acme/broken-lora@main", "finetuning_type": "lora"})
    drain(worker)
    good = client.get(f"{WS}/adapters/hf").json()
    assert good["compatibility"]["status"] == "compatible", good["compatibility"]
    assert good["source"]["pinned"]["commit"] == sha
    assert good["enabled"] is True
    assert good["lora_config"]["rank"] == 8
    bad = client.get(f"{WS}/adapters/hf-broken").json()
    assert bad["compatibility"]["status"] == "incompatible"
    assert bad["enabled"] is False
    disabled = client.get(f"{WS}/events", params={"action": "adapter.disabled"}).json()["data"]
    assert [e["resource"]["name"] for e in disabled] == ["hf-broken"]


def test_deleting_a_linked_job_is_logged_on_the_adapter(client: TestClient, llama: str) -> None:
    client.post(f"{WS}/fine-tuning-jobs", json={"name": "job", "base_model": "tiny-llama"})
    add(client, llama, {"name": "a", "fileset": "lora-llama", "finetuning_type": "lora", "fine_tuning_job": "job"})
    etag = client.get(f"{WS}/fine-tuning-jobs/job").headers["etag"]
    r = client.patch(f"{WS}/fine-tuning-jobs/job", json={"status": "COMPLETED"}, headers={"If-Match": etag})
    assert r.status_code == 200
    assert r.headers["etag"] != etag
    assert client.delete(f"{WS}/fine-tuning-jobs/job").status_code == 204
    assert client.get(f"{WS}/adapters/a").json()["fine_tuning_job"] is None
    updates = client.get(f"{WS}/events", params={"action": "adapter.updated"}).json()["data"]
    assert updates[0]["resource"]["name"] == "a"
    assert updates[0]["changes"] == {"fine_tuning_job": ["job", None]}
    r = add(
        client,
        llama,
        {"name": "b", "fileset": "lora-llama", "finetuning_type": "lora", "lora_config": {"rank": 8, "alpha": 16}},
    )
    assert r.json()["lora_config"]["alpha"] == 16
    assert isinstance(r.json()["lora_config"]["alpha"], int)


def test_get_of_a_model_answers_as_the_orm_path_does(client: TestClient, llama: str, make_user: MakeUser) -> None:
    """GET of a model is built from prebuilt reads without the ORM (modelyard.db.reads); its answer and ETag must
    stay exactly those of the ORM path (PATCH answers and list items): labels, cards, the current version and its
    spec, adapters from two workspaces, enabled or not, bound to a version."""
    r = client.patch(
        f"{WS}/models/{llama}",
        json={
            "labels": {"team": "nlp", "tier": "gold"},
            "model_card": {"license": "apache-2.0", "scores": [0.5, 1e-9], "nested": {"é": None}},
            "visibility": "PUBLIC",
        },
    )
    assert r.status_code == 200, r.text
    patched, etag = r.json(), r.headers["ETag"]
    assert add(client, llama, {"name": "on", "fileset": "lora-llama", "finetuning_type": "lora"}).status_code == 201
    body = {"name": "off", "fileset": "lora-llama", "finetuning_type": "lora", "enabled": False}
    assert add(client, llama, body).status_code == 201
    client.post("/v1/workspaces", json={"name": "elsewhere"})
    upload_dir(client, "lora", ADAPTERS / "lora-llama", ws="elsewhere")
    r = client.post(
        "/v1/workspaces/elsewhere/adapters",
        json={"name": "theirs", "model": f"default/{llama}", "fileset": "lora", "finetuning_type": "lora"},
    )
    assert r.status_code == 201, r.text

    got = client.get(f"{WS}/models/{llama}")
    assert got.status_code == 200
    assert got.headers["content-type"] == "application/json"
    assert got.headers["ETag"] == etag  # adding adapters does not change the model
    listed = client.get(f"{WS}/models", params={"name_prefix": llama}).json()["data"]
    assert got.json() == listed[0]
    assert [(a["name"], a["workspace"], a["enabled"], a["model_version"]) for a in got.json()["adapters"]] == [
        ("on", "default", True, "v1"),
        ("off", "default", False, "v1"),
        ("theirs", "elsewhere", True, "v1"),
    ]
    assert {k: v for k, v in got.json().items() if k != "adapters"} == {
        k: v for k, v in patched.items() if k != "adapters"
    }
    assert got.json()["current_version"]["status"] == "READY"
    assert got.json()["spec"]["architecture"] == "LlamaForCausalLM"
    # The access rules are model_access's: a public model is readable by anyone, a missing one is named.
    stranger = make_user("stranger")
    assert stranger.get(f"{WS}/models/{llama}").json() == got.json()
    r = stranger.get(f"{WS}/models/nope")
    assert r.status_code == 404
    assert error_shape(r)["error_code"] == "WORKSPACE_NOT_FOUND"
    r = client.get(f"{WS}/models/nope")
    assert (r.status_code, error_shape(r)["error_code"]) == (404, "MODEL_NOT_FOUND")
    r = client.get("/v1/workspaces/nope/models/x")
    assert (r.status_code, error_shape(r)["error_code"]) == (404, "WORKSPACE_NOT_FOUND")


def test_polled_adapter_list_is_kept_per_caller_and_never_stale(
    client: TestClient, llama: str, make_user: MakeUser, app: FastAPI, db: Database
) -> None:
    """What a serving fleet polls is answered from memory while nothing changed (modelyard.kit.answer_cache), and
    each caller's own way: a base model in a workspace the caller cannot see is still a 404 for them."""
    add(client, llama, {"name": "a", "fileset": "lora-llama", "finetuning_type": "lora"})
    cache = app.state.ctx.answers
    enabled = {"model": f"default/{llama}", "enabled": "true"}

    def names(c: TestClient, **params: str) -> list[str]:
        r = c.get(f"{WS}/adapters", params=params)
        assert r.status_code == 200, r.text
        return [a["name"] for a in r.json()["data"]]

    assert names(client, **enabled) == ["a"]
    hits = cache.hits
    polled = client.get(f"{WS}/adapters", params=enabled)
    assert [a["name"] for a in polled.json()["data"]] == ["a"]
    # On PostgreSQL the token moves with writes to any database of the cluster (other test processes'), so whether
    # a given read was a hit is only certain on SQLite; what is answered is checked on both.
    assert cache.hits == hits + 1 or not db.is_sqlite
    unchanged = client.get(f"{WS}/adapters", params=enabled, headers={"If-None-Match": polled.headers["etag"]})
    assert unchanged.status_code == 304
    assert client.patch(f"{WS}/adapters/a", json={"enabled": False}).status_code == 200
    changed = client.get(f"{WS}/adapters", params=enabled, headers={"If-None-Match": polled.headers["etag"]})
    assert changed.status_code == 200
    assert changed.json()["data"] == []
    assert client.get(f"{WS}/models/{llama}/adapters", params={"enabled": "false"}).json()["data"][0]["name"] == "a"

    assert client.post("/v1/workspaces", json={"name": "hidden"}).status_code == 201
    assert client.post("/v1/workspaces/hidden/models", json={"name": "secret"}).status_code == 201
    viewer = make_user("viewer", workspaces={"default": "viewer"})
    assert names(viewer, **enabled) == []
    hits = cache.hits
    assert names(client, model="hidden/secret") == []  # the admin sees the model (no adapters on it)
    assert names(client, model="hidden/secret") == []
    assert cache.hits == hits + 1 or not db.is_sqlite  # nothing was written in between
    r = viewer.get(f"{WS}/adapters", params={"model": "hidden/secret"})
    assert r.status_code == 404, r.text


def test_the_adapter_lists_answer_the_same_either_way(
    client: TestClient, llama: str, make_user: MakeUser, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What serving fleets poll takes a fast path (kit.routing.fast_path) for a plain query string; every answer is
    the one FastAPI's own handling of the endpoint gives."""
    for name in ("a1", "a2", "b3"):
        assert add(client, llama, {"name": name, "fileset": "lora-llama", "finetuning_type": "lora"}).status_code == 201
    assert client.patch(f"{WS}/adapters/b3", json={"enabled": False}).status_code == 200
    stranger = make_user("stranger")
    first = client.get(f"{WS}/adapters", params={"page_size": 1, "sort": "name"}).json()
    flat, nested = f"{WS}/adapters", f"{WS}/models/{llama}/adapters"
    cases: list[tuple[TestClient, str, Any]] = [
        (client, flat, {}),
        (client, flat, {"model": f"default/{llama}", "enabled": "true"}),
        (client, flat, {"model": llama, "enabled": "false"}),
        (client, flat, {"finetuning_type": "LORA", "name_prefix": "a", "sort": "-name"}),
        (client, flat, {"page_size": 1, "sort": "name", "page_token": first["next_page_token"]}),
        (client, flat, {"enabled": "maybe"}),
        (client, flat, {"model": "m" * 600}),
        (client, flat, {"unknown": "1"}),
        (client, flat, [("enabled", "true"), ("enabled", "false")]),
        (client, nested, {}),
        (client, nested, {"enabled": "true", "page_size": 2}),
        (client, f"{WS}/models/missing/adapters", {}),
        (client, f"{WS}/models/{'m' * 256}/adapters", {}),
        (client, "/v1/workspaces/nowhere/adapters", {}),
        (stranger, flat, {}),
    ]
    read = plain_reads(monkeypatch, adapter_endpoints)
    for caller, path, params in cases:
        fast, full = both_ways(monkeypatch, lambda _way, c=caller, u=path, p=params: c.get(u, params=p))
        assert (fast.status_code, fast.content) == (full.status_code, full.content), (path, params)
    # Read by the fast path: all but the four query strings only the dependency refuses.
    assert read == [True] * 5 + [False] * 4 + [True] * 6
    enabled = client.get(nested, params={"enabled": "true"}).json()["data"]
    assert sorted(a["name"] for a in enabled) == ["a1", "a2"]
